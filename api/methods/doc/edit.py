"""``doc.set``, ``doc.setPerms``, ``doc.getPerms``, ``doc.setLicense``, ``doc.setGeo``,
``doc.setSafety``, ``doc.delete``: the owner changes a document (spec §9, §10.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from api.content.access import owned_doc
from api.core.context import Call
from api.core.registry import MethodGroup
from api.formats.tree import Text
from api.media.names import ORIGINAL, media_path
from api.methods.common import READ, WRITE, DocNotFound, InvalidArgument
from api.methods.doc.shared import LICENSES, can_tree, permissions_tree
from api.models.docs import Album, Doc, Thumb
from keys.db import db

group = MethodGroup()
PERM_LEVELS = (0, 1, 2, 3, 4, 5)  # spec §10.4


@group.method("doc.set", title="Edit a document title and description.", token=True, sign=True,
              post=True, safety=True, perms=WRITE, missing=DocNotFound, invalid=DocNotFound,
              errors=(DocNotFound, InvalidArgument),
              params={"doc_id": "The document ID.", "title": "The new title (max 255).",
                      "description": "The new description."},
              response='<doc doc_id="12345" title="A new title" share="0">'
                       '<description>Well...</description></doc>')
def set_(call: Call, doc_id: int, title: str | None = None,
         description: str | None = None) -> dict:
    """Change the title and/or description of one of the caller's documents."""
    doc = owned_doc(call, doc_id, DocNotFound)
    if title is not None and len(title) > 255:
        raise InvalidArgument("title longer than 255")
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
              errors=(DocNotFound, InvalidArgument),
              params={"doc_id": "The document ID.", "is_public": "1 public, 0 not.",
                      "is_family": "1 visible to family.", "is_friend": "1 visible to friends.",
                      "share": "0 private, 1 family, 2 friends, 3 friends & family, 4 public "
                               "(overrides is_*).",
                      "perm_comment": "Who may comment: 0 only you … 4 contacts, 5 everybody.",
                      "perm_tag": "Who may tag: 0 only you … 4 contacts, 5 everybody.",
                      "perm_tagme": "Who may tag themselves: 0 only you … 5 everybody."})
def set_perms(call: Call, doc_id: int, is_public: bool | None = None,
              is_family: bool | None = None, is_friend: bool | None = None,
              share: int | None = None, perm_comment: int | None = None,
              perm_tag: int | None = None, perm_tagme: int | None = None) -> dict:
    """Change who may see a document and who may comment or tag it."""
    doc = owned_doc(call, doc_id, DocNotFound)
    changes: dict[str, Any] = {k: v for k, v in (("is_public", is_public),
                                                 ("is_family", is_family),
                                                 ("is_friend", is_friend)) if v is not None}
    if share is not None:
        if share not in (0, 1, 2, 3, 4):
            raise InvalidArgument(f"share={share}")
        changes.update(is_public=share == 4, is_family=bool(share & 1) and share != 4,
                       is_friend=bool(share & 2) and share != 4)
    for name, level in (("perm_comment", perm_comment), ("perm_tag", perm_tag),
                        ("perm_tagme", perm_tagme)):
        if level is not None:
            if level not in PERM_LEVELS:
                raise InvalidArgument(f"{name}={level}")
            changes[name] = level
    _save(call, doc, **changes)
    return {}


@group.method("doc.getPerms", title="Return permissions for a document.", token=True, sign=True,
              perms=READ, missing=DocNotFound, invalid=DocNotFound, errors=(DocNotFound,),
              params={"doc_id": "The document ID (one of the caller's own)."},
              response='<visibility ispublic="1" isfriend="0" isfamily="0"/>'
                       '<permissions permcomment="3" permtag="3" permtagme="3" comment="3" '
                       'tag="3" tagme="3"/><usage canfave="0" …/><can fave="0" …/>')
def get_perms(call: Call, doc_id: int) -> dict:
    """Return the sharing and permission settings of one of the caller's documents.

    ``permissions`` carries the example's ``perm*`` names and doc.get's (``comment`` …), and
    ``can`` is doc.get's ``<can/>``, of which ``usage`` is the ``can*`` spelling: live clients
    read the doc.get names here.
    """
    doc = owned_doc(call, doc_id, DocNotFound)
    levels = permissions_tree(doc)
    can = can_tree(call, doc, call.user, None)
    return {"visibility": {"ispublic": doc.is_public, "isfriend": doc.is_friend,
                           "isfamily": doc.is_family},
            "permissions": {**{"perm" + name: level for name, level in levels.items()},
                            **levels},
            "usage": {"can" + name: allowed for name, allowed in can.items()},
            "can": can}


@group.method("doc.setLicense", title="Set the license for a document.", token=True, sign=True,
              post=True, perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              errors=(DocNotFound, InvalidArgument),
              params={"doc_id": "The document ID.",
                      "license": "0, 1, 3, 5, 7, 9, 11 or 255 (spec §10.4)."})
def set_license(call: Call, doc_id: int, license: int) -> dict:
    """Set the licence under which a document is shared."""
    doc = owned_doc(call, doc_id, DocNotFound)
    if license not in LICENSES:
        raise InvalidArgument(f"license={license}")
    _save(call, doc, license=license)
    return {}


@group.method("doc.setGeo", title="Set longitude and latitude of a document.", token=True,
              sign=True, post=True, perms=WRITE, missing=DocNotFound, invalid=InvalidArgument,
              errors=(DocNotFound, InvalidArgument),
              params={"doc_id": "The document ID.",
                      "lng": "Longitude, -180..180; both absent or -999 removes the place.",
                      "lat": "Latitude, -90..90; both absent or -999 removes the place."})
def set_geo(call: Call, doc_id: int, lng: float | None = None, lat: float | None = None) -> dict:
    """Place a document on the map, or take it off (no coordinates, or -999 as upload.file)."""
    doc = owned_doc(call, doc_id, DocNotFound)
    lat, lng = (None if v == -999 else v for v in (lat, lng))
    if (lat is None) != (lng is None):
        raise InvalidArgument("lat and lng go together")
    if lat is not None and not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise InvalidArgument(f"lat={lat} lng={lng}")
    _save(call, doc, lat=lat, lng=lng)
    return {}


@group.method("doc.setSafety", title="Set the safety for a document.", token=True, sign=True,
              post=True, perms=WRITE, missing=InvalidArgument, invalid=InvalidArgument,
              errors=(DocNotFound, InvalidArgument),
              params={"doc_id": "The document ID.",
                      "safety": "1 all audiences, 2 not for all audiences, 3 adults only."})
def set_safety(call: Call, doc_id: int, safety: int) -> dict:
    """Set who a document is suitable for; lists filter on it through safesurf."""
    doc = owned_doc(call, doc_id, DocNotFound)
    if safety not in (1, 2, 3):
        raise InvalidArgument(f"safety={safety}")
    _save(call, doc, safety=safety)
    return {}


@group.method("doc.delete", title="Delete a document.", token=True, sign=True, post=True,
              perms={"doc": "delete"}, missing=DocNotFound, invalid=DocNotFound,
              errors=(DocNotFound,), params={"doc_id": "The document ID."},
              atomic=False)  # its own transaction: the files go only once the rows are gone
def delete(call: Call, doc_id: int) -> dict:
    """Delete one of the caller's documents with everything hanging off it, and its files."""
    with db.atomic():
        doc = owned_doc(call, doc_id, DocNotFound)
        names = stored_names(doc, list(Thumb.select().where(Thumb.doc == doc.id)))
        Album.update(cover=None).where(Album.cover == doc.id).execute()
        doc.delete_instance(recursive=True)
    remove_files(call, names)  # after the commit: a failure leaves orphan files, never lost rows
    return {}


def stored_names(doc: Doc, thumbs: Sequence[Thumb]) -> list[str]:
    """The storage names of a doc's thumbnails and original: media paths without ``/media/``."""
    paths = [media_path(doc.id, doc.secret, t.label, t.ext) for t in thumbs]
    if doc.original_ext:
        paths.append(media_path(doc.id, doc.original_secret, ORIGINAL, doc.original_ext))
    return [path.removeprefix("/media/") for path in paths]


def remove_files(call: Call, names: Sequence[str]) -> None:
    """Delete stored files through the storage service; without one, nothing was stored."""
    storage = call.ctx.services.get("storage")
    if storage is None:
        return
    for name in names:
        storage.delete(name)
