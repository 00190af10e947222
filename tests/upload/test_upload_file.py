"""upload.file: tickets, every §6.1 parameter, EXIF, codes 1–5, the async=0 wait."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from api.media.queue import DONE, FAILED, QUEUED
from api.models.docs import NO_DATE, Album, AlbumDoc, Doc, Tag, Thumb, UploadTicket
from api.signing.md5 import signature
from keys import store
from tests.upload.avfiles import write_video
from tests.upload.conftest import camera_exif, jpeg


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_ticket_at_once_then_the_worker_makes_the_doc(upload, queue, call, token, owner):
    data = jpeg()
    answer = upload(data, title="Harbour", description="<b>at dusk</b>")
    ticket = answer["ticket"]
    assert answer == {"api": {"status": "ok"}, "ticket": ticket} and ticket.isdigit()
    assert UploadTicket.get_by_id(int(ticket)).state == QUEUED
    assert Doc.select().count() == 0

    assert queue.process_pending() == 1
    doc = Doc.get()
    assert (doc.owner_id, doc.title, doc.description) == (owner.id, "Harbour", "<b>at dusk</b>")
    assert doc.md5 == hashlib.md5(data).hexdigest()
    assert (doc.media, doc.original_ext, doc.original_mime) == ("photo", "jpg", "image/jpeg")
    assert (doc.width, doc.height, doc.original_size) == (300, 200, len(data))
    assert doc.created != NO_DATE  # no EXIF, no created_at: the upload time
    thumbs = {t.label: (t.w, t.h) for t in Thumb.select().where(Thumb.doc == doc)}
    # Labels up to the original's size; the first numeric label above it keeps the original size.
    assert thumbs == {"75x": (75, 75), "100": (100, 67), "240": (240, 160), "500": (300, 200)}


def test_every_parameter_is_honoured(upload, queue, owner, member):
    album = Album.create(owner=owner, title="Trips")
    upload(jpeg(exif=camera_exif()), title="t", license="7", is_public="0", is_family="1",
           is_friend="0", safety="2", keywords='"blue sky",sunset, Sunset', album_id=album.id,
           member_ids=f"{member.id}", perm_comment="3", perm_tag="0", perm_tagme="5",
           created_at="2020-02-03 04:05:06", lat="48.85", lng="2.35", dir="3")
    queue.process_pending()
    doc = Doc.get()
    assert (doc.license, doc.is_public, doc.is_family, doc.is_friend, doc.safety) == (
        7, False, True, False, 2)
    assert (doc.perm_comment, doc.perm_tag, doc.perm_tagme) == (3, 0, 5)
    assert doc.created == "2020-02-03 04:05:06"  # the caller's date wins over EXIF
    assert (doc.lat, doc.lng, doc.orientation) == (48.85, 2.35, 3)
    tags = {(t.type, t.tag) for t in Tag.select().where(Tag.doc == doc)}
    assert tags == {("keyword", "blue sky"), ("keyword", "sunset"), ("member", "member")}
    assert AlbumDoc.get().doc_id == doc.id
    assert Album.get_by_id(album.id).cover_id == doc.id


def test_exif_gives_date_position_camera_and_orientation(upload, queue):
    upload(jpeg(exif=camera_exif(orientation=6)))
    queue.process_pending()
    doc = Doc.get()
    assert doc.created == "2021-07-14 10:20:30"
    assert doc.lat == pytest.approx(-33.86) and doc.lng == pytest.approx(151.21)
    assert doc.camera == "Acme Snapper 3"
    assert json.loads(doc.exif)["DateTimeOriginal"] == "2021:07:14 10:20:30"
    # Orientation 6: shown a quarter turn round, so the 300x200 file is a 200x300 picture.
    assert (doc.orientation, doc.width, doc.height) == (6, 200, 300)
    assert Thumb.get(Thumb.doc == doc, Thumb.label == "100").h == 100


def test_minus_999_means_no_position_even_with_gps_exif(upload, queue):
    upload(jpeg(exif=camera_exif()), lat="-999", lng="-999")
    queue.process_pending()
    doc = Doc.get()
    assert (doc.lat, doc.lng) == (None, None)


@pytest.mark.parametrize("params", [
    {"license": "2"}, {"safety": "4"}, {"perm_comment": "6"}, {"dir": "2"}, {"is_public": "yes"},
    {"lat": "10"}, {"lat": "91", "lng": "0"}, {"created_at": "2020-13-01"}, {"album_id": "999"},
    {"member_ids": "nobody-here"},
])
def test_invalid_parameters_are_code_5(upload, params):
    assert upload(jpeg(), **params)["api"]["code"] == "5"


def test_someone_elses_album_is_code_5(upload, member):
    album = Album.create(owner=member, title="Theirs")
    assert upload(jpeg(), album_id=album.id)["api"]["code"] == "5"


def test_no_file_or_empty_file_is_code_1(call, token, upload):
    assert call("upload.file", token=token, http="POST", title="x")["api"]["code"] == "1"
    assert upload(b"")["api"]["code"] == "1"


def test_broken_image_is_code_3(upload, settings):
    assert upload(b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 10)["api"]["code"] == "3"
    assert upload(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)["api"]["code"] == "3"
    assert _files(Path(settings.data_dir) / "incoming") == []


def test_decompression_bomb_is_code_3(upload, ctx):
    ctx.settings = ctx.settings.with_(max_image_pixels=300 * 199)
    assert upload(jpeg(300, 200))["api"]["code"] == "3"


def test_too_big_for_its_media_type_is_code_2(upload, ctx):
    data = jpeg()
    ctx.settings = ctx.settings.with_(max_photo_bytes=len(data) - 1)
    assert upload(data)["api"]["code"] == "2"
    # The limit is per media type: the same size as "other" is accepted.
    assert "ticket" in upload(b"%PDF-1.4 " + b"x" * (len(data) - 9), name="a.pdf")


def test_monthly_quota_is_code_4_unless_pro(upload, ctx, owner, clock):
    data = jpeg()
    ctx.settings = ctx.settings.with_(monthly_upload_bytes=len(data) * 2)
    assert "ticket" in upload(data) and "ticket" in upload(data)
    assert upload(data)["api"]["code"] == "4"
    clock.advance(31 * 24 * 3600)  # a new month
    assert "ticket" in upload(data)
    owner.is_pro = True
    owner.save()
    assert "ticket" in upload(data) and "ticket" in upload(data)


def test_truncated_image_fails_its_ticket_and_leaves_nothing(upload, queue, call, token,
                                                             settings):
    data = jpeg(600, 400, color=(1, 2, 3))
    ticket = upload(data[: len(data) // 2])["ticket"]  # the header reads fine, the data ends
    queue.process_pending()
    assert UploadTicket.get_by_id(int(ticket)).state == FAILED
    status = call("upload.checkTickets", token=token, tickets=ticket)["tickets"]
    assert status["ticket"] == [{"id": ticket, "done": "0", "invalid": "1", "eta": "0"}]
    assert Doc.select().count() == 0 and Thumb.select().count() == 0
    assert _files(Path(settings.data_dir) / "media") == []
    assert _files(Path(settings.data_dir) / "incoming") == []


def test_a_failed_write_removes_every_file_it_stored(upload, queue, settings):
    real = queue.storage

    class BreaksOnThirdPut:
        def __init__(self) -> None:
            self.puts = 0

        def put(self, name, source):
            self.puts += 1
            if self.puts == 3:
                raise OSError("disk full")
            real.put(name, source)

        def delete(self, name):
            real.delete(name)

    queue.storage = BreaksOnThirdPut()
    upload(jpeg())
    queue.process_pending()
    assert UploadTicket.get().state == FAILED
    assert Doc.select().count() == 0 and Thumb.select().count() == 0
    assert _files(Path(settings.data_dir) / "media") == []
    assert _files(Path(settings.data_dir) / "incoming") == []


def test_async_0_waits_for_the_doc(upload, call, token):
    ticket = upload(jpeg(), **{"async": "0"})["ticket"]
    status = call("upload.checkTickets", token=token, tickets=ticket)["tickets"]["ticket"][0]
    assert status["done"] == "1" and status["doc_id"] == str(Doc.get().id)


def test_other_and_video_are_sniffed_from_content(upload, queue, tmp_path):
    upload(b"<html><script>alert(1)</script></html>", name="photo.jpg")
    upload(write_video(tmp_path / "clip.mp4", seconds=0.5).read_bytes(), name="clip.txt")
    queue.process_pending()
    docs = list(Doc.select().order_by(Doc.id))
    assert [(d.media, d.original_ext, d.original_mime) for d in docs] == [
        ("other", "jpg", "application/octet-stream"), ("video", "mp4", "video/mp4")]
    assert Thumb.select().where(Thumb.doc == docs[0]).count() == 0  # a poster for the video only
    assert all(t.state == DONE for t in UploadTicket.select())


def test_upload_needs_post_and_write_permission(call, token_for, owner):
    read_token = token_for(owner, doc="read")
    answer = call("upload.file", token=read_token, files={"file": ("a.jpg", jpeg())})
    assert answer["api"]["code"] == "110"
    answer = call("upload.file", token=token_for(owner, doc="write"), http="GET")
    assert answer["api"]["code"] == "120"


def test_member_tags_accept_usernames(upload, queue, member):
    other = store.add_user("other", "other-password")
    upload(jpeg(), member_ids=f"member, {other.id}")
    queue.process_pending()
    assert {t.tag for t in Tag.select().where(Tag.type == "member")} == {"member", "other"}


def test_parallel_uploads_cannot_all_squeeze_under_the_quota(live_server, ctx, api_key, token):
    data = jpeg()
    ctx.settings = ctx.settings.with_(monthly_upload_bytes=len(data) * 2)
    params = {"api_key": api_key.key, "auth_token": token}
    params["api_sig"] = signature(params, "upload.file", api_key.secret)

    def send(_: int) -> dict:
        return requests.post(live_server.base_url + "/api/upload.file", data=params,
                             files={"file": ("p.jpg", data)}, timeout=30).json()

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(send, range(6)))
    assert sum("ticket" in answer for answer in answers) == 2
    assert sorted(a["api"]["code"] for a in answers if "ticket" not in a) == ["4", "4", "4", "4"]


# --- issue 7: file=<local path> as a text field, flags sent as True/False ----------------------

def send_like_ipernity_api_013(base_url: str, key, path: Path, **params: str) -> dict:
    """upload.file as ipernity-api 0.13 sends it (ipernity_api/rest.py ``call_api`` and
    ``sign_keys``; here its requests-based Python 3 port, rcw-2/python-ipernity-api): every
    argument, ``file=<local path>`` included, is signed; the same dict goes out as form fields,
    then the file part, named after the path."""
    kwargs = {**params, "file": str(path), "api_key": key.key}
    sig_str = "".join(f"{k}{kwargs[k]}" for k in sorted(kwargs)) + "upload.file" + key.secret
    kwargs["api_sig"] = hashlib.md5(sig_str.encode("utf-8")).hexdigest()
    with open(path, "rb") as fobj:
        return requests.post(base_url + "/api/upload.file/json", data=kwargs,
                             files={"file": fobj}, timeout=30).json()


def test_a_client_that_signs_its_text_file_field_uploads(live_server, api_key, token, queue,
                                                         tmp_path):
    path = tmp_path / "harbour.jpg"
    path.write_bytes(data := jpeg())
    answer = send_like_ipernity_api_013(live_server.base_url, api_key, path, auth_token=token,
                                        title="From a path")
    assert answer["ticket"].isdigit(), answer
    queue.process_pending()
    doc = Doc.get()
    assert (doc.title, doc.md5) == ("From a path", hashlib.md5(data).hexdigest())


def test_text_file_field_signed_with_and_without_it(call, api_key, token, queue, settings):
    from tests.conftest import _multipart

    photo = {"file": ("photo.jpg", jpeg())}
    signed_with = call("upload.file", token=token, files=photo, file="/home/me/photo.jpg")
    assert signed_with["ticket"].isdigit(), signed_with  # the conftest caller signs every field

    fields = {"api_key": api_key.key, "auth_token": token}
    fields["api_sig"] = signature(fields, "upload.file", api_key.secret)  # file left out
    content_type, body = _multipart({**fields, "file": "/home/me/photo.jpg"}, photo)
    refused = call.client.simulate_post("/api/upload.file/json", body=body,
                                        headers={"Content-Type": content_type}).json
    assert refused["api"]["code"] == "105"  # no client we know sends it unsigned
    assert UploadTicket.select().count() == 1
    assert not any(path.is_file() for path in (Path(settings.data_dir) / "spool").rglob("*"))


def test_two_file_parts_with_filenames_are_still_140(call, api_key, token):
    fields = {"api_key": api_key.key, "auth_token": token}
    fields["api_sig"] = signature(fields, "upload.file", api_key.secret)
    boundary = "b7"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
              f'filename="{n}.jpg"\r\n\r\n'.encode() + jpeg() + b"\r\n" for n in ("a", "b")]
    result = call.client.simulate_post(
        "/api/upload.file/json", body=b"".join(parts) + f"--{boundary}--\r\n".encode(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert result.json["api"]["code"] == "140"
    assert UploadTicket.select().count() == 0


def test_flags_sent_as_python_booleans(upload, queue):
    upload(jpeg(), is_public="False", is_family="TRUE", is_friend="true", **{"async": "False"})
    doc = Doc.get()  # async=False waited for the doc
    assert (doc.is_public, doc.is_family, doc.is_friend) == (False, True, True)
