"""The HTML pages: accounts, the authorize page and the authorized-applications page, with their
templates (shipped as package data).

Same layer as ``api.methods``; may import ``api.auth``, ``api.content``, ``api.media`` and below,
never ``api.methods`` or ``api.app``.
"""
