"""The ``user.*`` family: a member's public card (method-shapes.md, user.get)."""

from __future__ import annotations

from typing import Annotated

from api.content.access import find_member, viewer_of
from api.content.members import counts, relation
from api.content.posts import post_viewer
from api.core.context import Call
from api.core.errors import method_error
from api.core.registry import MethodGroup
from api.media.names import icon_url

group = MethodGroup()

# Not methods.common.UserNotFound: user.get finds closed accounts too (``find_member``), so its
# "User not found" never means a closed one.
NoSuchMember = method_error(1, "User not found", "The user ID or web alias is invalid.")


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
    """Returns a member's names, icon, flags, relation to the caller, place, counts and dates.

    ``icon`` is the member's own icon (set on /settings/profile) or the default one; ``location``
    holds the town and country the member gave there (empty when they gave none).
    """
    user = find_member(user_id) if user_id.strip() else call.user
    if user is None:
        raise NoSuchMember(user_id or "missing parameter user_id")
    return {"user": {
        "user_id": user.id, "is_pro": user.is_pro, "is_online": False,
        "is_closed": not user.is_open, "tmo": 0, "username": user.username,
        "realname": user.realname, "alias": user.username, "icon": icon_url(call.base_url, user),
        "link": f"{call.base_url}/home/{user.username}",
        "relation": relation(call.user, user),
        "location": {"country": user.country, "town": user.town},
        "count": counts(user, viewer_of(call), post_viewer(call)),
        "dates": {"member_since": user.created_at},
    }}
