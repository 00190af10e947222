"""Issue 11's rolling restart: while uploads and calls go through nginx for ROLLING_SECONDS (60;
the environment variable shortens it for a local run), ``python -m api.cluster`` restarts its 3
app processes one by one (SIGHUP: each taken out of nginx's upstream, stopped with SIGTERM,
started again, put back), again and again. No call is answered 5xx (or fails to connect), and
every ticket is done exactly once: none lost, failed or made into two docs."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from api.signing import md5
from tests.conftest import _multipart
from tests.deploy.conftest import Cluster, cluster, desktop_token, needs_postgres
from tests.upload.conftest import jpeg

pytestmark = needs_postgres

ROLLING_SECONDS = float(os.environ.get("ROLLING_SECONDS", "60"))
CLIENTS = 4


def signed(key: dict, token: str, method: str, **params: str) -> dict[str, str]:
    values = {"api_key": key["api_key"], "auth_token": token, **params}
    values["api_sig"] = md5.signature(values, method, key["secret"])
    return values


def client_loop(running: Cluster, key: dict, token: str, until: float, n: int
                ) -> tuple[list[int], list[str]]:
    """Upload, check the tickets, say hello, until ``until``: the tickets made and every call
    that went wrong (a 5xx, an error code other than the expected, no answer)."""
    photo, tickets, wrong = jpeg(160, 120, color=(n * 40, 90, 90)), [], []
    # A connection per call, as PyIpernity makes them: nginx's graceful reload closes its idle
    # keep-alive connections to clients, and a client that reuses one just then must retry.
    while time.monotonic() < until:
        content_type, body = _multipart(signed(key, token, "upload.file"),
                                        {"file": (f"photo-{n}.jpg", photo)})
        calls = [
            ("upload.file", "POST", {"data": body, "headers": {"Content-Type": content_type}}),
            ("test.hello", "GET", {"params": {"api_key": key["api_key"]}}),
            *([("upload.checkTickets", "POST", {"data": signed(
                key, token, "upload.checkTickets", tickets=",".join(map(str, tickets[-5:])))})]
              if tickets else [])]  # those of the earlier rounds
        for method, verb, request in calls:
            try:
                answer = requests.request(verb, f"{running.base}/api/{method}/json",
                                          timeout=60, **request)
            except requests.RequestException as error:
                wrong.append(f"{method}: {error}")
                continue
            if answer.status_code >= 500 or answer.json()["api"]["status"] != "ok":
                wrong.append(f"{method}: {answer.status_code} {answer.text[:200]}")
            elif method == "upload.file":
                tickets.append(int(answer.json()["ticket"]))
    return tickets, wrong


def test_a_rolling_restart_fails_no_call_and_loses_no_ticket(tmp_path):
    with cluster(tmp_path, API_UPLOAD_LEASE_SECONDS="15") as running:
        running.keys("user", "add", "member", "--password", "member-password", "--pro")
        key = json.loads(running.keys("create", "--owner", "member", "--name", "Rolling"))
        token = desktop_token(running.base, key["api_key"], key["secret"], "member",
                              "member-password", doc="write")
        until = time.monotonic() + ROLLING_SECONDS
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            loops = [pool.submit(client_loop, running, key, token, until, n)
                     for n in range(CLIENTS)]
            restarts = 0
            while time.monotonic() < until - 5:
                running.process.send_signal(signal.SIGHUP)
                restarts += 1
                running.wait_for("^cluster: rolling restart done", restarts)
            results = [loop.result() for loop in loops]
        tickets = [ticket for made, _ in results for ticket in made]
        assert [line for _, wrong in results for line in wrong] == []
        assert restarts >= 1 and len(tickets) > 0
        deadline = time.monotonic() + 60
        while running.sql("SELECT count(*) FROM upload_tickets WHERE state IN "
                          "('queued', 'working')") != [(0,)] and time.monotonic() < deadline:
            time.sleep(0.5)
        rows = running.sql("SELECT id, state, doc_id FROM upload_tickets")
        assert sorted(ticket for ticket, _, _ in rows) == sorted(tickets)  # none lost
        assert {state for _, state, _ in rows} == {"done"}
        assert len({doc for _, _, doc in rows}) == len(rows)
        assert running.sql("SELECT count(*) FROM docs") == [(len(rows),)]  # none done twice
    print(f"{restarts} rolling restarts, {len(tickets)} uploads")
