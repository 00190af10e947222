"""``serve.py``: options → Settings → waitress, with a clean stop on SIGTERM/Ctrl-C."""

from __future__ import annotations

import argparse
import gc
import logging
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from peewee import ImproperlyConfigured
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer, create_server
from waitress.task import WSGITask

from api.app import build_context, create_app, open_schema
from api.config import Settings
from api.core.context import AppContext
from api.core.transport import RECEIVED_AT
from api.runtime.http_log import JsonAccessLog, configure_logging
from api.runtime.migrations import SchemaOutOfDate, SchemaTooNew
from api.web.accounts import SecretRefused
from keys.db import is_busy

log = logging.getLogger("api.server")
START_WAIT_SECONDS = 600  # how long a start waits while another process migrates the schema
T = TypeVar("T")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options; each one also has an API_* environment variable (see README)."""
    parser = argparse.ArgumentParser(description="ipernity-compatible API server")
    parser.add_argument("--host", help="interface (API_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (API_PORT, default 8080)")
    parser.add_argument("--db", dest="database_url", help="database URL (API_DATABASE_URL)")
    parser.add_argument("--data-dir", help="data directory (API_DATA_DIR, default ./data)")
    parser.add_argument("--threads", type=int, help="worker threads (API_THREADS, default 8)")
    parser.add_argument("--demo", action="store_true", help="create and print a demo user and key")
    parser.add_argument("--migrate-only", action="store_true",
                        help="migrate the schema, print the version reached and exit")
    parser.add_argument("--no-migrate", action="store_true",
                        help="refuse to start on an out-of-date schema (API_AUTO_MIGRATE=0)")
    return parser.parse_args(argv)


def print_demo(settings: Settings) -> None:
    """Create the demo user and key once, and print them with a ready curl line."""
    from keys.demo import ensure_demo

    key, password = ensure_demo()
    base = f"http://{settings.host}:{settings.port}"
    print("Demo key ready:")
    print(f"  api_key: {key.key}")
    print(f"  secret:  {key.secret}")
    if password:
        print(f"  user:    demo / {password}  (shown once)")
    print(f"  try:     curl '{base}/api/test.hello?api_key={key.key}'", flush=True)


class _StampedParser(HTTPRequestParser):
    """waitress makes one parser per request when its first bytes arrive: note the time, and
    count the bytes received since its clock started (close_slow_requests)."""

    def __init__(self, adj: Any) -> None:
        super().__init__(adj)
        self.received_at = self.window_start = time.time()
        self.window_bytes = 0

    def received(self, data: bytes) -> int:
        consumed: int = super().received(data)
        self.window_bytes += consumed
        return consumed


class _StampedTask(WSGITask):
    """Hands the parser's arrival time to the app under RECEIVED_AT (no header can name it)."""

    def get_environment(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environment()
        environ[RECEIVED_AT] = self.request.received_at
        return environ


class StampedChannel(HTTPChannel):
    """A channel whose requests say when they began to arrive: waitress buffers a whole body
    before calling the app, and an HMAC upload's api_ts is judged by its start, not its end. The
    channel itself notes when it was accepted and when its last answer was made (``idle_since``),
    so a connection that sends nothing is closed too."""

    parser_class = _StampedParser
    task_class = _StampedTask

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.idle_since = self.creation_time

    def service(self) -> None:
        super().service()
        self.idle_since = time.time()


def stamp_arrivals(server: Any) -> Any:
    """``server`` (from waitress's create_server) with StampedChannel on each listening socket."""
    socket_map = server.map if hasattr(server, "map") else server._map  # MultiSocketServer: map
    for listener in list(socket_map.values()):
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = StampedChannel
    return server


def waitress_options(settings: Settings) -> dict[str, Any]:
    """waitress's adjustments from the settings: connections, silence and bodies bounded; poll(),
    since select() fails on descriptors past 1024 and connection_limit may reach them; proxy
    headers left for the app to judge."""
    return {"host": settings.host, "port": settings.port, "threads": settings.threads,
            "max_request_body_size": settings.max_body_bytes, "ident": "ipernity-api",
            "connection_limit": settings.connection_limit,
            "channel_timeout": settings.channel_timeout, "asyncore_use_poll": True,
            # waitress would strip X-Forwarded-* before the app sees them; the app's
            # TrustedProxies decides whom to believe (API_TRUSTED_PROXIES).
            "clear_untrusted_proxy_headers": False}


def raise_open_files(connections: int) -> None:
    """Lift the soft open-files limit toward the hard one so ``connections`` fit: each is a
    descriptor, and one whose body waitress spools to disk holds another."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * connections + 64  # and the database, log and media files
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    if limit < wanted:
        log.warning("open-files limit %s is below the %s that %s connections may need",
                    limit, wanted, connections)


@dataclass(frozen=True)
class Timeouts:
    """What close_slow_requests allows (docs/protocol-choices.md, "Bounded resources")."""

    header: float  # first byte of a request to the end of its headers
    body: float  # first byte to the end of its body, however fast
    idle: float  # a connection with no request, since accepted or since its last answer
    min_body_rate: float  # bytes a second a body must average since its first byte …
    rate_window: float  # … judged once this many seconds have passed

    @classmethod
    def of(cls, settings: Settings) -> Timeouts:
        return cls(header=settings.header_timeout, body=settings.body_timeout,
                   idle=settings.idle_timeout, min_body_rate=settings.min_body_rate,
                   rate_window=settings.body_rate_window)


# What a connection closed in the middle of its request is told (RFC 9110 §15.5.9).
_TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
              b"Content-Length: 16\r\n\r\nRequest Timeout\n")
_TIMED_OUT_BODY_BYTES = 16


# Told about each request close_slow_requests answers 408: (channel, request, now).
OnCut = Callable[[Any, Any, float], None]


def close_slow_requests(socket_map: dict[int, Any], now: float, limits: Timeouts,
                        on_cut: OnCut | None = None) -> int:
    """Close connections that hold a place without using it: waitress's channel_timeout only
    counts silence, so a byte a second would hold a connection for ever, and one that sends
    nothing stays until channel_timeout. A request arriving too slowly is answered 408 and its
    connection closed once that is sent; an idle connection is closed. A connection with an
    answer being made or sent is never touched, and the clock of a request queued behind that
    answer restarts (the channel does not read meanwhile). The number closed is returned;
    ``on_cut`` is told of each request answered 408 (its access line: log_timed_out)."""
    closed = 0
    for channel in list(socket_map.values()):
        if not hasattr(channel, "requests") or channel.will_close or channel.close_when_flushed:
            continue  # the listener and the trigger; or already closing
        request = channel.request  # the one still arriving, if any
        if channel.requests or channel.total_outbufs_len:
            channel.idle_since = now
            if request is not None:
                request.window_start, request.window_bytes = now, 0
        elif request is None:
            if now - channel.idle_since > limits.idle:
                channel.will_close = True  # the loop closes it on its next pass
                closed += 1
        elif _too_slow(request, now, limits):
            with channel.outbuf_lock:
                channel.outbufs[-1].append(_TIMED_OUT)
                channel.total_outbufs_len += len(_TIMED_OUT)
            channel.close_when_flushed = True  # reads stop; closed once the 408 is sent
            closed += 1
            if on_cut is not None:
                on_cut(channel, request, now)
    if closed:
        log.info("closed %s idle or too slow connection(s)", closed)
    return closed


def _too_slow(request: Any, now: float, limits: Timeouts) -> bool:
    """Whether a request still arriving is past its time: headers within ``header`` seconds, the
    whole body within ``body``, and, once ``rate_window`` has passed, at least ``min_body_rate``
    bytes a second on average since its clock started. An average since the start, not per
    window: a steady client on a lossy link may stall for a while (TCP backs off) and still be
    far above the floor, while a trickler falls below it; silence is channel_timeout's."""
    elapsed = now - request.window_start
    if not request.headers_finished:
        return bool(elapsed > limits.header)
    if now - request.received_at > limits.body:
        return True
    return elapsed >= limits.rate_window and request.window_bytes < limits.min_body_rate * elapsed


def log_timed_out(access_log: JsonAccessLog) -> OnCut:
    """An on_cut for close_slow_requests writing the cut request's JSON access line: the app
    never saw the request, so only what waitress's parser holds is known - the connection's
    peer (the proxy's address behind one: X-Forwarded-For is not judged here), and, when its
    headers had all arrived, its HTTP method and X-Request-Id (kept if sane, else a new id)."""

    def on_cut(channel: Any, request: Any, now: float) -> None:
        headers = request.headers if request.headers_finished else {}
        addr = getattr(channel, "addr", None)
        access_log.timed_out(addr[0] if isinstance(addr, tuple) else None,
                             getattr(request, "command", None) if headers else None,
                             headers.get("X_REQUEST_ID"), request.received_at, now,
                             _TIMED_OUT_BODY_BYTES)

    return on_cut


def serve_until(server: Any, stop: threading.Event, *, grace: float = 30.0,
                timeouts: Timeouts | None = None, on_cut: OnCut | None = None) -> None:
    """Run waitress's loop until ``stop`` is set; then accept nothing new, let requests in flight
    finish and their answers go out (at most ``grace`` seconds), close idle connections, return.
    ``timeouts``: once a second, close_slow_requests (``on_cut``: told of each 408).

    waitress's own ``run`` drops answers still in flight when interrupted: its loop is what sends.
    """
    socket_map = server._map
    next_sweep = 0.0
    while not stop.is_set():
        wasyncore.loop(timeout=0.5, map=socket_map, count=1, use_poll=True)
        if timeouts is not None and time.monotonic() >= next_sweep:
            next_sweep = time.monotonic() + 1.0
            close_slow_requests(socket_map, time.time(), timeouts, on_cut)
    wasyncore.dispatcher.close(server)  # the listening socket; the trigger still wakes the loop
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        busy = False
        for channel in list(socket_map.values()):
            if not isinstance(channel, HTTPChannel):
                continue
            if channel.requests or channel.total_outbufs_len or channel.request is not None:
                busy = True
            else:
                channel.handle_close()  # an idle keep-alive connection
        if not busy:
            break
        wasyncore.loop(timeout=0.05, map=socket_map, count=1, use_poll=True)
    wasyncore.close_all(socket_map)
    server.task_dispatcher.shutdown(cancel_pending=False, timeout=5)


def start_context(settings: Settings) -> AppContext | None:
    """The app's context once the schema is current; None (one line on stderr) when it cannot be.

    A process that starts while another one migrates a large database waits on the migration's
    lock past the busy timeout: it tries again instead of dying with a traceback.
    """
    return _at_start(lambda: build_context(settings), "not starting")


def migrate_only(settings: Settings) -> int:
    """``serve.py --migrate-only``, ``python -m api migrate``: the schema brought to the latest
    version under the migration lock, the version printed (0); else one line on stderr (2)."""
    version = _at_start(lambda: open_schema(settings), "not migrating")
    if version is None:
        return 2
    print(f"schema at version {version}", flush=True)
    return 0


def _at_start(step: Callable[[], T], failing: str) -> T | None:
    """``step()``, tried again while the database is busy (up to START_WAIT_SECONDS); None, with
    ``error: <failing>: <why>`` on stderr, when it fails."""
    deadline = time.monotonic() + START_WAIT_SECONDS
    while True:
        try:
            return step()
        except (SchemaTooNew, SchemaOutOfDate) as error:
            print(f"error: {failing}: {error}", file=sys.stderr)
            return None
        except ImproperlyConfigured as error:  # a PostgreSQL URL without the driver installed
            print(f"error: {failing}: {error} Install it with: pip install -e '.[postgres]'",
                  file=sys.stderr)
            return None
        except Exception as error:
            if not is_busy(error) or time.monotonic() > deadline:
                print(f"error: {failing}: {error}".splitlines()[0], file=sys.stderr)
                return None
            log.warning("database busy at start (another process migrating?); trying again")
            time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGTERM or Ctrl-C; in-flight requests finish, counters are flushed."""
    args = parse_args(argv)
    try:
        settings = Settings.from_env(host=args.host, port=args.port,
                                     database_url=args.database_url, data_dir=args.data_dir,
                                     threads=args.threads,
                                     auto_migrate=False if args.no_migrate else None)
    except ValueError as error:  # API_THREADS=abc: one line, not a traceback
        print(f"error: not starting: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format)  # text, or JSON lines (API_LOG_FORMAT)
    # waitress warns "Task queue depth is N" for each request that waits for a free thread: under
    # load, a line per request, which costs more than the request (bench/instructions_bench.py).
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    if args.migrate_only:
        return migrate_only(settings)
    ctx = start_context(settings)
    if ctx is None:
        return 2
    try:
        app = create_app(settings, ctx=ctx)
    except (SecretRefused, ValueError) as error:  # a setting create_app reads that does not parse
        print(f"error: not starting: {error}", file=sys.stderr)
        return 2
    if args.demo:
        print_demo(settings)
    raise_open_files(settings.connection_limit)
    server = stamp_arrivals(create_server(app, **waitress_options(settings)))
    # What start-up made (modules, the registry, templates, models) lives as long as the process:
    # frozen, the garbage collector's full passes no longer walk it on the request threads.
    gc.collect()
    gc.freeze()
    for worker in ctx.background:
        worker.start()
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        log.info("stopping: finishing in-flight requests, flushing counters")
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    log.info("listening on http://%s:%s", settings.host, settings.port)
    try:
        on_cut = (log_timed_out(ctx.access_log) if isinstance(ctx.access_log, JsonAccessLog)
                  else None)  # text mode logs API calls only
        serve_until(server, stop, timeouts=Timeouts.of(settings), on_cut=on_cut)
    finally:
        for worker in reversed(ctx.background):  # producers first, the flushers last
            worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
