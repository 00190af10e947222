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
length; null when unknown). Never a query string, a parameter, a header's value but the request
id, a cookie, a signature, a token or a secret.
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
        request_id = self.ids.take(req.get_header(REQUEST_ID_HEADER))
        _current.entry = _Entry(request_id, time.time(), time.perf_counter())
        resp.set_header(REQUEST_ID_HEADER, request_id)

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object,
                         req_succeeded: bool) -> None:
        entry = getattr(_current, "entry", None)
        _current.entry = None
        if entry is None or self.log is None:
            return
        ms = (time.perf_counter() - entry.started) * 1000.0
        self.log.request((entry.at, entry.request_id, req.remote_addr, req.method,
                          req.uri_template, resp.status_code, entry.api, ms, body_length(resp)))


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


def configure_logging(log_format: str) -> None:
    """The root logger at INFO on stderr, as text or (``json``) JSON lines."""
    if log_format == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=logging.INFO, handlers=[handler])
    else:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
