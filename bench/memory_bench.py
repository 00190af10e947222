"""Memory of a server across 100,000 calls: does it grow? Ours beside the bare falcon app.

    python bench/memory_bench.py [--calls 100000] [--connections 8] [--threads 4]

Both servers run as separate processes on the same waitress settings (ours with its defaults:
access log, usage counters, metrics, request log; rate limits counted but out of reach). The
load is a mix a busy key would send, cycled: ``test.hello`` unsigned, ``test.echo`` MD5-signed,
``test.echo`` HMAC-signed with a fresh nonce each time, a wrong signature (a request-log entry
each), an unknown method of a new name each time (metrics labels must stay bounded) and a fresh
``X-Request-Id`` on every call. The resident set (``VmRSS``) is read from /proc every tenth of
the calls, and the peak (``VmHWM``) at the end: growth between the first tenth and the end is what
a leak would show.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.signing import hmac as hmac_sig  # noqa: E402
from api.signing.md5 import signature  # noqa: E402
from bench.api_bench import UNREFUSED, free_port, start, wait_ready  # noqa: E402


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of a process, in KiB (Linux /proc)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


def targets(key: str, secret: str) -> itertools.cycle:
    """The request mix: each item a function giving a fresh request target."""
    def hello() -> str:
        return f"/api/test.hello?api_key={key}"

    def md5_echo() -> str:
        params = {"api_key": key, "echo": "bench"}
        params["api_sig"] = signature(params, "test.echo", secret)
        return f"/api/test.echo?{urlencode(params)}"

    def hmac_echo() -> str:
        params = {"api_key": key, "echo": "bench", "api_sig_method": hmac_sig.HMAC_SHA256,
                  "api_ts": str(int(time.time())), "api_nonce": secrets.token_hex(12)}
        params["api_sig"] = hmac_sig.signature("GET", "/api/test.echo", params, secret)
        return f"/api/test.echo?{urlencode(params)}"

    def wrong_signature() -> str:
        return f"/api/test.echo?api_key={key}&echo=x&api_sig={'0' * 32}"

    def unknown_method() -> str:
        return f"/api/no.such.{secrets.token_hex(6)}?api_key={key}"

    return itertools.cycle((hello, md5_echo, hmac_echo, wrong_signature, unknown_method))


def send(port: int, calls: int, connections: int, make: itertools.cycle,
         every: int, sample: Callable[[int], None]) -> None:
    """``calls`` GETs over keep-alive connections; ``sample()`` after every ``every`` calls."""
    lock = threading.Lock()
    done = 0
    failures: list[str] = []

    def worker() -> None:
        nonlocal done
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if done >= calls:
                    break
                done += 1
                number = done
                target = next(make)()
            conn.request("GET", target, headers={"X-Request-Id": secrets.token_hex(8)})
            answer = conn.getresponse()
            answer.read()
            if answer.status >= 500:
                failures.append(str(answer.status))
            if number % every == 0:
                sample(number)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} answers were 5xx (first: {failures[0]})")


def measure(name: str, port: int, pid: int, args: argparse.Namespace,
            make: itertools.cycle) -> None:
    every = max(args.calls // 10, 1)
    samples: list[tuple[int, int]] = []

    def sample(number: int) -> None:
        samples.append((number, memory_kb(pid)["VmRSS"]))

    send(port, 2000, args.connections, make, 2000, lambda _n: None)  # warm-up
    before = memory_kb(pid)["VmRSS"]
    started = time.monotonic()
    send(port, args.calls, args.connections, make, every, sample)
    seconds = time.monotonic() - started
    samples.sort()
    end = memory_kb(pid)
    first = samples[0][1] if samples else before
    print(f"{name}: {args.calls} calls in {seconds:.0f} s; RSS after warm-up {before / 1024:.1f} "
          f"MiB, at {samples[0][0] if samples else 0} calls {first / 1024:.1f} MiB, at the end "
          f"{end['VmRSS'] / 1024:.1f} MiB (growth after the first tenth "
          f"{(end['VmRSS'] - first) / 1024:+.1f} MiB), peak {end['VmHWM'] / 1024:.1f} MiB")
    print("  RSS by calls: " + ", ".join(f"{n // 1000}k {kb / 1024:.1f}" for n, kb in samples))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="memory-bench-")
    env = {**os.environ, "API_DATA_DIR": data, "PYTHONUNBUFFERED": "1", **UNREFUSED}
    subprocess.run([sys.executable, "-m", "keys", "user", "add", "bench", "--password", "bench"],
                   cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    made = subprocess.run([sys.executable, "-m", "keys", "create", "--owner", "bench", "--name",
                           "Bench"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    key = json.loads(made.stdout)
    ours_port, bare_port = free_port(), free_port()
    ours = start([sys.executable, "serve.py", "--port", str(ours_port), "--threads",
                  str(args.threads)], env)
    bare = start([sys.executable, "bench/bare_app.py", str(bare_port), str(args.threads)], env)
    try:
        wait_ready(f"http://127.0.0.1:{ours_port}/api/test.hello?api_key={key['api_key']}")
        wait_ready(f"http://127.0.0.1:{bare_port}/api/test.hello")
        measure("ours", ours_port, ours.pid, args, targets(key["api_key"], key["secret"]))
        # The bare app answers only its two routes; the same mix keeps the same connection use.
        measure("bare falcon", bare_port, bare.pid, args,
                itertools.cycle((lambda: "/api/test.hello", lambda: "/api/test.echo?echo=b")))
    finally:
        for server in (ours, bare):
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
