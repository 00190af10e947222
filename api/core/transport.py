"""The REST edge: turn an HTTP request into an ``ApiRequest`` (spec §1), strictly and safely.

Query and body parameters are merged (body wins); bodies may be urlencoded or multipart for every
method. Percent-encoding and UTF-8 are checked strictly: a bad request gets the error envelope
(140), an oversized body 141, never a 500. File parts (parts with a filename) go to temporary files,
never into parameters; a text part is a parameter whatever its name, ``file`` included.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import falcon
from falcon.media import MultipartFormHandler
from falcon.stream import BoundedStream
from falcon.typing import ReadableIO

from api.core import errors
from api.core.context import OAuthRequest, UploadedFile
from api.core.dispatch import ApiRequest

KeyCheck = Callable[[Mapping[str, str]], bool]
SpoolDir = Callable[[], str]
_MULTIPART = MultipartFormHandler()
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_MAX_FIELDS = 1000
_ROUTING = ("method", "format")
FILE_PART = "file"  # the only file a method takes (upload.file, upload.replace)
OAUTH_PREFIX = "oauth_"  # a parameter so named makes the request OAuth-signed (spec §5.5)
# No parameter of this API can hold NUL, and PostgreSQL text cannot store or compare it.
_NUL = "NUL character in a parameter"
# The environ key api/server.py's waitress channel puts the request's arrival time under. A header
# never becomes a key without the HTTP_ prefix (PEP 3333), so no client can set it.
RECEIVED_AT = "ipernity.received_at"


class WsgiRequest:
    """What the REST edge reads of a request, straight from the WSGI environ, as falcon's Request
    names it (``read_request`` takes either): an API call needs only these few, and building
    falcon's request and response cost more than the rest of a ``test.hello``'s pipeline
    (api/app.py ``ApiFront``; bench/instructions_bench.py). Read once, as plain attributes."""

    __slots__ = ("content_type", "env", "method", "query_string", "remote_addr", "scheme")

    def __init__(self, env: dict[str, Any]) -> None:
        self.env = env
        self.method: str = env["REQUEST_METHOD"]
        self.query_string: str = env.get("QUERY_STRING", "")
        self.remote_addr: str = env.get("REMOTE_ADDR", "127.0.0.1")  # as falcon's, without one
        self.scheme: str = env["wsgi.url_scheme"]
        self.content_type: str | None = env.get("CONTENT_TYPE") or None

    @property
    def netloc(self) -> str:
        """``host:port`` as falcon's: the Host header, else the server's name and port (the
        scheme's default port left out)."""
        env = self.env
        if "HTTP_HOST" in env:  # even empty, as falcon's
            return env["HTTP_HOST"]
        name, port = env["SERVER_NAME"], env["SERVER_PORT"]
        default = "443" if self.scheme == "https" else "80"
        return name if port == default else f"{name}:{port}"

    def get_header(self, name: str) -> str | None:
        return self.env.get("HTTP_" + name.upper().replace("-", "_"))

    @property
    def content_length(self) -> int | None:
        """None without one; a length that is no number (only a server that does not check it
        lets one through: waitress answers 400 itself) is a malformed request, 140."""
        value = self.env.get("CONTENT_LENGTH")
        if not value:
            return None
        if not value.isdigit() or not value.isascii():
            raise errors.MalformedRequest("Content-Length is not a number")
        return int(value)

    @property
    def bounded_stream(self) -> BoundedStream:
        return BoundedStream(self.env["wsgi.input"], self.content_length or 0)


HttpRequest = falcon.Request | WsgiRequest


def decode_urlencoded(raw: str | bytes) -> dict[str, str]:
    """Strictly decode ``a=1&b=%C3%A9``; raises MalformedRequest on bad escapes, UTF-8 or NUL."""
    try:
        text = raw.decode("utf-8", "strict") if isinstance(raw, bytes) else raw
        if "\x00" in text or "%00" in text:
            raise errors.MalformedRequest(_NUL)
        if text.count("&") >= _MAX_FIELDS:  # as parse_qsl's max_num_fields counts
            raise errors.MalformedRequest(f"more than {_MAX_FIELDS} parameters")
        if "%" not in text and "+" not in text:
            # The common case (hex keys, plain names): nothing to unescape.
            return dict(pair.partition("=")[::2] for pair in text.split("&") if pair)
        if _BAD_PERCENT.search(text):
            raise errors.MalformedRequest("malformed percent-encoding")
        return dict(parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict"))
    except (UnicodeDecodeError, ValueError):
        raise errors.MalformedRequest("undecodable parameters") from None


def read_request(req: HttpRequest, method: str | None, fmt: str | None,
                 max_body: int, spool_dir: SpoolDir | None = None, public_url: str = "", *,
                 max_form: int | None = None, key_refused: KeyCheck | None = None) -> ApiRequest:
    """Build the ApiRequest; a transport problem travels inside it to be rendered in its format.

    ``spool_dir`` names the directory a file part is spooled to; it is asked only when there is
    one, so a plain call costs no file-system call.

    ``max_body`` bounds the ``file`` part, ``max_form`` (default: ``max_body``) an urlencoded body
    and all other multipart parts together. ``key_refused`` is asked, with the parameters read so
    far, before a file part is spooled: True stops reading there (the dispatcher answers 101), and
    so does a file part with no api_key or OAuth signature before it (100).
    """
    params: dict[str, str] = {}
    query: dict[str, str] = {}
    body: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    problem: errors.ApiError | None = None
    try:
        # PEP 3333 hands the raw query bytes over as latin-1 text; get the bytes back.
        params = query = decode_urlencoded(req.query_string.encode("latin-1", "replace"))
        if req.method == "POST":
            limits = _Limits(max_body, max_body if max_form is None else max_form, key_refused)
            body = _read_body(req, files, query, limits, spool_dir)
            params = {**query, **body}
    except errors.ApiError as error:
        problem = error
    except BaseException:  # anything else (the body's stream broke…): no spooled file kept
        discard_files(files)
        raise
    unsigned: frozenset[str] = frozenset()
    if method is None:  # /api?method=…&format=… : routing names are not signed parameters
        method = params.get("method", "")
        fmt = fmt or params.get("format")
        unsigned = frozenset(name for name in _ROUTING if name in params)
    received_at = req.env.get(RECEIVED_AT)
    stamp = received_at if isinstance(received_at, float) else None
    base_url, path = public_url or f"{req.scheme}://{req.netloc}", path_as_sent(req.env)
    return ApiRequest(http_method=req.method, method_name=method, format_name=fmt or "",
                      params=params, files=files, client_addr=req.remote_addr or "",
                      base_url=base_url, unsigned=unsigned,
                      transport_error=problem, path=path, received_at=stamp,
                      oauth=oauth_request(req, base_url + path, query, body, stamp))


def oauth_request(req: HttpRequest, url: str, query: Mapping[str, str],
                  body: Mapping[str, str], received_at: float | None = None
                  ) -> OAuthRequest | None:
    """What an OAuth signature covers, when ``req`` carries OAuth parameters (spec §5.5): an
    ``Authorization: OAuth`` header, or ``oauth_*`` names in the query or the body (multipart
    text fields too: the original's clients put them there)."""
    authorization = req.get_header("Authorization") or ""
    if not _oauth_signed(authorization, query, body):
        return None
    multipart = (req.content_type or "").lower().startswith("multipart/form-data")
    return OAuthRequest(http_method=req.method, url=url, authorization=authorization,
                        query=query, body=body, multipart=multipart, received_at=received_at)


def _oauth_signed(authorization: str, *params: Mapping[str, str]) -> bool:
    """An ``Authorization: OAuth`` header, or an ``oauth_*`` name among ``params``."""
    if authorization[:6].lower() == "oauth ":
        return True
    for names in params:  # loops, not any(…): every API call asks
        for name in names:
            if name.startswith(OAUTH_PREFIX):
                return True
    return False


def path_as_sent(env: Mapping[str, object]) -> str:
    """The request-target's path as the client wrote it (percent-escapes, repeated or trailing
    slashes kept; no query): waitress's REQUEST_URI, or RAW_URI (gunicorn, falcon's TestClient).
    Only without either, SCRIPT_NAME + PATH_INFO, which the server has already decoded."""
    raw = env.get("REQUEST_URI") or env.get("RAW_URI")
    if not isinstance(raw, str) or not raw:
        raw = f"{env.get('SCRIPT_NAME', '')}{env.get('PATH_INFO', '')}"
    elif not raw.startswith("/"):  # absolute-form (http://host/api/…), as a proxy would send
        raw = urlsplit(raw).path
    # PEP 3333: the bytes arrive as latin-1 text; a client signs the UTF-8 string it wrote.
    return raw.partition("?")[0].encode("latin-1", "replace").decode("utf-8", "replace")


@dataclass(frozen=True)
class _Limits:
    """What read_request may read: bytes of the file part, bytes of everything else, and the
    early key check."""

    file: int
    form: int
    key_refused: KeyCheck | None


def _read_body(req: HttpRequest, files: dict[str, UploadedFile], query: Mapping[str, str],
               limits: _Limits, spool_dir: SpoolDir | None) -> dict[str, str]:
    """Media types in any case (RFC 9110 §8.3.1); a body that is no form is never read."""
    length = req.content_length
    if length is not None and length > limits.file:
        raise errors.RequestTooLarge()
    content_type = (req.content_type or "").lower()
    if content_type.startswith("multipart/form-data"):
        if length is None:  # falcon's parser needs one; waitress always gives it
            raise errors.MalformedRequest("multipart body without Content-Length")
        return _read_multipart(req, files, query, limits, spool_dir)
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return {}  # other bodies carry no parameters (as PHP's $_POST would see them)
    if length is not None and length > limits.form:
        raise errors.RequestTooLarge()
    body = req.bounded_stream.read(limits.form + 1)
    if len(body) > limits.form:  # a WSGI server that gave no length (waitress always does)
        raise errors.RequestTooLarge()
    return decode_urlencoded(body) if body else {}


def _read_multipart(req: HttpRequest, files: dict[str, UploadedFile],
                    query: Mapping[str, str], limits: _Limits,
                    spool_dir: SpoolDir | None) -> dict[str, str]:
    """Fields as parameters; the ``file`` part spooled to disk (once); other file parts drained.

    A part is a file when it has a filename (even an empty one). A text part named ``file`` is an
    ordinary, signed parameter: ipernity-api 0.13 sends the local path so, before the file part.
    Spooled files sit in ``files`` as soon as they exist, so the caller removes them whatever fails.
    Only the ``file`` part may use ``limits.file``; all the others share ``limits.form``.
    """
    fields: dict[str, str] = {}
    budget = limits.form
    try:
        # Not req.get_media(): falcon picks its handler by the media type's exact case.
        for part in _MULTIPART.deserialize(req.bounded_stream, req.content_type or "",
                                           req.content_length):
            if not part.name:
                raise errors.MalformedRequest("multipart part without a name")
            if "\x00" in part.name or "\x00" in (part.filename or ""):
                raise errors.MalformedRequest(_NUL)
            if part.filename is not None and part.name == FILE_PART:
                if FILE_PART in files:
                    raise errors.MalformedRequest("more than one file part")
                seen = {**query, **fields}
                if limits.key_refused is not None and (_anonymous(req, seen)
                                                       or limits.key_refused(seen)):
                    return fields  # the rest is never read; the key step answers
                content_type = part.content_type or ""  # read first: it may fail to decode
                path, size = _spool(part.stream, limits.file,
                                    spool_dir() if spool_dir else None)
                files[FILE_PART] = UploadedFile(filename=part.filename, path=path, size=size,
                                                content_type=content_type)
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


def _anonymous(req: HttpRequest, params: Mapping[str, str]) -> bool:
    """No api_key and nothing OAuth-signed before a file part: step 5 answers 100 whatever
    follows, so the file is not spooled."""
    return not params.get("api_key") and not _oauth_signed(req.get_header("Authorization") or "",
                                                           params)


def _drain(stream: ReadableIO, budget: int) -> int:
    """Read a part to its end without keeping it; RequestTooLarge past ``budget`` bytes."""
    size = 0
    while chunk := stream.read(1 << 20):
        size += len(chunk)
        if size > budget:
            raise errors.RequestTooLarge()
    return size


def _spool(stream: ReadableIO, budget: int, tmpdir: str | None) -> tuple[str, int]:
    """Copy a file part to a temporary file, refusing more than ``budget`` bytes; whatever
    fails on the way (too large, a broken body, a full disk), the file is gone."""
    handle, path = tempfile.mkstemp(prefix="upload-", dir=tmpdir)
    size = 0
    try:
        with os.fdopen(handle, "wb") as out:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if size > budget:
                    raise errors.RequestTooLarge()
                out.write(chunk)
    except BaseException:
        os.unlink(path)
        raise
    return path, size


def discard_files(files: Mapping[str, UploadedFile]) -> None:
    """Remove the temporary files of a finished request (handlers move what they keep)."""
    for upload in files.values():
        try:
            os.unlink(upload.path)
        except FileNotFoundError:
            pass


__all__ = ["RECEIVED_AT", "HttpRequest", "WsgiRequest", "decode_urlencoded", "discard_files",
           "oauth_request", "path_as_sent", "read_request"]
