"""API keys and their owners: models, issuing, the hot-path lookup cache and the ``python -m keys`` CLI.

This package never imports ``api``; ``api`` builds on it.
"""
