"""What the ``album.*`` modules share: finding an album the caller may see or change, and the
trees of a single album's answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from api.content.access import can_view, viewer_of
from api.content.albums import can_tree as can_tree  # re-exported: shared with faves.*
from api.content.albums import count_tree as count_tree  # re-exported: shared with faves.*
from api.content.albums import covers, doc_counts
from api.core.context import Call
from api.methods.common import AlbumNotFound
from api.models.docs import Album, Doc
from keys.db import locked
from keys.models import User

# The album parameters several methods take, with their help.
AlbumId = Annotated[int, "The album."]
OwnAlbumId = Annotated[int, "One of your albums."]


def visible_album(call: Call, album_id: int) -> Album:
    """The album if the caller may see it, else 1 (existence is never revealed)."""
    album = Album.get_or_none(Album.id == album_id)
    if album is None or not can_view(album, viewer_of(call)):
        raise AlbumNotFound(f"album {album_id}")
    return album


def own_album(call: Call, album_id: int) -> Album:
    """The caller's own album (its row locked inside a write), else 1: only the owner changes an
    album."""
    album = locked(Album.select().where(Album.id == album_id), Album).first()
    if album is None or not is_owner(call, album):
        raise AlbumNotFound(f"album {album_id}")
    return album


def own_doc_ids(user: User, doc_ids: Iterable[int]) -> set[int]:
    """Which of ``doc_ids`` are ``user``'s docs (one query)."""
    ids = list(doc_ids)
    if not ids:
        return set()
    return {row.id for row in Doc.select(Doc.id).where(Doc.id.in_(ids), Doc.owner == user)}


def is_owner(call: Call, row: Album | Doc) -> bool:
    """Whether the caller owns ``row``."""
    return call.user is not None and call.user.id == row.owner_id


def visibility_flags(album: Album) -> dict[str, Any]:
    """``<visibility family friend ff public/>``: who the album itself is shared with."""
    return {"family": album.is_family, "friend": album.is_friend,
            "ff": album.is_family and album.is_friend, "public": album.is_public}


def album_dates(album: Album) -> dict[str, Any]:
    """``<dates created_at comment_at/>`` of the single-album answers."""
    return {"created_at": album.created_at, "comment_at": album.comment_at}


def album_numbers(call: Call, album: Album, thumbsize: str
                  ) -> tuple[dict[str, int] | None, dict[str, Any] | None]:
    """One album's visible doc counts and its cover tree."""
    return (doc_counts([album.id], viewer_of(call)).get(album.id),
            covers(call, [album], thumbsize).get(album.id))
