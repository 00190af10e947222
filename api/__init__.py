"""The ipernity-compatible API server. Folders are layers; imports run downward only, lowest first:

    keys/                                   (never imports api)
    api.config
    api.formats, api.signing
    api.core
    api.models
    api.runtime
    api.auth, api.content, api.media        (siblings: may import each other, never in a cycle)
    api.methods, api.web
    api.app, api.server, api.cluster, api.__main__

A module may import its own layer and every layer below it, at module level or in a function.
tests/core/test_layers.py holds the table and fails on an upward import, an import cycle, keys/
importing api/, or one method module importing another (docs/architecture.md, "Layers").
"""
