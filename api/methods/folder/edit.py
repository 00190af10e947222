"""``folder.create``, ``folder.edit``, ``folder.delete``, ``folder.orderList``: only the owner
changes a folder (spec §9, shapes).
"""

from __future__ import annotations

from typing import Annotated

from api.content.trees import DEFAULT_THUMBSIZE
from api.core.context import Call
from api.core.registry import MethodGroup
from api.methods.common import WRITE, InvalidArgument, fitting, parse_ids, put_in_order
from api.methods.folder.shared import (
    MODIFIED_AT,
    FolderNotFound,
    OwnFolderId,
    folder_tree,
    own_folder,
)
from api.models.docs import AlbumDoc, Doc, Folder, FolderAlbum
from keys.db import locked

group = MethodGroup()

_SINGLE_SHAPE = ("<folder folder_id link title><description/><dates created_at last_update_at/>"
                 "<count albums public family friend friends ff/><cover/><owner user_id alias/>"
                 "</folder>")
NO_COVER = 0  # folder.edit cover_id=0: no chosen cover, the first album's is shown
MAX_FOLDER_IDS = 10_000  # folder ids one folder.orderList call names (more: 2)
FolderIds = Annotated[str, f"Comma list of your folder ids (at most {MAX_FOLDER_IDS}), first "
                           "shown first; folders left out follow in their current order."]


def folder_title(title: str) -> str:
    """A folder's title as stored: trimmed, not empty, at most 255 characters (else 2)."""
    if not title.strip():
        raise InvalidArgument("a folder needs a title")
    return fitting(title.strip(), Folder.title, InvalidArgument)


@group.method("folder.create", title="Create a new folder", token=True, sign=True, post=True,
              perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              response=_SINGLE_SHAPE, modified_at=MODIFIED_AT)
def create(call: Call, title: Annotated[str, "The folder title (max 255)."],
           description: Annotated[str, "The folder description."] = "") -> dict:
    """Create an empty folder owned by the caller, first in their order."""
    owner = call.require_user()
    now = call.now()
    folder = Folder.create(owner=owner, title=folder_title(title), description=description,
                           created_at=now, modified_at=now)
    return folder_tree(call, folder, DEFAULT_THUMBSIZE)


@group.method("folder.edit", title="Edit a folder", token=True, sign=True, post=True, perms=WRITE,
              missing=FolderNotFound, invalid=InvalidArgument, response=_SINGLE_SHAPE,
              modified_at=MODIFIED_AT)
def edit(call: Call, folder_id: OwnFolderId,
         title: Annotated[str | None, "A new title (max 255)."] = None,
         description: Annotated[str | None, "A new description."] = None,
         cover_id: Annotated[int | None, "A doc in one of the folder's albums, shown as its "
                                         "cover; 0 shows the first album's cover."] = None
         ) -> dict:
    """Change a folder's title, description or cover; what is not sent stays."""
    if cover_id:
        # The chosen doc is locked before the folder, in doc.delete's order (it locks the doc,
        # then clears the folders' covers): an edit waits for a delete under way, then finds
        # the doc gone (2) instead of storing a cover whose doc the delete removed.
        locked(Doc.select(Doc.id).where(Doc.id == cover_id), Doc).first()
    folder = own_folder(call, folder_id)
    if cover_id == NO_COVER:
        folder.cover_id = None
    elif cover_id is not None:
        in_folder = (AlbumDoc.select(AlbumDoc.id)
                     .join(FolderAlbum, on=(FolderAlbum.album == AlbumDoc.album))
                     .where(FolderAlbum.folder == folder, AlbumDoc.doc == cover_id))
        if not in_folder.exists():
            raise InvalidArgument(f"doc {cover_id} is in none of folder {folder_id}'s albums")
        folder.cover_id = cover_id
    if title is not None:
        folder.title = folder_title(title)
    if description is not None:
        folder.description = description
    folder.modified_at = call.now()
    folder.save()
    return folder_tree(call, folder, DEFAULT_THUMBSIZE)


@group.method("folder.delete", title="Delete a folder", token=True, sign=True, post=True,
              perms={"doc": "delete"}, missing=FolderNotFound, invalid=FolderNotFound,
              modified_at=MODIFIED_AT)
def delete(call: Call,
           folder_id: Annotated[str, "One of your folders; its albums are kept."]) -> dict:
    """Delete one of the caller's folders; the albums in it stay."""
    own_folder(call, folder_id).delete_instance()
    return {}


@group.method("folder.orderList", title="Change the order of your folders", token=True,
              sign=True, post=True, perms=WRITE, missing=InvalidArgument,
              invalid=InvalidArgument, errors=(FolderNotFound,), modified_at=MODIFIED_AT)
def order_list(call: Call,
               folder_ids: FolderIds) -> dict:
    """Number the caller's folders in the order asked."""
    put_in_order(Folder, Folder.owner == call.require_user(),
                 parse_ids(folder_ids, MAX_FOLDER_IDS), FolderNotFound)
    return {}
