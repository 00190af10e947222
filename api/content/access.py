"""Finding the doc a call may see or change, and the list filters every doc list shares.

A doc the caller may not see answers the same error as a missing one, so ids leak nothing
(spec §3.2:
"The document ID is invalid or insufficient permissions to view this doc.").
"""

from __future__ import annotations

from typing import Any

from peewee import Expression

from api.core.context import Call
from api.core.errors import ApiError
from api.core.ids import as_id
from api.models.docs import MEDIA_TYPES, Doc, Relation
from api.content.visibility import can_view, viewer_of
from keys.models import User

ANONYMOUS_SAFESURF_CAP = 2  # "adults only" (3) needs an authenticated viewer
DEFAULT_SAFESURF = 1  # all audiences, unless the caller asks for more (docs/documents.md)


def visible_doc(call: Call, doc_id: int, not_found: type[ApiError]) -> Doc:
    """The doc with its owner joined, if the caller may see it; else ``not_found``."""
    doc = (Doc.select(Doc, User)
           .join(User, on=(Doc.owner == User.id))
           .where(Doc.id == doc_id)
           .first())
    if doc is None or not can_view(doc, viewer_of(call)):
        raise not_found(f"doc {doc_id}")
    return doc


def owned_doc(call: Call, doc_id: int, not_found: type[ApiError]) -> Doc:
    """The caller's own doc; someone else's answers like a missing one."""
    doc = Doc.get_or_none(Doc.id == doc_id)
    if doc is None or call.user is None or doc.owner_id != call.user.id:
        raise not_found(f"doc {doc_id}")
    return doc


def find_user(user_id: str) -> User | None:
    """A member by numeric id or by username (web alias, spec §10.4), open accounts only."""
    value = user_id.strip()
    row_id = as_id(value)
    match = User.id == row_id if row_id is not None else User.username == value
    return User.select().where(match, User.status == "open").first()


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
    if share == 4:
        return Doc.is_public == True  # noqa: E712 (peewee expression)
    if share not in (0, 1, 2, 3):
        raise invalid(f"share={share}")
    return ((Doc.is_public == False)  # noqa: E712
            & (Doc.is_family == bool(share & 1))
            & (Doc.is_friend == bool(share & 2)))


def safesurf_clause(viewer: User | None, safesurf: int | None,
                    invalid: type[ApiError]) -> Expression:
    """Docs up to the safety level asked for; the viewer's own docs are never hidden from them."""
    if safesurf is not None and safesurf not in (1, 2, 3):
        raise invalid(f"safesurf={safesurf}")
    limit = DEFAULT_SAFESURF if safesurf is None else safesurf
    if viewer is None:
        return Doc.safety <= min(limit, ANONYMOUS_SAFESURF_CAP)
    return (Doc.safety <= limit) | (Doc.owner == viewer)
