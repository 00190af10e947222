"""Request signatures: pure functions, no I/O (md5.py is ipernity's ``api_sig``)."""
