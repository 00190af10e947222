"""The reference: a bare falcon app answering the same bytes as our test.hello / test.echo.

    python bench/bare_app.py PORT THREADS [--ratelimit-headers]

With ``--ratelimit-headers`` it also sends the five rate-limit headers every answer of ours
carries (fixed values of the same length): the ceiling any pipeline of ours could reach, since
waitress and falcon handle each response header in Python.
"""

from __future__ import annotations

import sys

import falcon
from waitress import serve

HELLO = b'{"api":{"status":"ok"},"hello":"hello world!"}'


# What api.runtime.ratelimit.headers writes for the benches' two windows (UNREFUSED limits).
RATELIMIT_HEADERS = {
    "RateLimit-Policy": '"address-3600s";q=1000000000;w=3600, "key-3600s";q=1000000000;w=3600',
    "RateLimit": '"address-3600s";r=999997999;t=3600, "key-3600s";r=999997999;t=3600',
    "X-RateLimit-Limit": "1000000000",
    "X-RateLimit-Remaining": "999997999",
    "X-RateLimit-Reset": "1795669253",
}


class Hello:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "application/json; charset=utf-8"
        resp.data = HELLO
        resp.set_headers(self.headers)


class Echo(Hello):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "application/json; charset=utf-8"
        echo = req.get_param("echo", default="")
        resp.data = f'{{"api":{{"status":"ok"}},"echo":"{echo}"}}'.encode()
        resp.set_headers(self.headers)


if __name__ == "__main__":
    headers = RATELIMIT_HEADERS if "--ratelimit-headers" in sys.argv[3:] else {}
    app = falcon.App()
    app.add_route("/api/test.hello", Hello(headers))
    app.add_route("/api/test.echo", Echo(headers))
    serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=int(sys.argv[2]),
          ident="bare")
