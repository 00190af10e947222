"""Request signatures: pure functions, no I/O (md5.py is ipernity's ``api_sig``).

May import ``api.config`` and ``keys``; nothing above (today it imports nothing of either).
"""
