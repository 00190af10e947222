"""What the ``group.*`` modules share: the group a call may see (code 1 otherwise) and the
parameters several methods take."""

from __future__ import annotations

from typing import Annotated

from api.content.groups import find_group
from api.core.context import Call
from api.core.errors import method_error
from api.models.groups import Group

GroupNotFound = method_error(1, "Group not found", "The group ID is invalid or insufficient "
                                                   "permissions to view this group.")

GroupId = Annotated[int, "The group."]
Lang = Annotated[str, "The language of the answer's texts (each group has one text: "
                      "accepted and ignored)."]


def visible_group(call: Call, group_id: int, *, locking: bool = False) -> Group:
    """The group if the caller may see it (a public group, or one they are in or invited to),
    else 1; ``locking`` (a write) locks its row first, as ``find_group`` says why."""
    group = find_group(group_id, call.user, locking=locking)
    if group is None:
        raise GroupNotFound(f"group {group_id}")
    return group
