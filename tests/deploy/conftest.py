"""The production topology for the acceptance tests of issue 11: ``python -m api.cluster`` (nginx
and N app processes) on a PostgreSQL database of the test's own, accounts made with the keys CLI
and tokens got through the web pages, as an operator and a user would."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import requests
from ipernity import IpernityAPI

from api.cluster import DEBIAN_NGINX
from tests.auth.conftest import csrf_of
from tests.conftest import (
    GENEROUS_LIMITS,
    TEST_DATABASE_URL,
    free_port,
    own_postgres_database,
    require_program,
)
from tests.core.test_serve import ROOT

# The topology is PostgreSQL's (several processes on SQLite are one host's affair, covered by
# tests/core): these run in .ci/run's PostgreSQL + Redis run, where REQUIRE_EXTERNAL makes a
# missing nginx a failure.
needs_postgres = pytest.mark.skipif(not TEST_DATABASE_URL,
                                    reason="the topology runs on PostgreSQL (TEST_DATABASE_URL)")


@dataclass
class Cluster:
    """A running ``python -m api.cluster``: nginx's URL, the app processes' ports, its output."""

    process: subprocess.Popen
    database_url: str
    env: dict[str, str]
    base: str = ""
    ports: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    printed: threading.Condition = field(default_factory=threading.Condition)

    def read(self) -> None:
        """Keep every line the cluster prints (a thread of its own)."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.printed:
                self.lines.append(line.rstrip("\n"))
                self.printed.notify_all()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 90) -> str:
        """The ``count``-th printed line matching ``pattern``, waiting for it."""
        def matching() -> list[str]:
            return [line for line in self.lines if re.search(pattern, line)]

        with self.printed:
            assert self.printed.wait_for(lambda: len(matching()) >= count
                                         or self.process.poll() is not None, timeout)
            found = matching()
        assert len(found) >= count, "\n".join(self.lines)
        return found[count - 1]

    def keys(self, *args: str) -> str:
        """``python -m keys ARGS`` on the cluster's database; its output."""
        return subprocess.run([sys.executable, "-m", "keys", *args, "--db", self.database_url],
                              cwd=ROOT, env=self.env, check=True, capture_output=True,
                              text=True).stdout

    def sql(self, query: str) -> list[tuple]:
        """The rows of ``query`` on the cluster's database."""
        import psycopg2  # the postgres extra: only the PostgreSQL run has it

        with psycopg2.connect(self.database_url) as connection, connection.cursor() as cursor:
            cursor.execute(query)
            rows = cursor.fetchall()
        connection.close()
        return rows


@contextmanager
def cluster(tmp_path, processes: int = 3, **extra_env: str) -> Iterator[Cluster]:
    """``python -m api.cluster --processes N`` on an empty database of its own and one data dir,
    with a shared session secret (and Redis when TEST_REDIS_URL is set); stopped with SIGTERM
    after the block, which must end it cleanly (status 0)."""
    nginx = DEBIAN_NGINX if os.access(DEBIAN_NGINX, os.X_OK) else require_program("nginx")
    env = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "API_ACCESS_LOG": "0",
           "API_PASSWORD_PROFILE": "CHEAPEST", "API_SESSION_SECRET": secrets.token_hex(24),
           **{f"API_{name.upper()}": value for name, value in GENEROUS_LIMITS.items()},
           **extra_env}
    if os.environ.get("TEST_REDIS_URL"):
        env |= {"API_REDIS_URL": os.environ["TEST_REDIS_URL"],
                "API_REDIS_PREFIX": f"topology-{secrets.token_hex(4)}"}
    port = free_port()
    with own_postgres_database(f"apitopo_{os.getpid()}") as url:
        running = Cluster(subprocess.Popen(
            [sys.executable, "-m", "api.cluster", "--processes", str(processes), "--port",
             str(port), "--db", url, "--data-dir", str(tmp_path / "data"), "--nginx", nginx],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
            url, env)
        reader = threading.Thread(target=running.read, daemon=True)
        reader.start()
        try:
            line = running.wait_for(r"^cluster: http://")
            running.base = f"http://127.0.0.1:{port}"
            running.ports = [int(p) for p in re.search(r"ports ([\d, ]+) ", line).group(1)
                             .split(", ")]
            yield running
            running.process.send_signal(signal.SIGTERM)
            assert running.process.wait(timeout=90) == 0, "\n".join(running.lines)
        finally:
            if running.process.poll() is None:
                running.process.kill()
                running.process.wait()
            reader.join(timeout=10)


def desktop_token(base: str, key: str, secret: str, username: str, password: str,
                  **permissions: str) -> str:
    """A token got the way PyIpernity's desktop flow gets one: a frob, the member's login and
    "Allow" on the web pages (a browser session of its own), then auth.getToken."""
    api = IpernityAPI(key, secret, auth="desktop", url=base + "/api/",
                      auth_url_base=base + "/apps/authorize")
    frob = api.auth.getFrob()["auth"]["frob"]
    url = api.auth.auth_url(permissions, frob)
    with requests.Session() as browser:
        first = browser.get(url, allow_redirects=False, timeout=10)
        assert first.status_code == 303 and "/login?next=" in first.headers["location"]
        page = browser.get(f"{base}/login", params={"next": url[len(base):]}, timeout=10)
        page = browser.post(f"{base}/login", timeout=10, data={
            "csrf_token": csrf_of(page.text), "username": username, "password": password,
            "next": url[len(base):]})
        assert page.url == url and ">Allow</button>" in page.text, page.text
        done = browser.post(url, data={"csrf_token": csrf_of(page.text), "decision": "allow"},
                            timeout=10)
        assert "return to the application" in done.text
    return api.auth.getToken(frob)["auth"]["token"]
