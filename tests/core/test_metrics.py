"""/metrics (issue 12 item 2): calls by method and code equal the calls made, latency histograms
folded bucket for bucket, key-cache hits, upload tickets and thumbnail time, the bearer token,
and two real serve.py processes sharing a multiprocess directory, each reporting the sum."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import falcon.testing
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from api.app import build_context, create_app
from api.models.docs import UploadTicket
from api.runtime.metrics import LATENCY_BUCKETS, Metrics
from api.runtime.usage import UsageRecorder
from keys.secret import Secret
from tests.conftest import TEST_DATABASE_URL
from tests.core.test_hostile_clients import demo_server
from tests.upload.conftest import jpeg


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a scrape."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def scrape(client, **headers: str) -> dict:
    result = client.simulate_get("/metrics", headers=headers)
    assert result.status_code == 200, result.text
    assert result.headers["content-type"].startswith("text/plain")
    return samples(result.text)


def calls(found: dict, method: str, code: int) -> float:
    return found.get(("api_calls_total", (("code", str(code)), ("method", method))), 0.0)


def histogram(found: dict, name: str, method: str) -> dict[str, float]:
    """{le: cumulative count} and "count", "sum" of a histogram's child."""
    out = {}
    for (sample, labels), value in found.items():
        tags = dict(labels)
        if tags.get("method") != method:
            continue
        if sample == f"{name}_bucket":
            out[tags["le"]] = value
        elif sample in (f"{name}_count", f"{name}_sum"):
            out[sample.rsplit("_", 1)[1]] = value
    return out


def test_calls_by_method_and_code_equal_the_calls_made(client, call):
    for _ in range(3):
        call("test.hello")
    for _ in range(2):
        call("test.echo", echo="x")
    call("no.such.method")
    call("test.hello", key=None, api_key="")  # 100: no key
    found = scrape(client)
    assert calls(found, "test.hello", 0) == 3
    assert calls(found, "test.echo", 0) == 2
    assert calls(found, "-", 103) == 1
    assert calls(found, "test.hello", 100) == 1
    hello = histogram(found, "api_call_duration_seconds", "test.hello")
    assert hello["count"] == 4 and hello["+Inf"] == 4 and hello["sum"] > 0
    edges = [hello[le] for le in sorted((k for k in hello if k not in ("count", "sum")),
                                        key=float)]
    assert edges == sorted(edges)  # cumulative
    assert calls(scrape(client), "test.hello", 0) == 3  # a scrape counts nothing twice


def test_folded_histograms_match_observing_each_call(clock):
    """Calls folded by buckets land where observe() would have put them, sum included."""
    durations_ms = [0.05, 0.2, 0.3, 1.0, 3.3, 7.0, 40.0, 250.0, 1300.0, 90_000.0]
    usage = UsageRecorder(clock)

    class NoKeys:
        hits = misses = 0

    from api.config import Settings

    metrics = Metrics(Settings(), usage, NoKeys(), clock=clock)
    for ms in durations_ms:
        usage.record("k", "m", 0, ms)
    metrics.flush()
    direct = Histogram("direct", "-", buckets=LATENCY_BUCKETS, registry=CollectorRegistry())
    for ms in durations_ms:
        direct.observe(ms / 1000)
    folded = {s.labels["le"]: s.value for s in metrics.latency.collect()[0].samples
              if s.name.endswith("_bucket")}
    expected = {s.labels["le"]: s.value for s in direct.collect()[0].samples
                if s.name.endswith("_bucket")}
    assert folded == expected
    total = [s.value for s in metrics.latency.collect()[0].samples if s.name.endswith("_sum")]
    assert total == [pytest.approx(sum(durations_ms) / 1000)]
    assert metrics.calls.labels("m", "0")._value.get() == len(durations_ms)


def test_key_cache_hits_and_misses(client, call):
    for _ in range(3):
        call("test.hello")
    found = scrape(client)
    assert found[("api_key_cache_lookups_total", (("result", "miss"),))] == 1
    assert found[("api_key_cache_lookups_total", (("result", "hit"),))] == 2


def test_upload_tickets_by_state_and_thumbnail_time(client, call, ctx, owner, token_for, clock):
    token = token_for(owner, doc="write")
    call("upload.file", token=token, files={"file": ("a.jpg", jpeg())})
    UploadTicket.create(user=owner, api_key="k", state="failed")
    clock.advance(42)
    found = scrape(client)
    assert tickets(found) == {"queued": 1, "working": 0, "done": 0, "failed": 1}
    assert found[("api_upload_oldest_queued_seconds", ())] == 42
    assert found[("api_thumbnail_seconds_count", ())] == 0
    assert ctx.uploads.process_pending() == 1
    found = scrape(client)
    assert tickets(found) == {"queued": 0, "working": 0, "done": 1, "failed": 1}
    assert found[("api_upload_oldest_queued_seconds", ())] == 0
    assert found[("api_thumbnail_seconds_count", ())] == 1
    assert found[("api_thumbnail_seconds_sum", ())] > 0


def tickets(found: dict) -> dict[str, float]:
    return {dict(labels)["state"]: value for (name, labels), value in found.items()
            if name == "api_upload_tickets"}


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="the pool is PostgreSQL's")
def test_database_pool_connections(client, call):
    call("test.hello")
    found = scrape(client)
    assert ("api_db_pool_connections", (("state", "in_use"),)) in found
    assert found[("api_db_pool_connections", (("state", "idle"),))] >= 1


def test_a_token_guards_metrics_when_set(settings, ctx, call):
    guarded = falcon.testing.TestClient(create_app(settings, ctx=ctx))
    ctx.metrics.token = "s3cr3t-metrics"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cr3t-metrics"},
                    {"Authorization": "Basic s3cr3t-metrics"}):
        result = guarded.simulate_get("/metrics", headers=headers)
        assert result.status_code == 401
        assert result.headers["www-authenticate"].startswith("Bearer")
        assert result.json == {"error": "unauthorized: send Authorization: Bearer "
                                        "<API_METRICS_TOKEN>"}
        assert "s3cr3t" not in result.text
    call("test.hello")
    assert calls(scrape(guarded, Authorization="Bearer s3cr3t-metrics"), "test.hello", 0) == 1


def test_the_token_setting_reaches_the_metrics(settings, clock):
    ctx = build_context(settings.with_(metrics_token=Secret("from-settings")), clock=clock)
    try:
        assert ctx.metrics is not None and ctx.metrics.authorized("Bearer from-settings")
        assert not ctx.metrics.authorized(None) and not ctx.metrics.authorized("Bearer x")
    finally:
        for worker in ctx.background:
            worker.stop()


def test_metrics_off_is_404(settings, clock):
    ctx = build_context(settings.with_(metrics=False), clock=clock)
    try:
        client = falcon.testing.TestClient(create_app(ctx.settings, ctx=ctx))
        assert ctx.metrics is None
        result = client.simulate_get("/metrics")
        assert result.status_code == 404 and result.headers["content-type"] == "application/json"
    finally:
        for worker in ctx.background:
            worker.stop()


def fetch(port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return response.read().decode()


def until_equal(read, expected, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def test_two_processes_sum_their_calls_in_either_scrape(tmp_path, settings):
    """Two serve.py processes, one multiprocess directory: calls to each are summed in the
    /metrics of either; one stopped cleanly leaves the live gauges and keeps its counts."""
    directory = tmp_path / "metrics"
    env = {"API_METRICS_DIR": str(directory), "API_DATABASE_URL": settings.resolved_database_url,
           "API_RATELIMIT_PER_ADDRESS": "", "API_RATELIMIT_PER_KEY": ""}
    data = tmp_path / "data"
    with demo_server(data, **env) as (port_a, hello_a, pid_a):
        with demo_server(data, **env) as (port_b, hello_b, pid_b):
            for url, times in ((hello_a, 3), (hello_b, 5)):
                for _ in range(times):
                    urllib.request.urlopen(url, timeout=10).read()
            for port in (port_a, port_b):
                def hello(port: int = port) -> tuple[float, float]:
                    found = samples(fetch(port))
                    return (calls(found, "test.hello", 0),
                            histogram(found, "api_call_duration_seconds", "test.hello")
                            .get("count", 0))
                assert until_equal(hello, (8, 8)) == (8, 8)
            found = samples(fetch(port_a))
            assert "api_upload_tickets" in {name for name, _ in found}  # once, not per process
            live = sorted(path.name for path in directory.glob("gauge_livesum_*.db"))
            if TEST_DATABASE_URL:  # the pool's gauge: one file per live process
                assert live == sorted([f"gauge_livesum_{pid_a}.db", f"gauge_livesum_{pid_b}.db"])
        assert not list(Path(directory).glob(f"gauge_livesum_{pid_b}.db"))  # marked dead
        assert calls(samples(fetch(port_a)), "test.hello", 0) == 8  # its counts stay
