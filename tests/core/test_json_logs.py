"""API_LOG_FORMAT=json (issue 12 item 3): a request id on every response, taken from a sane
X-Request-Id or made; application log records as JSON carrying it; and a real serve.py writing
one JSON line per call, page and media request. (What the lines never hold:
tests/core/test_dispatch.py, test_json_log_lines_have_no_secret_signature_token_password_or_cookie.)
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import falcon.testing
import pytest

from api.app import create_app
from api.core.context import Call
from api.core.registry import MethodGroup, Registry
from api.methods import GROUPS
from api.runtime.http_log import JsonAccessLog, JsonFormatter, RequestIds
from tests.conftest import Caller, free_port

ROOT = Path(__file__).resolve().parents[2]

probe = MethodGroup()


@probe.method("probe.logs", title="Logs a warning, then fails unexpectedly")
def probe_logs(call: Call) -> dict:
    logging.getLogger("api.probe").warning("about to fail")
    raise RuntimeError("boom")


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def json_ctx(ctx, stream):
    return dataclasses.replace(ctx, access_log=JsonAccessLog(stream, clock=ctx.clock),
                               registry=Registry.from_groups([*GROUPS, probe]))


@pytest.fixture
def json_client(settings, json_ctx) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(settings.with_(log_format="json"), ctx=json_ctx))


def lines_of(json_ctx, stream) -> list[dict]:
    json_ctx.access_log.flush()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_response_carries_a_request_id(json_client, json_ctx, stream, api_key):
    answers = [json_client.simulate_get("/api/test.hello", params={"api_key": api_key.key}),
               json_client.simulate_get("/"), json_client.simulate_get("/no/such/page"),
               json_client.simulate_get("/media/icons/default.png"),
               json_client.simulate_post("/healthz")]  # 405
    assert [a.status_code for a in answers] == [200, 200, 404, 200, 405]
    ids = [answer.headers["x-request-id"] for answer in answers]
    assert len(set(ids)) == len(ids)
    prefix = ids[0].split("-")[0]
    assert all(i.startswith(prefix + "-") for i in ids)  # one process's prefix, a counter
    lines = lines_of(json_ctx, stream)
    assert [line["request_id"] for line in lines] == ids
    assert [line["status"] for line in lines] == [200, 200, 404, 200, 405]
    assert lines[2]["route"] is None  # nothing matched: no path logged
    first = lines[0]
    assert set(first) == {"time", "level", "logger", "host", "pid", "request_id", "client",
                          "method", "route", "status", "api_method", "api_code", "api_key",
                          "format", "ms", "bytes"}
    assert (first["level"], first["logger"], first["bytes"]) == (
        "info", "access", len(answers[0].content))
    assert first["time"].endswith("Z") and len(first["time"]) == len("2027-01-15T08:00:00.000Z")


@pytest.mark.parametrize("sent, kept", [
    ("3f2c9a1e-7b41-4a5e-9d0a-0c1b2d3e4f50", True), ("edge:lb-1.req_42", True),
    ("a" * 64, True), ("a" * 65, False), ("has space", False), ('quote"', False),
    ("new\\nline", False), ("", False), ("é", False)])
def test_a_sane_x_request_id_is_kept_and_echoed(json_client, sent, kept):
    answer = json_client.simulate_get("/healthz", headers={"X-Request-Id": sent})
    echoed = answer.headers["x-request-id"]
    assert (echoed == sent) is kept
    if not kept:
        assert RequestIds().new().count("-") == echoed.count("-") == 1


def test_application_records_are_json_with_the_request_id(json_client, json_ctx, api_key):
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        answer = Caller(json_client, json_ctx, api_key).raw("probe.logs")
        logging.getLogger("api.probe").warning("outside any request")
    finally:
        root.removeHandler(handler)
    assert answer.json["api"]["code"] == "500" and "boom" not in answer.text
    records = [json.loads(line) for line in captured.getvalue().splitlines()]
    warning, failure, outside = records
    request_id = answer.headers["x-request-id"]
    assert (warning["level"], warning["logger"], warning["message"], warning["request_id"]) == (
        "warning", "api.probe", "about to fail", request_id)
    assert failure["level"] == "error" and failure["request_id"] == request_id
    assert "RuntimeError: boom" in failure["exception"]  # the traceback, in the log only
    assert "request_id" not in outside and outside["pid"] > 0 and outside["host"]


def test_text_format_keeps_its_lines_and_adds_no_header(client, api_key):
    answer = client.simulate_get("/api/test.hello", params={"api_key": api_key.key})
    assert "x-request-id" not in answer.headers


def test_an_unknown_log_format_refuses_to_start(tmp_path):
    done = subprocess.run(
        [sys.executable, "serve.py", "--data-dir", str(tmp_path), "--port", str(free_port())],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "API_LOG_FORMAT": "xml"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: not starting: API_LOG_FORMAT must be one of text, json, not 'xml'")


def test_serve_py_writes_one_json_line_per_request(tmp_path, settings):
    """A real serve.py with API_LOG_FORMAT=json: a line per API call, page and media request,
    with the id each response carried; its own records (listening on …) as JSON too."""
    log = tmp_path / "server.log"
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "serve.py", "--demo", "--port", str(port), "--data-dir",
             str(tmp_path / "data"), "--db", settings.resolved_database_url],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "API_LOG_FORMAT": "json"})
    try:
        deadline = time.monotonic() + 30
        while "listening on" not in log.read_text():
            assert time.monotonic() < deadline and process.poll() is None, log.read_text()
            time.sleep(0.05)
        hello = next(line.split("'")[1] for line in log.read_text().splitlines()
                     if "try:" in line)
        ids = {}
        for name, url, headers in (
                ("call", hello, {"X-Request-Id": "client-chosen-1"}),
                ("page", f"http://127.0.0.1:{port}/", {}),
                ("media", f"http://127.0.0.1:{port}/media/icons/default.png", {}),
                ("missing", f"http://127.0.0.1:{port}/media/00/00/none.jpg", {})):
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                            timeout=10) as response:
                    ids[name] = (response.headers["X-Request-Id"], response.status)
            except urllib.error.HTTPError as error:
                ids[name] = (error.headers["X-Request-Id"], error.code)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    assert ids["call"] == ("client-chosen-1", 200)
    records = [json.loads(line) for line in log.read_text().splitlines()
               if line.startswith("{")]
    requests = {r["request_id"]: r for r in records if r["logger"] == "access"}
    for name, (request_id, status) in ids.items():
        assert requests[request_id]["status"] == status, name
    assert requests["client-chosen-1"]["api_method"] == "test.hello"
    assert requests[ids["media"][0]]["route"] == "/media/icons/default.png"
    assert any(r["logger"] == "api.server" and r["message"].startswith("listening on")
               for r in records)
    printed = [line for line in log.read_text().splitlines() if not line.startswith("{")]
    assert all(not line.startswith("20") for line in printed), printed  # no text log lines


def test_a_request_cut_with_408_gets_its_json_line():
    """Review: the 408s close_slow_requests writes never reached the app, so no access line
    told of them. Now each gets one: status 408, the connection's peer, the duration, the
    method and a sane X-Request-Id when its headers had arrived (else a new id)."""
    import threading
    from types import SimpleNamespace

    from api.server import Timeouts, close_slow_requests, log_timed_out

    stream = io.StringIO()
    log = JsonAccessLog(stream)

    def channel(request: SimpleNamespace, port: int) -> SimpleNamespace:
        return SimpleNamespace(request=request, will_close=False, close_when_flushed=False,
                               requests=[], total_outbufs_len=0, idle_since=1000.0,
                               outbufs=[[]], outbuf_lock=threading.Lock(),
                               addr=("203.0.113.7", port))

    headers_slow = SimpleNamespace(received_at=985.0, window_start=985.0, window_bytes=0,
                                   headers_finished=False, headers={}, command=None)
    body_slow = SimpleNamespace(received_at=970.0, window_start=970.0, window_bytes=5,
                                headers_finished=True, command="POST",
                                headers={"X_REQUEST_ID": "lb-42", "HOST": "x"})
    insane = SimpleNamespace(received_at=970.0, window_start=970.0, window_bytes=5,
                             headers_finished=True, command="PUT",
                             headers={"X_REQUEST_ID": "no spaces please"})
    channels = {1: channel(headers_slow, 1), 2: channel(body_slow, 2), 3: channel(insane, 3)}
    limits = Timeouts(header=10, body=600, idle=15, min_body_rate=100, rate_window=20)
    assert close_slow_requests(channels, 1000.0, limits, log_timed_out(log)) == 3
    log.flush()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["status"], line["client"], line["method"], line["route"], line["ms"],
             line["bytes"]) for line in lines] == [
        (408, "203.0.113.7", None, None, 15000.0, 16),
        (408, "203.0.113.7", "POST", None, 30000.0, 16),
        (408, "203.0.113.7", "PUT", None, 30000.0, 16)]
    assert lines[1]["request_id"] == "lb-42"
    assert lines[0]["request_id"] and lines[2]["request_id"] not in ("", "no spaces please")


def test_head_lines_count_no_body_bytes(json_client, json_ctx, stream):
    """Review: HEAD's line said bytes = Content-Length though no body was sent."""
    assert json_client.simulate_get("/healthz").status_code == 200
    assert json_client.simulate_head("/healthz").status_code == 200
    get, head = lines_of(json_ctx, stream)
    assert (get["method"], head["method"]) == ("GET", "HEAD")
    assert get["bytes"] == len(b'{"status": "ok"}') and head["bytes"] == 0


def test_waitress_records_lose_media_names_queries_and_tracebacks():
    """waitress formats the path into its own records ("Client disconnected while serving
    /media/…/<doc>.<secret>.original.jpg": with S3 storage it sends bodies from its worker
    thread); configure_logging's filter cuts them (review of issue 12)."""
    from api.runtime.http_log import WaitressPaths

    out = io.StringIO()
    logger = logging.Logger("waitress-test")
    logger.addHandler(logging.StreamHandler(out))
    logger.addFilter(WaitressPaths())
    secret = "0123456789abcdef"
    # Formatted before logging, as waitress does ("..." % path).
    logger.info(f"Client disconnected while serving /media/00/01/1.{secret}.original.jpg")
    logger.info("Client disconnected while serving /api/test.hello?auth_token=tok-123")
    try:
        raise OSError(f"key media/00/01/1.{secret}.original.jpg gone")
    except OSError:
        logger.exception(f"Exception while serving /media/x/y/z.{secret}.jpg")
    logger.warning("%d thread(s) still running", 3)
    text = out.getvalue()
    assert secret not in text and "tok-123" not in text and "Traceback" not in text
    assert text.splitlines() == ["Client disconnected while serving /media/…",
                                 "Client disconnected while serving /api/test.hello?…",
                                 "Exception while serving /media/… (OSError)",
                                 "3 thread(s) still running"]
