"""``serve.py``: options → Settings → waitress, with a clean stop on SIGTERM/Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from typing import Any

from peewee import ImproperlyConfigured
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server

from api.app import build_context, create_app
from api.config import Settings
from api.core.context import AppContext
from api.runtime.migrations import SchemaTooNew
from keys.db import is_busy

log = logging.getLogger("api.server")
START_WAIT_SECONDS = 600  # how long a start waits while another process migrates the schema


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options; each one also has an API_* environment variable (see README)."""
    parser = argparse.ArgumentParser(description="ipernity-compatible API server")
    parser.add_argument("--host", help="interface (API_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (API_PORT, default 8080)")
    parser.add_argument("--db", dest="database_url", help="database URL (API_DATABASE_URL)")
    parser.add_argument("--data-dir", help="data directory (API_DATA_DIR, default ./data)")
    parser.add_argument("--threads", type=int, help="worker threads (API_THREADS, default 8)")
    parser.add_argument("--demo", action="store_true", help="create and print a demo user and key")
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


def serve_until(server: Any, stop: threading.Event, *, grace: float = 30.0) -> None:
    """Run waitress's loop until ``stop`` is set; then accept nothing new, let requests in flight
    finish and their answers go out (at most ``grace`` seconds), close idle connections, return.

    waitress's own ``run`` drops answers still in flight when interrupted: its loop is what sends.
    """
    socket_map = server._map
    while not stop.is_set():
        wasyncore.loop(timeout=0.5, map=socket_map, count=1)
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
        wasyncore.loop(timeout=0.05, map=socket_map, count=1)
    wasyncore.close_all(socket_map)
    server.task_dispatcher.shutdown(cancel_pending=False, timeout=5)


def start_context(settings: Settings) -> AppContext | None:
    """The app's context once the schema is current; None (one line on stderr) when it cannot be.

    A process that starts while another one migrates a large database waits on the migration's
    lock past the busy timeout: it tries again instead of dying with a traceback.
    """
    deadline = time.monotonic() + START_WAIT_SECONDS
    while True:
        try:
            return build_context(settings)
        except SchemaTooNew as error:
            print(f"error: not starting: {error}", file=sys.stderr)
            return None
        except ImproperlyConfigured as error:  # a PostgreSQL URL without the driver installed
            print(f"error: not starting: {error} Install it with: pip install -e '.[postgres]'",
                  file=sys.stderr)
            return None
        except Exception as error:
            if not is_busy(error) or time.monotonic() > deadline:
                print(f"error: not starting: {error}".splitlines()[0], file=sys.stderr)
                return None
            log.warning("database busy at start (another process migrating?); trying again")
            time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGTERM or Ctrl-C; in-flight requests finish, counters are flushed."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings.from_env(host=args.host, port=args.port, database_url=args.database_url,
                                 data_dir=args.data_dir, threads=args.threads)
    ctx = start_context(settings)
    if ctx is None:
        return 2
    app = create_app(settings, ctx=ctx)
    if args.demo:
        print_demo(settings)
    server = create_server(app, host=settings.host, port=settings.port, threads=settings.threads,
                           max_request_body_size=settings.max_body_bytes, ident="ipernity-api")
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
        serve_until(server, stop)
    finally:
        for worker in reversed(ctx.background):  # producers first, the flushers last
            worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
