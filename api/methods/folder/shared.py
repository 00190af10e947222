"""What the ``folder.*`` modules share: finding a folder, the numbers and the cover of a page of
folders (a fixed number of queries, never one per folder), and the element of a single folder.

A folder has no visibility of its own: anyone reads it, and sees in it only the albums they may
see (``visible_to``). Counts and covers are therefore the caller's: a hidden album is neither
counted nor lends its cover (docs/protocol-choices.md, "Folders (issue 13)").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from peewee import Expression, fn

from api.content.access import safesurf_clause, viewer_of, visible_to
from api.content.albums import count_if, cover_thumbs
from api.content.trees import DEFAULT_THUMBSIZE, THUMB_LABELS, thumb_tree
from api.core.context import Call
from api.core.errors import ApiError, method_error
from api.core.ids import as_id
from api.formats.tree import Text
from api.models.docs import Album, AlbumDoc, Doc, Folder, FolderAlbum, Thumb
from keys.db import as_tuples, locked
from keys.models import User

FolderNotFound = method_error(1, "Folder not found", "The folder ID is invalid, or the folder is "
                                                     "not yours to change.")

# Every folder.* method's modified_at in the original's methods list (2013-10-23, Paris time).
MODIFIED_AT = "1382479200"

# The folder parameters several methods take, with their help. A folder id arrives as text and
# is read by ``as_id`` (``folder_id`` the grammar of ``folder_ids``): one that names no folder
# (not a decimal id: "x", "+1", too large) answers 1 in every folder.* method, as an unknown one.
FolderId = Annotated[str, "The folder."]
OwnFolderId = Annotated[str, "One of your folders."]
CoverSize = Annotated[str, f"Cover size: {', '.join(THUMB_LABELS)} ({DEFAULT_THUMBSIZE})."]

# ``<count>``: the folder's albums the caller may see, and how many of them each audience sees
# (a public album is seen by all four). getList's example spells one ``friend``, get's
# ``friends``: both are sent everywhere.
_SEEN_BY = {
    "public": Album.is_public == True,  # noqa: E712 (peewee expression)
    "family": (Album.is_public == True) | (Album.is_family == True),  # noqa: E712
    "friends": (Album.is_public == True) | (Album.is_friend == True),  # noqa: E712
    "ff": ((Album.is_public == True) | (Album.is_family == True)  # noqa: E712
           | (Album.is_friend == True)),  # noqa: E712
}


def find_folder(folder_id: str) -> Folder:
    """The folder with its owner joined (anyone reads a folder), else 1."""
    folder = (Folder.select(Folder, User).join(User, on=(Folder.owner == User.id))
              .where(Folder.id == as_id(folder_id)).first())
    if folder is None:
        raise FolderNotFound(f"folder {folder_id}")
    return folder


def own_folder(call: Call, folder_id: str) -> Folder:
    """The caller's own folder, its row locked inside a write (two calls changing one folder go
    one after the other), else 1: only the owner changes a folder."""
    user = call.require_user()
    folder = locked(Folder.select().where(Folder.id == as_id(folder_id)), Folder).first()
    if folder is None or folder.owner_id != user.id:
        raise FolderNotFound(f"folder {folder_id}")
    folder.owner = user
    return folder


def folder_head(call: Call, folder: Folder) -> dict[str, Any]:
    """``folder_id link title``: the link has the album pages' form, as the original's had."""
    return {"folder_id": folder.id,
            "link": f"{call.base_url}/doc/{folder.owner.username}/album/{folder.id}",
            "title": folder.title}


def album_counts(folder_ids: Sequence[int], viewer: User | None) -> dict[int, dict[str, int]]:
    """Per folder, its albums ``viewer`` may see, and how many of those each audience sees: one
    grouped query."""
    if not folder_ids:
        return {}
    rows = (FolderAlbum
            .select(FolderAlbum.folder, fn.COUNT(Album.id),
                    *(count_if(seen) for seen in _SEEN_BY.values()))
            .join(Album)
            .where(FolderAlbum.folder.in_(list(folder_ids)), visible_to(Album, viewer))
            .group_by(FolderAlbum.folder)
            .tuples())
    names = ("albums", *_SEEN_BY)
    return {row[0]: dict(zip(names, (int(v or 0) for v in row[1:]), strict=True))
            for row in as_tuples(rows)}


def count_tree(counts: dict[str, int] | None) -> dict[str, Any]:
    """``<count albums public family friend friends ff/>`` (both spellings of friends)."""
    counts = counts or {}
    tree = {name: counts.get(name, 0) for name in ("albums", *_SEEN_BY)}
    return {**tree, "friend": tree["friends"]}


@dataclass(frozen=True)
class FolderCover:
    """The cover a caller sees: the doc, its thumb at the size asked, and the album it is in."""

    album_id: int
    doc: Doc
    thumb: Thumb


def _shown(viewer: User | None, safe: Expression) -> list[Any]:
    """A folder's cover candidate (Album, Doc joined) is shown when the caller may see the album
    and the doc, the doc passes safesurf, and it has a thumbnail."""
    return [visible_to(Album, viewer), visible_to(Doc, viewer), safe,
            fn.EXISTS(Thumb.select(Thumb.id).where(Thumb.doc == Doc.id))]


def _chosen_covers(folder_ids: list[int], shown: list[Any]) -> dict[int, tuple[int, int]]:
    """The owner's chosen cover per folder, while it is in an album of the folder the caller may
    see: folder → (first such album, doc). One query."""
    rows = (FolderAlbum
            .select(FolderAlbum.folder, FolderAlbum.album, Folder.cover)
            .join(Folder)
            .switch(FolderAlbum).join(Album)
            .join(AlbumDoc, on=((AlbumDoc.album == Album.id) & (AlbumDoc.doc == Folder.cover)))
            .join(Doc, on=(Doc.id == AlbumDoc.doc))
            .where(FolderAlbum.folder.in_(folder_ids), *shown)
            .order_by(FolderAlbum.position, FolderAlbum.id)
            .tuples())
    picks: dict[int, tuple[int, int]] = {}
    for folder_id, album_id, doc_id in as_tuples(rows):
        picks.setdefault(folder_id, (album_id, doc_id))
    return picks


def _first_album_covers(folder_ids: list[int], shown: list[Any]
                        ) -> dict[int, tuple[int, int]]:
    """Per folder, the cover of its first album (in folder order) whose cover the caller may
    see: folder → (album, doc). One query, the albums numbered per folder by a window."""
    first_doc = (AlbumDoc.select(AlbumDoc.doc).where(AlbumDoc.album == Album.id)
                 .order_by(AlbumDoc.position, AlbumDoc.id).limit(1))
    ranked = (FolderAlbum
              .select(FolderAlbum.id.alias("entry_id"), Doc.id.alias("doc_id"),
                      fn.ROW_NUMBER().over(partition_by=[FolderAlbum.folder],
                                           order_by=[FolderAlbum.position, FolderAlbum.id])
                      .alias("rank"))
              .join(Album)
              .join(Doc, on=(Doc.id == fn.COALESCE(Album.cover, first_doc)))
              .where(FolderAlbum.folder.in_(folder_ids), *shown)
              .alias("ranked"))
    rows = (FolderAlbum
            .select(FolderAlbum.folder, FolderAlbum.album, ranked.c.doc_id)
            .join(ranked, on=(ranked.c.entry_id == FolderAlbum.id))
            .where(ranked.c.rank == 1)
            .tuples())
    return {folder_id: (album_id, doc_id) for folder_id, album_id, doc_id in as_tuples(rows)}


def folder_covers(call: Call, folders: Sequence[Folder], thumbsize: str, *,
                  safe: Expression | None = None) -> dict[int, FolderCover]:
    """The cover each folder shows the caller (≤ 4 queries for any number of folders).

    The owner's chosen doc while it is in one of the folder's albums the caller may see, else the
    cover of the first album the caller may see whose cover they may see: a cover never shows a
    doc, or an album, hidden from the caller, nor a doc above their safesurf level.
    """
    viewer = viewer_of(call)
    if safe is None:
        safe = safesurf_clause(viewer, None, ApiError)  # no level given: never raises
    shown = _shown(viewer, safe)
    chosen = [f.id for f in folders if f.cover_id is not None]
    picks = _chosen_covers(chosen, shown) if chosen else {}
    rest = [f.id for f in folders if f.id not in picks]
    if rest:
        picks.update(_first_album_covers(rest, shown))
    found = cover_thumbs(call, {folder_id: doc_id for folder_id, (_, doc_id) in picks.items()},
                         thumbsize, safe=safe)
    return {folder_id: FolderCover(picks[folder_id][0], doc, thumb)
            for folder_id, (doc, thumb) in found.items()}


def folder_tree(call: Call, folder: Folder, thumbsize: str) -> dict[str, Any]:
    """``<folder …><description/><dates/><count/><cover/><owner/></folder>`` of folder.create,
    folder.edit and folder.get (``folder.owner`` set or joined)."""
    counts = album_counts([folder.id], viewer_of(call)).get(folder.id)
    cover = folder_covers(call, [folder], thumbsize).get(folder.id)
    return {"folder": {
        **folder_head(call, folder),
        "description": Text(folder.description),
        "dates": {"created_at": folder.created_at, "last_update_at": folder.modified_at},
        "count": count_tree(counts),
        "cover": {**thumb_tree(call, cover.doc, cover.thumb), "doc_id": cover.doc.id}
        if cover else None,
        "owner": {"user_id": folder.owner.id, "alias": folder.owner.username}}}
