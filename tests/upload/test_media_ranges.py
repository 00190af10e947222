"""Range requests on the media route (issue 15): 206 with the right bytes for every single-range
form, 416, malformed and multiple ranges answered whole, If-Range, HEAD, rendition types, a
player's requests through a real waitress server, and a 1 KB range of a 50 MB file reading 1 KB
(S3: test_media_ranges_s3.py). Secrets are checked before any Range. On SQLite and PostgreSQL
alike (TEST_DATABASE_URL)."""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from api.media.names import ORIGINAL, media_path, original_url, storage_name, thumb_url
from api.media.storage import RangeNotSatisfiable, S3Storage, StorageUnavailable
from api.models.docs import Doc, Media
from tests.upload.conftest import jpeg

YEAR = "max-age=31536000"
BIG = 50 << 20  # bytes of the large file
KB = 1024


@pytest.fixture
def photo(upload, queue) -> tuple[Doc, bytes]:
    """A processed public photo and its original's bytes (a few KB of noise-free JPEG)."""
    data = jpeg(640, 480)
    upload(data)
    queue.process_pending()
    return Doc.get(), data


def rendition(ctx: Any, doc: Doc, label: str, ext: str, size: int) -> bytes:
    """A stored web rendition of ``doc`` (random bytes: the route serves any file the same way)."""
    body = secrets.token_bytes(size)
    Media.create(doc=doc, label=label, ext=ext, width=320, height=240, duration=3, size=size)
    ctx.storage.put(storage_name(doc.id, doc.secret, label, ext), io.BytesIO(body))
    return body


def get(client: Any, url: str, range_: str | None = None, **headers: str) -> Any:
    if range_ is not None:
        headers["Range"] = range_
    return client.simulate_get(url, headers=headers)


@pytest.mark.parametrize("range_, first, last", [
    ("bytes=0-9", 0, 9),
    ("bytes=3-3", 3, 3),
    ("bytes=100-", 100, None),
    ("bytes=0-", 0, None),  # a player's first request
    ("bytes=-7", -7, None),  # the last 7 bytes
    ("bytes=-99999999", 0, None),  # a suffix longer than the file: all of it
    ("bytes=10-99999999", 10, None),  # an end past the file: up to its last byte
    ("BYTES=1-2", 1, 2),  # the unit is case-insensitive
    ("bytes=1-2,", 1, 2),  # an empty list element is no second range
    (" bytes=1-2 ", 1, 2),  # whitespace around a field value is not part of it
])
def test_one_range_is_a_206_with_those_bytes(client, photo, range_, first, last):
    doc, data = photo
    size = len(data)
    expected = data[first:None if last is None else last + 1]
    start = first % size
    answer = get(client, original_url("", doc), range_)
    assert answer.status_code == 206
    assert answer.content == expected
    assert answer.headers["content-range"] == f"bytes {start}-{start + len(expected) - 1}/{size}"
    assert answer.headers["content-length"] == str(len(expected))
    assert answer.headers["accept-ranges"] == "bytes"
    assert answer.headers["content-type"] == "image/jpeg"
    assert answer.headers["cache-control"] == f"public, {YEAR}, immutable"
    assert answer.headers["etag"] == get(client, original_url("", doc)).headers["etag"]


def test_whole_answers_say_they_accept_ranges_and_name_a_strong_etag(client, photo):
    doc, data = photo
    whole = get(client, original_url("", doc))
    head = client.simulate_head(original_url("", doc))
    thumb = get(client, thumb_url("", doc, "240"))
    for answer in (whole, head, thumb):
        assert answer.status_code == 200 and answer.headers["accept-ranges"] == "bytes"
        assert answer.headers["cache-control"] == f"public, {YEAR}, immutable"
    assert whole.content == data and "content-range" not in whole.headers
    etag = whole.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert head.headers["etag"] == etag != thumb.headers["etag"]
    assert doc.original_secret not in etag  # a digest, not the name


@pytest.mark.parametrize("range_", ["bytes={size}-", "bytes={size}-{beyond}", "bytes=-0",
                                    "bytes={beyond}-{beyond}"])
def test_ranges_past_the_end_are_416_with_the_size(client, photo, range_):
    doc, data = photo
    size = len(data)
    answer = get(client, original_url("", doc), range_.format(size=size, beyond=size + 10))
    assert answer.status_code == 416 and answer.content == b""
    assert answer.headers["content-range"] == f"bytes */{size}"
    assert answer.headers["accept-ranges"] == "bytes"
    assert answer.headers["cache-control"] == "no-store"  # never kept as the URL's answer


@pytest.mark.parametrize("range_", [
    "bytes=5-2",  # last before first
    "bytes=abc", "bytes=", "bytes=-", "bytes", "=0-1", "bytes 0-1", "items=0-1", "bytes=0-1-2",
    "bytes=1.5-2", "bytes=0x10-20", "bytes=+1-2", "bytes=\u0661-\u0662",  # Arabic-Indic digits
    "bytes=" + "," * 300 + "0-1",  # longer than any player's
])
def test_malformed_ranges_are_ignored(client, photo, range_):
    doc, data = photo
    answer = get(client, original_url("", doc), range_)
    assert answer.status_code == 200 and answer.content == data
    assert answer.headers["accept-ranges"] == "bytes" and "content-range" not in answer.headers


@pytest.mark.parametrize("range_", ["bytes=0-1,5-6", "bytes=0-1, 5-6", "bytes=-1,0-0",
                                    "bytes=0-1,99999999-", ",".join(["bytes=0-0"] * 40)])
def test_several_ranges_get_the_whole_file(client, photo, range_):
    doc, data = photo
    answer = get(client, original_url("", doc), range_)
    assert answer.status_code == 200 and answer.content == data
    assert "multipart" not in answer.headers["content-type"]


def test_if_range_applies_the_range_only_to_this_file(client, photo):
    doc, data = photo
    url = original_url("", doc)
    etag = get(client, url).headers["etag"]
    same = get(client, url, "bytes=0-3", **{"If-Range": etag})
    assert same.status_code == 206 and same.content == data[:4]
    for other in ['"0123456789abcdef01234567"', f"W/{etag}", "Wed, 21 Oct 2015 07:28:00 GMT",
                  get(client, thumb_url("", doc, "240")).headers["etag"]]:
        answer = get(client, url, "bytes=0-3", **{"If-Range": other})
        assert answer.status_code == 200 and answer.content == data, other
    alone = get(client, url, **{"If-Range": etag})  # without a Range, If-Range means nothing
    assert alone.status_code == 200 and alone.content == data


def test_head_ignores_range(client, photo):
    """RFC 9110 §14.2 defines range handling for GET alone: a HEAD is answered as a whole GET."""
    doc, data = photo
    for range_ in ("bytes=0-9", "bytes=999999-"):
        head = client.simulate_head(original_url("", doc), headers={"Range": range_})
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(data))
        assert head.headers["accept-ranges"] == "bytes" and "content-range" not in head.headers


def test_secrets_are_checked_before_any_range(client, photo):
    doc, _ = photo
    etag = get(client, original_url("", doc)).headers["etag"]
    wrong = media_path(doc.id, "0" * 16, ORIGINAL, doc.original_ext)
    for range_ in ("bytes=0-9", "bytes=999999-", "bytes=junk", "bytes=0-1,2-3"):
        assert get(client, wrong, range_).status_code == 404
        assert get(client, wrong, range_, **{"If-Range": etag}).status_code == 404
    assert client.simulate_head(wrong, headers={"Range": "bytes=0-1"}).status_code == 404


def test_failures_are_never_cached_for_a_year(client, ctx, photo, monkeypatch):
    """A file gone or a store down is no answer for the URL's year: no Cache-Control of it."""
    doc, _ = photo

    def down(*args: Any) -> Any:
        raise StorageUnavailable("object storage unreachable (a test)")

    url = original_url("", doc)
    for method in ("fetch", "fetch_range", "size"):
        monkeypatch.setattr(ctx.storage, method, down)
    for answer in (get(client, url), get(client, url, "bytes=0-9"), client.simulate_head(url)):
        assert answer.status_code == 503
        assert "immutable" not in answer.headers.get("cache-control", "")
    monkeypatch.undo()
    ctx.storage.delete(storage_name(doc.id, doc.original_secret, ORIGINAL, doc.original_ext))
    for answer in (get(client, url), get(client, url, "bytes=0-9")):
        assert answer.status_code == 404
        assert "immutable" not in answer.headers.get("cache-control", "")


@pytest.mark.parametrize("label, ext, content_type", [
    ("mp4", "mp4", "video/mp4"),
    ("ipod", "mp4", "video/mp4"),
    ("hd", "mp4", "video/mp4"),
    ("m4a", "m4a", "audio/mp4"),
    ("mp3", "mp3", "audio/mpeg"),
    ("webm", "webm", "video/webm"),
    ("ogg", "ogg", "audio/ogg"),
])
def test_renditions_are_served_with_their_types_and_ranges(client, ctx, photo, label, ext,
                                                          content_type):
    doc, _ = photo
    body = rendition(ctx, doc, label, ext, 3000)
    url = thumb_url("", doc, label, ext)
    whole = get(client, url)
    assert whole.status_code == 200 and whole.headers["content-type"] == content_type
    assert whole.content == body
    seek = get(client, url, "bytes=1000-1999")
    assert seek.status_code == 206 and seek.content == body[1000:2000]
    assert seek.headers["content-type"] == content_type


def test_a_players_requests_through_waitress(live_server, photo, ctx):
    """What a video element sends: ``bytes=0-`` first, then seeks, on one kept-alive connection."""
    doc, _ = photo
    body = rendition(ctx, doc, "mp4", "mp4", 3 << 20)  # more than a block of the WSGI server
    url = thumb_url(live_server.base_url, doc, "mp4", "mp4")
    with requests.Session() as player:
        first = player.get(url, headers={"Range": "bytes=0-"}, timeout=10)
        assert first.status_code == 206 and first.content == body
        assert first.headers["content-range"] == f"bytes 0-{len(body) - 1}/{len(body)}"
        assert first.headers["content-type"] == "video/mp4"
        etag = first.headers["etag"]
        for range_, expected in [("bytes=2000000-", body[2000000:]),
                                 ("bytes=1048570-1048600", body[1048570:1048601]),
                                 ("bytes=-1000", body[-1000:])]:
            seek = player.get(url, headers={"Range": range_, "If-Range": etag}, timeout=10)
            assert seek.status_code == 206 and seek.content == expected, range_
            assert seek.headers["content-length"] == str(len(expected))
        past = player.get(url, headers={"Range": f"bytes={len(body)}-"}, timeout=10)
        assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(body)}"
        whole = player.get(url, timeout=10)
        assert whole.status_code == 200 and whole.content == body


class ReadCounter:
    """Wraps a storage's ``fetch`` (which ``LocalStorage.fetch_range`` opens the file with) so
    that every byte read from the stored file is counted."""

    def __init__(self, storage: Any, monkeypatch: Any) -> None:
        self.bytes_read = 0
        inner = storage.fetch

        def fetch(name: str) -> tuple[Any, int]:
            stream, size = inner(name)
            return _Counted(stream, self), size

        monkeypatch.setattr(storage, "fetch", fetch)


class _Counted:
    def __init__(self, stream: Any, counter: ReadCounter) -> None:
        self._stream = stream
        self._counter = counter

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._counter.bytes_read += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def close(self) -> None:
        self._stream.close()


@pytest.fixture
def big_original(photo, settings) -> Iterator[tuple[Doc, int, bytes]]:
    """The photo's original replaced on disk by a 50 MB file (sparse: zeros) holding a 4 KB
    marker at 30 MB; the doc, the marker's offset and the marker."""
    doc, _ = photo
    path = Path(settings.data_dir) / "media" / storage_name(doc.id, doc.original_secret,
                                                            ORIGINAL, doc.original_ext)
    offset, marker = 30 << 20, secrets.token_bytes(4 * KB)
    with path.open("r+b") as out:
        out.truncate(BIG)
        out.seek(offset)
        out.write(marker)
    assert path.stat().st_size == BIG
    yield doc, offset, marker
    os.truncate(path, 0)


@pytest.mark.parametrize("served_by", ["falcon", "waitress"])
def test_a_small_range_of_a_large_file_reads_only_the_range(client, live_server, ctx, monkeypatch,
                                                             big_original, served_by):
    doc, offset, marker = big_original
    counter = ReadCounter(ctx.storage, monkeypatch)
    range_ = f"bytes={offset + 1000}-{offset + 1000 + KB - 1}"
    if served_by == "falcon":
        answer = get(client, original_url("", doc), range_)
        status, content, headers = answer.status_code, answer.content, answer.headers
    else:
        answer = requests.get(original_url(live_server.base_url, doc), headers={"Range": range_},
                              timeout=10)
        status, content, headers = answer.status_code, answer.content, answer.headers
    assert status == 206 and content == marker[1000:1000 + KB]
    assert headers["content-range"] == f"bytes {offset + 1000}-{offset + 1000 + KB - 1}/{BIG}"
    assert counter.bytes_read == KB  # not 50 MB, not even a block of it


class _StubClient:
    """An S3-compatible store's answers that moto does not give: a refused range without the
    object's length (as some stores answer), or a range ignored (the whole object back)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def get_object(self, **params: Any) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def head_object(self, **params: Any) -> Any:
        return {"ContentLength": 1234}


class _Body:
    def read(self, size: Any = None) -> bytes:
        return b""

    def close(self) -> None:
        pass


def test_a_refused_range_without_a_length_asks_the_length():
    refused = ClientError({"Error": {"Code": "InvalidRange"}}, "GetObject")
    store = S3Storage(_StubClient(refused), "media")
    with pytest.raises(RangeNotSatisfiable) as raised:
        store.fetch_range("00/01/1.abcdef0123456789.original.jpg", 5000, None)
    assert raised.value.size == 1234


def test_a_store_ignoring_ranges_is_unavailable_not_wrong_bytes():
    whole = {"Body": _Body(), "ContentLength": 1234}
    store = S3Storage(_StubClient(whole), "media")
    with pytest.raises(StorageUnavailable):
        store.fetch_range("00/01/1.abcdef0123456789.original.jpg", 10, 20)
