"""Range requests answered from an S3 bucket (moto's server, as test_s3_storage.py starts it):
GetObject carries the ``Range`` and the store sends just those bytes, never the whole object;
416 with the object's length; a wrong secret never reaches the bucket."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from api.media.names import ORIGINAL, media_path, original_url, storage_name
from tests.upload.test_media_ranges import YEAR, get, photo  # noqa: F401 (photo: fixture)
from tests.upload.test_s3_storage import client as s3_client
from tests.upload.test_s3_storage import s3_server, settings  # noqa: F401 (fixtures: S3 media)


@pytest.fixture
def gets(ctx, monkeypatch) -> list[dict[str, Any]]:
    """Every GetObject the media storage sends: its parameters and the length of its answer."""
    seen: list[dict[str, Any]] = []
    inner = ctx.storage.client.get_object

    def get_object(**params: Any) -> Any:
        answer = inner(**params)
        seen.append({**params, "answered": answer["ContentLength"]})
        return answer

    monkeypatch.setattr(ctx.storage.client, "get_object", get_object)
    return seen


def test_ranges_come_from_the_bucket_by_range(client, photo, settings, gets):  # noqa: F811
    doc, _ = photo
    body = secrets.token_bytes(5 << 20)
    key = "site/media/" + storage_name(doc.id, doc.original_secret, ORIGINAL, doc.original_ext)
    s3_client(settings.s3_endpoint_url).put_object(Bucket=settings.s3_bucket, Key=key, Body=body)
    url = original_url("", doc)
    cases = [("bytes=4000000-4000999", body[4000000:4001000]),
             ("bytes=5000000-", body[5000000:]), ("bytes=-10", body[-10:])]
    for range_, expected in cases:
        answer = get(client, url, range_)
        assert answer.status_code == 206 and answer.content == expected, range_
        assert answer.headers["content-range"].endswith(f"/{len(body)}")
        assert answer.headers["cache-control"] == f"public, {YEAR}, immutable"
    assert [(g["Range"], g["answered"]) for g in gets] == [
        (range_, len(expected)) for range_, expected in cases]  # never the whole object
    past = get(client, url, f"bytes={len(body)}-")
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(body)}"
    whole = get(client, url)
    assert whole.status_code == 200 and whole.content == body
    assert "Range" not in gets[-1]


def test_a_wrong_secret_never_reaches_the_bucket(client, photo, gets):  # noqa: F811
    doc, _ = photo
    wrong = media_path(doc.id, "0" * 16, ORIGINAL, doc.original_ext)
    assert get(client, wrong, "bytes=0-9").status_code == 404
    assert gets == []
