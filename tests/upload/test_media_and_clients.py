"""The media route (secrets, cache headers, types, traversal), sniffing, keyword parsing, and
PyIpernity 0.3.1 uploading end to end through a real waitress server."""

from __future__ import annotations

import hashlib

import pytest
import requests
from ipernity import IpernityAPI

from api.content.tags import parse_keywords
from api.media.imaging import Rejected, sniff
from api.media.names import media_path, original_url, thumb_url
from api.models.docs import Doc, Tag
from tests.upload.conftest import camera_exif, jpeg

YEAR = "max-age=31536000"


@pytest.fixture
def photo(upload, queue):
    """A processed public photo and its original bytes."""
    data = jpeg()
    upload(data)
    queue.process_pending()
    return Doc.get(), data


def test_thumbnails_and_originals_are_served_with_long_cache(client, photo):
    doc, data = photo
    thumb = client.simulate_get(thumb_url("", doc, "240"))
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.headers["cache-control"] == f"public, {YEAR}, immutable"
    assert thumb.content.startswith(b"\xff\xd8")
    original = client.simulate_get(original_url("", doc))
    assert original.status_code == 200 and original.content == data
    assert original.headers["content-type"] == "image/jpeg"
    assert original.headers["x-content-type-options"] == "nosniff"
    head = client.simulate_head(original_url("", doc))
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(data))


def test_wrong_names_are_404(client, photo):
    doc, _ = photo
    wrong = [
        media_path(doc.id, "0" * 16, "240", "jpg"),  # wrong secret
        media_path(doc.id, doc.secret, "original", doc.original_ext),  # thumb secret, original
        media_path(doc.id, doc.original_secret, "240", "jpg"),  # original secret, thumb
        media_path(doc.id, doc.secret, "1600", "jpg"),  # a label this small photo lacks
        media_path(doc.id, doc.secret, "240", "png"),
        media_path(doc.id + 1, doc.secret, "240", "jpg"),
        thumb_url("", doc, "240").replace("/media/00/", "/media/11/"),  # digits of another id
        "/media/00/01/..%2F..%2Fapi.sqlite3",
        "/media/../../api.sqlite3",
        "/media/00/01/1.abc.original.jpg",
    ]
    for path in wrong:
        assert client.simulate_get(path).status_code == 404, path


def test_private_media_answer_only_to_the_url(client, upload, queue):
    upload(jpeg(), is_public="0")
    queue.process_pending()
    doc = Doc.get()
    answer = client.simulate_get(thumb_url("", doc, "75x"))
    assert answer.status_code == 200  # whoever has the URL (the design: the secret is the key)
    assert answer.headers["cache-control"] == f"private, {YEAR}, immutable"
    guess = media_path(doc.id, "f" * 16, "original", doc.original_ext)
    assert client.simulate_get(guess).status_code == 404


def test_other_documents_download_and_never_render(client, upload, queue):
    upload(b"<html><script>alert(1)</script></html>", name="page.html")
    queue.process_pending()
    doc = Doc.get()
    answer = client.simulate_get(original_url("", doc))
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"].startswith("attachment")


@pytest.mark.parametrize("head, media, ext", [
    (b"\x00\x00\x00\x18ftypisom", "video", "mp4"),
    (b"\x00\x00\x00\x14ftypqt  ", "video", "mov"),
    (b"\x00\x00\x00\x20ftypM4A ", "audio", "m4a"),
    (b"RIFF\x00\x00\x00\x00AVI LIST", "video", "avi"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio", "wav"),
    (b"\x1aE\xdf\xa3\x9fB\x86\x81\x01B\xf7\x81\x01B\xf2\x81\x04B\xf3\x81\x08B\x82\x84webm",
     "video", "webm"),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio", "mp3"),
    (b"\xff\xfb\x90\x00", "audio", "mp3"),
    (b"fLaC\x00\x00\x00\x22", "audio", "flac"),
    (b"OggS\x00\x02" + b"\x00" * 22 + b"\x01vorbis", "audio", "ogg"),
    (b"%PDF-1.7\n", "other", "pdf"),
    (b"just some text", "other", "txt"),
])
def test_sniffing_reads_content_not_names(tmp_path, head, media, ext):
    path = tmp_path / "upload"
    path.write_bytes(head + b"\x00" * 64)
    found = sniff(str(path), "notes.txt", max_pixels=10**6, max_decode_bytes=2**30)
    assert (found.media, found.ext) == (media, ext)


def test_sniffing_refuses_broken_images(tmp_path):
    path = tmp_path / "upload"
    for head in (b"\xff\xd8\xff\xe0junk", b"GIF89a\x00", b"RIFF\x00\x00\x00\x00WEBPVP8 "):
        path.write_bytes(head + b"\x01" * 32)
        with pytest.raises(Rejected):
            sniff(str(path), "a.bin", max_pixels=10**6, max_decode_bytes=2**30)


def test_keywords_follow_the_quoting_rule():
    assert parse_keywords('"blue sky",sunset, Sunset ,,"a, b"') == ["blue sky", "sunset", "a, b"]
    assert parse_keywords("") == []


def test_pyipernity_uploads_end_to_end(live_server, queue, api_key, token, tmp_path):
    path = tmp_path / "holiday.jpg"
    path.write_bytes(jpeg(exif=camera_exif()))
    api = IpernityAPI(api_key.key, api_key.secret, token=token,
                      url=live_server.base_url + "/api/")
    queue.start()
    doc_id = api.upload_file(str(path), title="Holiday", keywords='"blue sky",sunset')

    doc = Doc.get_by_id(int(doc_id))
    assert doc.title == "Holiday" and doc.md5 == hashlib.md5(path.read_bytes()).hexdigest()
    assert {t.tag for t in Tag.select().where(Tag.doc == doc)} == {"blue sky", "sunset"}
    got = api.doc.get(doc_id=doc_id, extra="tags,geo,md5")["doc"]
    assert got["doc_id"] == doc_id and got["md5"] == doc.md5
    assert float(got["geo"]["lat"]) == pytest.approx(-33.86)
    assert {tag["keyword"] for tag in got["tags"]["tag"]} == {"blue sky", "sunset"}
    thumb = next(t for t in got["thumbs"]["thumb"] if t["label"] == "240")
    served = requests.get(thumb["url"], timeout=10)
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    quota = api.account.getQuota()["quota"]
    assert quota["upload"]["used"]["bytes"] == str(path.stat().st_size)
