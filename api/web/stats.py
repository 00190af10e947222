"""Statistics per key: ``/apps/keys/<api_key>/stats`` (the page and its chart),
``…/stats.json`` and ``…/stats.csv``, for the key's owner only (anyone else: 404).

The figures come from the tables the usage recorder flushes (``usage_counters``, ``usage_latency``,
``usage_users``), so calls still in memory show after the next flush (API_USAGE_FLUSH_SECONDS).
``from`` and ``to`` are UNIX seconds (default: the last 7 days up to now), ``step`` is ``hour``
(default) or ``day``; a range covers every hour from ``from``'s to ``to``'s and may span at most
400 days. Percentiles come from the latency histograms (api.runtime.latency): within one
bucket's width of the true value (a factor 1.26 either way).
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import falcon
from peewee import fn

from api.models.usage import UsageLatency, UsageUser
from api.runtime.latency import percentile
from api.web.console import KEYS_HOME, OwnKeyPage
from api.web.pages import BadRequest, Pages
from keys.db import as_tuples
from keys.models import ApiKey, UsageCounter, User

DEFAULT_DAYS = 7
MAX_DAYS = 400
STEPS = {"hour": 3600, "day": 86400}
# The statistics page loads the chart library and fetches stats.json from this site only; every
# other page keeps the stricter policy of api.web.pages.
PAGE_CSP = ("default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; "
            "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'")


class StatsRange:
    """A validated ``from``/``to``/``step``: hours ``first_hour`` … ``last_hour`` inclusive."""

    def __init__(self, params: Mapping[str, str], now: int) -> None:
        to = _seconds(params, "to", now)
        start = _seconds(params, "from", to - DEFAULT_DAYS * 86400)
        step = params.get("step", "hour") or "hour"
        if step not in STEPS:
            raise BadRequest("step must be hour or day.")
        if start > to:
            raise BadRequest("from must not be after to.")
        if to - start > MAX_DAYS * 86400:
            raise BadRequest(f"The range may span at most {MAX_DAYS} days.")
        self.start, self.end, self.step = start, to, step
        self.first_hour, self.last_hour = start // 3600, to // 3600
        self.seconds = STEPS[step]

    def slot(self, hour: int) -> int:
        """The start (UNIX seconds) of the step an hour falls in."""
        return hour * 3600 // self.seconds * self.seconds

    def slots(self) -> list[int]:
        """Every step's start over the range, in order."""
        first, last = self.slot(self.first_hour), self.slot(self.last_hour)
        return list(range(first, last + 1, self.seconds))


def _seconds(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name, "").strip()
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise BadRequest(f"{name} must be UNIX seconds (a whole number).")
    return int(raw)


def key_stats(api_key: str, span: StatsRange) -> dict[str, Any]:
    """The figures of stats.json."""
    in_range = ((UsageCounter.api_key == api_key) & (UsageCounter.hour >= span.first_hour)
                & (UsageCounter.hour <= span.last_hour))
    rows = as_tuples(UsageCounter
                     .select(UsageCounter.hour, UsageCounter.method, UsageCounter.code,
                             fn.SUM(UsageCounter.calls))
                     .where(in_range)
                     .group_by(UsageCounter.hour, UsageCounter.method, UsageCounter.code)
                     .tuples())
    series = {t: [0, 0] for t in span.slots()}
    methods: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    codes: dict[int, int] = defaultdict(int)
    for hour, method, code, calls in rows:
        calls = int(calls or 0)
        entry = series.setdefault(span.slot(hour), [0, 0])
        entry[0] += calls
        methods[method][0] += calls
        codes[code] += calls
        if code != 0:
            entry[1] += calls
            methods[method][1] += calls
    histograms: dict[str, dict[int, int]] = defaultdict(dict)
    for method, bucket, calls in as_tuples(
            UsageLatency
            .select(UsageLatency.method, UsageLatency.bucket, fn.SUM(UsageLatency.calls))
            .where((UsageLatency.api_key == api_key) & (UsageLatency.hour >= span.first_hour)
                   & (UsageLatency.hour <= span.last_hour))
            .group_by(UsageLatency.method, UsageLatency.bucket)
            .tuples()):
        histograms[method][bucket] = int(calls or 0)
    users = as_tuples(UsageUser
                      .select(UsageUser.day, fn.COUNT(UsageUser.id))
                      .where((UsageUser.api_key == api_key)
                             & (UsageUser.day >= span.start // 86400)
                             & (UsageUser.day <= span.end // 86400))
                      .group_by(UsageUser.day)
                      .order_by(UsageUser.day)
                      .tuples())

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return {
        "key": api_key, "from": span.start, "to": span.end, "step": span.step,
        "series": [{"t": t, "calls": c, "errors": e} for t, (c, e) in sorted(series.items())],
        "methods": [{"method": m, "calls": c, "errors": e,
                     "p50_ms": ms(percentile(histograms.get(m, {}), 0.50)),
                     "p95_ms": ms(percentile(histograms.get(m, {}), 0.95)),
                     "p99_ms": ms(percentile(histograms.get(m, {}), 0.99))}
                    for m, (c, e) in sorted(methods.items(), key=lambda i: (-i[1][0], i[0]))],
        "codes": [{"code": code, "calls": n} for code, n in sorted(codes.items())],
        "users": [{"t": day * 86400, "users": int(n)} for day, n in users],
    }


def key_csv(api_key: str, span: StatsRange) -> str:
    """stats.csv: one row per step, method and code (time, method, code, calls, mean ms, p95 ms)."""
    totals: dict[tuple[int, str, int], list[float]] = defaultdict(lambda: [0, 0.0])
    for hour, method, code, calls, total_ms in as_tuples(
            UsageCounter
            .select(UsageCounter.hour, UsageCounter.method, UsageCounter.code,
                    UsageCounter.calls, UsageCounter.total_ms)
            .where((UsageCounter.api_key == api_key) & (UsageCounter.hour >= span.first_hour)
                   & (UsageCounter.hour <= span.last_hour))
            .tuples()):
        entry = totals[(span.slot(hour), method, code)]
        entry[0] += int(calls or 0)
        entry[1] += float(total_ms or 0.0)
    histograms: dict[tuple[int, str, int], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for hour, method, code, bucket, calls in as_tuples(
            UsageLatency
            .select(UsageLatency.hour, UsageLatency.method, UsageLatency.code,
                    UsageLatency.bucket, UsageLatency.calls)
            .where((UsageLatency.api_key == api_key) & (UsageLatency.hour >= span.first_hour)
                   & (UsageLatency.hour <= span.last_hour))
            .tuples()):
        histograms[(span.slot(hour), method, code)][bucket] += int(calls or 0)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["time", "method", "code", "calls", "mean_ms", "p95_ms"])
    for (t, method, code), (calls, total) in sorted(totals.items()):
        p95 = percentile(histograms.get((t, method, code), {}), 0.95)
        writer.writerow([t, method, code, int(calls), f"{total / calls:.3f}" if calls else "",
                         "" if p95 is None else f"{p95:.3f}"])
    return out.getvalue()


class KeyStats(OwnKeyPage):
    """``/apps/keys/<api_key>/stats`` and its ``.json`` and ``.csv`` (``kind``)."""

    def __init__(self, pages: Pages, kind: str) -> None:
        super().__init__(pages)
        self.kind = kind

    def view(self, req: falcon.Request, resp: falcon.Response, user: User, row: ApiKey) -> None:
        if self.kind == "page":
            self.pages.render(resp, "keys_stats.html", title=f"Statistics of {row.name}",
                              user=user, row=row, home=KEYS_HOME, now=int(self.pages.now()))
            resp.set_header("Content-Security-Policy", PAGE_CSP)
            return
        params = {name: str(req.get_param(name) or "") for name in ("from", "to", "step")}
        try:
            span = StatsRange(params, int(self.pages.now()))
        except BadRequest as error:
            if self.kind == "json":
                return _send(resp, falcon.HTTP_400, falcon.MEDIA_JSON,
                             json.dumps({"error": str(error)}))
            raise
        if self.kind == "json":
            _send(resp, falcon.HTTP_200, falcon.MEDIA_JSON, json.dumps(key_stats(row.key, span)))
        else:
            _send(resp, falcon.HTTP_200, "text/csv; charset=utf-8", key_csv(row.key, span))
            resp.set_header("Content-Disposition",
                            f'attachment; filename="{row.key}-stats.csv"')


def _send(resp: falcon.Response, status: str, content_type: str, text: str) -> None:
    resp.status = status
    resp.content_type = content_type
    resp.set_header("Cache-Control", "no-store")
    resp.set_header("X-Content-Type-Options", "nosniff")
    resp.text = text


def add_routes(app: falcon.App, pages: Pages) -> None:
    """Mount the statistics routes beside the key console."""
    for suffix, kind in (("stats", "page"), ("stats.json", "json"), ("stats.csv", "csv")):
        app.add_route(f"{KEYS_HOME}/{{api_key}}/{suffix}", KeyStats(pages, kind))
