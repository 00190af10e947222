"""``python -m api.cluster --processes 3 [--port 8080] [--db URL] [--data-dir DIR]``: the production
topology on this machine, for a try-out (README, "Running several processes").

The schema step runs once, the session secret is made once, then N app processes (serve.py, each
with the upload worker: claims are leased, so workers share the queue) start on free ports with
one database and one data dir, and Debian's nginx runs ``deploy/nginx/ipernity.conf`` in front of
them, adapted to this run's ports, from a temp dir of its own (no root needed: ``-p``/``-c``,
``daemon off``). Ctrl-C or SIGTERM stops nginx first (gracefully: no new requests, those in
flight answered), then the processes (each finishes its requests and flushes its counters).
SIGHUP restarts the app processes one by one (after a code change, say) without failing a
request: each is taken out of nginx's upstream first (a graceful reload), then stopped with
SIGTERM, started again on its port and put back.
The children run in process groups of their own, so a terminal's Ctrl-C reaches this process
alone and the stop keeps that order.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from api.config import Settings
from api.server import migrate_only
from api.web.accounts import SecretRefused, session_secret

log = logging.getLogger("api.cluster")

SITE = Path(__file__).resolve().parents[1] / "deploy" / "nginx" / "ipernity.conf"
DEBIAN_NGINX = "/usr/sbin/nginx"
START_SECONDS = 60.0  # how long a process or nginx may take to listen
STOP_SECONDS = 60.0  # how long one may take to stop before it is killed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options; the app processes read every other setting from the API_* environment."""
    parser = argparse.ArgumentParser(prog="python -m api.cluster",
                                     description="N app processes behind nginx, for a try-out")
    parser.add_argument("--processes", type=int, default=3, help="app processes (default 3)")
    parser.add_argument("--host", default="127.0.0.1", help="nginx's interface (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="nginx's port (default 8080)")
    parser.add_argument("--db", dest="database_url", help="database URL (API_DATABASE_URL)")
    parser.add_argument("--data-dir", help="data directory (API_DATA_DIR, default ./data)")
    parser.add_argument("--nginx", help=f"the nginx program (default {DEBIAN_NGINX})")
    args = parser.parse_args(argv)
    if args.processes < 1:
        parser.error("--processes must be 1 or more")
    return args


def site_config(site: str, *, listen: str, ports: list[int], max_body_bytes: int,
                down: frozenset[int] = frozenset()) -> str:
    """The nginx site ``site`` (deploy/nginx/ipernity.conf) listening on ``listen``, balancing
    over the app processes on ``ports`` of this host (those in ``down`` marked ``down``: sent
    nothing), with the app's body limit."""
    servers = "".join(f"    server 127.0.0.1:{port} max_fails=0"
                      f"{' down' if port in down else ''};\n" for port in ports)
    for pattern, replacement in (
            (r"(?m)^(?:[ \t]*server[ \t]+[^\s{;]+:\d+[^;\n]*;\n)+", servers),
            (r"(?m)^([ \t]*)listen[ \t]+[^;\n]+;", rf"\g<1>listen {listen};"),
            (r"(?m)^([ \t]*)client_max_body_size[ \t]+\w+;",
             rf"\g<1>client_max_body_size {max_body_bytes};")):
        site, count = re.subn(pattern, replacement, site, count=1)
        if count != 1:
            raise ValueError(f"{SITE}: no line matches {pattern!r}")
    return site


def main_config(prefix: Path) -> str:
    """nginx.conf for a run from ``prefix`` by any user: pid and temp files there, logs on
    stderr, the site beside it; each answer names the process that made it (``X-Upstream``, a
    try-out's aid that the deploy site does not have)."""
    temp = "\n".join(f"    {kind}_temp_path {prefix / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""daemon off;
worker_processes auto;
pid {prefix / "nginx.pid"};
error_log stderr warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
{temp}
    add_header X-Upstream $upstream_addr always;
    include {prefix / "site.conf"};
}}
"""


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports nobody listens on right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def find_nginx(given: str | None) -> str | None:
    """The nginx to run: ``given``, Debian's, or the first on PATH."""
    if given:
        return given
    if os.access(DEBIAN_NGINX, os.X_OK):
        return DEBIAN_NGINX
    return shutil.which("nginx")


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        if parent == pid:
            found.add(int(stat.parent.name))
    return found


def reload_nginx(nginx: subprocess.Popen, prefix: Path, site: str) -> None:
    """Have nginx run ``site`` from now on (a graceful reload, SIGHUP); return once the workers
    that ran the old one have ended: their requests answered, their connections to the app
    processes closed (at most STOP_SECONDS)."""
    old = children(nginx.pid)
    (prefix / "site.conf").write_text(site)
    nginx.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + STOP_SECONDS
    while old & children(nginx.pid) and nginx.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)


def listening(host: str, port: int) -> bool:
    """Whether something accepts connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def port_free(host: str, port: int) -> bool:
    """Whether nginx could listen on ``host:port`` now (a bind with SO_REUSEADDR, as nginx's,
    then closed): a port another program holds would otherwise pass for nginx listening."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_listening(process: subprocess.Popen, host: str, port: int, stop: threading.Event) -> bool:
    """Wait until ``process`` listens on ``port``; False if it ended, took too long or a stop
    was asked for meanwhile."""
    deadline = time.monotonic() + START_SECONDS
    while not stop.is_set() and process.poll() is None and time.monotonic() < deadline:
        if listening(host, port):
            return True
        time.sleep(0.1)
    return False


def end(process: subprocess.Popen, how: int) -> None:
    """Send ``how`` to ``process`` if it still runs."""
    if process.poll() is None:
        process.send_signal(how)


def reap(process: subprocess.Popen) -> None:
    """Wait for ``process`` to end, killing it after STOP_SECONDS."""
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        log.warning("process %s did not stop in %ss: killed", process.pid, STOP_SECONDS)
        process.kill()
        process.wait()


class Running:
    """What a cluster started: nginx and the app processes, and the order they stop in."""

    def __init__(self) -> None:
        self.nginx: subprocess.Popen | None = None
        self.apps: list[subprocess.Popen] = []

    def all(self) -> list[subprocess.Popen]:
        return [*([self.nginx] if self.nginx else []), *self.apps]

    def stop(self) -> None:
        """nginx first, gracefully (SIGQUIT): no new request reaches a stopping process, those
        in flight are answered; then every app process at once (SIGTERM: serve_until)."""
        if self.nginx is not None:
            end(self.nginx, signal.SIGQUIT)
            reap(self.nginx)
        for process in self.apps:
            end(process, signal.SIGTERM)
        for process in self.apps:
            reap(process)


def run(args: argparse.Namespace, stop: threading.Event, restart: threading.Event) -> int:
    """Start everything, wait for ``stop`` (or a process ending by itself), restarting the app
    processes one by one whenever ``restart`` is set, stop everything; 0 after a stop asked for,
    1 when something ended or failed to start (nginx's port taken), 2 when nothing could."""
    nginx = find_nginx(args.nginx)
    if nginx is None:
        print("error: nginx not found: apt-get install nginx (or --nginx PATH)", file=sys.stderr)
        return 2
    if not SITE.is_file():
        print(f"error: {SITE} not found: run from a source checkout", file=sys.stderr)
        return 2
    if not port_free(args.host, args.port):
        print(f"error: {args.host}:{args.port} is in use by another program: choose another "
              f"--port", file=sys.stderr)
        return 1
    settings = Settings.from_env(database_url=args.database_url, data_dir=args.data_dir)
    if migrate_only(settings) != 0:  # the one schema step: the processes start --no-migrate
        return 2
    try:
        session_secret(settings)  # made once in the shared data dir, before anyone reads it
    except SecretRefused as error:
        print(f"error: not starting: {error}", file=sys.stderr)
        return 2
    prefix = Path(tempfile.mkdtemp(prefix="ipernity-cluster-"))
    prefix.chmod(0o711)  # nginx's workers (nobody, when started by root) reach their temp dirs
    running = Running()
    try:
        return _serve(args, settings, nginx, prefix, running, stop, restart)
    finally:
        running.stop()
        shutil.rmtree(prefix, ignore_errors=True)


def _serve(args: argparse.Namespace, settings: Settings, nginx: str, prefix: Path,
           running: Running, stop: threading.Event, restart: threading.Event) -> int:
    """``run``'s middle: the app processes, then nginx, then the wait."""
    ports = free_ports(args.processes)
    env = {**os.environ, "API_UPLOAD_WORKER": "1"}
    env.setdefault("API_TRUSTED_PROXIES", "127.0.0.1/32")  # nginx's address
    # nginx passes the Host without its port ($host): media and authorize URLs name nginx's
    env.setdefault("API_PUBLIC_URL", f"http://{args.host}:{args.port}")
    options = ["--host", "127.0.0.1", "--data-dir", settings.data_dir, "--no-migrate"]
    if settings.database_url:
        options += ["--db", settings.database_url]

    def start_app(port: int) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "api.server", "--port", str(port),
                                 *options], env=env, process_group=0)

    def site(down: frozenset[int] = frozenset()) -> str:
        return site_config(SITE.read_text(), listen=f"{args.host}:{args.port}", ports=ports,
                           max_body_bytes=settings.max_body_bytes, down=down)

    running.apps = [start_app(port) for port in ports]
    for process, port in zip(running.apps, ports, strict=True):
        if not wait_listening(process, "127.0.0.1", port, stop):
            return 0 if stop.is_set() else _failed(f"the app process on port {port}")
    (prefix / "site.conf").write_text(site())
    (prefix / "nginx.conf").write_text(main_config(prefix))
    running.nginx = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                                      "-e", "stderr"], process_group=0)
    if not wait_listening(running.nginx, args.host, args.port, stop):
        return 0 if stop.is_set() else _failed(f"nginx on {args.host}:{args.port}")
    print(f"cluster: http://{args.host}:{args.port}/ ({args.processes} processes on ports "
          f"{', '.join(map(str, ports))} behind nginx; Ctrl-C stops)", flush=True)
    while not stop.wait(0.5):
        if restart.is_set():
            restart.clear()
            for index, port in enumerate(ports):
                reload_nginx(running.nginx, prefix, site(down=frozenset({port})))
                end(running.apps[index], signal.SIGTERM)
                reap(running.apps[index])
                running.apps[index] = start_app(port)
                if not wait_listening(running.apps[index], "127.0.0.1", port, stop):
                    return 0 if stop.is_set() else _failed(f"the app process on port {port}")
                reload_nginx(running.nginx, prefix, site())
                print(f"cluster: restarted the process on port {port}", flush=True)
            print("cluster: rolling restart done", flush=True)
        if any(process.poll() is not None for process in running.all()):
            return _failed("a process")
    log.info("stopping: nginx first, then the app processes")
    return 0


def _failed(what: str) -> int:
    print(f"error: {what} did not start or ended; stopping", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run the cluster until Ctrl-C or SIGTERM."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop, restart = threading.Event(), threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    def request_restart(signum: int, frame: object) -> None:
        restart.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGHUP, request_restart)
    return run(args, stop, restart)


if __name__ == "__main__":
    sys.exit(main())
