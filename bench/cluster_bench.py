"""``test.hello`` through nginx in front of 1, 2 and 3 app processes, in one run, and the ratios
to 1 process (issue 11: expect about 1.5x for 2 processes on 2 cores).

    python bench/cluster_bench.py [--seconds 3] [--threads 4] [--connections 16] [--rounds 5]

Three serve.py processes run on one database; three nginx instances run
``deploy/nginx/ipernity.conf`` as ``python -m api.cluster`` adapts it, balancing over the first 1,
2 and 3 of them. The load comes from another process (wrk where installed, else bench/pyload.py).
Rounds alternate the three cases, so each round's figures share the machine's mood; the script
prints medians of requests/s and of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.cluster import SITE, find_nginx, free_ports, main_config, site_config  # noqa: E402
from api.config import Settings  # noqa: E402
from bench.api_bench import UNREFUSED, load, start, wait_ready  # noqa: E402

COUNTS = (1, 2, 3)


def nginx_for(nginx: str, prefix: Path, port: int, apps: list[int]) -> subprocess.Popen:
    """An nginx from ``prefix`` on ``port`` balancing over the app processes on ``apps``."""
    prefix.mkdir(mode=0o711)
    (prefix / "site.conf").write_text(site_config(
        SITE.read_text(), listen=f"127.0.0.1:{port}", ports=apps,
        max_body_bytes=Settings().max_body_bytes))
    (prefix / "nginx.conf").write_text(main_config(prefix))
    return subprocess.Popen([nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                             "-e", "stderr"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    nginx = find_nginx(None)
    if nginx is None:
        sys.exit("nginx not found: apt-get install nginx")
    data = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    data.chmod(0o711)
    env = {**os.environ, "API_DATA_DIR": str(data / "data"), "PYTHONUNBUFFERED": "1",
           "API_TRUSTED_PROXIES": "127.0.0.1/32", "API_ACCESS_LOG": "0", **UNREFUSED}
    subprocess.run([sys.executable, "-m", "keys", "user", "add", "bench", "--password", "bench"],
                   cwd=ROOT, env=env, capture_output=True, check=True)
    made = subprocess.run([sys.executable, "-m", "keys", "create", "--owner", "bench", "--name",
                           "Bench"], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True)
    path = f"/api/test.hello?api_key={json.loads(made.stdout)['api_key']}"
    *apps, front1, front2, front3 = free_ports(len(COUNTS) + 3)
    fronts = dict(zip(COUNTS, (front1, front2, front3), strict=True))
    servers = [start([sys.executable, "serve.py", "--port", str(port), "--threads",
                      str(args.threads)], env) for port in apps]
    proxies: list[subprocess.Popen] = []
    try:
        for port in apps:
            wait_ready(f"http://127.0.0.1:{port}{path}")
        proxies = [nginx_for(nginx, data / f"nginx-{count}", fronts[count], apps[:count])
                   for count in COUNTS]
        for count in COUNTS:
            wait_ready(f"http://127.0.0.1:{fronts[count]}{path}")
        print(f"load: {'wrk' if shutil.which('wrk') else 'python'}, {args.seconds:g}s, "
              f"{args.connections} connections, waitress threads={args.threads}, "
              f"{os.cpu_count()} cores")
        for count in COUNTS:  # warm-up
            load(f"http://127.0.0.1:{fronts[count]}{path}", 1, args.connections, proxies[0].pid)
        rounds = [{count: load(f"http://127.0.0.1:{fronts[count]}{path}", args.seconds,
                               args.connections, proxies[0].pid).per_second
                   for count in COUNTS} for _ in range(args.rounds)]
        for count in COUNTS:
            rate = statistics.median(r[count] for r in rounds)
            ratio = statistics.median(r[count] / r[1] for r in rounds)
            print(f"  {count} process{'es' if count > 1 else '  '}  {rate:7.0f} requests/s   "
                  f"ratio to 1 process {ratio:.2f}")
    finally:
        for process in (*proxies, *servers):
            process.send_signal(signal.SIGQUIT if process in proxies else signal.SIGTERM)
        for process in (*proxies, *servers):
            process.wait(timeout=60)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
