"""The HTML pages: the home page, the method docs, accounts, the authorize page and the
authorized-applications page, with the shared layout, stylesheet and
templates (shipped as package data).

Same layer as ``api.methods``; may import ``api.auth``, ``api.content``, ``api.media`` and below,
never ``api.methods`` or ``api.app``.
"""
