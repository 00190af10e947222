"""``album.get``, ``album.getList``, ``album.getVisitors``, ``album.getFaves``: anyone who may
see an album reads it, and sees only the docs they may see in it (spec §9, shapes).
"""

from __future__ import annotations

from typing import Annotated

from peewee import fn

from api.content.access import find_open_member, relation_to, safesurf_clause, viewer_of, visible_to
from api.content.albums import album_head, covers, doc_counts
from api.content.faves import FAVERS_PAGE, favers, is_fave
from api.content.trees import DEFAULT_THUMBSIZE, THUMB_LABELS, owner_tree, parse_thumbsize
from api.content.visits import record_visit, visitors
from api.core.context import Call
from api.core.paging import Paging
from api.core.registry import MethodGroup
from api.formats.tree import Text
from api.methods.album.shared import (
    AlbumId,
    AlbumNotFound,
    OwnAlbumId,
    album_dates,
    album_numbers,
    can_tree,
    count_tree,
    is_owner,
    own_album,
    visibility_flags,
    visible_album,
)
from api.methods.common import READ, InvalidArgument, UserNotFound
from api.models.docs import Album, AlbumDoc, AlbumVisit

group = MethodGroup()
CoverSize = Annotated[str, f"Cover size: {', '.join(THUMB_LABELS)} ({DEFAULT_THUMBSIZE})."]
ALBUMS_PAGE = Paging("Albums", default=100, maximum=100)
VISITORS_PAGE = Paging("Visitors", default=10, maximum=100)


@group.method("album.get", title="Get information about an album.", perms=READ,
              missing=AlbumNotFound, invalid=AlbumNotFound,
              response="<album album_id link title thumbsize><description/><dates/><count/>"
                       "<cover/><can/><permissions/><you/></album>")
def get(call: Call, album_id: AlbumId, thumbsize: CoverSize = DEFAULT_THUMBSIZE) -> dict:
    """An album's details; an authenticated view by another member counts as a visit."""
    album = visible_album(call, album_id)
    visit = record_visit(call, album, AlbumVisit, "album")
    label = parse_thumbsize(thumbsize)
    counts, cover = album_numbers(call, album, label)
    can = can_tree(call, album, relation_to(album.owner_id, call.user))
    you = None
    if call.user is not None:
        you = {"isfave": is_fave(album, call.user), "visits": visit.visits if visit else 0,
               "last_visit_at": visit.visited_at if visit else 0}
    return {"album": {**album_head(call, album),
                      "thumbsize": label,
                      "description": Text(album.description),
                      "dates": album_dates(album),
                      "count": count_tree(album, counts, by_share=True),
                      "cover": cover,
                      "can": {**can, "add_doc": is_owner(call, album)},
                      "permissions": {"comment": album.perm_comment},
                      "you": you}}


@group.method("album.getList", title="Return the albums list for a given user", safety=True,
              missing=UserNotFound, invalid=InvalidArgument,
              response="<albums total page pages per_page count thumbsize><can create/>"
                       "<album …><owner user_id username realname/>…</album></albums>")
def get_list(call: Call,
             user_id: Annotated[str | None, "The member (id or username); defaults to the "
                                           "authenticated user (the token's)."] = None,
             safesurf: Annotated[int | None, "Highest safety level of the covers shown: 1, 2 "
                                             "or 3."] = None,
             empty: Annotated[bool, "1 (default) lists empty albums too, 0 leaves them "
                                    "out."] = True,
             thumbsize: CoverSize = DEFAULT_THUMBSIZE,
             per_page: Annotated[int | None, ALBUMS_PAGE.per_page_help] = None,
             page: Annotated[int | None, ALBUMS_PAGE.page_help] = None) -> dict:
    """A member's albums the caller may see, in the owner's order; a fixed number of queries."""
    user = find_open_member(user_id) if user_id else call.user
    if user is None:
        raise UserNotFound(f"user {user_id!r}")
    slice_ = ALBUMS_PAGE.page(page, per_page)
    viewer = viewer_of(call)
    safe = safesurf_clause(viewer, safesurf, InvalidArgument)
    query = Album.select().where(Album.owner == user, visible_to(Album, viewer))
    if not empty:
        query = query.where(fn.EXISTS(AlbumDoc.select().where(AlbumDoc.album == Album.id)))
    total = query.count()
    albums = list(slice_.apply(query.order_by(Album.position, Album.id.desc())))
    label = parse_thumbsize(thumbsize)
    counts = doc_counts([a.id for a in albums], viewer)
    cover_trees = covers(call, albums, label, safe=safe)
    relation = relation_to(user.id, call.user)
    owner = owner_tree(user)  # not in the example; live clients read it (protocol-choices.md)
    items = [{**album_head(call, album),
              "owner": owner,
              "visibility": visibility_flags(album),
              "dates": {"created_at": album.created_at, "last_comment_at": album.comment_at,
                        "last_update_at": album.modified_at},
              "count": count_tree(album, counts.get(album.id), by_share=True),
              "cover": cover_trees.get(album.id),
              "can": can_tree(call, album, relation),
              "permissions": {"comment": album.perm_comment}} for album in albums]
    owner_calls = call.user is not None and call.user.id == user.id
    return {"albums": {**slice_.attrs(total, len(items)), "thumbsize": label,
                       "can": {"create": owner_calls}, "album": items}}


@group.method("album.getVisitors", title="Return the album latest visitors.", service="doc",
              token=True, sign=True, perms=READ, missing=AlbumNotFound, invalid=InvalidArgument,
              response="<visits total page pages per_page count><visit user_id username "
                       "visited_at first_visit_at visits/></visits>")
def get_visitors(call: Call, album_id: OwnAlbumId,
                 per_page: Annotated[int | None, VISITORS_PAGE.per_page_help] = None,
                 page: Annotated[int | None, VISITORS_PAGE.page_help] = None) -> dict:
    """Who viewed one of the caller's albums, latest first (owner only)."""
    return visitors(own_album(call, album_id), AlbumVisit, "album",
                    VISITORS_PAGE.page(page, per_page))


@group.method("album.getFaves", title="Return the list of members who have faved a album.",
              perms=READ, missing=AlbumNotFound, invalid=AlbumNotFound,
              response="<faves count per_page pages page total>"
                       "<fave user_id username faved_at/></faves>")
def get_faves(call: Call, album_id: AlbumId,
              per_page: Annotated[int | None, FAVERS_PAGE.per_page_help] = None,
              page: Annotated[int | None, FAVERS_PAGE.page_help] = None) -> dict:
    """The members who faved an album the caller may see, latest first; closed members are left
    out."""
    return favers(visible_album(call, album_id), FAVERS_PAGE.page(page, per_page))
