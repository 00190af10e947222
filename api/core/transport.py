"""The REST edge: turn a falcon request into an ``ApiRequest`` (spec §1), strictly and safely.

Query and body parameters are merged (body wins); bodies may be urlencoded or multipart for every
method. Percent-encoding and UTF-8 are checked strictly: a bad request gets the error envelope
(140), an oversized body 141, never a 500. File parts (parts with a filename) go to temporary files,
never into parameters; a text part is a parameter whatever its name, ``file`` included.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from urllib.parse import parse_qsl

import falcon
from falcon.typing import ReadableIO

from api.core import errors
from api.core.context import UploadedFile
from api.core.dispatch import ApiRequest

_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_MAX_FIELDS = 1000
_ROUTING = ("method", "format")
FILE_PART = "file"  # the only file a method takes (upload.file, upload.replace)
# No parameter of this API can hold NUL, and PostgreSQL text cannot store or compare it.
_NUL = "NUL character in a parameter"


def decode_urlencoded(raw: str | bytes) -> dict[str, str]:
    """Strictly decode ``a=1&b=%C3%A9``; raises MalformedRequest on bad escapes, UTF-8 or NUL."""
    try:
        text = raw.decode("utf-8", "strict") if isinstance(raw, bytes) else raw
        if "\x00" in text or "%00" in text:
            raise errors.MalformedRequest(_NUL)
        if "%" not in text and "+" not in text:
            # The common case (hex keys, plain names): nothing to unescape.
            return dict(pair.partition("=")[::2] for pair in text.split("&")[:_MAX_FIELDS]
                        if pair)
        if _BAD_PERCENT.search(text):
            raise errors.MalformedRequest("malformed percent-encoding")
        return dict(parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                              max_num_fields=_MAX_FIELDS))
    except (UnicodeDecodeError, ValueError):
        raise errors.MalformedRequest("undecodable parameters") from None


def read_request(req: falcon.Request, method: str | None, fmt: str | None,
                 max_body: int, tmpdir: str | None = None, public_url: str = "") -> ApiRequest:
    """Build the ApiRequest; a transport problem travels inside it to be rendered in its format."""
    params: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    problem: errors.ApiError | None = None
    try:
        # PEP 3333 hands the raw query bytes over as latin-1 text; get the bytes back.
        params = decode_urlencoded(req.query_string.encode("latin-1", "replace"))
        if req.method == "POST":
            params.update(_read_body(req, files, max_body, tmpdir))
    except errors.ApiError as error:
        problem = error
    unsigned: frozenset[str] = frozenset()
    if method is None:  # /api?method=…&format=… : routing names are not signed parameters
        method = params.get("method", "")
        fmt = fmt or params.get("format")
        unsigned = frozenset(name for name in _ROUTING if name in params)
    return ApiRequest(http_method=req.method, method_name=method, format_name=fmt or "",
                      params=params, files=files, client_addr=req.remote_addr or "",
                      base_url=public_url or f"{req.scheme}://{req.netloc}", unsigned=unsigned,
                      transport_error=problem)


def _read_body(req: falcon.Request, files: dict[str, UploadedFile], max_body: int,
               tmpdir: str | None) -> dict[str, str]:
    length = req.content_length
    if length is not None and length > max_body:
        raise errors.RequestTooLarge()
    content_type = (req.content_type or "").lower()
    if content_type.startswith("multipart/form-data"):
        return _read_multipart(req, files, max_body, tmpdir)
    body = req.bounded_stream.read(max_body + 1)
    if len(body) > max_body:
        raise errors.RequestTooLarge()
    if not body or not content_type.startswith("application/x-www-form-urlencoded"):
        return {}  # other bodies carry no parameters (as PHP's $_POST would see them)
    return decode_urlencoded(body)


def _read_multipart(req: falcon.Request, files: dict[str, UploadedFile], max_body: int,
                    tmpdir: str | None) -> dict[str, str]:
    """Fields as parameters; the ``file`` part spooled to disk (once); other file parts drained.

    A part is a file when it has a filename (even an empty one). A text part named ``file`` is an
    ordinary, signed parameter: ipernity-api 0.13 sends the local path so, before the file part.
    Spooled files sit in ``files`` as soon as they exist, so the caller removes them whatever fails.
    """
    fields: dict[str, str] = {}
    budget = max_body
    try:
        for part in req.get_media():
            if not part.name:
                raise errors.MalformedRequest("multipart part without a name")
            if part.filename is not None and part.name == FILE_PART:
                if FILE_PART in files:
                    raise errors.MalformedRequest("more than one file part")
                path, size = _spool(part.stream, budget, tmpdir)
                budget -= size
                files[FILE_PART] = UploadedFile(filename=part.filename, path=path, size=size,
                                                content_type=part.content_type or "")
            elif part.filename is not None:  # no method takes another file: read, never kept
                budget -= _drain(part.stream, budget)
            else:
                data = part.stream.read(budget + 1)
                budget -= len(data)
                if budget < 0:
                    raise errors.RequestTooLarge()
                if b"\x00" in data:
                    raise errors.MalformedRequest(_NUL)
                fields[part.name] = data.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.MalformedRequest("multipart field is not UTF-8") from None
    except (falcon.MediaMalformedError, falcon.HTTPBadRequest, falcon.MediaNotFoundError):
        raise errors.MalformedRequest("broken multipart body") from None
    return fields


def _drain(stream: ReadableIO, budget: int) -> int:
    """Read a part to its end without keeping it; RequestTooLarge past ``budget`` bytes."""
    size = 0
    while chunk := stream.read(1 << 20):
        size += len(chunk)
        if size > budget:
            raise errors.RequestTooLarge()
    return size


def _spool(stream: ReadableIO, budget: int, tmpdir: str | None) -> tuple[str, int]:
    """Copy a file part to a temporary file, refusing more than ``budget`` bytes."""
    handle, path = tempfile.mkstemp(prefix="upload-", dir=tmpdir)
    size = 0
    with os.fdopen(handle, "wb") as out:
        while True:
            chunk = stream.read(1 << 20)
            if not chunk:
                break
            size += len(chunk)
            if size > budget:
                out.close()
                os.unlink(path)
                raise errors.RequestTooLarge()
            out.write(chunk)
    return path, size


def discard_files(files: Mapping[str, UploadedFile]) -> None:
    """Remove the temporary files of a finished request (handlers move what they keep)."""
    for upload in files.values():
        try:
            os.unlink(upload.path)
        except FileNotFoundError:
            pass


__all__ = ["decode_urlencoded", "discard_files", "read_request"]
