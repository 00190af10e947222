"""Fixtures for the doc.* tests: docs made directly with the models, and a query counter."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from api.models.docs import Doc, Thumb
from keys.db import db

THUMB_SIZES = {"75x": (75, 75), "100": (100, 75), "240": (240, 180), "500": (500, 375)}


@pytest.fixture
def make_doc(ctx, clock):
    """``make_doc(owner, **fields)``: a doc with one Thumb row per label of THUMB_SIZES."""
    counter = itertools.count(1)

    def make(owner: Any, *, thumbs: bool = True, **fields: Any) -> Doc:
        n = next(counter)
        values = {"title": f"Doc {n}", "secret": f"{n:08x}", "original_secret": f"o{n:07x}",
                  "posted_at": int(clock()) + n, "modified_at": int(clock()) + n,
                  "original_ext": "jpg", "width": 500, "height": 375, "md5": f"{n:032x}"}
        doc = Doc.create(owner=owner, **(values | fields))
        if thumbs:
            Thumb.insert_many([{"doc": doc.id, "label": label, "w": w, "h": h}
                               for label, (w, h) in THUMB_SIZES.items()]).execute()
        return doc

    return make


class QueryLog:
    """SQL statements run while counting."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __len__(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries(ctx) -> Any:
    """``with count_queries() as log:`` records every statement the database runs in the block."""

    @contextlib.contextmanager
    def counting() -> Iterator[QueryLog]:
        log = QueryLog()
        database = db.obj
        original = database.execute_sql

        def execute_sql(sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
            log.statements.append(sql)
            return original(sql, params, *args, **kwargs)

        database.execute_sql = execute_sql
        try:
            yield log
        finally:
            del database.execute_sql

    return counting
