"""Who is calling: tokens (resolution and issuing, stored as SHA-256) and frobs (the frob flow's
state machine that the auth.* methods and the authorize page drive).

May import ``api.runtime``, ``api.models``, ``api.core`` and below; its siblings ``api.content`` and
``api.media`` without a cycle; never ``api.methods``, ``api.web``, ``api.app``.
"""
