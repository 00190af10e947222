"""``doc.set``, ``doc.setPerms``, ``doc.getPerms``, ``doc.setLicense``, ``doc.setGeo``,
``doc.setSafety``, ``doc.delete``: the owner changes a document (spec §9, §10.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from api.content.access import PERM_LEVELS, owned_doc
from api.content.licenses import LICENSE_CODES, codes_in_words
from api.core.context import Call
from api.core.registry import MethodGroup
from api.formats.tree import Text
from api.media.names import doc_file_names
from api.methods.common import (
    READ,
    SAFETY_HELP,
    WRITE,
    DocNotFound,
    InvalidArgument,
    IsFamily,
    IsFriend,
    IsPublic,
    fitting,
)
from api.methods.doc.shared import CallersDocId, DocId, can_tree, permissions_tree
from api.models.docs import SAFETY_LEVELS, SHARE_LEVELS, Album, Doc, Folder, Thumb, share_flags
from keys.db import db

group = MethodGroup()


@group.method("doc.set", title="Edit a document title and description.", token=True, sign=True,
              post=True, safety=True, perms=WRITE, missing=DocNotFound, invalid=DocNotFound,
              errors=(InvalidArgument,),
              response='<doc doc_id="12345" title="A new title" share="0">'
                       '<description>Well...</description></doc>')
def set_(call: Call, doc_id: DocId, title: Annotated[str | None, "The new title (max 255)."] = None,
         description: Annotated[str | None, "The new description."] = None) -> dict:
    """Change the title and/or description of one of the caller's documents."""
    doc = owned_doc(call, doc_id, DocNotFound)
    if title is not None:
        fitting(title, Doc.title, InvalidArgument)
    changes = {k: v for k, v in (("title", title), ("description", description)) if v is not None}
    _save(call, doc, **changes)
    return {"doc": {"doc_id": doc.id, "title": doc.title, "share": doc.share,
                    "description": Text(doc.description)}}


def _save(call: Call, doc: Doc, **changes: Any) -> None:
    """Write changed fields of the caller's doc, stamping modified_at."""
    for name, value in changes.items():
        setattr(doc, name, value)
    doc.modified_at = call.now()
    with db.atomic():
        doc.save(only=[getattr(Doc, name) for name in changes] + [Doc.modified_at])


@group.method("doc.setPerms", title="Set permissions for a document.", token=True, sign=True,
              post=True, perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              errors=(DocNotFound,))
def set_perms(call: Call, doc_id: DocId, is_public: IsPublic = None, is_family: IsFamily = None,
              is_friend: IsFriend = None,
              share: Annotated[int | None, "0 private, 1 family, 2 friends, 3 friends & family, "
                                           "4 public (overrides is_*)."] = None,
              perm_comment: Annotated[int | None, "Who may comment: 0 only you … 4 contacts, 5 "
                                                  "everybody."] = None,
              perm_tag: Annotated[int | None, "Who may tag: 0 only you … 4 contacts, 5 "
                                              "everybody."] = None,
              perm_tagme: Annotated[int | None, "Who may tag themselves: 0 only you … 5 "
                                                "everybody."] = None) -> dict:
    """Change who may see a document and who may comment or tag it."""
    doc = owned_doc(call, doc_id, DocNotFound)
    changes: dict[str, Any] = {k: v for k, v in (("is_public", is_public),
                                                 ("is_family", is_family),
                                                 ("is_friend", is_friend)) if v is not None}
    if share is not None:
        if share not in SHARE_LEVELS:
            raise InvalidArgument(f"share={share}")
        changes.update(share_flags(share))
    for name, level in (("perm_comment", perm_comment), ("perm_tag", perm_tag),
                        ("perm_tagme", perm_tagme)):
        if level is not None:
            if level not in PERM_LEVELS:
                raise InvalidArgument(f"{name}={level}")
            changes[name] = level
    _save(call, doc, **changes)
    return {}


@group.method("doc.getPerms", title="Return permissions for a document.", token=True, sign=True,
              perms=READ, missing=DocNotFound, invalid=DocNotFound,
              response='<visibility ispublic="1" isfriend="0" isfamily="0"/>'
                       '<permissions permcomment="3" permtag="3" permtagme="3" comment="3" '
                       'tag="3" tagme="3"/><usage canfave="0" …/><can fave="0" …/>')
def get_perms(call: Call, doc_id: CallersDocId) -> dict:
    """Return the sharing and permission settings of one of the caller's documents.

    ``permissions`` carries the example's ``perm*`` names and doc.get's (``comment`` …), and
    ``can`` is doc.get's ``<can/>``, of which ``usage`` is the ``can*`` spelling: live clients
    read the doc.get names here.
    """
    doc = owned_doc(call, doc_id, DocNotFound)
    levels = permissions_tree(doc)
    can = can_tree(call, doc, call.require_user(), None)
    return {"visibility": {"ispublic": doc.is_public, "isfriend": doc.is_friend,
                           "isfamily": doc.is_family},
            "permissions": {**{"perm" + name: level for name, level in levels.items()},
                            **levels},
            "usage": {"can" + name: allowed for name, allowed in can.items()},
            "can": can}


@group.method("doc.setLicense", title="Set the license for a document.", token=True, sign=True,
              post=True, perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              errors=(DocNotFound,))
def set_license(call: Call, doc_id: DocId,
                license: Annotated[int, f"{codes_in_words()} (spec §10.4)."]) -> dict:
    """Set the licence under which a document is shared."""
    doc = owned_doc(call, doc_id, DocNotFound)
    if license not in LICENSE_CODES:
        raise InvalidArgument(f"license={license}")
    _save(call, doc, license=license)
    return {}


@group.method("doc.setGeo", title="Set longitude and latitude of a document.", token=True,
              sign=True, post=True, perms=WRITE, missing=DocNotFound, invalid=InvalidArgument)
def set_geo(call: Call, doc_id: DocId,
            lng: Annotated[float | None, "Longitude, -180..180; both absent or -999 removes the "
                                         "place."] = None,
            lat: Annotated[float | None, "Latitude, -90..90; both absent or -999 removes the "
                                         "place."] = None) -> dict:
    """Place a document on the map, or take it off (no coordinates, or -999 as upload.file)."""
    doc = owned_doc(call, doc_id, DocNotFound)
    lat, lng = (None if v == -999 else v for v in (lat, lng))
    if (lat is None) != (lng is None):
        raise InvalidArgument("lat and lng go together")
    if lat is not None and lng is not None and not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise InvalidArgument(f"lat={lat} lng={lng}")
    _save(call, doc, lat=lat, lng=lng)
    return {}


@group.method("doc.setSafety", title="Set the safety for a document.", token=True, sign=True,
              post=True, perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              errors=(DocNotFound,))
def set_safety(call: Call, doc_id: DocId, safety: Annotated[int, SAFETY_HELP]) -> dict:
    """Set who a document is suitable for; lists filter on it through safesurf."""
    doc = owned_doc(call, doc_id, DocNotFound)
    if safety not in SAFETY_LEVELS:
        raise InvalidArgument(f"safety={safety}")
    _save(call, doc, safety=safety)
    return {}


@group.method("doc.delete", title="Delete a document.", token=True, sign=True, post=True,
              perms={"doc": "delete"}, missing=DocNotFound, invalid=DocNotFound,
              atomic=False)  # its own transaction: the files go only once the rows are gone
def delete(call: Call, doc_id: DocId) -> dict:
    """Delete one of the caller's documents with everything hanging off it, and its files."""
    with db.atomic():
        doc = owned_doc(call, doc_id, DocNotFound)
        names = doc_file_names(doc, list(Thumb.select().where(Thumb.doc == doc.id)))
        # The covers it leaves, in the writers' lock order (the doc, the folders, the albums:
        # docs/protocol-choices.md, "Folders"), so folder.albums.add (a folder, then its
        # albums) waits for this delete or this delete for it, never both (a deadlock).
        Folder.update(cover=None).where(Folder.cover == doc.id).execute()
        Album.update(cover=None).where(Album.cover == doc.id).execute()
        doc.delete_instance(recursive=True)
    remove_files(call, names)  # after the commit: a failure leaves orphan files, never lost rows
    return {}


def remove_files(call: Call, names: Sequence[str]) -> None:
    """Delete stored files from the media storage."""
    for name in names:
        call.ctx.storage.delete(name)
