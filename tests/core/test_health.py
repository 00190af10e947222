"""/healthz and /readyz (issue 12 item 1): each check named with its result, 503 quickly when the
database is locked (SQLite), refuses connections (PostgreSQL) or is a closed port, or when a probe
hangs; 200 again once it is back. Never a URL or its credentials in the body."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import falcon.testing
import pytest

from api.app import create_app
from api.models.docs import UploadTicket
from api.runtime import health, migrations
from api.runtime.health import Readiness
from keys.db import db
from tests.conftest import TEST_DATABASE_URL, free_port
from tests.core.test_ratelimit import TEST_REDIS_URL
from tests.upload.test_crash_recovery import outage_postgresql

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_answer_reuse(monkeypatch):
    monkeypatch.setattr(health, "READY_CACHE_SECONDS", 0.0)


def ready(client) -> tuple[int, dict]:
    result = client.simulate_get("/readyz")
    assert result.headers["content-type"] == "application/json"
    return result.status_code, result.json


def test_healthz_answers_without_the_database(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("/healthz touched the database")

    db.close()
    monkeypatch.setattr(db.obj, "connect", refuse)
    monkeypatch.setattr(db.obj, "execute_sql", refuse)
    result = client.simulate_get("/healthz")
    assert (result.status_code, result.json) == (200, {"status": "ok"})


def test_readyz_names_each_check(client, settings):
    status, body = ready(client)
    assert status == 200 and body["status"] == "ok"
    assert set(body["checks"]) == {"database", "schema", "uploads"}  # no Redis configured
    assert body["checks"]["schema"] == {"ok": True, "version": migrations.LATEST,
                                        "expected": migrations.LATEST}
    assert body["checks"]["uploads"]["queued"] == 0
    assert all(check["ok"] for check in body["checks"].values())


def test_a_schema_not_current_is_503(client):
    migrations.SchemaVersion.create(version=migrations.LATEST + 1, applied_at=0)
    status, body = ready(client)
    assert status == 503 and body["status"] == "unavailable"
    assert body["checks"]["schema"]["ok"] is False
    assert body["checks"]["schema"]["version"] == migrations.LATEST + 1
    assert body["checks"]["database"]["ok"] is True
    migrations.SchemaVersion.delete().where(
        migrations.SchemaVersion.version > migrations.LATEST).execute()
    assert ready(client)[0] == 200


def test_an_upload_backlog_beyond_its_bounds_is_503(settings, ctx, owner, clock):
    for _ in range(3):
        UploadTicket.create(user=owner, api_key="k", created_at=int(clock()) - 60)
    UploadTicket.create(user=owner, api_key="k", state="done", created_at=0)
    for bounds, expected in (({}, 200), ({"ready_max_queued": 2}, 503),
                             ({"ready_max_queue_age": 30}, 503),
                             ({"ready_max_queued": 0, "ready_max_queue_age": 0}, 200)):
        client = falcon.testing.TestClient(create_app(settings.with_(**bounds), ctx=ctx))
        status, body = ready(client)
        assert status == expected, (bounds, body)
        uploads = body["checks"]["uploads"]
        assert (uploads["queued"], uploads["oldest_queued_seconds"]) == (3, 60.0)


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="SQLite's write lock")
def test_sqlite_locked_is_503_within_the_timeout_then_200(settings, ctx):
    client = falcon.testing.TestClient(create_app(settings.with_(ready_timeout=0.3), ctx=ctx))
    locker = sqlite3.connect(db.obj.database, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        status, body = ready(client)
        assert time.monotonic() - started < 2.0
        assert status == 503 and body["checks"]["database"] == {"ok": False, "error": "busy"}
        assert body["checks"]["schema"] == {"ok": False, "error": "database unavailable"}
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert ready(client)[0] == 200


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL only (TEST_DATABASE_URL)")
def test_postgresql_refusing_connections_is_503_quickly_then_200(settings, client):
    outage = threading.Thread(target=outage_postgresql, args=(settings.resolved_database_url,),
                              kwargs={"seconds": 4})
    outage.start()
    try:
        deadline = time.monotonic() + 3
        while True:  # the outage begins in its thread
            started = time.monotonic()
            status, body = ready(client)
            assert time.monotonic() - started < 1.0
            # (a probe connected just before the outage cut it may fail on its schema first)
            if not body["checks"]["database"]["ok"] or time.monotonic() > deadline:
                break
        assert status == 503 and body["checks"]["database"]["ok"] is False
        assert body["checks"]["schema"] == {"ok": False, "error": "database unavailable"}
        name = settings.resolved_database_url.rsplit("/", 1)[1]
        assert name not in str(body) and "postgres" not in str(body)
    finally:
        outage.join()
    db.close_all() if hasattr(db.obj, "close_all") else db.close()  # the cut pool connections
    assert ready(client)[0] == 200


def test_a_database_on_a_closed_port_is_503_quickly(settings):
    pytest.importorskip("psycopg2")
    from peewee import PostgresqlDatabase

    port = free_port()
    target = PostgresqlDatabase("ipernity", host="127.0.0.1", port=port, user="admin",
                                password="hunter2-never-shown")
    readiness = Readiness(settings.with_(ready_timeout=0.5), database=target)
    started = time.monotonic()
    ok, checks = readiness.check()
    assert time.monotonic() - started < 2.0
    assert not ok and checks["database"] == {"ok": False, "error": "OperationalError"}
    assert "hunter2" not in str(checks) and str(port) not in str(checks)


def test_a_probe_that_hangs_answers_timeout_within_its_bound(settings):
    """A server that accepts the connection and never answers: libpq's own timeout is 2 s at
    least, /readyz waits API_READY_TIMEOUT (+0.25 s); callers meanwhile share the one probe."""
    pytest.importorskip("psycopg2")
    from peewee import PostgresqlDatabase

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        target = PostgresqlDatabase("x", host="127.0.0.1", port=silent.getsockname()[1])
        readiness = Readiness(settings.with_(ready_timeout=0.3), database=target)
        answers: list[tuple[bool, dict]] = []
        started = time.monotonic()
        callers = [threading.Thread(target=lambda: answers.append(readiness.check()))
                   for _ in range(4)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
        assert time.monotonic() - started < 1.5
        assert len(answers) == 4
        for ok, checks in answers:
            assert not ok and checks["database"] == {"ok": False, "error": "timeout"}
        probes = [t for t in threading.enumerate() if t.name == "ready-database"]
        assert len(probes) <= 1  # one shared run, not one per caller
    finally:
        silent.close()


@pytest.mark.skipif(not TEST_REDIS_URL, reason="TEST_REDIS_URL is not set")
def test_redis_is_checked_when_configured(settings, ctx):
    client = falcon.testing.TestClient(create_app(settings.with_(redis_url=TEST_REDIS_URL),
                                                  ctx=ctx))
    status, body = ready(client)
    assert status == 200 and body["checks"]["redis"]["ok"] is True


def test_redis_unreachable_is_503_without_its_url(settings, ctx):
    url = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"
    client = falcon.testing.TestClient(create_app(
        settings.with_(redis_url=url, ready_timeout=0.5), ctx=ctx))
    started = time.monotonic()
    result = client.simulate_get("/readyz")
    assert time.monotonic() - started < 2.0
    assert result.status_code == 503
    assert result.json["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}
    assert result.json["checks"]["database"]["ok"] is True
    assert "hunter2" not in result.text and "redis://" not in result.text


def test_answers_are_reused_for_a_second(settings, monkeypatch):
    monkeypatch.setattr(health, "READY_CACHE_SECONDS", 60.0)
    readiness = Readiness(settings)
    assert readiness.check()[0] is True
    migrations.SchemaVersion.create(version=migrations.LATEST + 1, applied_at=0)
    try:
        assert readiness.check()[0] is True  # the answer of a moment ago
    finally:
        migrations.SchemaVersion.delete().where(
            migrations.SchemaVersion.version > migrations.LATEST).execute()


def test_a_hung_run_never_blocks_later_probes_and_hung_threads_are_bounded():
    """Review: one probe that hung mid-query kept /readyz at "timeout" for good, since no new
    probe started while its thread lived. Now a run past its bound lets the next caller start
    another, while at most MAX_HUNG live at once; beyond, callers are answered at once."""
    release = threading.Event()
    started: list[int] = []

    def probe(run):
        started.append(1)
        release.wait(10)
        return {"database": {"ok": True}}

    shared = health.SharedRun(probe, "ready-test")
    try:
        first = shared.start(stale_after=60)
        assert shared.start(stale_after=60) is first  # young: shared, no second thread
        runs = [shared.start(stale_after=0.0) for _ in range(health.SharedRun.MAX_HUNG + 2)]
        assert len(started) <= health.SharedRun.MAX_HUNG
        assert len([t for t in threading.enumerate() if t.name == "ready-test"]) <= 4
        at_once = time.monotonic()
        assert runs[-1].wait(5) is None and time.monotonic() - at_once < 0.1  # gave up at once
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while any(t.name == "ready-test" for t in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    release.clear()
    fresh = shared.start(stale_after=60)
    release.set()
    assert fresh.wait(5) == {"database": {"ok": True}}  # a new run once the hung ones ended


class FreezingProxy:
    """A TCP proxy to PostgreSQL that, while ``freeze`` is set, stops forwarding a connection
    once it carries the readiness query (the network dropping after connect: the kernel still
    acknowledges, so no TCP timeout fires and the server never sees the query). Connections
    frozen stay frozen until close(); new ones are forwarded once ``freeze`` is cleared."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.freeze = threading.Event()
        self.closing = threading.Event()
        self.frozen = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.upstream)
            except OSError:
                return
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False),
                             daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, watch: bool) -> None:
        try:
            while data := source.recv(65536):
                if watch and self.freeze.is_set() and b"transaction_read_only" in data:
                    self.frozen += 1
                    self.closing.wait()  # never forwarded, never closed: hung mid-query
                    return
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closing.set()
        for sock in self.sockets:
            sock.close()


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL only (TEST_DATABASE_URL)")
def test_readyz_recovers_after_a_probe_hung_mid_query(settings):
    from peewee import PostgresqlDatabase

    params = dict(db.obj.connect_params)
    proxy = FreezingProxy(params.pop("host", None) or "127.0.0.1", int(params.pop("port", 5432)))
    try:
        target = PostgresqlDatabase(db.obj.database, host="127.0.0.1", port=proxy.port,
                                    **{k: v for k, v in params.items()
                                       if k in ("user", "password")})
        readiness = Readiness(settings.with_(ready_timeout=0.5), database=target)
        assert readiness.check()[0] is True
        proxy.freeze.set()
        for _ in range(3):
            started = time.monotonic()
            ok, checks = readiness.check()
            assert time.monotonic() - started < 1.5
            assert not ok and checks["database"]["ok"] is False, checks
        assert proxy.frozen >= 1
        proxy.freeze.clear()  # the network is back; the frozen connections stay frozen
        deadline = time.monotonic() + 5
        while not readiness.check()[0]:
            assert time.monotonic() < deadline, "/readyz never came back"
            time.sleep(0.1)
        # the hung probes' connections were cut: their threads ended
        deadline = time.monotonic() + 5
        while any(t.name == "ready-database" for t in threading.enumerate()):
            assert time.monotonic() < deadline, "a hung probe thread stayed"
            time.sleep(0.05)
    finally:
        proxy.close()


def test_probe_connections_are_bounded_client_side():
    pytest.importorskip("psycopg2")
    params = health.pg_probe_params(0.5)
    assert params["keepalives"] == 1 and params["connect_timeout"] == 2
    assert params["keepalives_idle"] * 1 + params["keepalives_interval"] * params[
        "keepalives_count"] <= 5
    import psycopg2

    if psycopg2.extensions.libpq_version() >= 120000:
        assert params["tcp_user_timeout"] == 1000


def test_a_connect_timeout_shows_as_timeout_without_its_text():
    from peewee import OperationalError

    error = OperationalError('connection to server at "db.internal" (10.0.0.9), port 5432 '
                             "failed: timeout expired")
    assert health.failure_kind(error) == "timeout"
    assert health.failure_kind(OperationalError("password authentication failed")) == (
        "OperationalError")


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0"])
def test_a_ready_timeout_not_finite_and_positive_refuses_to_start(tmp_path, value):
    done = subprocess.run(
        [sys.executable, "serve.py", "--data-dir", str(tmp_path), "--port", str(free_port())],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "API_READY_TIMEOUT": value})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: not starting: API_READY_TIMEOUT must be a number of seconds above 0, "
        f"not {float(value)!r}")


def test_api_ready_redis_0_reports_redis_without_failing_readiness(settings, ctx):
    url = f"redis://127.0.0.1:{free_port()}/0"
    for deciding, expected in ((True, 503), (False, 200)):
        client = falcon.testing.TestClient(create_app(
            settings.with_(redis_url=url, ready_timeout=0.5, ready_redis=deciding), ctx=ctx))
        status, body = ready(client)
        assert status == expected, body
        assert body["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}


@pytest.mark.parametrize(("name", "value"), [("API_READY_TIMEOUT", "abc"),
                                             ("API_THREADS", ""), ("API_READY_MAX_QUEUE_AGE", "x")])
def test_a_setting_that_is_no_number_refuses_to_start_in_one_line(tmp_path, name, value):
    done = subprocess.run(
        [sys.executable, "serve.py", "--data-dir", str(tmp_path), "--port", str(free_port())],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", name: value})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: not starting: {name}: not a number: {value!r}"]
