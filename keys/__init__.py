"""API keys and their owners: models, issuing, the hot-path lookup cache and ``python -m keys``.

This package never imports ``api``; ``api`` builds on it.
"""
