"""The ``explore.*`` family: what everyone posted (spec §9 service explore, §9.1, §10.1, §10.3).

So far ``explore.docs.getRecent``: the newest public documents of every member, answered as
``<docs count><doc …/></docs>`` (method-shapes.md), a ``count`` of them without paging.
"""

from __future__ import annotations

from typing import Annotated

from api.content.access import media_clause, safesurf_clause, viewer_of, visible_to
from api.content.trees import doc_trees, parse_extra, parse_thumbsize
from api.core.context import Call
from api.core.registry import MethodGroup
from api.methods.common import (
    READ,
    InvalidArgument,
    MediaFilter,
    Safesurf,
    Thumbsize,
    extra_help,
)
from api.models.docs import Doc
from keys.models import User

group = MethodGroup()

RECENT_COUNT, MAX_RECENT_COUNT = 50, 100  # spec §10.1, "count-style methods"
EXPLORE_EXTRAS = ("owner", "dates", "license", "medias", "geo")  # spec §10.3


@group.method("explore.docs.getRecent", title="Return some recent documents posted by everyone",
              perms=READ, invalid=InvalidArgument,
              response='<docs count="50"><doc doc_id media license title><owner user_id/>'
                       '<thumb label ext w h url/></doc></docs>')
def get_recent(call: Call,
               safesurf: Safesurf = None, media: MediaFilter = "",
               extra: Annotated[str, extra_help(EXPLORE_EXTRAS)] = "", thumbsize: Thumbsize = "",
               count: Annotated[int, f"How many documents (default {RECENT_COUNT}, max "
                                     f"{MAX_RECENT_COUNT})."] = RECENT_COUNT) -> dict:
    """Return the newest public documents of every member, newest first, each with its owner.

    Only public documents, whoever asks: a token never adds a member's private, family or
    friends' documents here. safesurf works as in doc.search (1 by default, 3 for an
    authenticated caller only, a caller's own documents never hidden from them). A count over
    100 is lowered to 100, as per_page is in the paged lists; below 1 it is code 2.
    """
    if count < 1:
        raise InvalidArgument(f"count={count}")
    viewer = viewer_of(call)
    where = [visible_to(Doc, None), safesurf_clause(viewer, safesurf, InvalidArgument)]
    media_only = media_clause(media, InvalidArgument)
    if media_only is not None:
        where.append(media_only)
    docs = list(Doc.select(Doc, User)
                .join(User, on=(Doc.owner == User.id))
                .where(*where)
                .order_by(Doc.posted_at.desc(), Doc.id.desc())
                .limit(min(count, MAX_RECENT_COUNT)))
    extras = parse_extra(extra, EXPLORE_EXTRAS) | {"owner"}  # the owner is in every item
    items = doc_trees(docs, call, extras, parse_thumbsize(thumbsize))
    return {"docs": {"count": len(items), "doc": items}}
