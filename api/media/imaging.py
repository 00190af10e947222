"""What an uploaded file is and what we make of it: content sniffing (never the name or declared
type), EXIF reading and thumbnails for the thumbsize labels of spec §10.2. Pure functions, no I/O
besides reading the file they are given.
"""

from __future__ import annotations

import ctypes
import functools
import io
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

# Spec §10.2; an ``x`` label is a square crop.
THUMB_LABELS = ("75x", "100", "240", "250x", "500", "560", "640", "800", "1024", "1600", "2048")
LARGEST_THUMB = 2048  # the biggest label; thumbnails are rendered from no larger a picture
ALWAYS_SQUARE = "75x"  # made for every photo, however small, so each one has a list thumbnail

# The photo formats we accept, with the extension and type their originals are served under.
PHOTO_FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "GIF": ("gif", "image/gif"),
    "WEBP": ("webp", "image/webp"), "TIFF": ("tif", "image/tiff"), "BMP": ("bmp", "image/bmp"),
    "MPO": ("jpg", "image/jpeg"),  # a JPEG with more pictures after it (phones, 3-D cameras)
}
# What Image.open may try: Pillow's JPEG opener returns an MPO itself, and "MPO" has no opener
# until every plugin is loaded (a KeyError in Image.open before that).
_OPENED_AS = [name for name in PHOTO_FORMATS if name != "MPO"]
# Signatures of image files: a file that starts like one but does not open is refused, not "other".
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")
_IMAGE_BRANDS = (b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis")  # ISO-BMFF still images
_REDUCIBLE_MODES = ("L", "LA", "RGB", "RGBA", "CMYK", "I", "F")  # what Image.reduce accepts
_QUARTER_TURNS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
# Image.transpose operations that display an EXIF orientation upright (as ImageOps.exif_transpose).
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}
_IFD_POINTERS = frozenset(int(ifd) for ifd in ExifTags.IFD)  # offsets, not information
_SAFE_EXT = re.compile(r"[a-z0-9]{1,8}")
_HEAD_BYTES = 256
_EXIF_TEXT_MAX = 256
_EXIF_TAG_MAX = 4 * _EXIF_TEXT_MAX  # raw bytes of a tag worth reading (texts, single numbers)
_EXIF_MAX = 1024 * 1024  # EXIF blocks and sub-IFDs beyond are not read
# Bytes per value of each TIFF field type (an unknown one counted at 8, the largest).
_TIFF_TYPE_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
_THUMB_QUALITY = 85
_WORKING_BYTES = 16  # per pixel of the picture thumbnails are made from (decode_bytes)
_WEBP_BYTES = 16  # per pixel of a WebP: libwebp's RGBA frame and Pillow's copies of it
DECODE_MARGIN = 40 * 1024 * 1024  # what measured peaks may exceed decode_bytes by (docs/uploads.md)
OTHER_MIME = "application/octet-stream"


class Rejected(Exception):
    """The file is not one we accept: a broken or oversized image (upload.file code 3)."""


@dataclass(frozen=True)
class Sniffed:
    """The media type of a file as its bytes say, with the extension and type to serve it under."""

    media: str  # photo | video | audio | other
    ext: str
    mime: str
    width: int = 0
    height: int = 0


@dataclass
class PhotoInfo:
    """What a photo's EXIF says; ``None`` where it says nothing usable."""

    orientation: int = 1
    created: str | None = None  # "YYYY-MM-DD HH:MM:SS"
    lat: float | None = None
    lng: float | None = None
    camera: str = ""
    exif: dict[str, str] = field(default_factory=dict)


def sniff(path: str, filename: str = "", *, max_pixels: int, max_decode_bytes: int) -> Sniffed:
    """Classify the file at ``path`` from its content; raises Rejected for broken images and for
    those with more pixels, or needing more memory to decode, than allowed."""
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
    photo = _open_photo(path, max_pixels, max_decode_bytes)
    if photo is not None:
        return photo
    if head.startswith(_IMAGE_MAGIC) or _riff(head, b"WEBP") or _brand(head) in _IMAGE_BRANDS:
        raise Rejected("image data that cannot be decoded")
    media = _audio_video(head)
    if media is not None:
        return Sniffed(*media)
    if head.startswith(b"%PDF-"):
        return Sniffed("other", "pdf", "application/pdf")
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return Sniffed("other", ext if _SAFE_EXT.fullmatch(ext) else "bin", OTHER_MIME)


def _open_photo(path: str, max_pixels: int, max_decode_bytes: int) -> Sniffed | None:
    """The photo's type and size from its header, None if Pillow does not know it."""
    try:
        with Image.open(path, formats=_OPENED_AS) as image:
            width, height = image.size
            fmt = image.format or ""
            cost = decode_bytes(image)
    except UnidentifiedImageError:
        return None
    except Image.DecompressionBombError:
        raise Rejected("image has too many pixels") from None
    except (OSError, SyntaxError, ValueError):
        raise Rejected("broken image header") from None
    if width < 1 or height < 1 or width * height > max_pixels:
        raise Rejected("image has too many pixels")
    if cost > max_decode_bytes:
        raise Rejected("image needs too much memory to decode")
    if fmt not in PHOTO_FORMATS:  # a plugin reporting a format of its own
        raise Rejected(f"unsupported image format {fmt or 'unknown'}")
    ext, mime = PHOTO_FORMATS[fmt]
    return Sniffed("photo", ext, mime, width, height)


def _riff(head: bytes, kind: bytes) -> bool:
    return head.startswith(b"RIFF") and head[8:12] == kind


def _brand(head: bytes) -> bytes:
    """The major brand of an ISO base media file (MP4, MOV, HEIC …), or b""."""
    return head[8:12] if head[4:8] == b"ftyp" else b""


def _audio_video(head: bytes) -> tuple[str, str, str] | None:
    """(media, ext, mime) for the common video and audio containers, by magic number."""
    brand = _brand(head)
    if brand:
        return _iso_media(brand)
    return _container(head) or _stream(head)


def _iso_media(brand: bytes) -> tuple[str, str, str]:
    """(media, ext, mime) of an ISO base media file by its major brand."""
    if brand in (b"M4A ", b"M4B ", b"M4P ", b"F4A "):
        return "audio", "m4a", "audio/mp4"
    if brand == b"qt  ":
        return "video", "mov", "video/quicktime"
    if brand.startswith(b"3g"):
        return "video", "3gp", "video/3gpp"
    return "video", "mp4", "video/mp4"


def _container(head: bytes) -> tuple[str, str, str] | None:
    """(media, ext, mime) of a RIFF, Matroska, Ogg or AIFF container."""
    if _riff(head, b"AVI "):
        return "video", "avi", "video/x-msvideo"
    if _riff(head, b"WAVE"):
        return "audio", "wav", "audio/wav"
    if head.startswith(b"\x1aE\xdf\xa3"):
        if b"webm" in head[:64]:
            return "video", "webm", "video/webm"
        return "video", "mkv", "video/x-matroska"
    if head.startswith(b"OggS"):
        if b"theora" in head:
            return "video", "ogv", "video/ogg"
        return "audio", "ogg", "audio/ogg"
    if head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio", "aiff", "audio/aiff"
    return None


def _stream(head: bytes) -> tuple[str, str, str] | None:
    """(media, ext, mime) of a file known by a fixed magic number or an MPEG audio frame."""
    for magic, media, ext, mime in _SIMPLE_MAGIC:
        if head.startswith(magic):
            return media, ext, mime
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # MPEG audio frame sync
        if (head[1] >> 1) & 3 == 0:  # layer bits 00: ADTS AAC
            return "audio", "aac", "audio/aac"
        return "audio", "mp3", "audio/mpeg"
    return None


_SIMPLE_MAGIC = (
    (b"FLV\x01", "video", "flv", "video/x-flv"),
    (b"\x00\x00\x01\xba", "video", "mpg", "video/mpeg"),
    (b"\x00\x00\x01\xb3", "video", "mpg", "video/mpeg"),
    (b"0&\xb2u\x8ef\xcf\x11", "video", "wmv", "video/x-ms-wmv"),
    (b"fLaC", "audio", "flac", "audio/flac"),
    (b"ID3", "audio", "mp3", "audio/mpeg"),
    (b"#!AMR", "audio", "amr", "audio/amr"),
    (b"MThd", "audio", "mid", "audio/midi"),
)


def read_photo(image: Image.Image) -> PhotoInfo:
    """Date taken, GPS position, orientation, camera and readable tags from a photo's EXIF."""
    info = PhotoInfo()
    block = image.info.get("exif")  # JPEG APP1, PNG eXIf, WebP EXIF: unpacked tag by tag below
    if isinstance(block, bytes) and len(block) > _EXIF_MAX:
        return info  # a 1x1 picture with 50 MB of tags unpacked to +576 MB
    exif = image.getexif()
    orientation = _tag(exif, ExifTags.Base.Orientation)
    if orientation in _TRANSPOSE:
        info.orientation = int(orientation)
    details = _sub_ifd(image, exif, ExifTags.IFD.Exif)
    info.created = _exif_date(details.get(ExifTags.Base.DateTimeOriginal)
                              or _tag(exif, ExifTags.Base.DateTime))
    info.lat, info.lng = _exif_position(_sub_ifd(image, exif, ExifTags.IFD.GPSInfo))
    make = str(_tag(exif, ExifTags.Base.Make) or "").strip("\x00 ")
    model = str(_tag(exif, ExifTags.Base.Model) or "").strip("\x00 ")
    info.camera = model if model.startswith(make) else f"{make} {model}".strip()
    for tags in (exif, details):
        for tag in list(tags):
            if tag in ExifTags.TAGS and tag not in _IFD_POINTERS:
                text = _exif_text(_tag(tags, tag))
                if text is not None:
                    info.exif[ExifTags.TAGS[tag]] = text
    return info


def _tag(tags: Any, tag: int) -> Any:
    """A tag's value, None when absent or when its raw value is longer than any text we keep:
    Pillow unpacks a value when it is read (25 million SHORTs take +576 MB)."""
    pending = getattr(getattr(tags, "_info", None), "_tagdata", {})  # Exif: the values not read
    if len(pending.get(tag, b"")) > _EXIF_TAG_MAX:
        return None
    return tags.get(tag)


def _sub_ifd(image: Image.Image, exif: Image.Exif, pointer: int) -> dict[int, Any]:
    """The Exif or GPS IFD, {} when its values would take more than _EXIF_MAX bytes: Pillow
    unpacks a whole sub-IFD at once. An EXIF block is bounded as a whole (read_photo); a TIFF
    file's sub-IFD is measured from its entries first (classic TIFF; BigTIFF's are skipped)."""
    if image.format == "TIFF" and "exif" not in image.info:
        offset, fp = _tag(exif, pointer), getattr(image, "fp", None)
        if not isinstance(offset, int) or exif.bigtiff or fp is None:
            return {}
        order = "<" if exif.endian == "<" else ">"
        fp.seek(offset)
        (count,) = struct.unpack(order + "H", fp.read(2).ljust(2, b"\x00"))
        entries = fp.read(12 * count)
        values = sum(number * _TIFF_TYPE_BYTES.get(kind, 8) for _, kind, number, _ in
                     struct.iter_unpack(order + "HHII", entries[:len(entries) // 12 * 12]))
        if values > _EXIF_MAX:
            return {}
    return exif.get_ifd(pointer)


def _exif_text(value: Any) -> str | None:
    """A tag value as short text; binary blobs and nested IFDs are left out."""
    if isinstance(value, bytes | dict | tuple | list):
        return None
    text = str(value).strip("\x00 ")
    return text if text and len(text) <= _EXIF_TEXT_MAX else None


def _exif_date(value: Any) -> str | None:
    """``YYYY:MM:DD HH:MM:SS`` → ``YYYY-MM-DD HH:MM:SS``; None when absent or not a real date."""
    try:
        taken = datetime.strptime(str(value).strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    return taken.strftime("%Y-%m-%d %H:%M:%S")


def _exif_position(gps: Any) -> tuple[float | None, float | None]:
    """Decimal latitude and longitude from a GPS IFD, (None, None) when incomplete or absurd."""
    try:
        lat = _degrees(gps[2], gps.get(1, "N"), "S")
        lng = _degrees(gps[4], gps.get(3, "E"), "W")
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None, None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0):
        return None, None
    return round(lat, 7), round(lng, 7)


def _degrees(dms: Any, ref: Any, negative: str) -> float:
    degrees, minutes, seconds = (float(part) for part in dms)
    value = degrees + minutes / 60.0 + seconds / 3600.0
    return -value if str(ref).strip("\x00 ").upper() == negative else value


def displayed_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """Width and height once the orientation is applied (5–8 turn the picture by 90°)."""
    return (height, width) if orientation >= 5 else (width, height)


def plan_thumbs(width: int, height: int) -> list[tuple[str, int]]:
    """The labels to make for a displayed size, with their box: no label beyond the original's
    size, except that the smallest numeric label at least as big keeps the original's size."""
    longest, shortest = max(width, height), min(width, height)
    plan: list[tuple[str, int]] = []
    numeric_done = False
    for label in THUMB_LABELS:
        box = int(label.rstrip("x"))
        if label.endswith("x"):
            if box <= shortest or label == ALWAYS_SQUARE:
                plan.append((label, min(box, shortest)))
        elif not numeric_done:
            plan.append((label, min(box, longest)))
            numeric_done = box >= longest
    return plan


def _draft(image: Image.Image) -> None:
    """Have a JPEG decoded at a reduced scale (1/2 … 1/8), never below twice the largest thumb."""
    if image.format in ("JPEG", "MPO"):
        image.draft("RGB", (2 * LARGEST_THUMB, 2 * LARGEST_THUMB))


def decode_bytes(image: Image.Image) -> int:
    """Memory reading and ``render_thumbs`` hold at their peak for ``image`` (just opened: not
    drafted, not loaded): the pixels it decodes (after ``_draft``) × the bytes Pillow keeps per
    pixel; a progressive JPEG's coefficient buffers, which libjpeg keeps at full size whatever the
    draft scale (2 bytes per sample of each component); the RGB(A) copy ``_reduced`` makes of a
    mode ``Image.reduce`` refuses; and _WORKING_BYTES per pixel of the picture thumbnails are cut
    from (its RGB conversions and copies, the resampling). A WebP costs _WEBP_BYTES per pixel
    instead: libwebp returns the whole frame in RGBA and Pillow copies it. A TIFF's tag values
    not unpacked yet are counted twice (read when opened, and again by ``getexif``). Measured
    peaks stay within this + DECODE_MARGIN (docs/uploads.md, "Memory")."""
    full = image.size[0] * image.size[1]
    if image.format == "WEBP":
        cost = full * _WEBP_BYTES
    else:
        _draft(image)
        cost = image.size[0] * image.size[1] * _pixel_bytes(image.mode)
    if image.info.get("progressive"):
        cost += int(full * _component_share(image) * 2)
    pending = getattr(getattr(image, "tag_v2", None), "_tagdata", {})  # TIFF: raw tag values
    cost += 2 * sum(len(raw) for raw in pending.values())
    width, height = image.size
    factor = max(width, height) // LARGEST_THUMB
    if factor >= 2:
        if image.mode not in _REDUCIBLE_MODES:
            cost += width * height * 4
        width, height = -(-width // factor), -(-height // factor)
    return cost + width * height * _WORKING_BYTES


def _component_share(image: Image.Image) -> float:
    """Samples per pixel of a JPEG's components, subsampled ones counted at their share (3 for
    4:4:4 YCbCr, 1.5 for 4:2:0, 4 for CMYK)."""
    layers = getattr(image, "layer", None) or []
    if not layers:
        return float(len(image.getbands()))
    most = max(h for _, h, _, _ in layers) * max(v for _, _, v, _ in layers)
    return sum(h * v for _, h, v, _ in layers) / most


def _pixel_bytes(mode: str) -> int:
    """Pillow stores 1, L and P in a byte per pixel, I;16 in two, every other mode in four."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def release_memory() -> None:
    """Hand freed memory back to the system after a decode: glibc keeps it in per-thread arenas
    otherwise, and 20 large decodes left 450 MB resident (docs/uploads.md, "Memory")."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    """glibc's malloc_trim from the running process, None where the C library lacks it."""
    return getattr(ctypes.CDLL(None), "malloc_trim", None)


def render_thumbs(image: Image.Image, orientation: int) -> Iterator[tuple[str, int, int, bytes]]:
    """(label, w, h, JPEG bytes) for every label ``plan_thumbs`` chooses, shown upright."""
    _draft(image)
    width, height = image.size
    if orientation in _QUARTER_TURNS:
        width, height = height, width
    picture = _upright(image, orientation)
    for label, box in plan_thumbs(width, height):
        if label.endswith("x"):
            thumb = _square(picture, box)
        else:
            thumb = picture.copy()
            thumb.thumbnail((box, box), Image.Resampling.LANCZOS)
        yield label, thumb.width, thumb.height, _jpeg(thumb)


def render_squares(image: Image.Image, orientation: int,
                   sizes: Iterable[int]) -> Iterator[tuple[int, bytes]]:
    """(size, JPEG bytes) of the picture's centred square at each size, shown upright: a member's
    icon (api/media/icons.py), cut like the ``x`` thumbnails."""
    _draft(image)
    picture = _upright(image, orientation)
    for size in sizes:
        yield size, _jpeg(_square(picture, size))


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    """The RGB picture thumbnails are cut from, turned as its EXIF orientation says."""
    try:
        image.seek(0)
        picture = _flatten(_reduced(image))
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise Rejected("image data is broken or truncated") from error
    if orientation in _TRANSPOSE:
        picture = picture.transpose(_TRANSPOSE[orientation])
    return picture


def _square(picture: Image.Image, box: int) -> Image.Image:
    return ImageOps.fit(picture, (box, box), Image.Resampling.LANCZOS)


def _jpeg(thumb: Image.Image) -> bytes:
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=_THUMB_QUALITY, optimize=True)
    return out.getvalue()


def _reduced(image: Image.Image) -> Image.Image:
    """The decoded image shrunk by a whole factor, never below the largest thumbnail, before any
    copy is made: a blank 100-MP PNG of 200 KB would otherwise need gigabytes of RAM."""
    image.load()
    factor = max(image.size) // LARGEST_THUMB
    if factor < 2:
        return image
    if image.mode not in _REDUCIBLE_MODES:  # palette and 1-bit images: one full-size conversion
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    return image.reduce(factor)


def _flatten(image: Image.Image) -> Image.Image:
    """An RGB copy, transparent parts laid on white (thumbnails are JPEG)."""
    if image.mode == "RGB":
        return image.copy()
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")
