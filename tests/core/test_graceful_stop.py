"""Stopping the server: requests in flight finish and are answered; nothing new is accepted."""

from __future__ import annotations

import http.client
import threading
import time

import falcon
from waitress.server import create_server

from api.server import serve_until
from tests.conftest import free_port


class Slow:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        time.sleep(1.0)
        resp.text = "finished"


def test_in_flight_request_finishes_after_stop():
    app = falcon.App()
    app.add_route("/slow", Slow())
    port = free_port()
    server = create_server(app, host="127.0.0.1", port=port, threads=2)
    stop = threading.Event()
    serving = threading.Thread(target=serve_until, args=(server, stop), kwargs={"grace": 10})
    serving.start()

    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    idle.request("GET", "/nothing-here")
    idle.getresponse().read()  # a keep-alive connection left idle

    answers: list[tuple[int, bytes]] = []

    def slow_client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/slow")
        response = conn.getresponse()
        answers.append((response.status, response.read()))

    client = threading.Thread(target=slow_client)
    client.start()
    time.sleep(0.3)  # the slow request is now in flight
    stop.set()
    serving.join(timeout=15)
    client.join(timeout=15)

    assert not serving.is_alive()
    assert answers == [(200, b"finished")]
    try:
        fresh = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        fresh.request("GET", "/slow")
        refused = False
    except OSError:
        refused = True
    assert refused
