"""``album.create``, ``album.edit``, ``album.delete``, ``album.setPerms``, ``album.orderList``:
only the owner changes an album (spec §9, shapes).
"""

from __future__ import annotations

from typing import Annotated

from api.content.access import PERM_LEVELS
from api.content.albums import album_head, append_docs
from api.content.trees import DEFAULT_THUMBSIZE
from api.core.context import Call
from api.core.registry import MethodGroup
from api.formats.tree import Text
from api.methods.album.shared import (
    AlbumNotFound,
    OwnAlbumId,
    album_dates,
    album_numbers,
    can_tree,
    count_tree,
    own_album,
    own_doc_ids,
    visibility_flags,
)
from api.methods.common import WRITE, InvalidArgument, fitting, parse_ids, put_in_order
from api.models.docs import Album, AlbumDoc, Doc
from keys.db import db, locked

group = MethodGroup()

MAX_ALBUM_IDS = 10_000  # album ids one album.orderList call names (more: 2), as folder.orderList

PermComment = Annotated[int, "Who may comment: 0 only you, 1 family, 2 friends, 3 friends & "
                             "family, 4 contacts, 5 everybody."]


def check_perm(value: int) -> None:
    """A perm_comment level must be 0 … 5 (spec §10.4), else 2."""
    if value not in PERM_LEVELS:
        raise InvalidArgument(f"perm_comment={value}")


_SINGLE_SHAPE = "<album album_id link title><description/><visibility/><dates/><count/><cover/>"


@group.method("album.create", title="Create a new album", token=True, sign=True, post=True,
              perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              response=_SINGLE_SHAPE + "<can/><permissions/></album>")
def create(call: Call, title: Annotated[str, "The album title (max 255)."],
           description: Annotated[str, "The album description."] = "",
           cover_id: Annotated[int | None, "One of your docs: added to the album and shown as "
                                           "its cover."] = None,
           perm_comment: PermComment = 5) -> dict:
    """Create an album owned by the caller, first in their order."""
    check_perm(perm_comment)
    owner = call.require_user()
    if cover_id is not None and not own_doc_ids(owner, [cover_id]):
        raise InvalidArgument(f"cover_id {cover_id} is not one of your docs")
    now = call.now()
    with db.atomic():
        album = Album.create(owner=owner, title=fitting(title.strip(), Album.title,
                                                        InvalidArgument),
                             description=description,
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
              missing=AlbumNotFound, invalid=InvalidArgument,
              response=_SINGLE_SHAPE.replace("<cover/>", "<cover cover_id doc_id/>")
              + "<permissions/></album>")
def edit(call: Call, album_id: OwnAlbumId,
         title: Annotated[str | None, "A new title (max 255)."] = None,
         description: Annotated[str | None, "A new description."] = None,
         cover_id: Annotated[int | None, "A doc of the album to show as its cover."] = None
         ) -> dict:
    """Change an album's title, description or cover (a doc already in the album)."""
    if cover_id is not None:
        # The doc before the album, in doc.delete's order (doc, then the folders and albums
        # whose cover it is): an edit waits for a delete under way, then finds the doc gone (2).
        locked(Doc.select(Doc.id).where(Doc.id == cover_id), Doc).first()
    album = own_album(call, album_id)
    if cover_id is not None:
        if not AlbumDoc.get_or_none(AlbumDoc.album == album, AlbumDoc.doc == cover_id):
            raise InvalidArgument(f"doc {cover_id} is not in album {album_id}")
        album.cover_id = cover_id
    if title is not None:
        if not title.strip():
            raise InvalidArgument("an album needs a title")
        album.title = fitting(title.strip(), Album.title, InvalidArgument)
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
                                     "isfriends": album.is_friend, "share": album.share},
                      "dates": album_dates(album),
                      "count": count_tree(album, counts, by_share=False),
                      "cover": cover,
                      "permissions": {"comment": album.perm_comment}}}


@group.method("album.delete", title="Delete an album", token=True, sign=True, post=True,
              perms={"doc": "delete"}, missing=AlbumNotFound, invalid=AlbumNotFound)
def delete(call: Call,
           album_id: Annotated[int, "One of your albums; its docs are kept."]) -> dict:
    """Delete one of the caller's albums; the docs in it stay."""
    own_album(call, album_id).delete_instance()
    return {}


@group.method("album.setPerms", title="Set permissions for an album", token=True, sign=True,
              post=True, perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              errors=(AlbumNotFound,))
def set_perms(call: Call, album_id: OwnAlbumId, perm_comment: PermComment) -> dict:
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
              errors=(AlbumNotFound,))
def order_list(call: Call,
               album_ids: Annotated[str, "Comma list of your album ids (at most "
                                         f"{MAX_ALBUM_IDS}), first shown first; albums left "
                                         "out follow in their current order."]
               ) -> dict:
    """Reorder the caller's albums."""
    put_in_order(Album, Album.owner == call.require_user(),
                 parse_ids(album_ids, MAX_ALBUM_IDS), AlbumNotFound)
    return {}
