"""An S3 endpoint that accepts connections and never answers holds no request thread for long:
the media route answers 503 within the read timeout, then at once while the circuit breaker is
open; at most half the request threads wait for objects at once; logs name the doc and label,
never the storage name (its secret). Also: a thumbnail's delete is one request, and the sweep
lists the bucket's incoming/ prefix at most every few minutes."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from api.media import incoming, storage
from api.media.incoming import ObjectIncoming
from api.media.names import thumb_url
from api.media.storage import S3Storage, StorageUnavailable
from api.models.docs import Doc, Thumb
from keys.secret import Secret

SECRET = "5ec12e7a"  # the doc's media secret: in its URLs and storage names, never in logs


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A socket that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def settings(settings, silent_endpoint):
    return settings.with_(storage="s3", s3_endpoint_url=silent_endpoint, s3_bucket="media",
                          s3_region="us-east-1", s3_access_key="test-access",
                          s3_secret_key=Secret("s3-secret"), s3_addressing_style="path",
                          s3_connect_timeout=1.0, s3_timeout=1.0, s3_max_attempts=1)


def test_media_answers_503_in_bounded_time_then_at_once(client, ctx, owner, caplog):
    doc = Doc.create(owner=owner, title="t", secret=SECRET, original_secret="0bad5ec1",
                     original_ext="jpg", posted_at=1, modified_at=1, md5="0" * 32)
    Thumb.create(doc=doc, label="240", w=240, h=180)
    path = thumb_url("", doc, "240")

    for _ in range(storage.BREAKER_FAILURES):  # one slow answer alone does not open the breaker
        started = time.monotonic()
        answer = client.simulate_get(path)
        assert answer.status_code == 503 and answer.headers["retry-after"]
        assert time.monotonic() - started < 4  # one read timeout, not 40–80 s

    for method in (client.simulate_get, client.simulate_head):  # the breaker is open
        caplog.clear()
        assert method(path).status_code == 503
        assert "not tried again" in caplog.text  # refused without asking the store
    assert f"doc {doc.id} 240" in caplog.text
    assert SECRET not in caplog.text and "s3-secret" not in caplog.text


class BlockingClient:
    """An S3 client whose get_object waits until ``release`` is set."""

    def __init__(self) -> None:
        self.waiting, self.release = threading.Event(), threading.Event()

    def get_object(self, **_: Any) -> dict[str, Any]:
        self.waiting.set()
        self.release.wait(10)
        return {"Body": io.BytesIO(b"abc"), "ContentLength": 3}


def test_fetches_beyond_the_cap_are_refused_at_once():
    blocking = BlockingClient()
    store = S3Storage(blocking, "media", "media/", max_fetches=1)
    waiter = threading.Thread(target=store.fetch, args=("00/01/1.abcdef12.240.jpg",))
    waiter.start()
    assert blocking.waiting.wait(5)
    started = time.monotonic()
    with pytest.raises(StorageUnavailable, match=r"busy \(doc 1 240\)"):
        store.fetch("00/01/1.abcdef12.240.jpg")
    assert time.monotonic() - started < 5  # not queued behind the blocked read (10 s)
    blocking.release.set()
    waiter.join(5)
    body, length = store.fetch("00/01/1.abcdef12.240.jpg")  # a place is free again
    assert (body.read(), length) == (b"abc", 3)


class RecordingClient:
    """An S3 client that records the requests made to it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def delete_object(self, **_: Any) -> None:
        self.calls.append("delete")

    def list_multipart_uploads(self, **_: Any) -> dict[str, Any]:
        self.calls.append("list uploads")
        return {}


def test_only_an_original_or_an_upload_looks_for_unfinished_uploads():
    recording = RecordingClient()
    store = S3Storage(recording, "media", "media/")
    store.delete("00/01/1.abcdef12.240.jpg")
    assert recording.calls == ["delete"]
    store.delete("00/01/1.abcdef12.original.jpg")
    store.delete("0123456789abcdef01234567")  # a waiting upload
    assert recording.calls == ["delete", "delete", "list uploads", "delete", "list uploads"]


class CountingStore:
    def __init__(self) -> None:
        self.listings = 0

    def listing(self) -> list[tuple[float, str]]:
        self.listings += 1
        return [(1.0, "0123456789abcdef01234567")]


def test_the_bucket_s_incoming_prefix_is_listed_at_most_every_few_minutes(monkeypatch):
    store = CountingStore()
    waiting = ObjectIncoming(store)  # type: ignore[arg-type]
    assert waiting.listing() == [(1.0, "incoming/0123456789abcdef01234567")]
    assert waiting.listing() == [] and store.listings == 1  # the next poll, 2 s later
    now = time.monotonic()
    monkeypatch.setattr(incoming.time, "monotonic", lambda: now + incoming.S3_SWEEP_SECONDS)
    assert len(waiting.listing()) == 1 and store.listings == 2


def test_the_breaker_closes_again_after_its_time(monkeypatch, silent_endpoint):
    monkeypatch.setattr(storage, "BREAKER_SECONDS", 0.3)
    store = storage.s3_storage(
        storage.Settings(storage="s3", s3_endpoint_url=silent_endpoint, s3_bucket="media",
                         s3_region="us-east-1", s3_access_key="a", s3_secret_key=Secret("b"),
                         s3_addressing_style="path", s3_timeout=0.5, s3_max_attempts=1), "media")
    for _ in range(storage.BREAKER_FAILURES):
        with pytest.raises(StorageUnavailable, match="ReadTimeoutError"):
            store.size("00/01/1.abcdef12.240.jpg")
    with pytest.raises(StorageUnavailable, match="not tried again"):
        store.size("00/01/1.abcdef12.240.jpg")
    time.sleep(0.4)
    with pytest.raises(StorageUnavailable, match="ReadTimeoutError"):  # tried again
        store.size("00/01/1.abcdef12.240.jpg")
