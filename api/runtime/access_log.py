"""The access log: one line per call, buffered in memory and written in batches off the hot path.

A line holds time, client address, key, method, format, result code and duration - never a secret, a
signature or a token. Lines go to a stream (stderr by default) when ``flush`` runs: every second
from its own thread, on shutdown, and whenever the buffer grows past ``max_buffered``. Subclasses
buffer other items and render them at flush time (api.runtime.http_log: JSON lines).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from api.runtime.periodic import PeriodicFlush


class AccessLog(PeriodicFlush):
    """Collects access lines and writes them in batches."""

    thread_name = "access-log"

    def __init__(self, stream: TextIO | None = None, *, clock: Callable[[], float] = time.time,
                 max_buffered: int = 2000) -> None:
        self.stream = stream
        self.clock = clock
        self.max_buffered = max_buffered
        self._lines: list[Any] = []
        self._lock = threading.Lock()
        self._stamp_second = -1
        self._stamp_text = ""

    def write(self, client: str, key: str, method: str, fmt: str, code: int, ms: float) -> None:
        """Buffer one line (cheap: an f-string and a list append)."""
        stamp = self._stamp(int(self.clock()))
        line = (f"{stamp}Z {client or '-'} key={key or '-'} method={method} format={fmt} "
                f"code={code} ms={ms:.2f}\n")
        self._append(line)

    def _append(self, item: Any) -> None:
        """Buffer one item; write them all once ``max_buffered`` are waiting."""
        with self._lock:
            self._lines.append(item)
            full = len(self._lines) >= self.max_buffered
        if full:
            self.flush()

    def _stamp(self, second: int) -> str:
        """ISO time of ``second``, formatted once per second rather than once per call."""
        if second != self._stamp_second:
            self._stamp_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._stamp_second = second
        return self._stamp_text

    def flush(self) -> None:
        """Write the buffered lines in one go."""
        with self._lock:
            lines, self._lines = self._lines, []
        if lines:
            stream = self.stream or sys.stderr
            stream.write(self._render(lines))
            stream.flush()

    def _render(self, items: list[Any]) -> str:
        """The text of buffered items (here, lines already)."""
        return "".join(items)
