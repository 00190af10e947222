"""Requests/s of our server beside a bare falcon app on the same waitress settings, and the ratio.

    python bench/api_bench.py [--seconds 3] [--threads 4] [--connections 8] [--rounds 5]

Both servers run as separate processes (ours with its rate limits counted but out of reach);
the load comes from a third (wrk where installed, else a small Python load generator with
keep-alive connections). Two cases: ``test.hello`` with an unsigned key, and ``test.echo``
signed with api_sig. Our server runs with its default settings otherwise (access log included).
Each case alternates short paired rounds and prints medians, both per wall-clock second and per
second of the server process's own CPU time, since a VM's speed drifts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.signing.md5 import signature  # noqa: E402

# Rate limits counted on every call as in production, but never reached: the benchmark times
# answers, not 429s (the defaults allow 50 calls a second per address).
UNREFUSED = {"API_RATELIMIT_PER_KEY": "1000000000/hour",
             "API_RATELIMIT_PER_ADDRESS": "1000000000/hour"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not start")


def cpu_seconds(pid: int) -> float:
    """User+system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One load run against one server."""

    per_second: float  # requests per wall-clock second
    per_cpu_second: float  # requests per second of the server's own CPU time


def load(url: str, seconds: float, connections: int, pid: int) -> Run:
    """Load ``url`` from a separate process; wrk where installed, else bench/pyload.py."""
    cpu_before = cpu_seconds(pid)
    if shutil.which("wrk"):
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", url],
                             capture_output=True, text=True, check=True).stdout
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        total = int(re.search(r"(\d+) requests in", out).group(1))
    else:
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "pyload.py"), url,
                              str(seconds), str(connections)],
                             capture_output=True, text=True, check=True).stdout
        rate = float(out.strip())
        total = int(rate * seconds)
    return Run(rate, total / max(cpu_seconds(pid) - cpu_before, 1e-9))


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="api-bench-")
    env = {**os.environ, "API_DATA_DIR": data, "PYTHONUNBUFFERED": "1", **UNREFUSED}
    made = subprocess.run([sys.executable, "-m", "keys", "user", "add", "bench", "--password",
                           "bench"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    made = subprocess.run([sys.executable, "-m", "keys", "create", "--owner", "bench", "--name",
                           "Bench"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    key = json.loads(made.stdout)
    ours_port, bare_port = free_port(), free_port()
    servers = [
        start([sys.executable, "serve.py", "--port", str(ours_port), "--threads",
               str(args.threads)], env),
        start([sys.executable, "bench/bare_app.py", str(bare_port), str(args.threads)], env),
    ]
    try:
        signed = {"api_key": key["api_key"], "echo": "bench"}
        signed["api_sig"] = signature(signed, "test.echo", key["secret"])
        query = "&".join(f"{k}={v}" for k, v in signed.items())
        cases = [("test.hello, unsigned key", f"test.hello?api_key={key['api_key']}", 0.85),
                 ("test.echo, signed", f"test.echo?{query}", 0.80)]
        for port in (ours_port, bare_port):
            wait_ready(f"http://127.0.0.1:{port}/api/{cases[0][1]}")
        print(f"load: {'wrk' if shutil.which('wrk') else 'python'}, {args.seconds:g}s, "
              f"{args.connections} connections, waitress threads={args.threads}")
        for name, path, target in cases:
            for port, server in zip((ours_port, bare_port), servers, strict=True):  # warm-up
                load(f"http://127.0.0.1:{port}/api/{path}", 1, args.connections, server.pid)
            # Alternate short rounds; each pair shares the machine's mood, so medians of paired
            # ratios are steadier than one long run of each (a VM's speed drifts).
            pairs = [tuple(load(f"http://127.0.0.1:{port}/api/{path}", args.seconds,
                                args.connections, server.pid)
                           for port, server in zip((ours_port, bare_port), servers, strict=True))
                     for _ in range(args.rounds)]
            wall = statistics.median(o.per_second / b.per_second for o, b in pairs)
            cpu = statistics.median(o.per_cpu_second / b.per_cpu_second for o, b in pairs)
            print(f"{name}  (target ratio {target:.2f})")
            for label, attr, ratio in (("requests/s", "per_second", wall),
                                       ("requests/CPU-s", "per_cpu_second", cpu)):
                ours = statistics.median(getattr(o, attr) for o, _ in pairs)
                bare = statistics.median(getattr(b, attr) for _, b in pairs)
                print(f"  {label:15s} ours {ours:7.0f}   bare falcon {bare:7.0f}   "
                      f"ratio {ratio:.2f}")
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
