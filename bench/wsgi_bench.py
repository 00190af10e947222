"""In-process cost of one call: our WSGI app beside the bare falcon app, no sockets, no server.

    python bench/wsgi_bench.py
    python bench/wsgi_bench.py --count N --case hello|echo --app ours|bare

Steadier than a load test on a noisy VM: it times the WSGI callable itself (best of several repeats)
for ``test.hello`` unsigned and ``test.echo`` signed, and prints microseconds per call and the
ratio of calls per second. With ``--count`` it only makes N calls of one case, untimed: what
bench/instructions_bench.py ``--in-process`` runs under callgrind. Our access log goes to
/dev/null, as the benchmarks' servers' does.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import timeit
from collections.abc import Callable
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


def one_call(app: object, path: str, query: str) -> Callable[[], None]:
    """A function making one call of ``app`` for one request (a fresh copy of its environ)."""
    environ = falcon.testing.create_environ(path, query_string=query)

    def start_response(*_: object) -> None:
        return None

    def once() -> None:
        b"".join(app(dict(environ), start_response))  # type: ignore[operator]

    return once


def per_call_us(app: object, path: str, query: str, number: int = 20000) -> float:
    """Best-of-5 microseconds per call of ``app`` for one request."""
    once = one_call(app, path, query)
    return min(timeit.repeat(once, number=number, repeat=5)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, help="make this many calls, untimed")
    parser.add_argument("--case", choices=("hello", "echo"), default="hello")
    parser.add_argument("--app", choices=("ours", "bare"), default="ours")
    args = parser.parse_args()
    # The API_* environment applies (API_LOG_FORMAT=json, API_METRICS=0 …), limits out of reach.
    limits = {name[4:].lower(): value for name, value in UNREFUSED.items()}  # API_X -> x
    settings = Settings.from_env(data_dir=tempfile.mkdtemp(prefix="wsgi-bench-"), **limits)
    ctx = build_context(settings)
    if ctx.access_log is not None:
        ctx.access_log.stream = open(os.devnull, "w")  # for the process's life
    apps = {"ours": create_app(settings, ctx=ctx), "bare": falcon.App()}
    apps["bare"].add_route("/api/test.hello", Hello({}))
    apps["bare"].add_route("/api/test.echo", Echo({}))
    key = store.create_key(store.add_user("bench", "bench-password"), "Bench")
    signed = {"api_key": key.key, "echo": "bench"}
    signed["api_sig"] = signature(signed, "test.echo", key.secret)
    cases = {"hello": ("test.hello, unsigned key", "/api/test.hello", f"api_key={key.key}"),
             "echo": ("test.echo, signed", "/api/test.echo",
                      "&".join(f"{k}={v}" for k, v in signed.items()))}
    if args.count is not None:
        _, path, query = cases[args.case]
        calls(apps[args.app], path, query, args.count)
        return
    for name, path, query in cases.values():
        ours_us = per_call_us(apps["ours"], path, query)
        bare_us = per_call_us(apps["bare"], path, query)
        print(f"{name:26s} ours {ours_us:6.1f} µs/call   bare falcon {bare_us:6.1f} µs/call   "
              f"calls/s ratio {bare_us / ours_us:.2f}")
    ctx.access_log.stop() if ctx.access_log else None


def calls(app: object, path: str, query: str, count: int) -> None:
    """``count`` calls of one request, after 300 to warm up (caches, first paths). What exists
    then is frozen out of the garbage collector's reach (as serve.py does at start): a full
    collection walking the app's long-lived objects would land in one run and not the other,
    and move the per-call difference by tens of thousands of instructions."""
    once = one_call(app, path, query)
    for _ in range(300):
        once()
    gc.collect()
    gc.freeze()
    for _ in range(count):
        once()


if __name__ == "__main__":
    main()
