"""The reference: a bare falcon app answering the same bytes as our test.hello / test.echo."""

from __future__ import annotations

import sys

import falcon
from waitress import serve

HELLO = b'{"api":{"status":"ok"},"hello":"hello world!"}'


class Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "application/json; charset=utf-8"
        resp.data = HELLO


class Echo:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "application/json; charset=utf-8"
        echo = req.get_param("echo", default="")
        resp.data = f'{{"api":{{"status":"ok"}},"echo":"{echo}"}}'.encode()


if __name__ == "__main__":
    app = falcon.App()
    app.add_route("/api/test.hello", Hello())
    app.add_route("/api/test.echo", Echo())
    serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=int(sys.argv[2]),
          ident="bare")
