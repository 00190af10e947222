"""Upload-test fixtures: images made on the spot, a write token, the queue driven by hand."""

from __future__ import annotations

import io
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from PIL import ExifTags, Image

from api.media.names import doc_file_names
from api.models.docs import Doc
from api.signing import md5
from tests.conftest import _multipart
from tests.docs.conftest import count_queries  # noqa: F401 (the fixture, for these tests too)


def jpeg(width: int = 300, height: int = 200, *, exif: Image.Exif | None = None,
         color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A small JPEG, optionally with EXIF."""
    out = io.BytesIO()
    image = Image.new("RGB", (width, height), color)
    image.save(out, "JPEG", quality=80, **({"exif": exif} if exif is not None else {}))
    return out.getvalue()


def camera_exif(*, orientation: int = 1) -> Image.Exif:
    """EXIF as a camera writes it: make, model, orientation, date taken and a GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Acme"
    exif[ExifTags.Base.Model] = "Snapper 3"
    exif[ExifTags.Base.Orientation] = orientation
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2021:07:14 10:20:30"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "S"
    gps[ExifTags.GPS.GPSLatitude] = (33.0, 51.0, 36.0)  # 33.86 S
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (151.0, 12.0, 36.0)  # 151.21 E
    return exif


def media_files(settings: Any) -> set[str]:
    """Every file under the media dir (partial writes included), as storage names."""
    root = Path(settings.data_dir) / "media"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def doc_files() -> set[str]:
    """The files the committed docs and their thumbs refer to."""
    return {name for doc in Doc.select() for name in doc_file_names(doc, list(doc.thumbs))}


@pytest.fixture
def queue(ctx) -> Any:
    """The app's upload queue (its worker thread is not running unless a test starts it)."""
    return ctx.uploads


@pytest.fixture
def token(token_for, owner) -> str:
    return token_for(owner, doc="write")


@pytest.fixture
def upload(call, token) -> Any:
    """``upload(data, **params)``: upload.file as the owner; the JSON answer."""

    def send(data: bytes, name: str = "photo.jpg", **params: Any) -> dict[str, Any]:
        return call("upload.file", token=token, files={"file": (name, data)}, **params)

    return send


def send_upload(base: str, api_key: Any, token: str, name: str, data: bytes, *,
                timeout: float) -> int:
    """upload.file (asynchronous, MD5-signed) to a live server at ``base``: the ticket id."""
    values = {"api_key": api_key.key, "auth_token": token}
    values["api_sig"] = md5.signature(values, "upload.file", api_key.secret)
    content_type, body = _multipart(values, {"file": (name, data)})
    request = urllib.request.Request(f"{base}/api/upload.file/json", data=body,
                                     headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        answered = json.loads(answer.read())
    assert "ticket" in answered, answered
    return int(answered["ticket"])
