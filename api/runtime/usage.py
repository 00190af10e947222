"""Usage counting: calls per key, method, hour and result code, in memory, flushed in batches.

Nothing on the path of an ordinary call writes to the database; ``record`` only adds to a dict. A
background thread (started by the server, not on import) or an explicit ``flush`` moves the counts
into ``usage_counters`` with one upsert per (key, method, hour, code) and stamps each key's use.
Beside the counters it keeps a latency histogram per (key, method, hour, code) (``usage_latency``,
buckets of ``api.runtime.latency``) and the members whose tokens called per key and day
(``usage_users``). Every write is additive (``calls = calls + excluded.calls``) or idempotent (a
member day is inserted once), so several processes flushing into one database stay exact.

Once ``meter`` is called (the metrics do, api.runtime.metrics), ``record`` also adds each call to
a small dict per (method, code, latency bucket) that ``take_metered`` hands over every second:
one more dict entry in the same locked section, not a Prometheus write per call.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable

from peewee import EXCLUDED

from api.models.usage import UsageLatency, UsageUser
from api.runtime.latency import bucket_of
from api.runtime.periodic import PeriodicFlush
from keys.db import db
from keys.models import ApiKey, UsageCounter

log = logging.getLogger("api.usage")

CounterKey = tuple[str, str, int, int]  # api_key, method, hour, code
LatencyKey = tuple[str, str, int, int, int]  # api_key, method, hour, code, bucket
UserDay = tuple[str, int, int]  # api_key, day, user_id
MeteredKey = tuple[str, int, int]  # method, code, bucket


class UsageRecorder(PeriodicFlush):
    """In-memory counters with a thread-safe swap on flush."""

    thread_name = "usage-flush"

    def __init__(self, clock: Callable[[], float], interval: float = 5.0) -> None:
        self.clock = clock
        self.interval = interval
        self._lock = threading.Lock()
        self._counts: dict[CounterKey, list[float]] = defaultdict(lambda: [0, 0.0])
        self._latency: dict[LatencyKey, int] = defaultdict(int)
        self._users: set[UserDay] = set()
        self._metered: dict[MeteredKey, list[float]] | None = None  # None: nobody reads them

    def meter(self) -> None:
        """From now on keep calls per (method, code, latency bucket) for ``take_metered``."""
        with self._lock:
            if self._metered is None:
                self._metered = defaultdict(lambda: [0, 0.0])

    def take_metered(self) -> dict[MeteredKey, list[float]]:
        """The calls counted since the last take: {(method, code, bucket): [calls, total ms]}."""
        with self._lock:
            metered = self._metered
            if metered is None:
                return {}
            self._metered = defaultdict(lambda: [0, 0.0])
        return metered

    def record(self, api_key: str, method: str, code: int, duration_ms: float,
               user_id: int = 0) -> None:
        """Count one call; cheap enough for every request."""
        now = int(self.clock())
        hour = now // 3600
        bucket = (api_key, method, hour, code)
        slot = bucket_of(duration_ms)
        with self._lock:
            entry = self._counts[bucket]
            entry[0] += 1
            entry[1] += duration_ms
            self._latency[(api_key, method, hour, code, slot)] += 1
            if self._metered is not None:
                metered = self._metered[(method, code, slot)]
                metered[0] += 1
                metered[1] += duration_ms
            if user_id and api_key:
                self._users.add((api_key, now // 86400, user_id))

    def flush(self) -> int:
        """Write the buffered counts to the database; returns the number of rows upserted."""
        with self._lock:
            counts, self._counts = self._counts, defaultdict(lambda: [0, 0.0])
            latency, self._latency = self._latency, defaultdict(int)
            users, self._users = self._users, set()
        if not counts and not users:
            return 0
        rows = [{"api_key": k, "method": m, "hour": h, "code": c, "calls": int(n), "total_ms": ms}
                for (k, m, h, c), (n, ms) in counts.items()]
        used_keys = sorted({api_key for (api_key, _m, _h, _c) in counts if api_key})
        try:
            with db.connection_context(), db.atomic():
                for start in range(0, len(rows), 200):
                    (UsageCounter
                     .insert_many(rows[start:start + 200])
                     .on_conflict(conflict_target=[UsageCounter.api_key, UsageCounter.method,
                                                   UsageCounter.hour, UsageCounter.code],
                                  update={UsageCounter.calls: UsageCounter.calls + EXCLUDED.calls,
                                          UsageCounter.total_ms:
                                              UsageCounter.total_ms + EXCLUDED.total_ms})
                     .execute())
                latency_rows = [{"api_key": k, "method": m, "hour": h, "code": c, "bucket": b,
                                 "calls": n} for (k, m, h, c, b), n in latency.items()]
                for start in range(0, len(latency_rows), 200):
                    (UsageLatency
                     .insert_many(latency_rows[start:start + 200])
                     .on_conflict(conflict_target=[UsageLatency.api_key, UsageLatency.method,
                                                   UsageLatency.hour, UsageLatency.code,
                                                   UsageLatency.bucket],
                                  update={UsageLatency.calls:
                                              UsageLatency.calls + EXCLUDED.calls})
                     .execute())
                user_rows = [{"api_key": k, "day": d, "user_id": u} for (k, d, u) in sorted(users)]
                for start in range(0, len(user_rows), 200):
                    (UsageUser
                     .insert_many(user_rows[start:start + 200])
                     .on_conflict_ignore()
                     .execute())
                if used_keys:
                    (ApiKey
                     .update(last_used_at=int(self.clock()))
                     .where(ApiKey.key.in_(used_keys))
                     .execute())
        except Exception:
            log.exception("usage flush failed; %d counter rows kept for the next try", len(rows))
            with self._lock:
                for bucket, (n, ms) in counts.items():
                    entry = self._counts[bucket]
                    entry[0] += n
                    entry[1] += ms
                for slot, n in latency.items():
                    self._latency[slot] += n
                self._users |= users
            return 0
        return len(rows)
