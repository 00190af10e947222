"""What the ``doc.*`` modules share: parameters with their help, the permission trees of doc.get
and doc.getPerms, and the perm checks (code 3) of tags, notes and comments.
"""

from __future__ import annotations

from typing import Annotated, Any

from api.content.access import perm_allows, relation_to
from api.content.trees import may_download
from api.core.context import Call
from api.core.errors import method_error
from api.models.docs import Doc, Relation
from keys.models import User

# The parameters several doc.* methods take, with their help.
DocId = Annotated[int, "The document ID."]
TheDoc = Annotated[int, "The doc."]
OwnDocId = Annotated[int, "One of your docs."]
CallersDocId = Annotated[int, "The document ID (one of the caller's own)."]
Preview = Annotated[bool, "1 to see the result without saving it."]


def permissions_tree(doc: Doc) -> dict[str, Any]:
    """``<permissions comment tag tagme/>``: who may comment, tag, tag themselves (§10.4)."""
    return {"comment": doc.perm_comment, "tag": doc.perm_tag, "tagme": doc.perm_tagme}


def can_tree(call: Call, doc: Doc, viewer: User | None,
             relation: Relation | None) -> dict[str, Any]:
    """``<can …/>``: what the caller may do with this doc under its perm_* settings."""
    def allows(level: int) -> bool:
        return perm_allows(level, viewer, doc.owner_id, relation)

    return {"fave": viewer is not None and viewer.id != doc.owner_id,
            "comment": allows(doc.perm_comment), "tag": allows(doc.perm_tag),
            "tagme": allows(doc.perm_tagme), "zoom": True,
            "download": may_download(call, doc), "print": False}


NotAllowed = method_error(3, "Permission denied", "The document's permissions do not let you do "
                                                  "this.")


def require(allowed: bool, what: str) -> None:
    """Raise 3 unless ``allowed``."""
    if not allowed:
        raise NotAllowed(what)


def may(call: Call, doc: Doc, level: int) -> bool:
    """Whether the caller passes one of the doc's perm levels."""
    return perm_allows(level, call.user, doc.owner_id, relation_to(doc.owner_id, call.user))
