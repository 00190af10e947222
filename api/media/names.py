"""Media URLs (spec §10.2 shape): ``/media/<d2>/<d1>/<doc_id>.<secret>.<label>.<ext>``.

``d1``/``d2`` are the last two and the two digits before them of the zero-padded doc id.
Thumbnails and web renditions use the doc's ``secret``; the original uses ``original_secret``
with the label ``original``, so a thumbnail URL never reveals the original's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from api.models.docs import Doc, Media, Thumb

ORIGINAL = "original"
_STORED = re.compile(r"(?:\d+/\d+/)?(\d+)\.[0-9a-f]+\.([0-9a-z]+)\.[0-9a-z]+")


def media_path(doc_id: int, secret: str, label: str, ext: str) -> str:
    """The path part, also the storage name of the file."""
    digits = f"{doc_id:04d}"
    return f"/media/{digits[-4:-2]}/{digits[-2:]}/{doc_id}.{secret}.{label}.{ext}"


def thumb_url(base_url: str, doc: Any, label: str, ext: str = "jpg") -> str:
    """The URL of a doc's thumbnail at ``label``."""
    return base_url + media_path(doc.id, doc.secret, label, ext)


def original_url(base_url: str, doc: Any) -> str:
    """The URL of a doc's original file."""
    return base_url + media_path(doc.id, doc.original_secret, ORIGINAL, doc.original_ext or "bin")


# A member without an icon of their own shows this one picture (route.py).
DEFAULT_ICON_PATH = "/media/icons/default.png"
ICON_ROUTE = "/media/icons/{name}"
# Square sizes, in pixels, made of an uploaded icon (api/media/icons.py); user.get hands out
# ICON_SIZE, pages show the small one beside a name.
ICON_SIZES = (48, 100)
ICON_SIZE = 100
_ICON = re.compile(r"icons/(\d+)\.[0-9a-f]+\.\d+\.jpg")


def icon_name(user_id: int, secret: str, size: int) -> str:
    """The storage name of one size of a member's own icon; its URL path is ``/media/<name>``."""
    return f"icons/{user_id}.{secret}.{size}.jpg"


def icon_names(user_id: int, secret: str) -> list[str]:
    """Every stored file of one icon of a member (removed when it is replaced)."""
    return [icon_name(user_id, secret, size) for size in ICON_SIZES]


def icon_url(base_url: str, member: Any, size: int = ICON_SIZE) -> str:
    """A member's icon (user.get ``icon``): their own (``icon_secret`` set) or the default one."""
    if not member.icon_secret:
        return base_url + DEFAULT_ICON_PATH
    return f"{base_url}/media/{icon_name(member.id, member.icon_secret, size)}"


def storage_name(doc_id: int, secret: str, label: str, ext: str) -> str:
    """The storage name of one media file: its URL path without ``/media/``."""
    return media_path(doc_id, secret, label, ext).removeprefix("/media/")


def doc_file_names(doc: Doc, thumbs: Sequence[Thumb]) -> list[str]:
    """Every stored file of ``doc``: the original (when it has one), its thumbnails and its web
    renditions (read here: one query); doc.delete and upload.replace remove these."""
    names = ([storage_name(doc.id, doc.original_secret, ORIGINAL, doc.original_ext)]
             if doc.original_ext else [])
    renditions = Media.select(Media.label, Media.ext).where(Media.doc == doc.id)
    return names + [storage_name(doc.id, doc.secret, t.label, t.ext)
                    for t in [*thumbs, *renditions]]


def media_url(base_url: str, doc: Any, label: str, ext: str) -> str:
    """The URL of a doc's web rendition at ``label`` (``ipod``, ``mp4``, ``hd``, ``mp3``)."""
    return thumb_url(base_url, doc, label, ext)


def shown(name: str) -> str:
    """What messages and logs say of a storage name: ``doc <id> <label>`` for a media file,
    ``an upload`` for anything else (a waiting upload). Never the name: its secret is the
    capability that serves the file."""
    icon = _ICON.fullmatch(name)
    if icon:
        return f"icon of member {icon[1]}"
    match = _STORED.fullmatch(name)
    return f"doc {match[1]} {match[2]}" if match else "an upload"


def is_thumbnail(name: str) -> bool:
    """Whether ``name`` is a JPEG thumbnail, a member's icon included (stored in one request:
    small); an original or a web rendition (``.mp4``, ``.mp3``) may be big."""
    match = _STORED.fullmatch(name)
    return ((match is not None and match[2] != ORIGINAL and name.endswith(".jpg"))
            or _ICON.fullmatch(name) is not None)
