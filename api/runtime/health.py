"""``/healthz`` and ``/readyz`` (docs/operations.md, "Health").

``/healthz`` says the process answers: no I/O, always 200. ``/readyz`` says whether a balancer
should send it calls: 200 when every check passes, 503 otherwise, with each check named beside
its result:

- ``database``: reachable and writable - SQLite: the write lock taken and given back at once
  (``BEGIN IMMEDIATE; ROLLBACK``: a database locked by another writer fails), PostgreSQL: a new
  connection that is not read-only;
- ``schema``: the version this code needs (api.runtime.migrations.LATEST);
- ``redis``: answers PING (only when API_REDIS_URL is set; with API_READY_REDIS=0 reported but
  not deciding readiness);
- ``uploads``: queued tickets and the oldest one's wait within API_READY_MAX_QUEUED and
  API_READY_MAX_QUEUE_AGE.

Bounded: the probes use connections of their own (never the request pool, which may be
exhausted) with API_READY_TIMEOUT as their connect, lock and statement timeouts (PostgreSQL:
TCP keepalives and tcp_user_timeout too), and run in a thread that ``/readyz`` waits for at most
that long. Concurrent requests share one probe run, and an answer is reused for a second, so a
hammered ``/readyz`` opens one connection a second at most. A run still going past its bound is
hung (a connection that stopped answering mid-query, which no server-side timeout sees): its
socket is shut down so its thread ends, and the next request starts a new run; at most
SharedRun.MAX_HUNG runs live at once, beyond which ``/readyz`` answers ``timeout`` at once.
A failure shows its kind (``timeout``, ``busy``, the exception's class), never its text, which
may name hosts or carry a URL's credentials.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any
from urllib.request import pathname2url

import falcon
from peewee import Database, PostgresqlDatabase, SqliteDatabase, fn

from api.config import Settings
from api.models.docs import UploadTicket
from api.runtime import migrations
from keys.db import db, is_busy

READY_CACHE_SECONDS = 1.0  # an answer is reused this long
QUEUED = "queued"
Checks = dict[str, dict[str, Any]]
Run = Callable[[Any], list[tuple[Any, ...]]]  # a query (peewee) in, its rows out


class SharedRun:
    """``probe(run)`` in a daemon thread: callers while a run is young wait for that same run
    (each at most its timeout). A run older than ``stale_after`` seconds (hung: a connection
    that stopped answering mid-query) no longer holds later callers back: they start a new run,
    while at most MAX_HUNG runs are alive at once; beyond that they are answered at once (a
    finished run without a result: ``timeout``) and no thread is started."""

    MAX_HUNG = 4

    def __init__(self, probe: Callable[[_Run], Any], name: str) -> None:
        self.probe = probe
        self.name = name
        self._lock = threading.Lock()
        self._running: _Run | None = None  # the latest run, while it has not ended
        self._alive = 0  # runs whose thread has not ended, hung ones included

    def start(self, stale_after: float) -> _Run:
        with self._lock:
            run = self._running
            if run is not None and time.monotonic() - run.started < stale_after:
                return run
            if run is not None:
                run.abort()  # hung: its connection is cut, so its thread may end
            if self._alive >= self.MAX_HUNG:
                return _Run.gave_up()
            run = self._running = _Run()
            self._alive += 1
        threading.Thread(target=self._go, args=(run,), name=self.name, daemon=True).start()
        return run

    def _go(self, run: _Run) -> None:
        try:
            run.result = self.probe(run)
        except Exception as error:  # the probes catch their own; this is a bug's last net
            run.result = error
        finally:
            with self._lock:
                self._alive -= 1
                if self._running is run:
                    self._running = None
            run.done.set()


class _Run:
    __slots__ = ("_abort", "_abort_lock", "aborted", "done", "result", "started")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.started = time.monotonic()
        self.aborted = False
        self._abort: Callable[[], None] | None = None
        self._abort_lock = threading.Lock()

    @classmethod
    def gave_up(cls) -> _Run:
        """A run that ended without a result: its callers answer ``timeout`` at once."""
        run = cls()
        run.done.set()
        return run

    def wait(self, timeout: float) -> Any:
        """The probe's result, or None when it has not ended within ``timeout`` seconds."""
        return self.result if self.done.wait(max(0.0, timeout)) else None

    def on_abort(self, abort: Callable[[], None] | None) -> None:
        """What abort() does while the probe holds a connection (None: nothing, it is closing);
        abort() runs under the same lock, so it never acts on a connection being closed."""
        with self._abort_lock:
            self._abort = abort

    def abort(self) -> None:
        """Cut the probe's connection, so a thread blocked reading a socket that no longer
        answers ends (its read fails) instead of waiting for ever."""
        with self._abort_lock:
            if self._abort is not None and not self.done.is_set():
                self.aborted = True
                try:
                    self._abort()
                except OSError:
                    pass
                self._abort = None


class Readiness:
    """The checks of ``/readyz``. ``database``: the peewee database to probe (None: the one
    the app uses, ``keys.db.db``)."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time,
                 database: Database | None = None) -> None:
        check_ready_timeout(settings.ready_timeout)
        self.settings = settings
        self.clock = clock
        self.database = database
        self._database_run = SharedRun(self._probe_database, "ready-database")
        self._redis_run = SharedRun(self._probe_redis, "ready-redis")
        self._answer: tuple[float, bool, Checks] | None = None

    def check(self) -> tuple[bool, Checks]:
        """(ready, {check: result}); within about API_READY_TIMEOUT seconds."""
        answer = self._answer
        if answer is not None and time.monotonic() - answer[0] < READY_CACHE_SECONDS:
            return answer[1], answer[2]
        timeout = self.settings.ready_timeout
        margin = timeout + 0.25  # the probes' own timeouts, and a margin
        deadline = time.monotonic() + margin
        runs = [self._database_run.start(stale_after=margin)]
        if self.settings.redis_url:
            runs.append(self._redis_run.start(stale_after=margin))
        checks: Checks = {}
        for run, names in zip(runs, (("database", "schema", "uploads"), ("redis",)),
                              strict=False):
            result = run.wait(deadline - time.monotonic())
            if result is None and time.monotonic() - run.started >= timeout:
                run.abort()  # past its bound: cut its connection (a read that never returns)
            if not isinstance(result, dict):  # timed out (None), or the probe itself failed
                reason = "timeout" if result is None else type(result).__name__
                result = {name: {"ok": False, "error": reason} for name in names}
            checks.update(result)
        # API_READY_REDIS=0: Redis is reported but does not decide (docs/operations.md)
        deciding = [check for name, check in checks.items()
                    if name != "redis" or self.settings.ready_redis]
        ready = all(check["ok"] for check in deciding)
        self._answer = (time.monotonic(), ready, checks)
        return ready, checks

    def _probe_database(self, probe_run: _Run) -> Checks:
        database = self.database if self.database is not None else db.obj
        started = time.perf_counter()
        checks: Checks = {}
        try:
            with probe_connection(database, self.settings.ready_timeout,
                                  on_abort=probe_run.on_abort) as run:
                checks["database"] = {"ok": True, "ms": _ms_since(started)}
                checks["schema"] = self._schema(run)
                checks["uploads"] = self._uploads(run)
        except Exception as error:
            kind = "timeout" if probe_run.aborted else failure_kind(error)
            if "database" not in checks:  # not even connected
                checks["database"] = {"ok": False, "error": kind}
                kind = "database unavailable"
            for name in ("schema", "uploads"):
                checks.setdefault(name, {"ok": False, "error": kind})
        return checks

    @staticmethod
    def _schema(run: Run) -> dict[str, Any]:
        found = run(migrations.SchemaVersion.select(fn.MAX(migrations.SchemaVersion.version)))
        version = found[0][0] if found else None
        return {"ok": version == migrations.LATEST, "version": version,
                "expected": migrations.LATEST}

    def _uploads(self, run: Run) -> dict[str, Any]:
        rows = run(UploadTicket
                   .select(fn.COUNT(UploadTicket.id), fn.MIN(UploadTicket.created_at))
                   .where(UploadTicket.state == QUEUED))
        queued, oldest = rows[0] if rows else (0, None)
        age = round(max(0.0, self.clock() - oldest), 1) if oldest else 0.0
        max_queued, max_age = self.settings.ready_max_queued, self.settings.ready_max_queue_age
        ok = (not max_queued or queued <= max_queued) and (not max_age or age <= max_age)
        return {"ok": ok, "queued": queued, "oldest_queued_seconds": age,
                "max_queued": max_queued, "max_queue_age": max_age}

    def _probe_redis(self, probe_run: _Run) -> Checks:
        import redis

        timeout = self.settings.ready_timeout
        started = time.perf_counter()
        client = redis.Redis.from_url(self.settings.redis_url, socket_connect_timeout=timeout,
                                      socket_timeout=timeout)
        try:
            client.ping()
        except Exception as error:
            return {"redis": {"ok": False, "error": failure_kind(error)}}
        finally:
            client.close()
        return {"redis": {"ok": True, "ms": _ms_since(started)}}


def check_ready_timeout(value: float) -> float:
    """``value`` when it is a usable API_READY_TIMEOUT (finite, > 0); ValueError otherwise."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"API_READY_TIMEOUT must be a number of seconds above 0, not {value!r}")
    return value


def failure_kind(error: BaseException) -> str:
    """What a failed probe shows: its kind, never its text (hosts, URLs, credentials); a
    timeout told only by the text (libpq's "timeout expired") is shown as ``timeout``."""
    if isinstance(error, TimeoutError) or "timeout" in type(error).__name__.lower():
        return "timeout"
    text = str(error).lower()
    if "timeout expired" in text or "timed out" in text:  # libpq's connect_timeout; sockets
        return "timeout"
    if is_busy(error):
        return "busy"
    return type(error).__name__


@contextmanager
def probe_connection(database: Database, timeout: float, *,
                     on_abort: Callable[[Callable[[], None] | None], None] | None = None,
                     ) -> Iterator[Run]:
    """A connection of its own to ``database``'s server, bounded by ``timeout``, proven
    writable; yields a function running a peewee query on it. ``on_abort`` (PostgreSQL) is
    given a function that cuts the connection's socket while it is open, and None before it
    closes."""
    if isinstance(database, SqliteDatabase):
        uri = f"file:{pathname2url(database.database)}?mode=rw"  # never creates the file
        connection = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None,
                                     check_same_thread=False)
        try:
            connection.execute("BEGIN IMMEDIATE")  # waits for the write lock `timeout` at most
            connection.execute("ROLLBACK")
            context = database.get_sql_context

            def run(query: Any) -> list[tuple[Any, ...]]:
                sql, params = context().parse(query)
                return connection.execute(sql, params).fetchall()

            yield run
        finally:
            connection.close()
        return
    if not isinstance(database, PostgresqlDatabase):
        raise TypeError(f"no readiness probe for {type(database).__name__}")
    params = {**dict(database.connect_params), **pg_probe_params(timeout)}
    params["options"] = (f"{database.connect_params.get('options', '')} "
                         f"-c statement_timeout={max(1, int(timeout * 1000))}").strip()
    probe = PostgresqlDatabase(database.database, autoconnect=False, **params)
    probe.connect()
    if on_abort is not None:
        on_abort(partial(_cut, probe.connection().fileno()))
    try:
        if probe.execute_sql("SHOW transaction_read_only").fetchone()[0] == "on":
            raise ReadOnly()

        def run_pg(query: Any) -> list[tuple[Any, ...]]:
            sql, params = probe.get_sql_context().parse(query)
            return list(probe.execute_sql(sql, params).fetchall())

        yield run_pg
    finally:
        if on_abort is not None:
            on_abort(None)  # before the descriptor is closed (and perhaps reused)
        probe.close()


def pg_probe_params(timeout: float) -> dict[str, Any]:
    """libpq options bounding a probe connection: the connect timeout (whole seconds, 2 at
    least), TCP keepalives, and (libpq 12+) tcp_user_timeout, so a server or network that stops
    answering is found out within a few seconds even in the middle of a query."""
    seconds = max(1, math.ceil(timeout))
    params: dict[str, Any] = {"connect_timeout": max(2, seconds), "keepalives": 1,
                              "keepalives_idle": seconds, "keepalives_interval": 1,
                              "keepalives_count": 2}
    import psycopg2  # (its extensions module comes with it)

    if psycopg2.extensions.libpq_version() >= 120000:
        params["tcp_user_timeout"] = max(1000, int(timeout * 1000))
    return params


def _cut(fileno: int) -> None:
    """Shut a socket down by its descriptor: a read blocked on it returns at once."""
    cut = socket.socket(fileno=os.dup(fileno))
    try:
        cut.shutdown(socket.SHUT_RDWR)
    finally:
        cut.close()


class ReadOnly(Exception):
    """The database takes no writes (a standby, or default_transaction_read_only)."""


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 1)


def _json(resp: falcon.Response, status: str, body: dict[str, Any]) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.set_header("Cache-Control", "no-store")
    resp.data = json.dumps(body).encode()


class HealthResource:
    """``/healthz``: 200 ``{"status": "ok"}`` while the process answers; no I/O."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _json(resp, falcon.HTTP_200, {"status": "ok"})

    on_head = on_get


class ReadyResource:
    """``/readyz``: 200 ``{"status": "ok", "checks": …}`` or 503 ``{"status": "unavailable",
    "checks": …}``, each check with ``ok`` and its figures or ``error``."""

    def __init__(self, readiness: Readiness) -> None:
        self.readiness = readiness

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        ready, checks = self.readiness.check()
        if ready:
            _json(resp, falcon.HTTP_200, {"status": "ok", "checks": checks})
        else:
            _json(resp, falcon.HTTP_503, {"status": "unavailable", "checks": checks})

    on_head = on_get
