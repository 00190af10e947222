"""Albums as several method families use them: membership (appending docs, keeping a cover),
the per-album numbers lists show (visible doc counts, cover trees), in grouped queries, never one
query per row, and the attributes every album element carries.

The cover defaults to the first doc and is shown only to whom may see that doc.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from peewee import Case, Expression, fn

from api.content.access import perm_allows, safesurf_clause, viewer_of, visible_to
from api.content.trees import pick_thumb, thumbs_by_doc
from api.core.context import Call
from api.core.errors import ApiError
from api.media.names import thumb_url
from api.models.docs import Album, AlbumDoc, Doc, Relation, Thumb, share_where
from keys.db import as_tuples
from keys.models import User

# The share levels an album's ``count`` splits its visible docs by, and their names there.
_COUNTED_SHARES = {1: "family", 2: "friend", 3: "ff", 4: "public"}


def count_if(condition: Any) -> Any:
    """How many rows of a grouped query meet ``condition``."""
    return fn.SUM(Case(None, [(condition, 1)], 0))


def doc_counts(album_ids: Sequence[int], viewer: User | None) -> dict[int, dict[str, int]]:
    """Visible docs per album, also split by share level (family, friend, ff, public): one query."""
    if not album_ids:
        return {}
    rows = (AlbumDoc
            .select(AlbumDoc.album,
                    fn.COUNT(Doc.id),
                    *(count_if(share_where(Doc, share)) for share in _COUNTED_SHARES))
            .join(Doc)
            .where(AlbumDoc.album.in_(list(album_ids)), visible_to(Doc, viewer))
            .group_by(AlbumDoc.album)
            .tuples())
    names = ("docs", *_COUNTED_SHARES.values())
    return {row[0]: dict(zip(names, (int(v or 0) for v in row[1:]), strict=True))
            for row in as_tuples(rows)}


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
    return {album_id: doc_id for album_id, doc_id in as_tuples(rows)}


def cover_thumbs(call: Call, cover_ids: dict[int, int | None], thumbsize: str, *,
                 safe: Expression | None = None) -> dict[int, tuple[Doc, Thumb]]:
    """The cover doc and its thumb at ``thumbsize`` per key of ``cover_ids`` (an album's or a
    folder's id → its cover doc id), for the covers the caller may see (2 queries).

    A cover obeys visibility and safesurf (``safe``, the default level when None) like any listed
    doc, so it never shows more than a list would.
    """
    ids = {doc_id for doc_id in cover_ids.values() if doc_id is not None}
    if not ids:
        return {}
    viewer = viewer_of(call)
    if safe is None:
        safe = safesurf_clause(viewer, None, ApiError)  # no level given: never raises
    docs = {d.id: d for d in Doc.select().where(Doc.id.in_(list(ids)), visible_to(Doc, viewer),
                                                safe)}
    thumbs = thumbs_by_doc(list(docs.values()))
    out: dict[int, tuple[Doc, Thumb]] = {}
    for key, doc_id in cover_ids.items():
        doc = docs.get(doc_id) if doc_id is not None else None
        thumb = pick_thumb(thumbs.get(doc.id, []), thumbsize) if doc is not None else None
        if doc is not None and thumb is not None:
            out[key] = (doc, thumb)
    return out


def cover_tree(call: Call, doc: Doc, thumb: Thumb) -> dict[str, Any]:
    """``<cover doc_id w h url/>``."""
    return {"doc_id": doc.id, "w": thumb.w, "h": thumb.h,
            "url": thumb_url(call.base_url, doc, thumb.label, thumb.ext)}


def effective_covers(albums: Sequence[Album]) -> dict[int, int | None]:
    """Each album's cover doc id: its chosen cover, else its first doc (≤ 1 query)."""
    wanted = {a.id: a.cover_id for a in albums}
    wanted.update(_first_docs([a for a, cover in wanted.items() if cover is None]))
    return wanted


def covers(call: Call, albums: Sequence[Album], thumbsize: str, *,
           safe: Expression | None = None) -> dict[int, dict[str, Any]]:
    """``<cover doc_id w h url/>`` per album whose cover the caller may see (≤ 3 queries)."""
    found = cover_thumbs(call, effective_covers(albums), thumbsize, safe=safe)
    return {album_id: cover_tree(call, doc, thumb) for album_id, (doc, thumb) in found.items()}


def reset_cover(album: Album) -> None:
    """Point a cover-less album (or one whose cover left it) at its first doc."""
    if album.cover_id is not None and AlbumDoc.get_or_none(AlbumDoc.album == album,
                                                           AlbumDoc.doc == album.cover_id):
        return
    album.cover_id = _first_docs([album.id]).get(album.id)
    Album.update(cover=album.cover_id).where(Album.id == album.id).execute()


def count_tree(album: Album, counts: dict[str, int] | None, *, by_share: bool) -> dict[str, Any]:
    """``<count docs visits faves comments [family friend ff public]/>``: the counters stored on
    the album, and its docs the caller may see (``doc_counts``)."""
    counts = counts or {}
    tree: dict[str, Any] = {"docs": counts.get("docs", 0), "visits": album.visits,
                            "faves": album.faves, "comments": album.comments}
    if by_share:
        tree.update({name: counts.get(name, 0) for name in ("family", "friend", "ff", "public")})
    return tree


def can_tree(call: Call, album: Album, relation: Relation | None) -> dict[str, Any]:
    """``<can fave comment/>``: what the caller may do with an album they may see. Any member but
    its owner may fave it (faves.albums.add); ``relation`` is how the owner counts the caller."""
    user = call.user
    return {"fave": user is not None and user.id != album.owner_id,
            "comment": perm_allows(album.perm_comment, user, album.owner_id, relation)}


def album_head(call: Call, album: Album) -> dict[str, Any]:
    """``album_id``, ``link`` and ``title``: the attributes every album element carries."""
    return {"album_id": album.id, "link": f"{call.base_url}/doc/{album.owner_id}/album/{album.id}",
            "title": album.title}


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


def touch(album: Album, now: int) -> None:
    """Mark the album changed and make sure it has a cover if it has docs."""
    album.modified_at = now
    Album.update(modified_at=now).where(Album.id == album.id).execute()
    reset_cover(album)
