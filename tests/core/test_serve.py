"""``python serve.py --demo``: the README's first command, a clean stop, and flushed counters."""

import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def wait_for_line(process, pattern, timeout=30.0):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            time.sleep(0.05)
            continue
        lines.append(line)
        if re.search(pattern, line):
            return line, lines
    raise AssertionError(f"no {pattern!r} in {lines}")


def test_demo_curl_line_works_and_sigterm_flushes(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "serve.py", "--demo", "--port", str(port), "--data-dir", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"})
    try:
        curl_line, _ = wait_for_line(process, r"try:\s+curl")
        url = re.search(r"curl '([^']+)'", curl_line).group(1)
        wait_for_line(process, "listening on")
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read() == b'{"hello":"hello world!","api":{"status":"ok"}}'
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    with sqlite3.connect(tmp_path / "api.sqlite3") as db:
        assert db.execute("select method, calls from usage_counters").fetchall() == [
            ("test.hello", 1)]
    second = subprocess.run(
        [sys.executable, "-c", "import sys; sys.argv=['serve.py','--demo','--port','1',"
         f"'--data-dir',{str(tmp_path)!r}]; from api.server import parse_args, print_demo; "
         "from api.app import build_context; from api.config import Settings; "
         f"build_context(Settings(data_dir={str(tmp_path)!r})); print_demo(Settings())"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert url.split("api_key=")[1] in second.stdout  # --demo creates the key only once
    assert "shown once" not in second.stdout


def test_a_postgresql_url_without_the_driver_says_how_to_install_it(monkeypatch, capsys):
    from peewee import ImproperlyConfigured

    from api import server
    from api.config import Settings

    def no_driver(settings):
        raise ImproperlyConfigured("psycopg2 postgres driver not found.")

    monkeypatch.setattr(server, "build_context", no_driver)
    assert server.start_context(Settings.from_env()) is None
    assert capsys.readouterr().err.strip() == (
        "error: not starting: psycopg2 postgres driver not found. "
        "Install it with: pip install -e '.[postgres]'")


def test_a_start_waits_while_another_process_migrates(monkeypatch):
    from peewee import OperationalError

    from api import server
    from api.config import Settings

    attempts = []

    def busy_twice(settings):
        attempts.append(1)
        if len(attempts) < 3:
            raise OperationalError(sqlite3.OperationalError("database is locked"))
        return "context"

    monkeypatch.setattr(server, "build_context", busy_twice)
    monkeypatch.setattr(server.time, "sleep", lambda seconds: None)
    assert server.start_context(Settings.from_env()) == "context" and len(attempts) == 3
