"""Structured logs (``API_LOG_FORMAT=json``; docs/operations.md, "Logs"): one JSON line per HTTP
request - API calls, pages, media and the operations endpoints alike - and the application's log
records as JSON lines too, each carrying the request id of the request it was logged for.

``RequestLogMiddleware`` (first in the app's middleware) takes the request id from a sane
``X-Request-Id`` header (1-64 of ``A-Z a-z 0-9 . _ : -``) or makes one (a random prefix per
process and a counter: no syscall per request), sends it back as ``X-Request-Id`` on every
response, and keeps it with the request's start in a thread-local entry (waitress runs one
request per thread at a time). The dispatcher's account of an API call (``JsonAccessLog.write``,
the access sink it already calls) lands in that entry, so the request's one line carries the API
method, code, key and format; ``process_response`` buffers the whole as a tuple, and the log's
thread renders the JSON when it writes a batch (AccessLog's design: nothing formatted or written
on the request's thread).

A line has: ``time`` (UTC, ms), ``level``, ``logger`` (``access``), ``host`` and ``pid`` (the
instance), ``request_id``, ``client`` (the address after TrustedProxies), ``method`` (HTTP),
``route`` (the route's template, e.g. ``/media/{d2}/{d1}/{name}``: never the path, which holds
media secrets; null when nothing matched), ``status``, then for API calls ``api_method``,
``api_code``, ``api_key`` (a public id) and ``format``, and ``ms`` and ``bytes`` (the body's
length; null when unknown, 0 for HEAD). Never a query string, a parameter, a header's value but
the request id, a cookie, a signature, a token or a secret.

Requests api.server cuts with 408 while they arrive get a line too (``JsonAccessLog.timed_out``);
those waitress answers itself (400, 413) never reach the app and get none. ``UnhandledErrors``
replaces falcon's default handler for exceptions no responder caught, which wrote the path and
query string with the traceback to wsgi.errors.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from json.encoder import encode_basestring_ascii as quoted  # '"…"' escaped, in C: ~0.1 µs
from typing import Any, TextIO

import falcon

from api.runtime.access_log import AccessLog

REQUEST_ID_HEADER = "X-Request-Id"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
LOG_FORMATS = ("text", "json")
_current = threading.local()  # .entry: the _Entry of the request this thread serves


def check_log_format(value: str) -> str:
    """``value`` when it names a log format (API_LOG_FORMAT); ValueError otherwise."""
    if value not in LOG_FORMATS:
        raise ValueError(f"API_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {value!r}")
    return value


class RequestIds:
    """Request ids: a random prefix per process (8 hex digits) and a counter, ``3f9a0c1e-2b``."""

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or secrets.token_hex(4)
        self._next = itertools.count(1).__next__  # atomic under the GIL

    def new(self) -> str:
        return f"{self.prefix}-{self._next():x}"

    def take(self, sent: str | None) -> str:
        """The client's (or proxy's) id when it is sane, else a new one."""
        if sent is not None and SANE_REQUEST_ID.fullmatch(sent):
            return sent
        return self.new()


class _Entry:
    """One request as its line needs it, filled in while it is answered."""

    __slots__ = ("api", "at", "request_id", "started")

    def __init__(self, request_id: str, at: float, started: float) -> None:
        self.request_id = request_id
        self.at = at  # UNIX time it began
        self.started = started  # perf_counter then
        self.api: tuple[str, str, str, int] | None = None  # key, method, format, code


def current_request_id() -> str | None:
    """The id of the request this thread is answering (None outside one)."""
    entry = getattr(_current, "entry", None)
    return entry.request_id if entry is not None else None


def iso_time(at: float) -> str:
    """``2027-01-15T08:00:00.123Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"


# A buffered line: time, request id, client, HTTP method, route, status, api, ms, bytes.
Line = tuple[float, str | None, str, str | None, str | None, int | None,
             tuple[str, str, str, int] | None, float, int | None]


class JsonAccessLog(AccessLog):
    """The access log of ``API_LOG_FORMAT=json``: one JSON object per line and request."""

    thread_name = "access-log"

    def __init__(self, stream: TextIO | None = None, *, clock: Callable[[], float] = time.time,
                 max_buffered: int = 2000) -> None:
        super().__init__(stream, clock=clock, max_buffered=max_buffered)
        self.instance = f'"host": {quoted(socket.gethostname())}, "pid": {os.getpid()}'
        self.ids = RequestIds()  # for the requests only the server saw (timed_out)

    def write(self, client: str, key: str, method: str, fmt: str, code: int, ms: float) -> None:
        """The dispatcher's account of a call: kept with the HTTP request it belongs to, whose
        line then carries it; a call made outside one (another transport) gets a line alone."""
        entry = getattr(_current, "entry", None)
        if entry is not None:
            entry.api = (key, method, fmt, code)
            return
        self._append((self.clock(), None, client, None, None, None, (key, method, fmt, code),
                      ms, None))

    def request(self, line: Line) -> None:
        """Buffer one request's line (RequestLogMiddleware)."""
        self._append(line)

    def timed_out(self, client: str | None, method: str | None, sent_id: str | None,
                  received_at: float, now: float, size: int) -> None:
        """The line of a request api.server's close_slow_requests cut with a 408 while it was
        still arriving (the app never saw it): the connection's peer, the HTTP method and the
        sent X-Request-Id when its headers had arrived (a sane one kept, else a new one)."""
        request_id = self.ids.take(sent_id)
        self._append((received_at, request_id, client, method, None, 408, None,
                      max(0.0, now - received_at) * 1000.0, size))

    def _render(self, items: list[Any]) -> str:
        return "".join(map(self._line, items))

    def _line(self, line: Line) -> str:
        """One JSON object, written out field by field: a quarter of json.dumps's time, and
        this thread holds the GIL the request threads need."""
        at, request_id, client, http_method, route, status, api, ms, size = line
        text = (f'{{"time": "{self._stamp(int(at))}.{int(at % 1 * 1000):03d}Z", "level": "info", '
                f'"logger": "access", {self.instance}, "request_id": {_string(request_id)}, '
                f'"client": {_string(client or None)}, "method": {_string(http_method)}, '
                f'"route": {_string(route)}, "status": {_number(status)}')
        if api is not None:
            key, method, fmt, code = api
            text += (f', "api_method": {quoted(method)}, "api_code": {code}, '
                     f'"api_key": {_string(key or None)}, "format": {quoted(fmt)}')
        return f'{text}, "ms": {ms:.2f}, "bytes": {_number(size)}}}\n'


def _string(value: str | None) -> str:
    return "null" if value is None else quoted(value)


def _number(value: int | None) -> str:
    return "null" if value is None else str(int(value))


class RequestLogMiddleware:
    """Request ids, and one access line per HTTP request (``log`` None: ids only)."""

    def __init__(self, log: JsonAccessLog | None, ids: RequestIds | None = None) -> None:
        self.log = log
        self.ids = ids or RequestIds()

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.set_header(REQUEST_ID_HEADER, self.begin(req.get_header(REQUEST_ID_HEADER)))

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object,
                         req_succeeded: bool) -> None:
        self.end(req.remote_addr, req.method, req.uri_template, resp.status_code,
                 body_length(resp))

    def begin(self, sent_id: str | None) -> str:
        """A request begins on this thread: its id (``sent_id`` when sane), to send back."""
        request_id = self.ids.take(sent_id)
        _current.entry = _Entry(request_id, time.time(), time.perf_counter())
        return request_id

    def end(self, client: str, http_method: str, route: str | None, status: int,
            size: int | None) -> None:
        """The request this thread began is answered (``size``: its body's bytes): its line."""
        entry = getattr(_current, "entry", None)
        _current.entry = None
        if entry is None or self.log is None:
            return
        ms = (time.perf_counter() - entry.started) * 1000.0
        self.log.request((entry.at, entry.request_id, client, http_method, route, status,
                          entry.api, ms, 0 if http_method == "HEAD" else size))


def body_length(resp: falcon.Response) -> int | None:
    """The bytes of the response's body (None when only sending it will tell)."""
    length = resp.content_length
    if length is not None:
        return int(length)
    if resp.data is not None:
        return len(resp.data)
    if resp.text is not None:
        return len(resp.text.encode())
    return None if resp.stream is not None else 0


class Unhandled(Exception):
    """Stands in a logged traceback for an exception whose message is withheld."""


def withheld(error: BaseException) -> tuple[type[Unhandled], Unhandled, Any]:
    """``exc_info`` for logging ``error``'s frames and class, never its message (which may quote
    a file's path, a parameter or a connection string)."""
    kind = f"{type(error).__module__}.{type(error).__qualname__}"
    return Unhandled, Unhandled(f"{kind} (its message is not logged)"), error.__traceback__


# Routes whose answers are JSON (or files): their unexpected failures answer JSON, the others
# (the site's pages) the site's error page.
_NOT_PAGES = ("/api", "/media/", "/healthz", "/readyz", "/metrics")
SERVER_ERROR_TITLE = "500 Internal Server Error"
SERVER_ERROR_PAGE = "Something went wrong on our side. Please try again later."


class UnhandledErrors:
    """The app's handler for exceptions no responder caught (falcon's HTTPError and HTTPStatus
    keep their own handlers): a 500 without a traceback, and one ``logging`` record.

    falcon's default handler wrote ``GET <path>?<query> => <traceback>`` to wsgi.errors: a media
    path holds its doc's secret, a query string may hold a signature or a token. This one logs
    the route's template, never the path or the query string, and the traceback's frames with
    the exception's class but not its message (which may quote a file's path, a parameter or a
    connection string); in JSON mode the record is a JSON line with the request id, and the
    request's access line is written as for any other answer. ``page`` renders the site's
    error page with a status and message (None: every answer is JSON)."""

    def __init__(self, page: Callable[[falcon.Response, str, str], None] | None = None) -> None:
        self.page = page

    def __call__(self, req: falcon.Request, resp: falcon.Response, error: BaseException,
                 params: dict[str, Any]) -> None:
        log_unhandled(error, req.method, req.uri_template)
        stream, resp.stream, resp.data = resp.stream, None, None  # whatever was half made
        if stream is not None and hasattr(stream, "close"):
            stream.close()
        for name in ("Content-Length", "Content-Disposition"):
            resp.delete_header(name)
        resp.status = falcon.HTTP_500
        resp.set_header("Cache-Control", "no-store")
        template = req.uri_template or ""
        if (self.page is not None and not template.startswith(_NOT_PAGES)
                and not template.endswith((".json", ".csv"))
                and req.client_prefers(["text/html", "application/json"]) == "text/html"):
            self.page(resp, falcon.HTTP_500, SERVER_ERROR_PAGE)
        else:
            resp.content_type = falcon.MEDIA_JSON
            resp.data = SERVER_ERROR_JSON


SERVER_ERROR_JSON = json.dumps({"title": SERVER_ERROR_TITLE}).encode()
_errors_log = logging.getLogger("api.errors")


def log_unhandled(error: BaseException, http_method: str, route: str | None) -> None:
    """The record of an exception no responder caught: the route's template, never the path."""
    _errors_log.error("unexpected %s answering %s %s", type(error).__name__, http_method,
                      route or "(no route)", exc_info=withheld(error))


class JsonFormatter(logging.Formatter):
    """Application log records as JSON lines: time, level, logger, host, pid, the request id
    (when logged while answering a request), message, and the traceback if any."""

    def __init__(self) -> None:
        super().__init__()
        self.host = socket.gethostname()

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "time": iso_time(record.created), "level": record.levelname.lower(),
            "logger": record.name, "host": self.host, "pid": record.process}
        request_id = current_request_id()
        if request_id is not None:
            fields["request_id"] = request_id
        fields["message"] = record.getMessage()
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        return json.dumps(fields, default=str)


class WaitressPaths(logging.Filter):
    """waitress logs the request's path when a client leaves mid-answer or a body fails while it
    sends it ("Client disconnected while serving /media/…/<doc>.<secret>.original.jpg", already
    formatted; with S3 storage it sends from its worker thread): media file names and query
    strings are cut from its records, and an exception's traceback to its class (its message may
    name a storage key)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = _PATH_SECRETS.sub(_cut_path, record.getMessage())
        if record.exc_info and record.exc_info[0] is not None:
            message = f"{message} ({record.exc_info[0].__name__})"
            record.exc_info, record.exc_text = None, None
        record.msg, record.args = message, None
        return True


# A path in a message: a media file's name (its secret), or a query string, is cut.
_PATH_SECRETS = re.compile(r"(/media/)\S*|(/\S*?)\?\S*")


def _cut_path(match: re.Match[str]) -> str:
    return "/media/…" if match.group(1) else f"{match.group(2)}?…"


def configure_logging(log_format: str) -> None:
    """The root logger at INFO on stderr, as text or (``json``) JSON lines; waitress's records
    without media paths or query strings (``WaitressPaths``)."""
    logging.getLogger("waitress").addFilter(WaitressPaths())
    if log_format == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=logging.INFO, handlers=[handler])
    else:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
