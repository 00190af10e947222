"""Video and audio documents (issue 15): probing, poster thumbnails, web renditions and their
``medias``, the bounds, and files that are not what they claim. Videos and sounds are made here with
PyAV (tests/upload/avfiles.py), a few frames each."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import av
import pytest
import requests
from ipernity import IpernityAPI
from lxml import etree
from PIL import Image

from api.config import Settings
from api.media import video
from api.media.imaging import Rejected
from api.media.queue import DONE, FAILED
from api.models.docs import Doc, Media, Thumb, UploadTicket
from tests.docs.shapes import spec_names
from tests.upload.avfiles import (
    MARK,
    decoded_seconds,
    matroska_claiming,
    write_audio,
    write_video,
)
from tests.upload.conftest import doc_files, media_files

SOURCE_SECONDS = 2.0
SMALL_THUMBS = {"75x": (75, 75), "100": (100, 75), "240": (240, 180), "500": (320, 240)}
HD_LABELS = {"75x", "100", "240", "250x", "500", "560", "640", "800", "1024", "1600"}


@pytest.fixture
def api(live_server, api_key, token) -> IpernityAPI:
    return IpernityAPI(api_key.key, api_key.secret, token=token,
                       url=live_server.base_url + "/api/")


def _leftovers(settings: Any) -> list[str]:
    """Files in incoming/ and in the spools (media/ is checked against the docs)."""
    root = Path(settings.data_dir)
    return [str(p) for folder in ("incoming", "spool") if (root / folder).exists()
            for p in (root / folder).rglob("*") if p.is_file()]


def _fetched(url: str, tmp_path: Path, name: str) -> Path:
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200, url
    path = tmp_path / name
    path.write_bytes(answer.content)
    return path


def _media_names(xml: bytes) -> set[str]:
    """The ``medias`` paths of an XML answer, from the first ``medias`` element on."""
    names = set()
    for element in etree.fromstring(xml).iter("medias"):
        for media in element:
            names.update(f"medias/media@{name}" for name in media.attrib)
    return names


def test_video_through_pyipernity(api, queue, owner, tmp_path, settings):
    """A 320×240 and a 1280×720 video, uploaded as a client does: durations, every poster
    thumbnail, renditions that play for as long as the source, medias in doc.get, doc.getMedias
    and doc.getList extra=medias,original, and the quota's seconds."""
    queue.start()
    small = write_video(tmp_path / "small.mp4", seconds=SOURCE_SECONDS)
    large = write_video(tmp_path / "large.mp4", 1280, 720, seconds=SOURCE_SECONDS, fps=5,
                        metadata={"creation_time": "2021-07-14T10:20:30.000000Z"})
    small_id = api.upload_file(str(small), title="Small", **{"async": 0})
    large_id = api.upload_file(str(large), **{"async": 0})

    doc = api.doc.get(doc_id=small_id)["doc"]
    assert doc["media"] == "video"
    assert {t["label"]: (int(t["w"]), int(t["h"])) for t in doc["thumbs"]["thumb"]} == \
        SMALL_THUMBS
    assert doc["original"]["length"] == "2" and doc["original"]["ext"] == "mp4"
    medias = {m["label"]: m for m in doc["medias"]["media"]}
    assert set(medias) == {"ipod", "mp4"}  # no hd of a 240-line source
    for label, media in medias.items():
        assert (media["ext"], media["w"], media["h"]) == ("mp4", "320", "240")
        assert media["lenght"] == media["length"] == "2"
        played = decoded_seconds(_fetched(media["url"], tmp_path, f"{label}.mp4"))
        assert set(played) == {"video", "audio"}
        assert all(abs(seconds - SOURCE_SECONDS) <= 0.1 for seconds in played.values()), played

    large_doc = Doc.get_by_id(int(large_id))
    assert (large_doc.duration, large_doc.width, large_doc.height) == (2, 1280, 720)
    assert large_doc.created == "2021-07-14 10:20:30"  # from the container
    assert large_doc.title == ""
    assert {t.label for t in Thumb.select().where(Thumb.doc == large_doc)} == HD_LABELS
    renditions = api.doc.getMedias(doc_id=large_id)["medias"]["media"]
    assert [(m["label"], m["w"], m["h"]) for m in renditions] == [
        ("ipod", "480", "270"), ("mp4", "640", "360"), ("hd", "1280", "720")]
    hd = _fetched(renditions[-1]["url"], tmp_path, "hd.mp4")
    assert abs(decoded_seconds(hd)["video"] - SOURCE_SECONDS) <= 0.1

    listed = api.doc.getList(user_id=owner.id, extra="medias,original")["docs"]["doc"]
    by_id = {d["doc_id"]: d for d in listed}
    assert [m["label"] for m in by_id[large_id]["medias"]["media"]] == ["ipod", "mp4", "hd"]
    assert by_id[small_id]["original"]["length"] == "2"

    used = api.account.getQuota()["quota"]["upload"]["used"]
    assert used["seconds"] == "4"


def test_medias_shapes_follow_the_spec(call, upload, queue, owner, token, tmp_path):
    upload(write_video(tmp_path / "v.mp4").read_bytes(), name="v.mp4")
    queue.process_pending()
    doc = Doc.get()
    expected = {name.removeprefix("doc/") for name in spec_names("doc.get")
                if name.startswith("doc/medias/media@")} | {"medias/media@length"}
    for method, params in (("doc.get", {"doc_id": doc.id}), ("doc.getMedias", {"doc_id": doc.id}),
                           ("doc.getList", {"user_id": owner.id, "extra": "medias"})):
        assert _media_names(call.raw(method, "xml", **params).content) == expected, method
    original = call("doc.getMedias", doc_id=doc.id, token=token)["original"]  # the owner's
    assert (original["w"], original["h"], original["length"]) == ("320", "240", "2")


def test_a_page_of_docs_reads_its_medias_in_one_query(call, upload, queue, owner, tmp_path,
                                                      count_queries):
    data = write_video(tmp_path / "v.mp4", seconds=1.0).read_bytes()
    for _ in range(3):
        upload(data, name="v.mp4")
    queue.process_pending()
    with count_queries() as plain:
        call("doc.getList", user_id=owner.id)
    with count_queries() as extra:
        docs = call("doc.getList", user_id=owner.id, extra="medias")["docs"]["doc"]
    assert len(docs) == 3 and all(len(d["medias"]["media"]) == 2 for d in docs)
    assert len(extra) == len(plain) + 1


def test_audio_with_tags(call, upload, queue, token, tmp_path):
    data = write_audio(tmp_path / "s.mp3", seconds=SOURCE_SECONDS,
                       tags={"title": "Sine song", "artist": "The Oscillators"}).read_bytes()
    ticket = upload(data, name="s.mp3")["ticket"]
    queue.process_pending()
    doc = Doc.get()
    assert UploadTicket.get_by_id(int(ticket)).state == DONE
    assert (doc.media, doc.title, doc.duration, doc.original_ext) == ("audio", "Sine song", 2,
                                                                       "mp3")
    exif = {t["name"]: t["value"] for t in call("doc.getExif", doc_id=doc.id)["exif"]["tag"]}
    assert exif["Artist"] == "The Oscillators" and exif["AudioCodec"].startswith("mp3")
    answer = call("doc.getMedias", doc_id=doc.id)
    assert {t["label"] for t in answer["thumbs"]["thumb"]} == {"75x", "100", "240", "250x",
                                                               "500"}  # the drawn poster
    [media] = answer["medias"]["media"]
    assert (media["label"], media["ext"], media["lenght"], media["length"]) == (
        "mp3", "mp3", "2", "2")
    stored = Path(call.ctx.settings.data_dir) / "media" / media["url"].split("/media/")[1]
    assert abs(decoded_seconds(stored)["audio"] - SOURCE_SECONDS) <= 0.1


def test_audio_in_an_mp4_container_and_a_caller_title(upload, queue, tmp_path):
    data = write_audio(tmp_path / "s.m4a", codec="aac", fmt="ipod",
                       tags={"title": "Tagged"}).read_bytes()
    upload(data, name="s.m4a", title="Mine")
    queue.process_pending()
    doc = Doc.get()
    assert (doc.media, doc.title, doc.original_ext) == ("audio", "Mine", "m4a")
    assert [m.label for m in Media.select()] == ["mp3"]


def test_rotation_is_honoured(upload, queue, tmp_path, settings):
    """A phone's portrait video: stored 320×240 with a display matrix turning it a quarter."""
    upload(write_video(tmp_path / "r.mp4", rotation=90).read_bytes(), name="r.mp4")
    queue.process_pending()
    doc = Doc.get()
    assert (doc.width, doc.height) == (240, 320)
    thumb = Thumb.get(Thumb.doc == doc, Thumb.label == "500")
    assert (thumb.w, thumb.h) == (240, 320)
    stored = Path(settings.data_dir) / "media"
    poster = Image.open(next(stored.rglob("*.500.jpg"))).convert("RGB")
    # Turned 90° counterclockwise, the stored top-left block shows bottom-left.
    assert _near(poster.getpixel((10, 310)), MARK) and not _near(poster.getpixel((10, 10)), MARK)
    rendition = Media.get(Media.label == "mp4")
    assert (rendition.width, rendition.height) == (240, 320)
    with av.open(str(next(stored.rglob("*.mp4.mp4")))) as played:
        frame = next(played.decode(video=0))
        assert (frame.width, frame.height, frame.rotation) == (240, 320, 0)
        picture = frame.to_image()
    assert _near(picture.getpixel((10, 310)), MARK) and not _near(picture.getpixel((10, 10)), MARK)


def _near(color: Any, wanted: tuple[int, int, int], slack: int = 40) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(color, wanted, strict=False))


def test_poster_skips_a_black_start(tmp_path):
    path = write_video(tmp_path / "dark.mp4", seconds=3.0, dark_frames=10, sound=False)
    probed = video.probe(str(path), video.Limits())
    picture = video.poster(str(path), probed, video.Limits())
    assert _near(picture.getpixel((10, 10)), MARK)


def _fuzzed(tmp_path: Path) -> dict[str, bytes]:
    whole = write_video(tmp_path / "whole.mp4").read_bytes()
    fast = write_video(tmp_path / "fast.mp4", faststart=True).read_bytes()
    huge = matroska_claiming(tmp_path / "whole.mp4", tmp_path / "huge.mkv", 1e9).read_bytes()
    return {"truncated": whole[: len(whole) // 2], "random": os.urandom(20000),
            "garbage after the header": whole[:64] + os.urandom(20000),
            "huge duration": huge,
            "moov first, data cut": fast[: len(fast) * 3 // 5]}


def test_hostile_files_fail_cleanly_and_leave_nothing(upload, queue, settings, tmp_path):
    """Refused at upload (code 3) when the probe sees it; otherwise the ticket fails. Either way
    no doc, no stored file, nothing in incoming/ or the spool."""
    outcomes = {}
    for name, data in _fuzzed(tmp_path).items():
        answer = upload(data, name="clip.mp4")
        if "ticket" in answer:
            queue.process_pending()
            outcomes[name] = UploadTicket.get_by_id(int(answer["ticket"])).state
        else:
            outcomes[name] = answer["api"]["code"]
    # A raw video's text header declaring 8000×8000 (64 MP, over the 16 MP bound), data missing:
    # refused before any frame is allocated.
    huge = b"YUV4MPEG2 W8000 H8000 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + b"\x80" * 5000
    outcomes["huge frames"] = upload(huge, name="clip.y4m")["api"]["code"]
    assert outcomes == {"truncated": "3", "random": "3", "garbage after the header": "3",
                        "huge duration": "3", "moov first, data cut": FAILED,
                        "huge frames": "3"}
    assert Doc.select().count() == 0 and Media.select().count() == 0
    assert media_files(settings) == set() and _leftovers(settings) == []


def test_declared_bounds_are_code_3(upload, ctx, tmp_path):
    data = write_video(tmp_path / "v.mp4").read_bytes()
    ctx.settings = ctx.settings.with_(max_video_pixels=320 * 240 - 1)
    assert upload(data, name="v.mp4")["api"]["code"] == "3"
    ctx.settings = ctx.settings.with_(max_video_pixels=320 * 240, max_media_seconds=1)
    assert upload(data, name="v.mp4")["api"]["code"] == "3"


def test_transcode_bounds(tmp_path):
    """What the header does not tell: decoding past the duration limit, and the time budget."""
    path = str(write_video(tmp_path / "v.mp4"))
    probed = video.probe(path, video.Limits())
    plans = video.plan_renditions(probed, tmp_path)
    with pytest.raises(Rejected, match="runs past"):
        video.transcode(path, probed, plans, video.Limits(max_seconds=1.0))
    with pytest.raises(Rejected, match="took more than"):
        video.transcode(path, probed, plans, video.Limits(budget_seconds=0))


def test_a_failed_transcode_leaves_nothing(upload, queue, settings, tmp_path):
    queue.settings = queue.settings.with_(transcode_seconds=0)
    ticket = upload(write_video(tmp_path / "v.mp4").read_bytes(), name="v.mp4")["ticket"]
    queue.process_pending()
    assert UploadTicket.get_by_id(int(ticket)).state == FAILED
    assert Doc.select().count() == 0 and media_files(settings) == set()
    assert _leftovers(settings) == []


def test_random_bytes_named_as_audio_are_code_3_and_a_pdf_stays_other(upload):
    assert upload(os.urandom(5000), name="song.mp3")["api"]["code"] == "3"
    assert "ticket" in upload(os.urandom(5000), name="notes.bin")


def test_eta_reflects_the_transcoding(call, upload, token, tmp_path):
    small = upload(write_video(tmp_path / "s.mp4").read_bytes(), name="s.mp4")["ticket"]
    large = upload(write_video(tmp_path / "l.mp4", 1280, 720, fps=2).read_bytes(),
                   name="l.mp4")["ticket"]
    tickets = call("upload.checkTickets", token=token, tickets=f"{small},{large}")["tickets"]
    assert [t["eta"] for t in tickets["ticket"]] == ["2", "3"] and tickets["eta"] == "3"
    params = json.loads(UploadTicket.get_by_id(int(large)).params)
    assert params["work"] == 3


def test_one_transcode_at_a_time(queue, upload, tmp_path, monkeypatch):
    """Two tickets processed at once in one process never transcode at once, and a transcode
    leaves both decoding slots to photos and icons."""
    running, most, slots_free = [0], [0], []
    real = video.transcode

    def watched(*args: Any, **kwargs: Any) -> float:
        running[0] += 1
        most[0] = max(most[0], running[0])
        time.sleep(0.2)
        with queue.decoding(5), queue.decoding(5):
            slots_free.append(True)
        try:
            return real(*args, **kwargs)
        finally:
            running[0] -= 1

    monkeypatch.setattr("api.media.worker.transcode", watched)
    data = write_video(tmp_path / "v.mp4", seconds=1.0).read_bytes()
    for _ in range(2):
        upload(data, name="v.mp4")
    workers = [threading.Thread(target=queue.process_pending) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert most == [1] and Doc.select().count() == 2 and slots_free == [True, True]


def test_delete_and_replace_remove_renditions(call, upload, queue, token_for, owner, settings,
                                              tmp_path):
    write = token_for(owner, doc="write")
    delete = token_for(owner, doc="delete")
    upload(write_video(tmp_path / "a.mp4").read_bytes(), name="a.mp4")
    queue.process_pending()
    doc = Doc.get()
    before = media_files(settings)
    assert {name.rsplit(".", 2)[1] for name in before} >= {"ipod", "mp4", "original"}
    answer = call("upload.replace", token=write, doc_id=doc.id,
                  files={"file": ("b.mp4", write_video(tmp_path / "b.mp4", 640, 480).read_bytes())})
    assert "ticket" in answer
    queue.process_pending()
    after = media_files(settings)
    assert not before & after and after == doc_files()
    assert {(m.label, m.width) for m in Media.select()} == {("ipod", 426), ("mp4", 640)}
    assert call("doc.delete", token=delete, doc_id=doc.id)["api"]["status"] == "ok"
    assert media_files(settings) == set() and Media.select().count() == 0


def test_settings_from_the_environment():
    settings = Settings.from_env({"API_MAX_MEDIA_SECONDS": "60", "API_MAX_VIDEO_PIXELS": "100",
                                  "API_TRANSCODE_SECONDS": "30", "API_VIDEO_THREADS": "2"})
    limits = video.Limits.of(settings)
    assert (limits.max_seconds, limits.max_pixels, limits.budget_seconds, limits.threads) == (
        60, 100, 30, 2)


def test_cover_art_becomes_the_poster(tmp_path):
    """An MP3 carrying a picture (an ID3 attached picture) shows it; one without, the drawn
    note."""
    cover = io.BytesIO()
    Image.new("RGB", (300, 300), (10, 120, 240)).save(cover, "JPEG")
    plain, tagged = write_audio(tmp_path / "plain.mp3"), tmp_path / "tagged.mp3"
    with av.open(str(plain)) as source, av.open(str(tagged), "w", format="mp3") as out:
        sound = out.add_stream_from_template(source.streams.audio[0])
        art = out.add_stream("mjpeg")
        art.width, art.height, art.pix_fmt = 300, 300, "yuvj420p"
        art.disposition = av.stream.Disposition.attached_pic
        picture = av.Packet(cover.getvalue())
        picture.stream, picture.pts, picture.dts = art, 0, 0
        out.mux(picture)
        for packet in source.demux(source.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = sound
                out.mux(packet)
    limits = video.Limits()
    shown = video.poster(str(tagged), video.probe(str(tagged), limits), limits)
    assert shown.size == (300, 300) and _near(shown.getpixel((5, 5)), (10, 120, 240), 8)
    assert video.poster(str(plain), video.probe(str(plain), limits), limits).size == (500, 500)
