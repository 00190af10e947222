"""A small keep-alive HTTP load generator for machines without wrk: prints requests/s."""

from __future__ import annotations

import http.client
import sys
import threading
import time
from urllib.parse import urlsplit


def main(url: str, seconds: float, connections: int) -> None:
    parts = urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    deadline = time.monotonic() + seconds
    counts = [0] * connections

    def worker(slot: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        while time.monotonic() < deadline:
            conn.request("GET", target)
            conn.getresponse().read()
            counts[slot] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(sum(counts) / seconds)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]))
