"""In-process cost of one call: our WSGI app beside the bare falcon app, no sockets, no server.

    python bench/wsgi_bench.py

Steadier than a load test on a noisy VM: it times the WSGI callable itself (best of several repeats)
for ``test.hello`` unsigned and ``test.echo`` signed, and prints microseconds per call and the
ratio of calls per second.
"""

from __future__ import annotations

import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import falcon  # noqa: E402
import falcon.testing  # noqa: E402

from api.app import build_context, create_app  # noqa: E402
from api.config import Settings  # noqa: E402
from api.signing.md5 import signature  # noqa: E402
from bench.api_bench import UNREFUSED  # noqa: E402
from bench.bare_app import Echo, Hello  # noqa: E402
from keys import store  # noqa: E402


def per_call_us(app: object, path: str, query: str, number: int = 20000) -> float:
    """Best-of-5 microseconds per call of ``app`` for one request."""
    environ = falcon.testing.create_environ(path, query_string=query)

    def start_response(*_: object) -> None:
        return None

    def once() -> None:
        b"".join(app(dict(environ), start_response))  # type: ignore[operator]

    return min(timeit.repeat(once, number=number, repeat=5)) / number * 1e6


def main() -> None:
    # The API_* environment applies (API_LOG_FORMAT=json, API_METRICS=0 …), limits out of reach.
    limits = {name[4:].lower(): value for name, value in UNREFUSED.items()}  # API_X -> x
    settings = Settings.from_env(data_dir=tempfile.mkdtemp(prefix="wsgi-bench-"), **limits)
    ctx = build_context(settings)
    ours = create_app(settings, ctx=ctx)
    bare = falcon.App()
    bare.add_route("/api/test.hello", Hello({}))
    bare.add_route("/api/test.echo", Echo({}))
    key = store.create_key(store.add_user("bench", "bench-password"), "Bench")
    signed = {"api_key": key.key, "echo": "bench"}
    signed["api_sig"] = signature(signed, "test.echo", key.secret)
    cases = [("test.hello, unsigned key", "/api/test.hello", f"api_key={key.key}"),
             ("test.echo, signed", "/api/test.echo", "&".join(f"{k}={v}"
                                                               for k, v in signed.items()))]
    for name, path, query in cases:
        ours_us = per_call_us(ours, path, query)
        bare_us = per_call_us(bare, path, query)
        print(f"{name:26s} ours {ours_us:6.1f} µs/call   bare falcon {bare_us:6.1f} µs/call   "
              f"calls/s ratio {bare_us / ours_us:.2f}")
    ctx.access_log.stop() if ctx.access_log else None


if __name__ == "__main__":
    main()
