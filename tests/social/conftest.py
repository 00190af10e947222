"""Fixtures for the tags, notes and comments tests: shared with tests/albums."""

from __future__ import annotations

from tests.albums.conftest import as_user, relate, stranger  # noqa: F401 (fixtures)
from tests.docs.conftest import count_queries, make_doc  # noqa: F401 (fixtures)
