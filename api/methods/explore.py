"""The ``explore.*`` family: what everyone posted (spec §9 service explore, §9.1, §10.1, §10.3).

Public documents only, whoever asks: a token never adds a member's private, family or friends'
documents here. ``explore.docs.getRecent`` (newest first, a ``count`` without paging),
``explore.docs.getPopular`` (the week's most visited and faved) and ``explore.docs.homepage``
(each member's latest all-audience document) answer ``<docs …><doc …/></docs>`` (method-shapes.md);
``explore.groups.getRandom`` some public groups at random (docs/protocol-choices.md, "Groups (issue
14)"). The rules are written down in docs/protocol-choices.md, "Tags and explore".
"""

from __future__ import annotations

from typing import Annotated, Any

from peewee import Expression, Select, Value, fn

from api.content.access import media_clause, safesurf_clause, viewer_of, visible_to
from api.content.groups import group_cards
from api.content.listing import docs_page, owned_docs
from api.content.trees import doc_trees, parse_extra, parse_thumbsize
from api.core.context import Call
from api.core.paging import NUMBER_OF, Paging
from api.core.registry import MethodGroup
from api.methods.common import (
    READ,
    InvalidArgument,
    MediaFilter,
    Safesurf,
    Thumbsize,
    extra_help,
)
from api.models.docs import Doc, DocFave, DocVisit
from api.models.groups import Group
from keys.models import User

group = MethodGroup()

RECENT_COUNT, MAX_RECENT_COUNT = 50, 100  # spec §10.1, "count-style methods"
EXPLORE_EXTRAS = ("owner", "dates", "license", "medias", "geo")  # spec §10.3
POPULAR_PAGE = Paging("documents", default=20, maximum=50, wording=NUMBER_OF)  # spec §10.1
HOMEPAGE_PAGE = Paging("documents", default=5, maximum=100, wording=NUMBER_OF)
POPULAR_WINDOW = 7 * 86400  # "the week most popular documents": the last 7 days
FAVE_WEIGHT = 3  # one fave counts as much as three members' visits
ALL_AUDIENCES = 1  # the homepage shows safety 1 only, whoever asks (it takes no safesurf)
GROUPS_COUNT, MAX_GROUPS_COUNT = 10, 50  # explore.groups.getRandom (spec §10.1)
RANDOM_POOL = 500  # the recently active public groups it draws from

Extra = Annotated[str, extra_help(EXPLORE_EXTRAS)]


def _public(call: Call, safesurf: int | None, media: str) -> list[Expression]:
    """Public docs, up to the safety level asked for, of the media asked for: what every
    explore.docs list filters by (a token never widens it)."""
    where = [visible_to(Doc, None), safesurf_clause(viewer_of(call), safesurf, InvalidArgument)]
    media_only = media_clause(media, InvalidArgument)
    if media_only is not None:
        where.append(media_only)
    return where


@group.method("explore.docs.getRecent", title="Return some recent documents posted by everyone",
              perms=READ, invalid=InvalidArgument, modified_at="1394578800",
              response='<docs count="50"><doc doc_id media license title><owner user_id/>'
                       '<thumb label ext w h url/></doc></docs>')
def get_recent(call: Call,
               safesurf: Safesurf = None, media: MediaFilter = "",
               extra: Extra = "", thumbsize: Thumbsize = "",
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
    docs = list(owned_docs()
                .where(*_public(call, safesurf, media))
                .order_by(Doc.posted_at.desc(), Doc.id.desc())
                .limit(min(count, MAX_RECENT_COUNT)))
    extras = parse_extra(extra, EXPLORE_EXTRAS) | {"owner"}  # the owner is in every item
    items = doc_trees(docs, call, extras, parse_thumbsize(thumbsize))
    return {"docs": {"count": len(items), "doc": items}}


@group.method("explore.docs.getPopular", title="Return the week most popular documents",
              perms=READ, invalid=InvalidArgument, modified_at="1394578800",
              response='<docs total="12" per_page="20" page="1" pages="1"><doc doc_id media '
                       'license title><owner user_id/><thumb label ext w h url/></doc></docs>')
def get_popular(call: Call,
                safesurf: Safesurf = None, media: MediaFilter = "",
                extra: Extra = "", thumbsize: Thumbsize = "",
                per_page: Annotated[int | None, POPULAR_PAGE.per_page_help] = None,
                page: Annotated[int | None, POPULAR_PAGE.page_help] = None) -> dict:
    """Return the public documents most visited and faved in the last 7 days, best first.

    A document's score is the number of members (not its owner) whose latest visit to it falls
    in the last 7 days, plus 3 for each fave given in them; the documents visited, faved or
    posted in those 7 days are ranked, ties newest first. safesurf and media work as in
    explore.docs.getRecent.
    """
    now = call.now()
    window = (now - POPULAR_WINDOW, now)  # a date after now is not "of the week"
    ranked = _week_candidates(*window)
    score = ranked.c.score
    extras = parse_extra(extra, EXPLORE_EXTRAS) | {"owner"}  # the owner is in every item
    return docs_page(call, _public(call, safesurf, media),
                     (score.desc(), Doc.posted_at.desc(), Doc.id.desc()),
                     POPULAR_PAGE.page(page, per_page), extras, parse_thumbsize(thumbsize),
                     ranking=Doc.select().join(ranked, on=(ranked.c.doc_id == Doc.id)))


def _week_candidates(since: int, until: int) -> Any:
    """``(doc_id, score)`` for each doc visited, faved or posted between ``since`` and
    ``until``: 1 per member whose latest visit falls in the window (one doc_visits row per
    member, read from the (visited_at, doc) index alone), ``FAVE_WEIGHT`` per fave given in it
    (the doc_faves (faved_at, doc) index), 0 for a doc only posted in it (the (posted_at, id)
    index). Only these docs are joined and ranked, never the whole docs table."""
    visits = (DocVisit.select(DocVisit.doc.alias("doc_id"), Value(1).alias("score"))
              .where(DocVisit.visited_at.between(since, until)))
    faves = (DocFave.select(DocFave.doc.alias("doc_id"), Value(FAVE_WEIGHT).alias("score"))
             .where(DocFave.faved_at.between(since, until)))
    posted = (Doc.select(Doc.id.alias("doc_id"), Value(0).alias("score"))
              .where(Doc.posted_at.between(since, until)))
    every = (visits + faves + posted).alias("every")  # UNION ALL, then one grouped pass
    return (Select([every], [every.c.doc_id.alias("doc_id"),
                             fn.SUM(every.c.score).alias("score")])
            .group_by(every.c.doc_id)
            .alias("ranked"))


@group.method("explore.docs.homepage", title="Return the homepage focus last 5 items",
              perms=READ, modified_at="1249855200",
              response='<docs total="5" per_page="5" page="1" pages="1" count="5"><doc doc_id '
                       'media license title><owner user_id/><thumb label ext w h url/></doc>'
                       '</docs>')
def homepage(call: Call, extra: Extra = "", thumbsize: Thumbsize = "",
             per_page: Annotated[int | None, HOMEPAGE_PAGE.per_page_help] = None,
             page: Annotated[int | None, HOMEPAGE_PAGE.page_help] = None) -> dict:
    """Return the homepage's focus: each member's latest public all-audience document, newest
    first, 5 to a page.

    One document per member, so one busy member never fills the homepage; safety 1 only,
    whoever asks (the method takes no safesurf).
    """
    shown = (visible_to(Doc, None), Doc.safety <= ALL_AUDIENCES)
    # Each member's latest: the highest posted_at, ties the highest id (the list's own order);
    # one seek per member in the (owner, posted_at) index, not a pass over every doc.
    mine = Doc.alias("mine")
    latest = User.select(mine.select(mine.id)
                         .where(mine.owner == User.id, mine.is_public == True,  # noqa: E712
                                mine.safety <= ALL_AUDIENCES)
                         .order_by(mine.posted_at.desc(), mine.id.desc())
                         .limit(1))
    extras = parse_extra(extra, EXPLORE_EXTRAS) | {"owner"}
    return docs_page(call, [*shown, Doc.id.in_(latest)], (Doc.posted_at.desc(), Doc.id.desc()),
                     HOMEPAGE_PAGE.page(page, per_page), extras, parse_thumbsize(thumbsize))


@group.method("explore.groups.getRandom", title="Return some random interesting groups",
              invalid=InvalidArgument, modified_at="1263510000",
              response='<groups count="10"><group group_id title link icon><count members docs '
                       'topics/><dates created_at last_doc_at last_topic_at/><visibility '
                       'ispublic docs topics/></group></groups>')
def groups_get_random(call: Call,
                      count: Annotated[int, f"How many groups (default {GROUPS_COUNT}, max "
                                            f"{MAX_GROUPS_COUNT})."] = GROUPS_COUNT) -> dict:
    """Return some public groups at random, among the most recently active.

    The candidates are the public groups whose pool last changed most recently (at most
    ``RANDOM_POOL`` of them, read from an index), so the draw never sorts every group. A count
    over 50 is lowered to 50; below 1 it is code 2, as in explore.docs.getRecent.
    """
    if count < 1:
        raise InvalidArgument(f"count={count}")
    candidates = (Group.select(Group.id)
                  .where(Group.is_public == True)  # noqa: E712 (peewee expression)
                  .order_by(Group.last_doc_at.desc(), Group.id.desc())
                  .limit(RANDOM_POOL))
    groups = list(Group.select().where(Group.id.in_(candidates))
                  .order_by(fn.Random()).limit(min(count, MAX_GROUPS_COUNT)))
    items = group_cards(call.base_url, groups, viewer_of(call))
    return {"groups": {"count": len(items), "group": items}}
