"""Shared fixtures: settings on a temporary SQLite file (or TEST_DATABASE_URL), the app, a signed
``call`` helper, and a real waitress server for tests where the transport matters.

Set ``TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test`` to run everything on PostgreSQL.
Set ``REQUIRE_EXTERNAL=1`` (``.ci/run`` does) to make a missing php/chromium a failure, not a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import falcon.testing
import pytest
from waitress.server import create_server

from api.app import build_context, create_app
from api.auth.tokens import issue_token
from api.config import Settings
from api.runtime import ratelimit
from api.runtime.schema import ALL_MODELS, create_schema
from api.server import serve_until, stamp_arrivals
from api.signing import md5
from keys import store
from keys.db import open_database

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
# Cheapest argon2 parameters: the suite creates many accounts (keys/passwords.py).
os.environ.setdefault("API_PASSWORD_PROFILE", "CHEAPEST")
REQUIRE_EXTERNAL = os.environ.get("REQUIRE_EXTERNAL") == "1"


def require_program(name: str) -> str:
    """The path of an external program; skip without it, unless REQUIRE_EXTERNAL is set."""
    path = shutil.which(name)
    if path is None:
        if REQUIRE_EXTERNAL:
            pytest.fail(f"{name} is required (REQUIRE_EXTERNAL=1) but not installed")
        pytest.skip(f"{name} is not installed")
    return path


class FakeClock:
    """An injectable clock: ``clock()`` is the time, ``advance`` moves it; no sleeping in tests."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@contextmanager
def own_postgres_database(name: str) -> Iterator[str]:
    """The URL of PostgreSQL database ``name``, created empty beside TEST_DATABASE_URL's and
    dropped after."""
    import psycopg2

    admin = psycopg2.connect(TEST_DATABASE_URL)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{TEST_DATABASE_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this run's own, so parallel runs on one server never see each
    other's tables."""
    with own_postgres_database(f"apitest_{os.getpid()}") as url:
        try:
            yield url
        finally:
            from keys.db import db

            if db.obj is not None:
                db.close_all() if hasattr(db.obj, "close_all") else db.close()


def empty_all_tables() -> None:
    """Start a PostgreSQL test clean; on small tables DELETE beats TRUNCATE or dropping tables."""
    from keys.db import db

    create_schema()
    with db.connection_context(), db.atomic():
        for model in reversed(ALL_MODELS):  # children before parents
            db.execute_sql(f'DELETE FROM "{model._meta.table_name}"')
        for model in ALL_MODELS:  # ids start at 1 again, as on a fresh SQLite file
            db.execute_sql("SELECT setval(pg_get_serial_sequence(%s, 'id'), 1, false)",
                           (f'"{model._meta.table_name}"',))


# Rate limits far above what any test calls (tests/core/test_ratelimit.py sets tight ones): still
# spent and shown in the headers on every call, never tripped by accident.
GENEROUS_LIMITS = {name: "1000000/hour" for name in (
    "ratelimit_per_key", "ratelimit_per_address", "ratelimit_frobs", "ratelimit_signup",
    "ratelimit_login")}


@pytest.fixture
def settings(request, tmp_path) -> Settings:
    url = f"sqlite:///{tmp_path / 'test.sqlite3'}"
    if TEST_DATABASE_URL:
        url = request.getfixturevalue("postgres_url")
        open_database(url)
        empty_all_tables()
    return Settings(data_dir=str(tmp_path / "data"), database_url=url, access_log=False,
                    **GENEROUS_LIMITS)


@pytest.fixture
def ctx(settings, clock):
    context = build_context(settings, clock=clock)
    yield context
    for worker in context.background:
        worker.stop()


@pytest.fixture
def limit(ctx):
    """``limit(per_key=…, per_address=…, …)``: the app's limits from now on (the rest off)."""

    def apply(**policies: str) -> None:
        values = {name: "" for name in ratelimit.SCOPE_SETTINGS.values()}
        values.update({f"ratelimit_{scope}": policy for scope, policy in policies.items()})
        ctx.settings = ctx.settings.with_(**values)
        ctx.limits = ratelimit.build_limiter(ctx.settings)

    return apply


@pytest.fixture
def app(settings, ctx):
    return create_app(settings, ctx=ctx)


@pytest.fixture
def client(app) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(app)


@pytest.fixture
def owner(ctx):
    return store.add_user("owner", "owner-password", realname="Key Owner")


@pytest.fixture
def api_key(owner):
    return store.create_key(owner, "Test app", description="An app used by the tests")


@pytest.fixture
def member(ctx):
    """A second account, e.g. the user who authorizes an app."""
    return store.add_user("member", "member-password", realname="A Member")


@pytest.fixture
def token_for(ctx, api_key):
    """``token_for(user, doc="write", ...)``: a token issued directly, without the browser flow."""

    def issue(user, key=None, **permissions: str) -> str:
        return issue_token((key or api_key).key, user, permissions, ctx.new_secret,
                           now=int(ctx.clock()))

    return issue


class Caller:
    """Calls the API through the TestClient, adding api_key, the format and a signature."""

    def __init__(self, client: falcon.testing.TestClient, ctx: Any, key: Any) -> None:
        self.client = client
        self.ctx = ctx
        self.key = key

    def raw(self, method: str, fmt: str | None = "json", /, *, http: str | None = None,
            sign: bool | None = None, token: str | None = None, key: Any = None,
            files: dict[str, tuple[str, bytes]] | None = None, **params: Any
            ) -> falcon.testing.Result:
        """The raw Result; ``sign=None`` signs when the method or a token needs it."""
        key = key or self.key
        spec = self.ctx.registry.get(method)
        values = {name: str(value) for name, value in params.items() if value is not None}
        if key is not None:
            values.setdefault("api_key", key.key)
        if token is not None:
            values["auth_token"] = token
        if sign is None:
            sign = bool(spec and spec.sign) or token is not None
        if sign and key is not None:
            values["api_sig"] = md5.signature(values, method, key.secret)
        if http is None:
            http = "POST" if (spec and spec.post) or files else "GET"
        path = f"/api/{method}/{fmt}" if fmt else f"/api/{method}"
        if http == "GET":
            return self.client.simulate_get(path, params=values)
        if files:
            return self.client.simulate_post(path, body=_multipart(values, files)[1],
                                             headers={"Content-Type": _multipart(values,
                                                                                 files)[0]})
        return self.client.simulate_post(path, params=values)

    def __call__(self, method: str, /, **kwargs: Any) -> dict[str, Any]:
        """The JSON answer as a dict."""
        return self.raw(method, "json", **kwargs).json


_BOUNDARY = "----testboundary7MA4YWxkTrZu0gW"


def _multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[str, bytes]:
    """A multipart/form-data body (content type, bytes) for the simulated client."""
    parts = []
    for name, value in fields.items():
        parts.append(f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     .encode() + value.encode("utf-8") + b"\r\n")
    for name, (filename, data) in files.items():
        parts.append(f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                     .encode() + data + b"\r\n")
    parts.append(f"--{_BOUNDARY}--\r\n".encode())
    return f"multipart/form-data; boundary={_BOUNDARY}", b"".join(parts)


@pytest.fixture
def call(client, ctx, api_key) -> Caller:
    return Caller(client, ctx, api_key)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """A real waitress server in a thread, run and stopped the way serve.py does it."""

    def __init__(self, app: Any, threads: int = 4) -> None:
        self.port = free_port()
        self.server = stamp_arrivals(create_server(app, host="127.0.0.1", port=self.port,
                                                   threads=threads))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=serve_until, args=(self.server, self.stop),
                                       kwargs={"grace": 5}, daemon=True)
        self.base_url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(app) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server
