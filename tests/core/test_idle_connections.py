"""Connections that hold a place without using it (issue 10 review): sockets that send nothing,
idle keep-alive connections and bodies trickled a byte at a time filled waitress's connection
limit and locked every other caller out. A real ``serve.py`` with short limits: 200 connections,
1 s idle, a body averaging 1 KiB/s over each 2 s (docs/protocol-choices.md, "Bounded resources").
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from api.server import Timeouts, close_slow_requests
from tests.core.test_hostile_clients import closed_by_server, demo_server, timed_hello

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 200


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[int, str]]:
    """serve.py with small limits: (port, the demo's test.hello URL)."""
    with demo_server(tmp_path_factory.mktemp("idle"), API_CONNECTION_LIMIT=str(LIMIT),
                     API_IDLE_TIMEOUT="1", API_HEADER_TIMEOUT="2", API_MIN_BODY_RATE="1024",
                     API_BODY_RATE_WINDOW="2", API_RATELIMIT_PER_KEY="",
                     API_RATELIMIT_PER_ADDRESS="") as (port, url, _):
        yield port, url


def all_closed(sockets: list[socket.socket]) -> bool:
    try:
        return all(closed_by_server(sock) for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()


def test_silent_sockets_past_the_limit_are_closed_and_calls_go_on(server):
    """300 sockets that send nothing, 100 past the limit: before, test.hello waited in the
    backlog until waitress's 60 s channel_timeout; now each is closed a second after its accept
    (plus the once-a-second sweep), and the call queued behind them is answered."""
    port, url = server
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
    try:
        assert timed_hello(url) < 1 + 2 + 1  # idle timeout, the sweep twice, slack
        assert all_closed(sockets)
        assert timed_hello(url) < 1.0
    finally:
        for sock in sockets:
            sock.close()


def test_idle_keep_alive_connections_are_closed(server):
    port, url = server
    path = url.replace(f"http://127.0.0.1:{port}", "").encode()
    sockets = []
    for _ in range(150):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sockets.append(sock)
    assert timed_hello(url) < 1.0
    time.sleep(1.5)
    assert all_closed(sockets)
    assert timed_hello(url) < 1.0


def post_slowly(port: int, length: int, rate: int, seconds: float) -> bytes:
    """Send ``rate`` body bytes every 0.25 s for up to ``seconds``; what the server answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /api/test.hello/json HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % length)
        sent, deadline = 0, time.monotonic() + seconds
        try:
            while sent < length and time.monotonic() < deadline:
                sock.sendall(b"a" * min(rate, length - sent))
                sent += rate
                time.sleep(0.25)
        except OSError:
            pass  # closed by the server while sending
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_a_trickled_body_is_answered_408_and_closed(server):
    """A byte every 0.25 s is 4 B/s, below 1 KiB/s: cut after the first 2 s window."""
    port, _ = server
    started = time.monotonic()
    answer = post_slowly(port, 100_000, 1, seconds=10)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
    assert b"Connection: close" in answer
    assert time.monotonic() - started < 2 + 2  # the window, the sweep, slack


def test_a_steady_slow_body_is_not_cut(server):
    """2 KiB/s for 2.5 s, over a 1 KiB/s minimum: read to its end and answered."""
    port, _ = server
    answer = post_slowly(port, 5 * 1024, 512, seconds=10)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


LIMITS = Timeouts(header=10, body=600, idle=15, min_body_rate=100, rate_window=20)


def channel(request: SimpleNamespace | None = None, running: int = 0, pending: int = 0,
            idle_since: float = 1000.0) -> SimpleNamespace:
    return SimpleNamespace(request=request, will_close=False, close_when_flushed=False,
                           requests=[None] * running, total_outbufs_len=pending,
                           idle_since=idle_since, outbufs=[[]],
                           outbuf_lock=threading.Lock())


def arriving(age: float, headers_done: bool, window_bytes: int = 0) -> SimpleNamespace:
    return SimpleNamespace(received_at=1000.0 - age, window_start=1000.0 - age,
                           window_bytes=window_bytes, headers_finished=headers_done)


def test_close_slow_requests_judges_headers_rate_body_and_idleness():
    channels = {1: channel(arriving(5, False)), 2: channel(arriving(11, False)),
                3: channel(arriving(11, True)), 4: channel(arriving(601, True, 10**9)),
                5: channel(arriving(700, True), running=1),
                6: channel(arriving(21, True, 2099)), 7: channel(arriving(21, True, 2100)),
                8: channel(idle_since=984), 9: channel(idle_since=986),
                10: SimpleNamespace(will_close=False)}  # the listener
    assert close_slow_requests(channels, 1000.0, LIMITS) == 4
    assert [n for n, c in channels.items() if getattr(c, "close_when_flushed", 0)] == [2, 4, 6]
    assert channels[6].outbufs[-1][0].startswith(b"HTTP/1.1 408 ")
    assert [n for n, c in channels.items() if c.will_close] == [8]
    # the average runs on from the first byte: nothing restarts
    assert (channels[7].request.window_start, channels[7].request.window_bytes) == (979.0, 2100)


def test_a_stall_in_a_steady_upload_is_absorbed_by_the_average():
    """A review saw a steady 19 KiB/s upload answered 408 after one 14.5 s stall straddling two
    15 s windows (TCP's back-off on a lossy link). Judged on the average since the first byte,
    16 s at 19 KiB/s then 15 s of nothing is far above the floor; a trickler is not."""
    steady_then_stalled = channel(arriving(31, True, 16 * 19 * 1024))
    trickler = channel(arriving(31, True, 31 * 50))
    channels = {1: steady_then_stalled, 2: trickler}
    assert close_slow_requests(channels, 1000.0, LIMITS) == 1
    assert trickler.close_when_flushed and not steady_then_stalled.close_when_flushed


def test_an_answer_being_sent_is_never_cut():
    """A 50 MB download with a pipelined request behind it got 5.27 MB of 50 MB: the sweep
    closed the channel for the second request's age while the first answer was still going out.
    Now the channel is left alone and the waiting request's clock restarts."""
    sending = channel(arriving(30, False), pending=45_000_000, idle_since=900)
    idle_sending = channel(pending=1, idle_since=900)
    channels = {1: sending, 2: idle_sending}
    assert close_slow_requests(channels, 1000.0, LIMITS) == 0
    assert not (sending.will_close or sending.close_when_flushed or idle_sending.will_close)
    assert sending.request.window_start == 1000.0 and sending.idle_since == 1000.0
