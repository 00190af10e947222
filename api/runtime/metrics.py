"""Prometheus metrics at ``/metrics`` (prometheus_client; docs/operations.md, "Metrics").

Nothing here runs per call. The dispatcher already counts each call in the usage recorder's
memory (``UsageRecorder.meter``: one dict entry per method, code and latency bucket) and the key
cache counts its hits and misses in two ints; ``Metrics.flush`` folds what was counted since the
last fold into prometheus_client's counters and histograms, every second from its own thread,
before each scrape and once more at stop. A prometheus_client write costs 1-3 µs in multiprocess
mode (an mmap'd file under a lock), which the call path never pays.

What is exported:

- ``api_calls_total{method,code}``: API calls by method (``-``: unknown) and API code (0: ok);
- ``api_call_duration_seconds{method}``: a histogram whose edges are every other edge of the
  usage statistics' buckets (api.runtime.latency), so each counted call falls in exactly one;
- ``api_key_cache_lookups_total{result}``: ``hit`` or ``miss`` (a database read);
- ``api_thumbnail_seconds``: time to render one upload's thumbnails (the upload worker);
- ``api_db_pool_connections{state}``: PostgreSQL pool connections ``in_use`` and ``idle``;
- ``api_upload_tickets{state}`` and ``api_upload_oldest_queued_seconds``: read from the database
  at each scrape (the same for every process, so never summed).

Multiprocess mode: with ``API_METRICS_DIR`` (or ``PROMETHEUS_MULTIPROC_DIR``) every process of a
host writes its values to files there and ``/metrics`` of any process reports the sum over all of
them; the directory must be emptied at deploy start, before the processes start. A process that
stops cleanly marks itself dead (its gauges leave the sums; its counts stay, as counters should).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import falcon
from peewee import fn

from api.config import Settings
from api.models.docs import UploadTicket
from api.runtime.latency import BOUNDS, OVERFLOW
from api.runtime.periodic import PeriodicFlush
from keys.db import as_tuples, db

log = logging.getLogger("api.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The latency histogram's edges: BOUNDS[2], BOUNDS[4], … BOUNDS[26] (0.26 ms to 20 s), in seconds.
_EDGE_INDICES = tuple(range(2, 27, 2))
LATENCY_BUCKETS = tuple(float(f"{BOUNDS[i] / 1000:.6g}") for i in _EDGE_INDICES)
# The histogram bucket of each usage bucket: the first edge at or above its own upper edge.
_BUCKET_OF_SLOT = tuple(next((j for j, i in enumerate(_EDGE_INDICES) if i >= slot),
                             len(_EDGE_INDICES)) for slot in range(OVERFLOW + 1))
THUMBNAIL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TICKET_STATES = ("queued", "working", "done", "failed")  # api.media.queue's states
QUEUED = "queued"


def multiprocess_dir(settings: Settings) -> str:
    """The multiprocess directory in use ("" for a process reporting only itself):
    ``API_METRICS_DIR``, made and put in the environment as ``PROMETHEUS_MULTIPROC_DIR`` (which
    prometheus_client reads when first imported), else ``PROMETHEUS_MULTIPROC_DIR``. ValueError
    when prometheus_client was already imported without it: its values would stay in memory."""
    if not settings.metrics_dir:
        return os.environ.get(MULTIPROC_ENV, "")
    path = str(Path(settings.metrics_dir).resolve())
    values = sys.modules.get("prometheus_client.values")
    if values is not None and not os.environ.get(MULTIPROC_ENV):
        raise ValueError("API_METRICS_DIR is set but prometheus_client was imported before it "
                         "could take effect; set PROMETHEUS_MULTIPROC_DIR instead")
    Path(path).mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = path
    return path


class Metrics(PeriodicFlush):
    """prometheus_client metrics fed from in-process counts (a flush every second)."""

    thread_name = "metrics"
    interval = 1.0

    def __init__(self, settings: Settings, usage: Any, keys: Any, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = multiprocess_dir(settings)  # before prometheus_client is imported
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        from prometheus_client.process_collector import ProcessCollector

        self.usage = usage
        self.keys = keys
        self.token = settings.metrics_token.reveal() if settings.metrics_token else ""
        self.registry = CollectorRegistry()
        registry = self.registry
        self.calls = Counter("api_calls", "API calls by method ('-': unknown) and API code (0: ok)",
                             ("method", "code"), registry=registry)
        self.latency = Histogram("api_call_duration_seconds", "API call duration by method",
                                 ("method",), buckets=LATENCY_BUCKETS, registry=registry)
        self.key_lookups = Counter("api_key_cache_lookups",
                                   "API key lookups answered from the cache (hit) or the database "
                                   "(miss)", ("result",), registry=registry)
        self.thumbnails = Histogram("api_thumbnail_seconds",
                                    "Time to render one upload's thumbnails",
                                    buckets=THUMBNAIL_BUCKETS, registry=registry)
        self.db_connections = Gauge("api_db_pool_connections",
                                    "Database pool connections (PostgreSQL) in use and idle",
                                    ("state",), registry=registry, multiprocess_mode="livesum")
        self.tickets = TicketCollector(clock)
        if not self.directory:  # else the scrape registry gets them (exposition)
            registry.register(self.tickets)
            ProcessCollector(registry=registry)
        self._lock = threading.Lock()
        self._seen = {"hit": 0, "miss": 0}
        usage.meter()

    def flush(self) -> None:
        """Fold the calls and key lookups counted since the last fold; note the pool's use."""
        try:
            with self._lock:
                self._fold_calls(self.usage.take_metered())
                for result, total in (("hit", self.keys.hits), ("miss", self.keys.misses)):
                    if total > self._seen[result]:
                        self.key_lookups.labels(result).inc(total - self._seen[result])
                    self._seen[result] = total
                pool = pool_connections(db.obj)
                if pool is not None:
                    self.db_connections.labels("in_use").set(pool[0])
                    self.db_connections.labels("idle").set(pool[1])
        except Exception:  # the thread must outlive a bad fold
            log.exception("metrics fold failed")

    def _fold_calls(self, metered: dict[tuple[str, int, int], list[float]]) -> None:
        for (method, code, slot), (calls, total_ms) in metered.items():
            count = int(calls)
            self.calls.labels(method, str(code)).inc(count)
            observe_many(self.latency.labels(method), _BUCKET_OF_SLOT[slot], count,
                         total_ms / 1000.0)

    def observe_thumbnails(self, seconds: float) -> None:
        """One upload's thumbnails took ``seconds`` (the upload worker, off the call path)."""
        self.thumbnails.observe(seconds)

    def authorized(self, authorization: str | None) -> bool:
        """Whether a request with this Authorization header may read the metrics."""
        if not self.token:
            return True
        scheme, _, sent = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            sent.strip().encode("utf-8", "replace"), self.token.encode("utf-8"))

    def exposition(self) -> tuple[bytes, str]:
        """The text format of every metric (all processes' sums in multiprocess mode), and its
        content type; this process's counts are folded first."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        self.flush()
        registry = self.registry
        if self.directory:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.directory)
            registry.register(self.tickets)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def stop(self) -> None:
        """Stop the thread, fold what is left, and (multiprocess mode) leave the live sums."""
        super().stop()
        if self.directory:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), self.directory)


def observe_many(child: Any, bucket: int, count: int, total_seconds: float) -> None:
    """``count`` observations summing to ``total_seconds``, all in histogram bucket ``bucket``,
    added to a histogram child at once (two value writes, not ``count`` observe calls)."""
    buckets, total = getattr(child, "_buckets", None), getattr(child, "_sum", None)
    if buckets is None or total is None or bucket >= len(buckets):  # another prometheus_client
        for _ in range(count):
            child.observe(total_seconds / count)
        return
    total.inc(total_seconds)
    buckets[bucket].inc(count)


def pool_connections(database: Any) -> tuple[int, int] | None:
    """(in use, idle) connections of a pooled database (playhouse.pool); None for others."""
    in_use, idle = getattr(database, "_in_use", None), getattr(database, "_connections", None)
    if in_use is None or idle is None:
        return None
    return len(in_use), len(idle)


class TicketCollector:
    """Upload tickets by state and the oldest queued ticket's age, read at each scrape."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock

    def describe(self) -> list[Any]:
        return []  # so that registering it reads nothing

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            with db.connection_context():
                counts: dict[str, int] = dict(as_tuples(
                    UploadTicket
                    .select(UploadTicket.state, fn.COUNT(UploadTicket.id))
                    .group_by(UploadTicket.state)
                    .tuples()))
                oldest = (UploadTicket
                          .select(fn.MIN(UploadTicket.created_at))
                          .where(UploadTicket.state == QUEUED)
                          .scalar())
        except Exception as error:
            log.warning("metrics: upload tickets not read: %s", type(error).__name__)
            return
        tickets = GaugeMetricFamily("api_upload_tickets", "Upload tickets by state",
                                    labels=("state",))
        for state in TICKET_STATES:
            tickets.add_metric((state,), counts.get(state, 0))
        yield tickets
        age = max(0.0, self.clock() - oldest) if oldest else 0.0
        yield GaugeMetricFamily("api_upload_oldest_queued_seconds",
                                "Seconds the oldest queued upload ticket has waited (0: none)",
                                value=age)


class MetricsResource:
    """``/metrics``: the Prometheus text format; with API_METRICS_TOKEN, only for its bearer."""

    def __init__(self, metrics: Any) -> None:
        self.metrics = metrics

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.set_header("Cache-Control", "no-store")
        if not self.metrics.authorized(req.get_header("Authorization")):
            resp.status = falcon.HTTP_401
            resp.set_header("WWW-Authenticate", 'Bearer realm="metrics"')
            resp.content_type = falcon.MEDIA_JSON
            resp.data = json.dumps({"error": "unauthorized: send Authorization: Bearer "
                                             "<API_METRICS_TOKEN>"}).encode()
            return
        try:
            resp.data, resp.content_type = self.metrics.exposition()
        except Exception:
            log.exception("metrics exposition failed")
            resp.status = falcon.HTTP_500
            resp.content_type = falcon.MEDIA_JSON
            resp.data = json.dumps({"error": "metrics unavailable"}).encode()
