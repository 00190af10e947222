"""Documents as the methods see them: access (who may see what, as WHERE clauses and per row; the
doc look-ups and list filters), trees (result-tree builders), tags, visits, albums (membership and
per-album numbers).

May import ``api.runtime``, ``api.models``, ``api.core`` and below; its siblings ``api.media``
(file names for URLs) and ``api.auth`` without a cycle; never ``api.methods``, ``api.web``,
``api.app``.
"""
