"""CPU instructions per request of our server beside the bare falcon app, counted by callgrind.

    python bench/instructions_bench.py [--requests 2000] [--connections 8] [--threads 4]
    python bench/instructions_bench.py --in-process [--requests 2000]

Requests per second on a shared VM move by 2x from one second to the next (other tenants,
other jobs); instructions do not. Each server runs under ``valgrind --tool=callgrind``, its
instrumentation off; after a warm-up it is switched on for exactly ``--requests`` keep-alive
requests (``--connections`` at once, from this process), then off, and the dump's total is
divided by the count. Every thread of the server is counted: waitress's loop, its workers, our
background threads. The ratio bare/ours is the throughput ratio a CPU-bound server would show,
free of the machine's mood; bench/api_bench.py gives the wall-clock figure beside it.

``--in-process`` counts the WSGI app alone, no server (bench/wsgi_bench.py ``--count``, one
thread): the difference between runs of 300 + ``--requests`` and 300 + 5 × ``--requests``
calls, so start-up cancels out. The steadiest figure of all: the same build gives the same count
to within a few hundred instructions, where the server's count moves with how requests and
threads happened to interleave.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.signing.md5 import signature  # noqa: E402
from bench.api_bench import UNREFUSED, free_port, wait_ready  # noqa: E402


def send(port: int, target: str, count: int, connections: int) -> None:
    """``count`` GETs of ``target`` over ``connections`` keep-alive connections; every answer
    must be a 200 (a refused call would be measuring something else)."""
    share = [count // connections + (1 if i < count % connections else 0)
             for i in range(connections)]
    failures: list[str] = []

    def worker(requests: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        for _ in range(requests):
            conn.request("GET", target)
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                failures.append(f"{answer.status}")
        conn.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in share]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} answers were not 200 (first: {failures[0]})")


def instructions(pid: int, out: Path, run: Callable[[], None]) -> int:
    """Instructions the process ``pid`` executes while ``run()`` runs (callgrind's Ir)."""
    subprocess.run(["callgrind_control", "-i", "on", str(pid)], check=True, capture_output=True)
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
    run()
    subprocess.run(["callgrind_control", "-i", "off", str(pid)], check=True, capture_output=True)
    for old in out.parent.glob(out.name + "*"):
        old.unlink()
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    total = 0
    for dump in out.parent.glob(out.name + "*"):
        match = re.search(r"^totals:\s+(\d+)", dump.read_text(errors="replace"), re.MULTILINE)
        total += int(match.group(1)) if match else 0
    return total


def in_process(case: str, app: str, count: int) -> float:
    """Instructions per in-process call of ``case`` by ``app`` (bench/wsgi_bench.py --count)."""
    totals = []
    for calls in (count, 5 * count):
        out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                              sys.executable, str(ROOT / "bench" / "wsgi_bench.py"), "--count",
                              str(calls), "--case", case, "--app", app],
                             cwd=ROOT, capture_output=True, text=True, check=True).stderr
        totals.append(int(re.search(r"Collected : (\d+)", out).group(1)))
    return (totals[1] - totals[0]) / (4 * count)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--in-process", action="store_true", help="the WSGI app alone")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind not found: apt-get install valgrind")
    if args.in_process:
        print(f"callgrind, in-process, the difference of {args.requests} and "
              f"{5 * args.requests} calls")
        for case, label in (("hello", "test.hello, unsigned key"), ("echo", "test.echo, signed")):
            ours, bare = (in_process(case, app, args.requests) for app in ("ours", "bare"))
            print(f"{label:26s} ours {ours / 1000:7.1f}k instructions/call   bare falcon "
                  f"{bare / 1000:7.1f}k   difference {(ours - bare) / 1000:7.1f}k")
        return
    work = Path(tempfile.mkdtemp(prefix="instructions-bench-"))
    env = {**os.environ, "API_DATA_DIR": str(work / "data"), "PYTHONUNBUFFERED": "1",
           **UNREFUSED}
    subprocess.run([sys.executable, "-m", "keys", "user", "add", "bench", "--password", "bench"],
                   cwd=ROOT, env=env, capture_output=True, check=True)
    key = json.loads(subprocess.run([sys.executable, "-m", "keys", "create", "--owner", "bench",
                                     "--name", "Bench"], cwd=ROOT, env=env, capture_output=True,
                                    text=True, check=True).stdout)
    signed = {"api_key": key["api_key"], "echo": "bench"}
    signed["api_sig"] = signature(signed, "test.echo", key["secret"])
    cases = [("test.hello, unsigned key", f"/api/test.hello?api_key={key['api_key']}"),
             ("test.echo, signed", "/api/test.echo?" + "&".join(f"{k}={v}"
                                                                for k, v in signed.items()))]
    ports = {"ours": free_port(), "bare": free_port(), "ceiling": free_port()}
    # "ceiling": the bare app sending our five rate-limit headers too (bench/bare_app.py): what
    # any pipeline of ours could reach at best on waitress, which handles each header in Python.
    commands = {"ours": ["serve.py", "--port", str(ports["ours"]), "--threads",
                         str(args.threads)],
                "bare": ["bench/bare_app.py", str(ports["bare"]), str(args.threads)],
                "ceiling": ["bench/bare_app.py", str(ports["ceiling"]), str(args.threads),
                            "--ratelimit-headers"]}
    servers = {}
    try:
        for name, command in commands.items():
            servers[name] = subprocess.Popen(
                ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                 f"--callgrind-out-file={work / name}.%p", sys.executable, *command],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for port in ports.values():
            wait_ready(f"http://127.0.0.1:{port}{cases[0][1]}", timeout=300)
        print(f"callgrind, {args.requests} requests per case over {args.connections} "
              f"connections, waitress threads={args.threads}")
        for label, target in cases:
            counts = {}
            for name, port in ports.items():
                send(port, target, 200, args.connections)  # warm-up: caches, first paths
                counts[name] = instructions(
                    servers[name].pid, work / f"{name}.{servers[name].pid}",
                    lambda port=port, target=target: send(port, target, args.requests,
                                                          args.connections)
                ) / args.requests
            print(f"{label:26s} ours {counts['ours'] / 1000:7.1f}k instructions/request   "
                  f"bare falcon {counts['bare'] / 1000:7.1f}k   "
                  f"ratio {counts['bare'] / counts['ours']:.2f}   bare with our rate-limit "
                  f"headers {counts['ceiling'] / 1000:7.1f}k (ceiling "
                  f"{counts['bare'] / counts['ceiling']:.2f})")
    finally:
        for server in servers.values():
            server.terminate()
        for server in servers.values():
            server.wait(timeout=120)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
