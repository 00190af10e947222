"""The request log: the newest failed calls of each key (issue 9 item 4), for its owner's page.

``record`` (on the request path) only appends to a bounded in-memory buffer; the flusher (started
by the server, like the usage counters) writes the buffer in one transaction and then, once it is
committed, trims every key that got new rows to the newest ``bound`` rows with one DELETE each, in
SQL. Trimming after the commit is what makes the bound hold across processes: the last flush to
trim sees every other process's committed rows. When the buffer is full between flushes the oldest
buffered entries are dropped (they would be the first trimmed anyway). What anyone who knows a
public api_key can make us keep is small: a signed string is cut at ``SIGNED_CHARS``.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from api.models.request_log import RequestLogEntry
from api.runtime.periodic import PeriodicFlush
from keys.db import db

log = logging.getLogger("api.request_log")

DEFAULT_BOUND = 1000
_MESSAGE_CHARS = 300
_SHORT = 64
# The signed string of a 105 is built from every parameter sent, and anyone who knows a key's
# public api_key can cause a 105: keep enough to compare with one's own string, never megabytes.
SIGNED_CHARS = 4096


class RequestLog(PeriodicFlush):
    """Failed calls in memory, written and trimmed per key on flush."""

    thread_name = "request-log-flush"

    def __init__(self, clock: Callable[[], float], bound: int = DEFAULT_BOUND,
                 interval: float = 5.0, buffer_limit: int = 10_000) -> None:
        self.clock = clock
        self.bound = max(1, bound)
        self.interval = interval
        self._lock = threading.Lock()
        self._rows: deque[dict[str, object]] = deque(maxlen=max(buffer_limit, 1))

    def record(self, api_key: str, method: str, code: int, message: str, client_addr: str,
               fmt: str, signed: str = "", api_sig: str = "") -> None:
        """Keep one failed call (cheap: a dict appended under a lock)."""
        row: dict[str, object] = {
            "api_key": api_key[:_SHORT], "at": int(self.clock()), "method": method[:_SHORT],
            "code": code, "message": message[:_MESSAGE_CHARS], "client_addr": client_addr[:_SHORT],
            "format": fmt[:16], "signed": _cut(signed), "api_sig": api_sig[:_SHORT]}
        with self._lock:
            self._rows.append(row)

    def flush(self) -> int:
        """Write the buffer, then trim each key that got rows; returns the rows written."""
        with self._lock:
            rows, self._rows = list(self._rows), deque(maxlen=self._rows.maxlen)
        if not rows:
            return 0
        keys = sorted({str(row["api_key"]) for row in rows})
        with db.connection_context():
            try:
                with db.atomic():
                    for start in range(0, len(rows), 100):
                        RequestLogEntry.insert_many(rows[start:start + 100]).execute()
            except Exception:
                log.exception("request log flush failed; %d rows kept for the next try",
                              len(rows))
                with self._lock:  # older first; the buffer's bound still drops the oldest
                    self._rows = deque([*rows, *self._rows], maxlen=self._rows.maxlen)
                return 0
            try:
                for api_key in keys:  # after the commit: it sees every process's rows
                    trim(api_key, self.bound)
            except Exception:  # the rows are stored; the next flush of this key trims them
                log.warning("request log trim failed; retried with the next flush", exc_info=True)
        return len(rows)


def _cut(signed: str) -> str:
    """A signed string kept to ``SIGNED_CHARS``, saying how much was left out."""
    if len(signed) <= SIGNED_CHARS:
        return signed
    return f"{signed[:SIGNED_CHARS]}… ({len(signed) - SIGNED_CHARS} more characters not kept)"


def trim(api_key: str, bound: int) -> int:
    """Delete all but the newest ``bound`` rows of ``api_key``: one statement, whatever wrote
    them (the id below the newest ``bound`` is found by a subquery; none means nothing to do)."""
    newest = (RequestLogEntry.select(RequestLogEntry.id)
              .where(RequestLogEntry.api_key == api_key)
              .order_by(RequestLogEntry.id.desc())
              .limit(1).offset(bound))
    return int(RequestLogEntry.delete()
               .where((RequestLogEntry.api_key == api_key) & (RequestLogEntry.id <= newest))
               .execute())


def entries(api_key: str, limit: int = DEFAULT_BOUND) -> list[RequestLogEntry]:
    """A key's logged failures, newest first."""
    return list(RequestLogEntry.select()
                .where(RequestLogEntry.api_key == api_key)
                .order_by(RequestLogEntry.id.desc())
                .limit(limit))
