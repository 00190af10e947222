"""Latency histograms: fixed log-spaced buckets, and percentiles read from them.

``BOUNDS`` are the buckets' upper edges in milliseconds: 0.1 ms × 1.6^i for i = 0 … 29 (0.1 ms to
about 83 s), 30 edges and so 31 buckets; bucket ``i`` holds durations in (BOUNDS[i-1], BOUNDS[i]],
bucket 0 everything up to 0.1 ms, bucket 30 everything above the last edge. Counting a call is one
``bisect`` into this tuple and one increment (``api.runtime.usage.UsageRecorder.record``).

Precision: a percentile is answered with the geometric middle of the bucket the nearest-rank call
falls in, so the true value is in that same bucket: the answer is within one bucket's width of it,
at most a factor √1.6 ≈ 1.26 either way (-21 % … +26 %). Bucket 0 answers 0.1 ms, the overflow
bucket its lower edge.

``UsagePruner`` drops statistics older than the retention period (``API_USAGE_RETENTION_DAYS``).
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_left
from collections.abc import Callable, Mapping

from api.models.usage import UsageLatency, UsageUser
from api.runtime.periodic import PeriodicFlush
from keys.db import db
from keys.models import UsageCounter

log = logging.getLogger("api.usage")

RATIO = 1.6
BOUNDS: tuple[float, ...] = tuple(0.1 * RATIO ** i for i in range(30))
OVERFLOW = len(BOUNDS)


def bucket_of(duration_ms: float) -> int:
    """The bucket a duration is counted in."""
    return bisect_left(BOUNDS, duration_ms)


def bucket_value(bucket: int) -> float:
    """The duration a bucket stands for in answers (its geometric middle), in ms."""
    if bucket <= 0:
        return BOUNDS[0]
    if bucket >= OVERFLOW:
        return BOUNDS[-1]
    return math.sqrt(BOUNDS[bucket - 1] * BOUNDS[bucket])


def percentile(counts: Mapping[int, int], q: float) -> float | None:
    """The ``q`` quantile (0 < q ≤ 1, nearest rank) of a histogram {bucket: calls}; None when
    empty."""
    total = sum(counts.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for bucket in sorted(counts):
        seen += counts[bucket]
        if seen >= rank:
            return bucket_value(bucket)
    return bucket_value(max(counts))


class UsagePruner(PeriodicFlush):
    """Drops counters, histograms and member days older than ``retention_days`` (one DELETE per
    table per run; every hour in the server)."""

    thread_name = "usage-prune"

    def __init__(self, clock: Callable[[], float], retention_days: int,
                 interval: float = 3600.0) -> None:
        self.clock = clock
        self.retention_days = retention_days
        self.interval = interval

    def flush(self) -> int:
        """Delete what is past the retention period; the number of rows deleted."""
        if self.retention_days <= 0:
            return 0
        first_day = int(self.clock()) // 86400 - self.retention_days
        first_hour = first_day * 24
        try:
            with db.connection_context(), db.atomic():
                return (UsageCounter.delete().where(UsageCounter.hour < first_hour).execute()
                        + UsageLatency.delete().where(UsageLatency.hour < first_hour).execute()
                        + UsageUser.delete().where(UsageUser.day < first_day).execute())
        except Exception:
            log.exception("usage retention run failed; tried again next time")
            return 0
