"""The ``user.*`` family: a member's public card (method-shapes.md, user.get)."""

from __future__ import annotations

from typing import Annotated

from api.content.access import find_member, viewer_of, visible_to
from api.core.context import Call
from api.core.errors import method_error
from api.core.registry import MethodGroup
from api.media.names import icon_url
from api.models.docs import Doc, Relation
from keys.models import User

group = MethodGroup()

# Not methods.common.UserNotFound: user.get finds closed accounts too (``find_member``), so its
# "User not found" never means a closed one.
NoSuchMember = method_error(1, "User not found", "The user ID or web alias is invalid.")


def relation(viewer: User | None, user: User) -> dict | None:
    """How the caller and ``user`` count each other (only for a caller with a token)."""
    if viewer is None:
        return None
    rows = {(row.user_id, row.contact_id): row for row in Relation
            .select()
            .where(((Relation.user == viewer) & (Relation.contact == user))
                   | ((Relation.user == user) & (Relation.contact == viewer)))}
    mine, theirs = rows.get((viewer.id, user.id)), rows.get((user.id, viewer.id))
    return {"isfamily": bool(mine and mine.is_family), "isfriend": bool(mine and mine.is_friend),
            "iscontact": mine is not None,
            "revfamily": bool(theirs and theirs.is_family),
            "revfriend": bool(theirs and theirs.is_friend), "revcontact": theirs is not None}


@group.method("user.get", title="Get information about a user", sign=True, missing=NoSuchMember,
              response='<user user_id="12345" is_pro="0" is_online="0" is_closed="0" tmo="0" '
                       'username="Superman" realname="Kal-El" alias="superman" '
                       'icon="http://example.org/media/icons/default.png" '
                       'link="http://example.org/home/superman"><relation isfamily="0" '
                       'isfriend="1" iscontact="1" revfamily="0" revfriend="0" revcontact="0"/>'
                       '<location country="" town=""/><count docs="12" posts="0" network="3"/>'
                       '<dates member_since="1218038768"/></user>')
def get(call: Call, user_id: Annotated[str, "The user's id or username; defaults to the "
                                            "authenticated user (the token's)."] = "") -> dict:
    """Returns a member's names, icon, flags, relation to the caller, counts and dates.

    Members have no place of their own yet: ``location`` is there (live clients read it) but empty.
    """
    user = find_member(user_id) if user_id.strip() else call.user
    if user is None:
        raise NoSuchMember(user_id or "missing parameter user_id")
    docs = (Doc
            .select()
            .where(Doc.owner == user, visible_to(Doc, viewer_of(call)))
            .count())
    network = (Relation
               .select()
               .where(Relation.user == user)
               .count())
    return {"user": {
        "user_id": user.id, "is_pro": user.is_pro, "is_online": False,
        "is_closed": not user.is_open, "tmo": 0, "username": user.username,
        "realname": user.realname, "alias": user.username, "icon": icon_url(call.base_url),
        "link": f"{call.base_url}/home/{user.username}",
        "relation": relation(call.user, user),
        "location": {"country": "", "town": ""},
        "count": {"docs": docs, "posts": 0, "network": network},
        "dates": {"member_since": user.created_at},
    }}
