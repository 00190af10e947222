"""Requests/s of our server beside a bare falcon app on the same waitress settings, and the ratio.

    python bench/api_bench.py [--seconds 5] [--threads 4] [--connections 16] [--rounds 2]

Both servers run as separate processes; the load comes from a third (wrk where installed, else a
small Python load generator with keep-alive connections). Two cases: ``test.hello`` with an
unsigned key, and
``test.echo`` signed with api_sig. Our server runs with its default settings (access log included).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.signing.md5 import signature  # noqa: E402


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


def load(url: str, seconds: float, connections: int) -> float:
    """Requests per second against ``url`` from a separate process."""
    if shutil.which("wrk"):
        out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", url],
                             capture_output=True, text=True, check=True).stdout
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "pyload.py"), url, str(seconds),
                          str(connections)], capture_output=True, text=True, check=True).stdout
    return float(out.strip())


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="api-bench-")
    env = {**os.environ, "API_DATA_DIR": data, "PYTHONUNBUFFERED": "1"}
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
        cases = [("test.hello, unsigned key", f"test.hello?api_key={key['api_key']}", 0.80),
                 ("test.echo, signed", f"test.echo?{query}", 0.75)]
        for port in (ours_port, bare_port):
            wait_ready(f"http://127.0.0.1:{port}/api/{cases[0][1]}")
        print(f"load: {'wrk' if shutil.which('wrk') else 'python'}, {args.seconds:g}s, "
              f"{args.connections} connections, waitress threads={args.threads}")
        for name, path, target in cases:
            for port in (ours_port, bare_port):  # warm-up
                load(f"http://127.0.0.1:{port}/api/{path}", 1, args.connections)
            # Alternate rounds and keep each side's best, so a noisy moment hurts neither alone.
            ours = bare = 0.0
            for _ in range(args.rounds):
                ours = max(ours, load(f"http://127.0.0.1:{ours_port}/api/{path}", args.seconds,
                                      args.connections))
                bare = max(bare, load(f"http://127.0.0.1:{bare_port}/api/{path}", args.seconds,
                                      args.connections))
            print(f"{name:26s} ours {ours:9.0f} req/s   bare falcon {bare:9.0f} req/s   "
                  f"ratio {ours / bare:.2f} (target {target:.2f})")
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
