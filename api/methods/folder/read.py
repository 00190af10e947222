"""``folder.get``, ``folder.getList``: anyone reads a member's folders, and sees in them only the
albums they may see (spec §9, shapes).
"""

from __future__ import annotations

from typing import Annotated

from peewee import fn

from api.content.access import find_open_member, viewer_of, visible_to
from api.content.albums import cover_tree
from api.content.trees import DEFAULT_THUMBSIZE, parse_thumbsize
from api.core.context import Call
from api.core.paging import Paging
from api.core.registry import MethodGroup
from api.methods.common import READ, InvalidArgument, UserNotFound
from api.methods.folder.shared import (
    MODIFIED_AT,
    CoverSize,
    FolderId,
    FolderNotFound,
    album_counts,
    count_tree,
    find_folder,
    folder_covers,
    folder_head,
    folder_tree,
)
from api.models.docs import Album, Folder, FolderAlbum

group = MethodGroup()
FOLDERS_PAGE = Paging("Folders", default=100, maximum=100)

# A folder has no visibility of its own: everyone may read it (its albums keep theirs).
EVERYONE = {"family": False, "friend": False, "ff": False, "public": True}


@group.method("folder.get", title="Get information about a folder.", perms=READ,
              missing=FolderNotFound, invalid=FolderNotFound,
              response="<folder folder_id link title><description/><dates created_at "
                       "last_update_at/><count albums public family friend friends ff/>"
                       "<cover/><owner user_id alias/></folder>", modified_at=MODIFIED_AT)
def get(call: Call, folder_id: FolderId, thumbsize: CoverSize = DEFAULT_THUMBSIZE) -> dict:
    """A folder's details; its counts and cover are of the albums the caller may see."""
    return folder_tree(call, find_folder(folder_id), parse_thumbsize(thumbsize))


@group.method("folder.getList", title="Return the folders list for a given user",
              missing=UserNotFound, invalid=InvalidArgument,
              response="<folders total page pages per_page count thumbsize><can create/>"
                       "<folder folder_id link title><visibility/><dates created_at/><count/>"
                       "<cover doc_id w h url/></folder></folders>", modified_at=MODIFIED_AT)
def get_list(call: Call,
             user_id: Annotated[str | None, "The member (id or username); defaults to the "
                                           "authenticated user (the token's)."] = None,
             empty: Annotated[bool, "1 (default) lists folders holding no album you may see "
                                    "too, 0 leaves them out."] = True,
             thumbsize: CoverSize = DEFAULT_THUMBSIZE,
             per_page: Annotated[int | None, FOLDERS_PAGE.per_page_help] = None,
             page: Annotated[int | None, FOLDERS_PAGE.page_help] = None) -> dict:
    """A member's folders in the member's order; a fixed number of queries whatever the page."""
    user = find_open_member(user_id) if user_id else call.user
    if user is None:
        raise UserNotFound(f"user {user_id!r}")
    slice_ = FOLDERS_PAGE.page(page, per_page)
    viewer = viewer_of(call)
    query = Folder.select().where(Folder.owner == user)
    if not empty:
        query = query.where(fn.EXISTS(
            FolderAlbum.select(FolderAlbum.id).join(Album)
            .where(FolderAlbum.folder == Folder.id, visible_to(Album, viewer))))
    total = query.count()
    folders = list(slice_.apply(query.order_by(Folder.position, Folder.id.desc())))
    for folder in folders:
        folder.owner = user
    label = parse_thumbsize(thumbsize)
    counts = album_counts([f.id for f in folders], viewer)
    covers = folder_covers(call, folders, label)
    items = [{**folder_head(call, folder),
              "visibility": EVERYONE,
              "dates": {"created_at": folder.created_at},
              "count": count_tree(counts.get(folder.id)),
              "cover": cover_tree(call, covers[folder.id].doc, covers[folder.id].thumb)
              if folder.id in covers else None} for folder in folders]
    owner_calls = call.user is not None and call.user.id == user.id
    return {"folders": {**slice_.attrs(total, len(items)), "thumbsize": label,
                        "can": {"create": owner_calls}, "folder": items}}
