"""Who may see what, and finding the doc a call may see or change (spec §3.2, §5.1, §10.4).

Private, family, friends and public documents and albums: ``visible_to`` is the WHERE clause, and
``can_view`` the same rule for one row. A token widens what a caller sees only when it grants
``doc:read`` (spec §5.1: "read permission is necessary to access private docs"); without it the
caller is an anonymous visitor.

A doc the caller may not see answers the same error as a missing one, so ids leak nothing
(spec §3.2:
"The document ID is invalid or insufficient permissions to view this doc.").
The list filters every doc list shares (media, share, safesurf …) sit here too, and the member
look-ups by id or username: ``find_open_member`` (open accounts only) and ``find_member`` (any).
"""

from __future__ import annotations

from typing import Any

from peewee import Expression

from api.core.context import Call
from api.core.errors import ApiError
from api.core.ids import as_id
from api.models.docs import (
    MEDIA_TYPES,
    SAFETY_LEVELS,
    SHARE_LEVELS,
    Doc,
    Relation,
    share_where,
)
from keys.db import locked
from keys.models import User
from keys.store import find_user_by_username


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


ANONYMOUS_SAFESURF_CAP = 2  # "adults only" (3) needs an authenticated viewer
DEFAULT_SAFESURF = 1  # all audiences, unless the caller asks for more (docs/documents.md)


def visible_doc(call: Call, doc_id: int, not_found: type[ApiError]) -> Doc:
    """The doc with its owner joined, if the caller may see it; else ``not_found``. Inside a
    write (a transaction) the doc's row stays locked until the write ends."""
    doc = locked(Doc.select(Doc, User)
                 .join(User, on=(Doc.owner == User.id))
                 .where(Doc.id == doc_id), Doc).first()
    if doc is None or not can_view(doc, viewer_of(call)):
        raise not_found(f"doc {doc_id}")
    return doc


def owned_doc(call: Call, doc_id: int, not_found: type[ApiError]) -> Doc:
    """The caller's own doc (its row locked inside a write); someone else's answers like a
    missing one."""
    doc = locked(Doc.select().where(Doc.id == doc_id), Doc).first()
    if doc is None or call.user is None or doc.owner_id != call.user.id:
        raise not_found(f"doc {doc_id}")
    return doc


def find_open_member(ref: str) -> User | None:
    """An open account named by ``ref``: a numeric id, else a username (web alias, spec §10.4).
    A closed account is not found (doc and album lists, tags, notes)."""
    value = ref.strip()
    row_id = as_id(value)
    match = User.id == row_id if row_id is not None else User.username == value
    return User.select().where(match, User.status == "open").first()


def find_member(ref: str) -> User | None:
    """Any account, open or closed, named by ``ref``: the numeric id, else the username (user.get
    shows closed accounts, flagged ``is_closed``)."""
    value = ref.strip()
    row_id = as_id(value)
    user = User.get_or_none(User.id == row_id) if row_id is not None else None
    return user or find_user_by_username(value)


# perm_comment, perm_tag, perm_tagme (§10.4): 0 only you, 1 family, 2 friends, 3 friends & family,
# 4 contacts, 5 everybody; ``perm_allows`` says what each lets a viewer do.
PERM_LEVELS = (0, 1, 2, 3, 4, 5)


def perm_allows(level: int, viewer: User | None, owner_id: int, relation: Relation | None) -> bool:
    """Whether a perm_* level (0 only you … 4 contacts, 5 everybody, §10.4) lets ``viewer`` act."""
    if viewer is None:
        return False
    if viewer.id == owner_id or level >= 5:
        return True
    if relation is None:
        return False
    return {4: True, 3: relation.is_family or relation.is_friend, 2: relation.is_friend,
            1: relation.is_family}.get(level, False)


def parse_choices(value: str, allowed: tuple[Any, ...], convert: Any,
                  invalid: type[ApiError]) -> list[Any]:
    """A comma list whose every item is one of ``allowed`` (e.g. ``media=photo,video``)."""
    try:
        items = [convert(part.strip()) for part in value.split(",") if part.strip()]
    except ValueError:
        raise invalid(value) from None
    if any(item not in allowed for item in items):
        raise invalid(value)
    return items


def media_clause(media: str, invalid: type[ApiError]) -> Expression | None:
    """``media=photo`` or ``media=photo,video`` (§10.4); None when not asked."""
    if not media:
        return None
    return Doc.media.in_(parse_choices(media.lower(), MEDIA_TYPES, str, invalid))


def share_clause(share: int | None, invalid: type[ApiError]) -> Expression | None:
    """Docs at one share level: 0 private, 1 family, 2 friends, 3 both, 4 public (§10.4)."""
    if share is None:
        return None
    if share not in SHARE_LEVELS:
        raise invalid(f"share={share}")
    return share_where(Doc, share)


def safesurf_clause(viewer: User | None, safesurf: int | None,
                    invalid: type[ApiError]) -> Expression:
    """Docs up to the safety level asked for; the viewer's own docs are never hidden from them."""
    if safesurf is not None and safesurf not in SAFETY_LEVELS:
        raise invalid(f"safesurf={safesurf}")
    limit = DEFAULT_SAFESURF if safesurf is None else safesurf
    if viewer is None:
        return Doc.safety <= min(limit, ANONYMOUS_SAFESURF_CAP)
    return (Doc.safety <= limit) | (Doc.owner == viewer)
