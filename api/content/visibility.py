"""Who may see what: private, family, friends and public documents and albums (spec §5.1, §10.4).

A token widens what a caller sees only when it grants ``doc:read`` (spec §5.1: "read permission is
necessary to access private docs"); without it the caller is an anonymous visitor.
"""

from __future__ import annotations

from typing import Any

from peewee import Expression

from api.core.context import Call
from api.models.docs import Relation
from keys.models import User


def viewer_of(call: Call) -> User | None:
    """The user whose eyes a call looks through, or None for an anonymous view."""
    return call.user if call.allows("doc", "read") else None


def _family_of(viewer: User) -> Any:
    return Relation.select(Relation.user).where(Relation.contact == viewer, Relation.is_family)


def _friends_of(viewer: User) -> Any:
    return Relation.select(Relation.user).where(Relation.contact == viewer, Relation.is_friend)


def visible_to(model: Any, viewer: User | None) -> Expression:
    """A WHERE clause for ``model`` (Doc or Album) rows ``viewer`` may see; no query per row."""
    if viewer is None:
        return model.is_public == True  # noqa: E712 (peewee expression)
    return ((model.is_public == True)  # noqa: E712
            | (model.owner == viewer)
            | ((model.is_family == True) & model.owner.in_(_family_of(viewer)))  # noqa: E712
            | ((model.is_friend == True) & model.owner.in_(_friends_of(viewer))))  # noqa: E712


def relation_to(owner_id: int, viewer: User | None) -> Relation | None:
    """The owner's relation row for ``viewer`` (family, friend), or None; one query at most."""
    if viewer is None or viewer.id == owner_id:
        return None
    return Relation.get_or_none(Relation.user == owner_id, Relation.contact == viewer)


def can_view(row: Any, viewer: User | None) -> bool:
    """Whether ``viewer`` may see one Doc or Album row."""
    if row.is_public:
        return True
    if viewer is None:
        return False
    if row.owner_id == viewer.id:
        return True
    if not (row.is_family or row.is_friend):
        return False
    relation = relation_to(row.owner_id, viewer)
    return bool(relation and ((row.is_family and relation.is_family)
                              or (row.is_friend and relation.is_friend)))
