"""A real ``serve.py`` under hostile clients (issue 10): trickling headers must not starve other
callers, a huge form body must not cost memory, and waitress's handling of Content-Length with
Transfer-Encoding is pinned down so that the day it changes we notice
(docs/protocol-choices.md, "Bounded resources")."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.core.test_serve import wait_for_line

ROOT = Path(__file__).resolve().parents[2]
TRICKLERS = 300


@contextmanager
def demo_server(data: Path, **env: str) -> Iterator[tuple[int, str, int]]:
    """serve.py --demo on a free port with ``env`` settings: (port, the demo's test.hello URL,
    its pid); stopped with SIGTERM after the block."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "serve.py", "--demo", "--port", str(port), "--data-dir", str(data)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "API_ACCESS_LOG": "0", **env})
    try:
        curl_line, _ = wait_for_line(process, r"try:\s+curl")
        wait_for_line(process, "listening on")
        yield port, re.search(r"curl '([^']+)'", curl_line).group(1), process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[int, str, int]]:
    """serve.py with a 2 s header timeout: (port, the demo's test.hello URL, its pid)."""
    with demo_server(tmp_path_factory.mktemp("slow"), API_HEADER_TIMEOUT="2") as started:
        yield started


def timed_hello(url: str) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as response:
        assert b'"status":"ok"' in response.read()
    return time.monotonic() - started


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (within 2 s), after what it had to say (a 408)."""
    sock.settimeout(2)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_trickling_headers_neither_starve_calls_nor_stay(server):
    port, url, _ = server
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(TRICKLERS)]
    request = b"GET /api/test.hello HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    stop = threading.Event()

    def trickle() -> None:  # one byte per socket every half second, as slowloris does
        for position in range(len(request)):
            for sock in sockets:
                try:
                    sock.send(request[position:position + 1])
                except OSError:
                    pass  # closed by the server: what the header timeout is for
            if stop.wait(0.5):
                return

    sender = threading.Thread(target=trickle)
    sender.start()
    try:
        time.sleep(0.5)
        durations = []
        for _ in range(6):
            durations.append(timed_hello(url))
            time.sleep(0.3)
        assert max(durations) < 1.0, durations
        time.sleep(3.5)  # past the 2 s header timeout and the once-a-second sweep
        stop.set()
        sender.join()
        assert sum(closed_by_server(sock) for sock in sockets) == TRICKLERS
        assert timed_hello(url) < 1.0
    finally:
        stop.set()
        for sock in sockets:
            sock.close()


def test_waitress_runs_a_request_smuggled_behind_content_length_and_chunked(server):
    """waitress 3.0.2 reads a request with both Content-Length and Transfer-Encoding: chunked by
    its chunks and runs the bytes after them as a second request, on the same connection. A front
    proxy going by Content-Length would have passed them as one body: this is why the README
    requires a buffering proxy (nginx refuses such requests). When this fails, waitress changed:
    pin the fixed release in pyproject.toml and update the README and docs."""
    port, url, _ = server
    smuggled = url.replace(f"http://127.0.0.1:{port}", "").encode() + b"&smuggled=1"
    second = b"GET " + smuggled + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    body = b"0\r\n\r\n" + second
    head = (b"POST /api/test.echo/json HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(body))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head + body)
        answers = b""
        deadline = time.monotonic() + 5
        while b"hello world!" not in answers and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answers += chunk
    assert answers.count(b"HTTP/1.1 200") == 2, answers  # the smuggled GET was answered too
    assert b'"hello":"hello world!"' in answers


def peak_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024


def test_a_100_mb_form_body_costs_no_memory(server):
    """The body is refused by its Content-Length (141) before it is read; waitress has spooled
    it to a temporary file, not to memory. Before the form cap its peak was +420 MB."""
    port, url, pid = server
    api_key = url.split("api_key=")[1]
    body = b"api_key=" + api_key.encode() + b"&echo=" + b"a" * (100 * 1024 * 1024)
    before = peak_mb(pid)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/api/test.echo/json", body=body,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert json.loads(connection.getresponse().read())["api"]["code"] == "141"
    connection.close()
    assert peak_mb(pid) - before < 20, (before, peak_mb(pid))
