"""Fixtures for the album tests: the doc maker and query counter of tests/docs, and callers."""

from __future__ import annotations

from typing import Any

import pytest

from api.models.docs import Relation
from keys import store
from tests.docs.conftest import count_queries, make_doc  # noqa: F401 (fixtures shared as is)


@pytest.fixture
def stranger(ctx):
    """A third member with no relation to anybody."""
    return store.add_user("stranger", "stranger-password", realname="A Stranger")


@pytest.fixture
def as_user(call, token_for):
    """``as_user(user, "album.get", level="read", **params)``: a JSON call with a fresh token."""

    def run(user: Any, method: str, *, level: str = "delete", **params: Any) -> dict:
        return call(method, token=token_for(user, doc=level), **params)

    return run


@pytest.fixture
def relate():
    """``relate(owner, contact, family=True)``: ``owner`` counts ``contact`` as family/friend."""

    def make(owner: Any, contact: Any, *, family: bool = False, friend: bool = False) -> None:
        Relation.create(user=owner, contact=contact, is_family=family, is_friend=friend)

    return make
