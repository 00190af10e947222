"""``folder.albums.*``: adding and removing albums (the owner's own, owner only), and listing a
folder's albums in folder order, each with its cover (spec §9, shapes).
"""

from __future__ import annotations

from typing import Annotated, Any

from peewee import fn

from api.content.access import safesurf_clause, viewer_of, visible_to
from api.content.albums import cover_thumbs, cover_tree, effective_covers
from api.content.trees import DEFAULT_THUMBSIZE, parse_thumbsize, thumb_tree
from api.core.context import Call
from api.core.paging import Paging
from api.core.registry import MethodGroup
from api.methods.common import WRITE, InvalidArgument, parse_ids
from api.methods.folder.shared import (
    MODIFIED_AT,
    CoverSize,
    FolderId,
    FolderNotFound,
    OwnFolderId,
    find_folder,
    folder_covers,
    own_folder,
)
from api.models.docs import Album, Folder, FolderAlbum
from keys.db import locked

group = MethodGroup()

ALBUMS_PAGE = Paging("Albums", default=20, maximum=100)
MAX_ALBUM_IDS = 500  # album ids one folder.albums.add/remove call takes (more: 2)
AlbumIds = Annotated[str, f"An album id, or a comma list of them (at most {MAX_ALBUM_IDS})."]


def album_ids(raw: str) -> list[int]:
    """The album ids asked for, in order without repeats; none or too many is 2, found while
    reading the list: called before the folder is locked."""
    ids = parse_ids(raw, MAX_ALBUM_IDS)
    if not ids:
        raise InvalidArgument("no album id")
    return ids


def folder_total(folder: Folder) -> int:
    """How many albums a folder holds (all of them: the answer goes to the owner)."""
    return FolderAlbum.select().where(FolderAlbum.folder == folder).count()


def changed(folder: Folder, call: Call) -> None:
    """Mark the folder changed now."""
    Folder.update(modified_at=call.now()).where(Folder.id == folder.id).execute()


@group.method("folder.albums.add", title="Add one or many albums to a folder", token=True,
              sign=True, post=True, perms=WRITE, missing=FolderNotFound,
              invalid=InvalidArgument, modified_at=MODIFIED_AT,
              response="<folder folder_id total added skipped><album album_id added/></folder>")
def albums_add(call: Call, folder_id: OwnFolderId, album_id: AlbumIds) -> dict:
    """Append the caller's albums to one of their folders; others' albums, unknown ids and albums
    already there are skipped (added=0)."""
    ids = album_ids(album_id)
    folder = own_folder(call, folder_id)  # locked: two calls adding to it go one at a time
    # Locked too, so an album deleted meanwhile is not added (album.delete locks it as well).
    own = {row.id for row in locked(Album.select(Album.id).where(
        Album.id.in_(ids), Album.owner == folder.owner_id), Album)}
    present = {row.album_id for row in FolderAlbum.select(FolderAlbum.album).where(
        FolderAlbum.folder == folder, FolderAlbum.album.in_(ids))}
    new = [i for i in ids if i in own and i not in present]
    if new:
        last = (FolderAlbum.select(fn.MAX(FolderAlbum.position))
                .where(FolderAlbum.folder == folder).scalar() or 0)
        FolderAlbum.insert_many([{"folder": folder.id, "album": i, "position": last + n,
                                  "added_at": call.now()} for n, i in enumerate(new, 1)]
                                ).on_conflict_ignore().execute()
        changed(folder, call)
    return {"folder": {"folder_id": folder.id, "total": folder_total(folder), "added": len(new),
                       "skipped": len(ids) - len(new),
                       "album": [{"album_id": i, "added": i in new} for i in ids]}}


@group.method("folder.albums.remove", title="Remove one or many albums from a folder",
              token=True, sign=True, post=True, perms=WRITE, missing=FolderNotFound,
              invalid=InvalidArgument,
              response="<folder folder_id total removed skipped><album album_id removed/>"
                       "</folder>", modified_at=MODIFIED_AT)
def albums_remove(call: Call, folder_id: OwnFolderId, album_id: AlbumIds) -> dict:
    """Take albums out of one of the caller's folders; the albums themselves stay."""
    ids = album_ids(album_id)
    folder = own_folder(call, folder_id)
    in_folder = (FolderAlbum.folder == folder) & FolderAlbum.album.in_(ids)
    present = {row.album_id for row in FolderAlbum.select(FolderAlbum.album).where(in_folder)}
    if present:
        FolderAlbum.delete().where(in_folder).execute()
        changed(folder, call)
    return {"folder": {"folder_id": folder.id, "total": folder_total(folder),
                       "removed": len(present), "skipped": len(ids) - len(present),
                       "album": [{"album_id": i, "removed": i in present} for i in ids]}}


@group.method("folder.albums.getList", title="Return the list of albums in a folder",
              safety=True, missing=FolderNotFound, invalid=InvalidArgument,
              response="<folder folder_id><albums total page pages per_page count>"
                       "<album album_id title><thumb label ext w h url/></album></albums>"
                       "<cover album_id doc_id w h url/></folder>", modified_at=MODIFIED_AT)
def albums_get_list(call: Call, folder_id: FolderId,
                    safesurf: Annotated[int | None, "Highest safety level of the covers shown: "
                                                    "1, 2 or 3."] = None,
                    thumbsize: CoverSize = DEFAULT_THUMBSIZE,
                    per_page: Annotated[int | None, ALBUMS_PAGE.per_page_help] = None,
                    page: Annotated[int | None, ALBUMS_PAGE.page_help] = None) -> dict:
    """The folder's albums the caller may see, in folder order, each with its cover as
    ``thumb``; a fixed number of queries whatever the page."""
    folder = find_folder(folder_id)
    slice_ = ALBUMS_PAGE.page(page, per_page)
    viewer = viewer_of(call)
    safe = safesurf_clause(viewer, safesurf, InvalidArgument)
    query = (Album.select().join(FolderAlbum)
             .where(FolderAlbum.folder == folder, visible_to(Album, viewer)))
    total = query.count()
    albums = list(slice_.apply(query.order_by(FolderAlbum.position, FolderAlbum.id)))
    label = parse_thumbsize(thumbsize)
    thumbs = cover_thumbs(call, effective_covers(albums), label, safe=safe)
    items: list[dict[str, Any]] = [
        {"album_id": album.id, "title": album.title,
         "thumb": thumb_tree(call, *thumbs[album.id]) if album.id in thumbs else None}
        for album in albums]
    cover = folder_covers(call, [folder], label, safe=safe).get(folder.id)
    return {"folder": {"folder_id": folder.id,
                       "albums": {**slice_.attrs(total, len(items)), "album": items},
                       "cover": {"album_id": cover.album_id,
                                 **cover_tree(call, cover.doc, cover.thumb)} if cover else None}}
