"""``/healthz`` and ``/readyz`` (docs/operations.md, "Health").

``/healthz`` says the process answers: no I/O, always 200. ``/readyz`` says whether a balancer
should send it calls: 200 when every check passes, 503 otherwise, with each check named beside
its result:

- ``database``: reachable and writable - SQLite: the write lock taken and given back at once
  (``BEGIN IMMEDIATE; ROLLBACK``: a database locked by another writer fails), PostgreSQL: a new
  connection that is not read-only;
- ``schema``: the version this code needs (api.runtime.migrations.LATEST);
- ``redis``: answers PING (only when API_REDIS_URL is set);
- ``uploads``: queued tickets and the oldest one's wait within API_READY_MAX_QUEUED and
  API_READY_MAX_QUEUE_AGE.

Bounded: the probes use connections of their own (never the request pool, which may be
exhausted) with API_READY_TIMEOUT as their connect, lock and statement timeouts, and run in a
thread that ``/readyz`` waits for at most that long. Concurrent requests share one probe run, and
an answer is reused for a second, so a hammered ``/readyz`` opens one connection a second at most.
A failure shows its kind (``timeout``, ``busy``, the exception's class), never its text, which
may name hosts or carry a URL's credentials.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    """``probe()`` in a daemon thread, at most one at a time: callers while it runs wait for the
    same run (each at most its timeout), and a run that hangs never piles up threads."""

    def __init__(self, probe: Callable[[], Any], name: str) -> None:
        self.probe = probe
        self.name = name
        self._lock = threading.Lock()
        self._running: _Run | None = None

    def start(self) -> _Run:
        with self._lock:
            run = self._running
            if run is None:
                run = self._running = _Run()
                threading.Thread(target=self._go, args=(run,), name=self.name,
                                 daemon=True).start()
        return run

    def _go(self, run: _Run) -> None:
        try:
            run.result = self.probe()
        except Exception as error:  # the probes catch their own; this is a bug's last net
            run.result = error
        finally:
            with self._lock:
                self._running = None
            run.done.set()


class _Run:
    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None

    def wait(self, timeout: float) -> Any:
        """The probe's result, or None when it has not ended within ``timeout`` seconds."""
        return self.result if self.done.wait(max(0.0, timeout)) else None


class Readiness:
    """The checks of ``/readyz``. ``database``: the peewee database to probe (None: the one
    the app uses, ``keys.db.db``)."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time,
                 database: Database | None = None) -> None:
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
        deadline = time.monotonic() + timeout + 0.25  # the probes' own timeouts, and a margin
        runs = [self._database_run.start()]
        if self.settings.redis_url:
            runs.append(self._redis_run.start())
        checks: Checks = {}
        for run, names in zip(runs, (("database", "schema", "uploads"), ("redis",)),
                              strict=False):
            result = run.wait(deadline - time.monotonic())
            if not isinstance(result, dict):  # timed out (None), or the probe itself failed
                reason = "timeout" if result is None else type(result).__name__
                result = {name: {"ok": False, "error": reason} for name in names}
            checks.update(result)
        ready = all(check["ok"] for check in checks.values())
        self._answer = (time.monotonic(), ready, checks)
        return ready, checks

    def _probe_database(self) -> Checks:
        database = self.database if self.database is not None else db.obj
        started = time.perf_counter()
        checks: Checks = {}
        try:
            with probe_connection(database, self.settings.ready_timeout) as run:
                checks["database"] = {"ok": True, "ms": _ms_since(started)}
                checks["schema"] = self._schema(run)
                checks["uploads"] = self._uploads(run)
        except Exception as error:
            kind = failure_kind(error)
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

    def _probe_redis(self) -> Checks:
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


def failure_kind(error: BaseException) -> str:
    """What a failed probe shows: its kind, never its text (hosts, URLs, credentials)."""
    if isinstance(error, TimeoutError) or "timeout" in type(error).__name__.lower():
        return "timeout"
    if is_busy(error):
        return "busy"
    return type(error).__name__


@contextmanager
def probe_connection(database: Database, timeout: float) -> Iterator[Run]:
    """A connection of its own to ``database``'s server, bounded by ``timeout``, proven
    writable; yields a function running a peewee query on it."""
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
    params = dict(database.connect_params)
    params["connect_timeout"] = max(2, math.ceil(timeout))  # libpq takes whole seconds, 2 at least
    params["options"] = (f"{params.get('options', '')} "
                         f"-c statement_timeout={max(1, int(timeout * 1000))}").strip()
    probe = PostgresqlDatabase(database.database, autoconnect=False, **params)
    probe.connect()
    try:
        if probe.execute_sql("SHOW transaction_read_only").fetchone()[0] == "on":
            raise ReadOnly()

        def run_pg(query: Any) -> list[tuple[Any, ...]]:
            sql, params = probe.get_sql_context().parse(query)
            return list(probe.execute_sql(sql, params).fetchall())

        yield run_pg
    finally:
        probe.close()


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
