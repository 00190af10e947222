"""deploy/ and ``python -m api.cluster``: the nginx site as shipped, adapted to a run's ports, in
front of two app processes that both answer, and a clean stop (README, "Running several
processes")."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from api.cluster import DEBIAN_NGINX, SITE, listening, parse_args, run, site_config
from api.config import Settings
from tests.conftest import free_port, require_program
from tests.core.test_serve import ROOT, wait_for_line

DEPLOY = ROOT / "deploy"


def test_the_deploy_files_hold_the_app_s_body_limit():
    limit = Settings().max_body_bytes
    assert re.search(r"client_max_body_size (\d+)m;", SITE.read_text()).group(1) == str(
        limit // 2**20)
    example = (DEPLOY / "ipernity.env.example").read_text()
    assert f"\nAPI_MAX_BODY_BYTES={limit}\n" in example
    assert "--no-migrate" in (DEPLOY / "systemd" / "serve@.service").read_text()


def test_the_site_is_adapted_to_a_run():
    site = site_config(SITE.read_text(), listen="127.0.0.1:9000", ports=[9001, 9002],
                       max_body_bytes=1234)
    assert re.findall(r"server (\S+) ", site) == ["127.0.0.1:9001", "127.0.0.1:9002"]
    assert re.findall(r"listen (\S+);", site) == ["127.0.0.1:9000"]
    assert re.findall(r"client_max_body_size (\S+);", site) == ["1234"]
    assert "server_name" in site and "keepalive 32;" in site


def test_two_processes_behind_nginx_both_answer_and_stop_cleanly(settings, api_key, tmp_path):
    nginx = DEBIAN_NGINX if os.access(DEBIAN_NGINX, os.X_OK) else require_program("nginx")
    port = free_port()
    errors = tmp_path / "cluster.err"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cluster", "--processes", "2", "--port", str(port),
             "--db", settings.database_url, "--data-dir", settings.data_dir, "--nginx", nginx],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True,
            env={"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "API_ACCESS_LOG": "0"})
    try:
        line, _ = wait_for_line(process, r"^cluster: http://", timeout=90)
        ports = [int(p) for p in re.search(r"ports (\d+), (\d+) ", line).groups()]
        answered = set()
        for _ in range(20):
            url = f"http://127.0.0.1:{port}/api/test.hello?api_key={api_key.key}"
            with urllib.request.urlopen(url, timeout=10) as response:
                assert json.load(response)["hello"] == "hello world!"
                answered.add(response.headers["X-Upstream"])
        assert answered == {f"127.0.0.1:{p}" for p in ports}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=90) == 0, errors.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    assert not any(listening("127.0.0.1", p) for p in (port, *ports))
    assert "error" not in errors.read_text().lower(), errors.read_text()
    assert not list(Path(settings.data_dir, "spool").glob("*/*"))  # nothing left mid-request


def test_a_port_another_program_holds_is_refused_in_one_line(settings, capsys):
    """Before the check, nginx failed to bind and the cluster said ready: the other program
    answered the readiness probe."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        args = parse_args(["--port", str(port), "--db", settings.database_url, "--data-dir",
                           settings.data_dir, "--nginx", "/bin/true"])
        started = time.monotonic()
        assert run(args, threading.Event(), threading.Event()) == 1
    assert time.monotonic() - started < 5
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: 127.0.0.1:{port} is in use by another program: choose another --port"]
