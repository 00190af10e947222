"""The ``album.*`` family, plus ``doc.albums.add`` and ``doc.getContainers`` (spec §9, shapes).

Albums are ordered sets of their owner's docs. Only the owner changes an album; anyone who may see
it reads it, and sees only the docs they may see in it. The cover defaults to the first doc and is
shown only to whom may see that doc. Per-album numbers in lists come from grouped queries, never
one query per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from peewee import Case, Expression, fn

from api.content.access import (
    can_view,
    find_user,
    media_clause,
    owned_doc,
    perm_allows,
    relation_to,
    safesurf_clause,
    share_clause,
    viewer_of,
    visible_doc,
    visible_to,
)
from api.content.trees import (
    DEFAULT_THUMBSIZE,
    context_item,
    doc_trees,
    owner_tree,
    parse_extra,
    parse_thumbsize,
    pick_thumb,
    thumbs_by_doc,
)
from api.content.visits import record_visit
from api.core.context import Call
from api.core.errors import method_error
from api.core.ids import as_id
from api.core.paging import paging
from api.core.registry import MethodGroup
from api.formats.tree import Text
from api.media.names import thumb_url
from api.methods.common import READ, WRITE, DocNotFound, InvalidArgument, UserNotFound
from api.models.docs import Album, AlbumDoc, AlbumVisit, Doc, Relation
from keys.db import db
from keys.models import User

group = MethodGroup()

AlbumNotFound = method_error(1, "Album not found", "The album ID is invalid or insufficient "
                                                   "permissions to view this album.")
DocNotInAlbum = method_error(2, "Document not found", "The document is not in this album, or you "
                                                      "may not see it.")

DOCS_EXTRAS = ("dates", "geo", "medias", "original", "link")
CONTEXT_DEFAULT, CONTEXT_MAX = 1, 50  # album.docs.getContext prev/next (not published; ours)

_PERM_HELP = "Who may comment: 0 only you, 1 family, 2 friends, 3 friends & family, 4 contacts, " \
             "5 everybody."
_THUMB_HELP = "Cover size: 75x, 100, 240, 250x, 500, 560, 640, 800, 1024, 1600, 2048 (75x)."


# --- look-ups ---------------------------------------------------------------------------------

def visible_album(call: Call, album_id: int) -> Album:
    """The album if the caller may see it, else 1 (existence is never revealed)."""
    album = Album.get_or_none(Album.id == album_id)
    if album is None or not can_view(album, viewer_of(call)):
        raise AlbumNotFound(f"album {album_id}")
    return album


def own_album(call: Call, album_id: int) -> Album:
    """The caller's own album, else 1: only the owner changes an album."""
    album = Album.get_or_none(Album.id == album_id)
    if album is None or not is_owner(call, album):
        raise AlbumNotFound(f"album {album_id}")
    return album


def own_doc_ids(user: User, doc_ids: Iterable[int]) -> set[int]:
    """Which of ``doc_ids`` are ``user``'s docs (one query)."""
    ids = list(doc_ids)
    if not ids:
        return set()
    return {row.id for row in Doc.select(Doc.id).where(Doc.id.in_(ids), Doc.owner == user)}


def parse_ids(raw: str) -> list[int]:
    """A comma list of ids, in order and without repeats, or 2."""
    ids: list[int] = []
    for part in filter(str.strip, raw.split(",")):
        row_id = as_id(part)
        if row_id is None:
            raise InvalidArgument(f"not a list of ids: {raw!r}")
        if row_id not in ids:
            ids.append(row_id)
    return ids


def check_perm(value: int) -> None:
    """A perm_comment level must be 0 … 5 (spec §10.4), else 2."""
    if not 0 <= value <= 5:
        raise InvalidArgument(f"perm_comment={value}")


def is_owner(call: Call, row: Album | Doc) -> bool:
    """Whether the caller owns ``row``."""
    return call.user is not None and call.user.id == row.owner_id


# --- per-album numbers, in grouped queries -----------------------------------------------------

def _count_if(condition: Any) -> Any:
    return fn.SUM(Case(None, [(condition, 1)], 0))


def doc_counts(album_ids: Sequence[int], viewer: User | None) -> dict[int, dict[str, int]]:
    """Visible docs per album, also split by share level (family, friend, ff, public): one query."""
    if not album_ids:
        return {}
    shared = (Doc.is_public == False)  # noqa: E712 (peewee expression)
    rows = (AlbumDoc
            .select(AlbumDoc.album,
                    fn.COUNT(Doc.id),
                    _count_if(shared & (Doc.is_family == True) & (Doc.is_friend == False)),  # noqa: E712
                    _count_if(shared & (Doc.is_family == False) & (Doc.is_friend == True)),  # noqa: E712
                    _count_if(shared & (Doc.is_family == True) & (Doc.is_friend == True)),  # noqa: E712
                    _count_if(Doc.is_public == True))  # noqa: E712
            .join(Doc)
            .where(AlbumDoc.album.in_(list(album_ids)), visible_to(Doc, viewer))
            .group_by(AlbumDoc.album)
            .tuples())
    names = ("docs", "family", "friend", "ff", "public")
    return {row[0]: dict(zip(names, (int(v or 0) for v in row[1:]), strict=True)) for row in rows}


def _first_docs(album_ids: Sequence[int]) -> dict[int, int]:
    """The first doc of each album (the default cover): one query."""
    if not album_ids:
        return {}
    other = AlbumDoc.alias()
    first = other.select(fn.MIN(other.position)).where(other.album == AlbumDoc.album)
    rows = (AlbumDoc
            .select(AlbumDoc.album, AlbumDoc.doc)
            .where(AlbumDoc.album.in_(list(album_ids)), AlbumDoc.position == first)
            .tuples())
    return {album_id: doc_id for album_id, doc_id in rows}


def covers(call: Call, albums: Sequence[Album], thumbsize: str, *,
           safe: Expression | None = None) -> dict[int, dict[str, Any]]:
    """``<cover doc_id w h url/>`` per album whose cover the caller may see (≤ 3 queries).

    A cover obeys visibility and safesurf (``safe``, the default level when None) like any listed
    doc, so it never shows more than a list would.
    """
    wanted = {a.id: a.cover_id for a in albums}
    wanted.update(_first_docs([a for a, cover in wanted.items() if cover is None]))
    ids = {doc_id for doc_id in wanted.values() if doc_id is not None}
    if not ids:
        return {}
    viewer = viewer_of(call)
    if safe is None:
        safe = safesurf_clause(viewer, None, InvalidArgument)
    docs = {d.id: d for d in Doc.select().where(Doc.id.in_(list(ids)), visible_to(Doc, viewer),
                                                safe)}
    thumbs = thumbs_by_doc(list(docs.values()))
    out: dict[int, dict[str, Any]] = {}
    for album_id, doc_id in wanted.items():
        doc = docs.get(doc_id)
        thumb = pick_thumb(thumbs.get(doc_id, []), thumbsize) if doc else None
        if thumb is not None:
            out[album_id] = {"doc_id": doc.id, "w": thumb.w, "h": thumb.h,
                             "url": thumb_url(call.base_url, doc, thumb.label, thumb.ext)}
    return out


def reset_cover(album: Album) -> None:
    """Point a cover-less album (or one whose cover left it) at its first doc."""
    if album.cover_id is not None and AlbumDoc.get_or_none(AlbumDoc.album == album,
                                                           AlbumDoc.doc == album.cover_id):
        return
    album.cover = _first_docs([album.id]).get(album.id)
    Album.update(cover=album.cover_id).where(Album.id == album.id).execute()


# --- album trees -------------------------------------------------------------------------------

def album_head(call: Call, album: Album) -> dict[str, Any]:
    """``album_id``, ``link`` and ``title``: the attributes every album element carries."""
    return {"album_id": album.id, "link": f"{call.base_url}/doc/{album.owner_id}/album/{album.id}",
            "title": album.title}


def visibility_flags(album: Album) -> dict[str, Any]:
    """``<visibility family friend ff public/>``: who the album itself is shared with."""
    return {"family": album.is_family, "friend": album.is_friend,
            "ff": album.is_family and album.is_friend, "public": album.is_public}


def count_tree(album: Album, counts: dict[str, int] | None, *, by_share: bool) -> dict[str, Any]:
    """``<count docs visits faves comments [family friend ff public]/>``."""
    counts = counts or {}
    tree: dict[str, Any] = {"docs": counts.get("docs", 0), "visits": album.visits,
                            "faves": album.faves, "comments": album.comments}
    if by_share:
        tree.update({name: counts.get(name, 0) for name in ("family", "friend", "ff", "public")})
    return tree


def can_tree(call: Call, album: Album, relation: Relation | None) -> dict[str, Any]:
    """``<can fave comment/>``: what the caller may do with the album."""
    return {"fave": call.user is not None and not is_owner(call, album),
            "comment": perm_allows(album.perm_comment, call.user, album.owner_id, relation)}


def album_dates(album: Album) -> dict[str, Any]:
    """``<dates created_at comment_at/>`` of the single-album answers."""
    return {"created_at": album.created_at, "comment_at": album.comment_at}


def album_numbers(call: Call, album: Album, thumbsize: str
                  ) -> tuple[dict[str, int] | None, dict[str, Any] | None]:
    """One album's visible doc counts and its cover tree."""
    return (doc_counts([album.id], viewer_of(call)).get(album.id),
            covers(call, [album], thumbsize).get(album.id))


# --- album.create / edit / delete / setPerms / orderList ---------------------------------------

_SINGLE_SHAPE = "<album album_id link title><description/><visibility/><dates/><count/><cover/>"


@group.method("album.create", title="Create a new album", token=True, sign=True, post=True,
              perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              params={"title": "The album title.", "description": "The album description.",
                      "cover_id": "One of your docs: added to the album and shown as its cover.",
                      "perm_comment": _PERM_HELP},
              response=_SINGLE_SHAPE + "<can/><permissions/></album>")
def create(call: Call, title: str, description: str = "", cover_id: int | None = None,
           perm_comment: int = 5) -> dict:
    """Create an album owned by the caller, first in their order."""
    check_perm(perm_comment)
    if cover_id is not None and not own_doc_ids(call.user, [cover_id]):
        raise InvalidArgument(f"cover_id {cover_id} is not one of your docs")
    now = call.now()
    with db.atomic():
        album = Album.create(owner=call.user, title=title.strip(), description=description,
                             perm_comment=perm_comment, cover=cover_id, created_at=now,
                             modified_at=now)
        if cover_id is not None:
            append_docs(album, [cover_id], now)
    counts, cover = album_numbers(call, album, DEFAULT_THUMBSIZE)
    return {"album": {**album_head(call, album),
                      "description": Text(album.description),
                      "visibility": visibility_flags(album),
                      "dates": album_dates(album),
                      "count": count_tree(album, counts, by_share=False),
                      "cover": cover,
                      "can": can_tree(call, album, None),
                      "permissions": {"comment": album.perm_comment}}}


@group.method("album.edit", title="Edit an album", token=True, sign=True, post=True, perms=WRITE,
              missing=AlbumNotFound, invalid=InvalidArgument, errors=(InvalidArgument,),
              params={"album_id": "One of your albums.", "title": "A new title.",
                      "description": "A new description.",
                      "cover_id": "A doc of the album to show as its cover."},
              response=_SINGLE_SHAPE.replace("<cover/>", "<cover cover_id doc_id/>")
              + "<permissions/></album>")
def edit(call: Call, album_id: int, title: str | None = None, description: str | None = None,
         cover_id: int | None = None) -> dict:
    """Change an album's title, description or cover (a doc already in the album)."""
    album = own_album(call, album_id)
    if cover_id is not None:
        if not AlbumDoc.get_or_none(AlbumDoc.album == album, AlbumDoc.doc == cover_id):
            raise InvalidArgument(f"doc {cover_id} is not in album {album_id}")
        album.cover = cover_id
    if title is not None:
        if not title.strip():
            raise InvalidArgument("an album needs a title")
        album.title = title.strip()
    if description is not None:
        album.description = description
    album.modified_at = call.now()
    album.save()
    counts, cover = album_numbers(call, album, DEFAULT_THUMBSIZE)
    if cover:  # album.edit names it cover_id (method-shapes.md); live clients read doc_id
        cover = {"cover_id": cover["doc_id"], **cover}
    return {"album": {**album_head(call, album),
                      "description": Text(album.description),
                      "visibility": {"ispublic": album.is_public, "isfamily": album.is_family,
                                     "isfriends": album.is_friend, "share": album_share(album)},
                      "dates": album_dates(album),
                      "count": count_tree(album, counts, by_share=False),
                      "cover": cover,
                      "permissions": {"comment": album.perm_comment}}}


def album_share(album: Album) -> int:
    """0 private, 1 family, 2 friends, 3 friends & family, 4 public (spec §10.4)."""
    if album.is_public:
        return 4
    return (1 if album.is_family else 0) + (2 if album.is_friend else 0)


@group.method("album.delete", title="Delete an album", token=True, sign=True, post=True,
              perms={"doc": "delete"}, missing=AlbumNotFound, invalid=AlbumNotFound,
              params={"album_id": "One of your albums; its docs are kept."})
def delete(call: Call, album_id: int) -> dict:
    """Delete one of the caller's albums; the docs in it stay."""
    own_album(call, album_id).delete_instance()
    return {}


@group.method("album.setPerms", title="Set permissions for an album", token=True, sign=True,
              post=True, perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              errors=(AlbumNotFound,),
              params={"album_id": "One of your albums.", "perm_comment": _PERM_HELP})
def set_perms(call: Call, album_id: int, perm_comment: int) -> dict:
    """Set who may comment on an album."""
    check_perm(perm_comment)
    album = own_album(call, album_id)
    (Album
     .update(perm_comment=perm_comment, modified_at=call.now())
     .where(Album.id == album.id)
     .execute())
    return {}


@group.method("album.orderList", title="Change the order of your albums", token=True, sign=True,
              post=True, perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              errors=(AlbumNotFound,),
              params={"album_ids": "Comma list of your album ids, first shown first; albums "
                                   "left out follow in their current order."})
def order_list(call: Call, album_ids: str) -> dict:
    """Reorder the caller's albums in one update."""
    wanted = parse_ids(album_ids)
    current = [a.id for a in Album.select(Album.id)
               .where(Album.owner == call.user)
               .order_by(Album.position, Album.id.desc())]
    unknown = set(wanted) - set(current)
    if unknown:
        raise AlbumNotFound(f"albums {sorted(unknown)}")
    order = wanted + [album_id for album_id in current if album_id not in wanted]
    if order:
        (Album
         .update(position=Case(Album.id, [(album_id, i) for i, album_id in enumerate(order, 1)]))
         .where(Album.owner == call.user)
         .execute())
    return {}


# --- album.get / getList / getVisitors ---------------------------------------------------------

@group.method("album.get", title="Get information about an album.", perms=READ,
              missing=AlbumNotFound, invalid=AlbumNotFound,
              params={"album_id": "The album.", "thumbsize": _THUMB_HELP},
              response="<album album_id link title thumbsize><description/><dates/><count/>"
                       "<cover/><can/><permissions/><you/></album>")
def get(call: Call, album_id: int, thumbsize: str = DEFAULT_THUMBSIZE) -> dict:
    """An album's details; an authenticated view by another member counts as a visit."""
    album = visible_album(call, album_id)
    visit = record_visit(call, album, AlbumVisit, "album")
    label = parse_thumbsize(thumbsize)
    counts, cover = album_numbers(call, album, label)
    can = can_tree(call, album, relation_to(album.owner_id, call.user))
    you = None
    if call.user is not None:
        you = {"isfave": False, "visits": visit.visits if visit else 0,
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
              missing=UserNotFound, invalid=InvalidArgument, errors=(InvalidArgument,),
              params={"user_id": "The member (id or username); defaults to the authenticated "
                                 "user (the token's).",
                      "safesurf": "Highest safety level of the covers shown: 1, 2 or 3.",
                      "empty": "1 (default) lists empty albums too, 0 leaves them out.",
                      "thumbsize": _THUMB_HELP,
                      "per_page": "Albums per page: 100 by default, at most 100.",
                      "page": "The page, from 1."},
              response="<albums total page pages per_page count thumbsize><can create/>"
                       "<album …><owner user_id username realname/>…</album></albums>")
def get_list(call: Call, user_id: str | None = None, safesurf: int | None = None,
             empty: bool = True, thumbsize: str = DEFAULT_THUMBSIZE,
             per_page: int | None = None, page: int | None = None) -> dict:
    """A member's albums the caller may see, in the owner's order; a fixed number of queries."""
    user = find_user(user_id) if user_id else call.user
    if user is None:
        raise UserNotFound(f"user {user_id!r}")
    slice_ = paging(page, per_page, default=100, maximum=100)
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
              errors=(InvalidArgument,),
              params={"album_id": "One of your albums.",
                      "per_page": "Visitors per page: 10 by default, at most 100.",
                      "page": "The page, from 1."},
              response="<visits total page pages per_page count><visit user_id username "
                       "visited_at first_visit_at visits/></visits>")
def get_visitors(call: Call, album_id: int, per_page: int | None = None,
                 page: int | None = None) -> dict:
    """Who viewed one of the caller's albums, latest first (owner only)."""
    album = own_album(call, album_id)
    slice_ = paging(page, per_page, default=10, maximum=100)
    query = (AlbumVisit
             .select(AlbumVisit, User)
             .join(User)
             .where(AlbumVisit.album == album))
    total = query.count()
    rows = slice_.apply(query.order_by(AlbumVisit.visited_at.desc(), AlbumVisit.id.desc()))
    visits = [{"user_id": v.visitor.id, "username": v.visitor.username,
               "visited_at": v.visited_at, "first_visit_at": v.first_visit_at,
               "visits": v.visits} for v in rows]
    return {"visits": {**slice_.attrs(total, len(visits)), "visit": visits}}


# --- membership --------------------------------------------------------------------------------

def append_docs(album: Album, doc_ids: Sequence[int], now: int) -> set[int]:
    """Add docs at the album's end (the caller checked ownership); the ids newly added."""
    present = {row.doc_id for row in AlbumDoc.select(AlbumDoc.doc)
               .where(AlbumDoc.album == album, AlbumDoc.doc.in_(list(doc_ids)))}
    new = [doc_id for doc_id in doc_ids if doc_id not in present]
    if new:
        last = (AlbumDoc.select(fn.MAX(AlbumDoc.position)).where(AlbumDoc.album == album)
                .scalar() or 0)
        # A doc added at the same moment by another call (PostgreSQL runs them side by side) is
        # there once: no unique-index error.
        AlbumDoc.insert_many([{"album": album.id, "doc": doc_id, "position": last + i,
                               "added_at": now} for i, doc_id in enumerate(new, 1)]
                             ).on_conflict_ignore().execute()
    return set(new)


def album_total(album: Album) -> int:
    """How many docs an album holds (all of them: the answer goes to the owner)."""
    return AlbumDoc.select().where(AlbumDoc.album == album).count()


def touch(album: Album, now: int) -> None:
    """Mark the album changed and make sure it has a cover if it has docs."""
    album.modified_at = now
    Album.update(modified_at=now).where(Album.id == album.id).execute()
    reset_cover(album)


def added_rows(doc_ids: Sequence[int], own: set[int], new: set[int]) -> list[dict[str, Any]]:
    """``<doc doc_id added error/>`` per requested doc: error=1 for a doc that is not yours."""
    return [{"doc_id": doc_id, "added": doc_id in new, "error": doc_id not in own}
            for doc_id in doc_ids]


@group.method("album.docs.add", title="Add one or many docs to an album", token=True, sign=True,
              post=True, perms=WRITE, missing=AlbumNotFound, invalid=InvalidArgument,
              params={"album_id": "One of your albums.",
                      "doc_id": "A doc id, or a comma list of them; only your own docs are added."},
              response='<album album_id total added skipped><doc doc_id added error/></album>')
def docs_add(call: Call, album_id: int, doc_id: str) -> dict:
    """Append the caller's docs to one of their albums; others' docs are flagged error=1."""
    album = own_album(call, album_id)
    doc_ids = parse_ids(doc_id)
    own = own_doc_ids(call.user, doc_ids)
    with db.atomic():
        new = append_docs(album, [d for d in doc_ids if d in own], call.now())
        touch(album, call.now())
    return {"album": {"album_id": album.id, "total": album_total(album), "added": len(new),
                      "skipped": len(doc_ids) - len(new), "doc": added_rows(doc_ids, own, new)}}


@group.method("album.docs.remove", title="Remove one or many docs from an album", token=True,
              sign=True, post=True, perms=WRITE, missing=AlbumNotFound, invalid=InvalidArgument,
              params={"album_id": "One of your albums.",
                      "doc_id": "A doc id, or a comma list of them."},
              response='<album album_id total removed skipped><doc doc_id removed/></album>')
def docs_remove(call: Call, album_id: int, doc_id: str) -> dict:
    """Take docs out of one of the caller's albums; the docs themselves stay."""
    album = own_album(call, album_id)
    doc_ids = parse_ids(doc_id)
    with db.atomic():
        present = {row.doc_id for row in AlbumDoc.select(AlbumDoc.doc)
                   .where(AlbumDoc.album == album, AlbumDoc.doc.in_(doc_ids))}
        AlbumDoc.delete().where(AlbumDoc.album == album, AlbumDoc.doc.in_(doc_ids)).execute()
        touch(album, call.now())
    return {"album": {"album_id": album.id, "total": album_total(album), "removed": len(present),
                      "skipped": len(doc_ids) - len(present),
                      "doc": [{"doc_id": d, "removed": d in present} for d in doc_ids]}}


@group.method("album.docs.setList", title="Replace all the documents and the cover of an album",
              token=True, sign=True, post=True, perms=WRITE, missing=InvalidArgument,
              invalid=InvalidArgument, errors=(AlbumNotFound,),
              params={"album_id": "One of your albums.",
                      "doc_ids": "Comma list of your doc ids, in album order.",
                      "cover_id": "The cover: one of doc_ids."},
              response='<album album_id cover_id total added skipped>'
                       '<doc doc_id added error/><docs doc_id added error/></album>')
def docs_set_list(call: Call, album_id: int, doc_ids: str, cover_id: int) -> dict:
    """Make the album hold exactly these docs in this order (others' docs are skipped)."""
    album = own_album(call, album_id)
    wanted = parse_ids(doc_ids)
    own = own_doc_ids(call.user, wanted)
    kept = [d for d in wanted if d in own]
    if cover_id not in kept:
        raise InvalidArgument(f"cover {cover_id} is not among your docs in doc_ids")
    now = call.now()
    with db.atomic():
        before = {row.doc_id: row.added_at for row in AlbumDoc.select().where(
            AlbumDoc.album == album)}
        AlbumDoc.delete().where(AlbumDoc.album == album).execute()
        AlbumDoc.insert_many([{"album": album.id, "doc": d, "position": i,
                               "added_at": before.get(d, now)}
                              for i, d in enumerate(kept, 1)]).execute()
        Album.update(cover=cover_id, modified_at=now).where(Album.id == album.id).execute()
    new = {d for d in kept if d not in before}
    rows = added_rows(wanted, own, new)  # also under ``docs``, where a live client reads them
    return {"album": {"album_id": album.id, "cover_id": cover_id, "total": len(kept),
                      "added": len(new), "skipped": len(wanted) - len(new),
                      "doc": rows, "docs": rows}}


@group.method("doc.albums.add", title="Add doc in one or many albums", service="doc", token=True,
              sign=True, post=True, perms=WRITE, missing=DocNotFound, invalid=InvalidArgument,
              errors=(InvalidArgument,),
              params={"doc_id": "One of your docs.",
                      "album_id": "An album id, or a comma list of them; only your albums."},
              response='<doc doc_id total added skipped><album album_id added error/></doc>')
def doc_albums_add(call: Call, doc_id: int, album_id: str | None = None) -> dict:
    """Put one of the caller's docs into some of their albums (the mirror of album.docs.add)."""
    doc = owned_doc(call, doc_id, DocNotFound)
    if not album_id:
        raise InvalidArgument("album_id is missing")
    album_ids = parse_ids(album_id)
    albums = {a.id: a for a in Album.select().where(Album.id.in_(album_ids),
                                                    Album.owner == call.user)}
    rows = []
    with db.atomic():
        for wanted in album_ids:
            album = albums.get(wanted)
            added = bool(album and append_docs(album, [doc.id], call.now()))
            if album is not None:
                touch(album, call.now())
            rows.append({"album_id": wanted, "added": added, "error": album is None})
    added = sum(row["added"] for row in rows)
    total = AlbumDoc.select().where(AlbumDoc.doc == doc).count()
    return {"doc": {"doc_id": doc.id, "total": total, "added": added,
                    "skipped": len(rows) - added, "album": rows}}


# --- album.docs.getList / getContext, doc.getContainers ----------------------------------------

def album_docs_query(call: Call, album: Album, safe: Expression, *, media: str = "",
                     share: int | None = None) -> Any:
    """The docs of an album the caller may see, in album order, with the list filters."""
    clauses = [AlbumDoc.album == album, visible_to(Doc, viewer_of(call)), safe,
               media_clause(media, InvalidArgument), share_clause(share, InvalidArgument)]
    return (Doc
            .select(Doc)
            .join(AlbumDoc)
            .where(*[c for c in clauses if c is not None])
            .order_by(AlbumDoc.position, AlbumDoc.id))


def in_album_link(call: Call, doc: Doc, album: Album) -> str:
    """The doc's page inside the album."""
    return f"{call.base_url}/doc/{doc.owner_id}/{doc.id}/in/album/{album.id}"


@group.method("album.docs.getList", title="Return the list of documents in an album",
              safety=True, missing=AlbumNotFound, invalid=InvalidArgument,
              params={"album_id": "The album.",
                      "media": "photo, video, audio or other (a comma list works too).",
                      "share": "Only docs at this share level: 0 private … 4 public.",
                      "safesurf": "Highest safety level to show: 1, 2 or 3.",
                      "extra": "Comma list of: dates, geo, medias, original, link.",
                      "thumbsize": "Thumbnail size (75x by default).",
                      "per_page": "Docs per page: 20 by default, at most 100.",
                      "page": "The page, from 1."},
              response='<album album_id><docs total page pages per_page count><doc …><thumb/>'
                       '</doc></docs><cover/></album>')
def docs_get_list(call: Call, album_id: int, media: str = "", share: int | None = None,
                  safesurf: int | None = None, extra: str = "",
                  thumbsize: str = DEFAULT_THUMBSIZE, per_page: int | None = None,
                  page: int | None = None) -> dict:
    """The album's docs the caller may see, in album order; a fixed number of queries."""
    album = visible_album(call, album_id)
    slice_ = paging(page, per_page, default=20, maximum=100)
    viewer = viewer_of(call)
    safe = safesurf_clause(viewer, safesurf, InvalidArgument)
    query = album_docs_query(call, album, safe, media=media, share=share)
    total = query.count()
    docs = list(slice_.apply(query))
    extras = parse_extra(extra, DOCS_EXTRAS)
    label = parse_thumbsize(thumbsize)
    items = doc_trees(docs, call, extras, label)
    if "link" in extras:
        for doc, item in zip(docs, items, strict=True):
            item["link"] = in_album_link(call, doc, album)
    record_visit(call, album, AlbumVisit, "album")
    return {"album": {"album_id": album.id,
                      "docs": {**slice_.attrs(total, len(items)), "doc": items},
                      "cover": covers(call, [album], label, safe=safe).get(album.id)}}


@group.method("album.docs.getContext", title="Get the document context in an album",
              safety=True, missing=AlbumNotFound, invalid=InvalidArgument,
              errors=(DocNotInAlbum,),
              params={"album_id": "The album.", "doc_id": "A doc of the album.",
                      "media": "photo, video, audio or other (a comma list works too).",
                      "safesurf": "Highest safety level to show: 1, 2 or 3.",
                      "prev": f"Docs before it: {CONTEXT_DEFAULT} by default, at most "
                              f"{CONTEXT_MAX}.",
                      "next": f"Docs after it: {CONTEXT_DEFAULT} by default, at most "
                              f"{CONTEXT_MAX}.",
                      "thumbsize": "Thumbnail size (75x by default)."},
              response='<album album_id total thumbsize/><prev count><doc index="-1" …/></prev>'
                       '<doc index="0" …/><next count><doc index="1" …/></next>')
def docs_get_context(call: Call, album_id: int, doc_id: int, media: str = "",
                     safesurf: int | None = None, prev: int = CONTEXT_DEFAULT,
                     next: int = CONTEXT_DEFAULT,
                     thumbsize: str = DEFAULT_THUMBSIZE) -> dict:
    """A doc with its neighbours in album order, among the docs the caller may see."""
    album = visible_album(call, album_id)
    if not (0 <= prev <= CONTEXT_MAX and 0 <= next <= CONTEXT_MAX):
        raise InvalidArgument(f"prev={prev} next={next}")
    safe = safesurf_clause(viewer_of(call), safesurf, InvalidArgument)
    query = album_docs_query(call, album, safe, media=media)
    order = [row.id for row in query.select(Doc.id)]
    if doc_id not in order:
        raise DocNotInAlbum(f"doc {doc_id} not in album {album_id}")
    at = order.index(doc_id)
    window = order[max(at - prev, 0):at + next + 1]
    docs = {d.id: d for d in Doc.select().where(Doc.id.in_(window))}
    thumbs = thumbs_by_doc(list(docs.values()))
    label = parse_thumbsize(thumbsize)

    def item(position: int) -> dict[str, Any]:
        doc = docs[order[position]]
        return context_item(call, doc, thumbs.get(doc.id, []), label, position - at,
                            in_album_link(call, doc, album))

    before = [item(i) for i in range(at - 1, max(at - prev, 0) - 1, -1)]
    after = [item(i) for i in range(at + 1, min(at + next, len(order) - 1) + 1)]
    return {"album": {"album_id": album.id, "total": len(order), "thumbsize": label},
            "prev": {"count": len(before), "doc": before},
            "doc": item(at),
            "next": {"count": len(after), "doc": after}}


@group.method("doc.getContainers", title="Return all albums and groups the document belongs to.",
              service="doc", perms=READ, missing=DocNotFound, invalid=DocNotFound,
              params={"doc_id": "The doc."},
              response='<albums total><album album_id title docs cover link/></albums>'
                       '<groups total added pending invited/>')
def get_containers(call: Call, doc_id: int) -> dict:
    """The albums (that the caller may see) holding a doc; groups come with the group family."""
    doc = visible_doc(call, doc_id, DocNotFound)
    albums = list(Album
                  .select(Album)
                  .join(AlbumDoc)
                  .where(AlbumDoc.doc == doc, visible_to(Album, viewer_of(call)))
                  .order_by(Album.position, Album.id.desc()))
    counts = doc_counts([a.id for a in albums], viewer_of(call))
    cover_trees = covers(call, albums, DEFAULT_THUMBSIZE)
    items = [{"album_id": album.id, "title": album.title,
              "docs": counts.get(album.id, {}).get("docs", 0),
              "cover": (cover_trees.get(album.id) or {}).get("url", ""),
              "link": album_head(call, album)["link"]} for album in albums]
    return {"albums": {"total": len(items), "album": items},
            "groups": {"total": 0, "added": 0, "pending": 0, "invited": 0, "group": []}}
