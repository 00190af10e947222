"""Members' own buddy icons (issue 13): made from an uploaded picture with the upload pipeline's
imaging code, stored under names that hold the member's ``icon_secret``, replaced without leaving
files behind.

A new icon gets a new secret, so its URLs are new and may be cached for a year. The member's row
moves to the new secret only once every size is stored (no page shows half an icon), and the old
icon's files go only after it moved. Two uploads at once: each stores its own files and moves the
row from the secret it read (compare and swap); the one that finds the row moved meanwhile moves it
again from the secret it finds, and removes that one's files: the last upload wins and no stored
file is left without a row pointing at it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence

from PIL import Image

from api.config import Settings
from api.media.imaging import Rejected, read_photo, release_memory, render_squares, sniff
from api.media.names import ICON_SIZES, icon_name, icon_names, shown
from api.media.storage import Storage
from keys.models import User

log = logging.getLogger("api.media")

SECRET_BYTES = 8  # 16 hex characters, the width of users.icon_secret
# An icon is at most 100 pixels wide: no need for the 120 MP an upload may have. A 40 MP PNG
# decodes to 120 MB of RGB; a JPEG is decoded reduced (``Image.draft``) to about DRAFT_SIDE.
ICON_MAX_PIXELS = 40_000_000
DRAFT_SIDE = 2 * max(ICON_SIZES)


class IconRefused(Exception):
    """A picture that cannot become an icon; the message is shown to the member as is."""


def icon_max_pixels(settings: Settings) -> int:
    """The most pixels an icon's picture may have."""
    return min(settings.max_image_pixels, ICON_MAX_PIXELS)


def make_icons(path: str, settings: Settings) -> list[tuple[int, bytes]]:
    """(size, JPEG bytes) of the centred square of the picture at ``path``, for each of
    ICON_SIZES; IconRefused for a file that is no picture, a broken one, or one past
    ICON_MAX_PIXELS or the decoding limit of uploads (decompression bombs). The caller holds a
    decoding slot (``Uploads.decoding``)."""
    try:
        sniffed = sniff(path, max_pixels=icon_max_pixels(settings),
                        max_decode_bytes=settings.max_decode_bytes)
        if sniffed.media != "photo":
            raise IconRefused("This file is not a picture. Choose a JPEG, PNG, GIF, WebP, TIFF "
                              "or BMP image.")
        with Image.open(path) as image:
            orientation = read_photo(image).orientation
            if image.format in ("JPEG", "MPO"):  # decoded at 1/2 … 1/8 scale, before any load
                image.draft("RGB", (DRAFT_SIDE, DRAFT_SIDE))
            return list(render_squares(image, orientation, ICON_SIZES))
    except Rejected as error:
        raise IconRefused(f"This picture cannot be used ({error}). Choose another one.") from None
    except (OSError, SyntaxError, ValueError, EOFError):  # Pillow on data cut short (EXIF read)
        raise IconRefused("This picture cannot be used (image data is broken or truncated). "
                          "Choose another one.") from None
    finally:
        release_memory()


def store_icon(storage: Storage, user_id: int, icons: Sequence[tuple[int, bytes]], *,
               new_secret: Callable[[int], str], now: int) -> str:
    """Store ``icons`` under a new secret, point the member at it, remove the old icon's files;
    the new secret. When anything fails, the files written are removed again and the member
    keeps the icon they had."""
    secret = new_secret(SECRET_BYTES)
    written: list[str] = []
    try:
        for size, data in icons:
            written.append(icon_name(user_id, secret, size))  # delete() also removes a cut put
            storage.put(written[-1], io.BytesIO(data))
        old = _move(user_id, secret, now)
    except BaseException:
        _remove(storage, written)
        raise
    if old:
        _remove(storage, icon_names(user_id, old))
    return secret


def drop_icon(storage: Storage, user_id: int, *, now: int) -> None:
    """Go back to the default icon and remove the member's own icon's files."""
    old = _move(user_id, "", now)
    if old:
        _remove(storage, icon_names(user_id, old))


def _move(user_id: int, secret: str, now: int) -> str:
    """Point the member's row at ``secret`` and return the secret it held: compare and swap,
    again from the new value when another upload moved it in between (each miss means another
    one succeeded, so this ends)."""
    while True:
        old = User.select(User.icon_secret).where(User.id == user_id).scalar()
        if old is None:
            raise IconRefused("This account no longer exists.")
        if old == secret:
            return ""
        moved = (User
                 .update(icon_secret=secret, icon_at=now)
                 .where(User.id == user_id, User.icon_secret == old)
                 .execute())
        if moved:
            return str(old)


def _remove(storage: Storage, names: Sequence[str]) -> None:
    """Remove files no row points at; a store out of reach leaves them (logged, never raised:
    the member's icon has changed either way)."""
    for name in names:
        try:
            storage.delete(name)
        except OSError as error:  # StorageUnavailable among them
            log.warning("%s not removed: %s", shown(name), type(error).__name__)
