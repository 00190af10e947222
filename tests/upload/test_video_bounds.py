"""Issue 15's second round of bounds on video and audio: async=0 never waits past its wait for a
transcode, upload.file decodes no frame, sound rates and channels, the renditions' bit rates and
bytes (in the quota), corrupt packets, sound changing mid-stream, the time budget and the eta,
and the transcoding thread's priority."""

from __future__ import annotations

import json
import os
import struct
import threading
import time
from pathlib import Path
from typing import Any

import av
import pytest

from api.media import video
from api.media.queue import DONE, QUEUED
from api.models.docs import Media, UploadTicket
from tests.upload.avfiles import decoded_seconds, matroska_claiming, write_audio, write_video


def _wav(rate: int, channels: int, seconds: float = 0.5) -> bytes:
    """A 16-bit PCM WAV of silence at ``rate`` Hz with ``channels`` channels."""
    data = b"\0" * (int(rate * seconds) * channels * 2)
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<I", 16)
            + fmt + b"data" + struct.pack("<I", len(data)) + data)


def _mp3(path: Path, rate: int, layout: str, seconds: float) -> bytes:
    """An MP3 of a quiet tone at ``rate`` Hz."""
    with av.open(str(path), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout=layout)
        channels = len(av.AudioLayout(layout).channels)
        samples = int(rate * seconds)
        frame = av.AudioFrame(format="s16", layout=layout, samples=samples)
        frame.planes[0].update(b"\x10\x00" * samples * channels)
        frame.sample_rate, frame.pts = rate, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path.read_bytes()


def _state(ticket: str) -> str:
    return UploadTicket.get_by_id(int(ticket)).state


# -- F1: async=0 and transcoding -----------------------------------------------------------------


def test_async0_video_answers_within_the_wait_and_is_left_to_the_worker(upload, ctx, queue,
                                                                       tmp_path):
    ctx.settings = ctx.settings.with_(upload_wait_seconds=0.5)
    data = write_video(tmp_path / "v.mp4", seconds=1.0).read_bytes()
    started = time.monotonic()
    ticket = upload(data, name="v.mp4", **{"async": "0"})["ticket"]
    assert time.monotonic() - started < 0.5 + 1.5  # the wait, the probe and the request
    assert _state(ticket) == QUEUED  # not processed in the request's thread
    queue.process_pending()
    assert _state(ticket) == DONE


# -- F2: no frame decoded at upload; bytes of the declared pixel format ---------------------------


def test_upload_decodes_no_frame_the_worker_does(upload, queue, tmp_path, monkeypatch):
    decoded: list[str] = []
    real = video._first_frame

    def spied(container: Any, stream: Any) -> Any:
        decoded.append(threading.current_thread().name)
        return real(container, stream)

    monkeypatch.setattr(video, "_first_frame", spied)
    ticket = upload(write_video(tmp_path / "v.mp4").read_bytes(), name="v.mp4")["ticket"]
    ticket_audio = upload(write_audio(tmp_path / "s.mp3").read_bytes(), name="s.mp3")["ticket"]
    assert decoded == []
    queue.process_pending()
    assert _state(ticket) == _state(ticket_audio) == DONE and decoded


def _ffv1(path: Path, pix_fmt: str, side: int = 64) -> bytes:
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("ffv1", rate=5)
        stream.width = stream.height = side
        stream.pix_fmt = pix_fmt
        for index in range(3):
            frame = av.VideoFrame(side, side, "rgb24")
            frame.planes[0].update(bytes([index * 40]) * (side * side * 3))
            frame.pts = index
            out.mux(stream.encode(frame.reformat(format=pix_fmt)))
        out.mux(stream.encode(None))
    return path.read_bytes()


def test_a_declared_pixel_format_over_the_frame_bytes_is_code_3(upload, ctx, tmp_path):
    data = _ffv1(tmp_path / "deep.mkv", "gbrap16le")  # eight bytes a pixel
    ctx.settings = ctx.settings.with_(max_video_frame_bytes=64 * 64 * 8 - 1)
    assert upload(data, name="deep.mkv")["api"]["code"] == "3"
    ctx.settings = ctx.settings.with_(max_video_frame_bytes=64 * 64 * 8)
    assert "ticket" in upload(data, name="deep.mkv")


# -- F3: sound rates and channels, rendition bit rates, rendition bytes in the quota --------------


def test_sound_under_the_rate_or_over_the_channels_is_code_3(upload):
    assert upload(_wav(video.MIN_SAMPLE_RATE - 1, 1), name="a.wav")["api"]["code"] == "3"
    assert upload(_wav(8, 1, seconds=100), name="a.wav")["api"]["code"] == "3"
    assert upload(_wav(8000, video.MAX_CHANNELS + 1), name="a.wav")["api"]["code"] == "3"
    assert upload(_wav(8000, 64), name="a.wav")["api"]["code"] == "3"


@pytest.mark.parametrize("channels", [3, 6, 8])
def test_three_to_eight_channels_are_downmixed(upload, queue, settings, channels):
    ticket = upload(_wav(8000, channels), name="a.wav")["ticket"]
    queue.process_pending()
    assert _state(ticket) == DONE
    stored = next((Path(settings.data_dir) / "media").rglob("*.mp3.mp3"))
    with av.open(str(stored)) as played:
        assert played.streams.audio[0].codec_context.channels == 2


def test_rendition_bits_are_capped_by_label_and_source():
    assert [video.rendition_bits(label, 0) for label in ("ipod", "mp4", "hd")] == [
        1_000_000, 2_000_000, 6_000_000]
    assert video.rendition_bits("hd", 1_000_000) == 1_500_000  # 1.5 × the source
    assert video.rendition_bits("mp4", 10_000) == 200_000  # never under the floor


def test_noise_is_not_amplified(tmp_path):
    """Random pixels at a low declared bit rate: the rendition keeps to its cap, not crf's
    several megabits."""
    path = tmp_path / "noise.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10, options={"preset": "ultrafast", "crf": "40"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for _ in range(20):
            frame = av.VideoFrame(320, 240, "rgb24")
            frame.planes[0].update(os.urandom(320 * 240 * 3))
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
    probed = video.probe(str(path), video.Limits())
    assert probed.bit_rate > 0
    low = video.Probed(**{**probed.__dict__, "bit_rate": 10_000})  # the cap: 200 kb/s
    plans = video.plan_renditions(low, tmp_path)
    seconds = video.transcode(str(path), low, plans, video.Limits())
    made = Path(plans[0].path).stat().st_size * 8 / seconds
    # A two-second clip may take its two-second buffer too: ~300 kb/s here, ~850 kb/s uncapped.
    assert made < 450_000, made


def test_rendition_bytes_count_in_the_quota(call, upload, queue, token, tmp_path):
    data = write_video(tmp_path / "v.mp4").read_bytes()
    upload(data, name="v.mp4")
    queue.process_pending()
    renditions = sum(media.size for media in Media.select())
    assert renditions > 0
    used = call("account.getQuota", token=token)["quota"]["upload"]["used"]
    assert int(used["bytes"]) == len(data) + renditions


# -- F4, F5: corrupt packets, sound changing mid-stream --------------------------------------------


def test_a_few_corrupt_packets_are_skipped(upload, queue, tmp_path, monkeypatch):
    """A packet the decoder refuses (here: every fifth video packet) is skipped, as players do;
    too many refuse the file."""
    path = str(write_video(tmp_path / "v.mp4", seconds=2.0, sound=False))
    probed = video.probe(path, video.Limits())
    real, count = video._decoded, [0]

    def failing(packet: Any) -> list[Any] | None:
        count[0] += 1
        if count[0] % 5 == 0:
            return real(_Broken())
        return real(packet)

    monkeypatch.setattr(video, "_decoded", failing)
    plans = video.plan_renditions(probed, tmp_path)
    assert video.transcode(path, probed, plans, video.Limits()) > 1.5
    monkeypatch.setattr(video, "MAX_BAD_PACKETS", 1)
    with pytest.raises(video.Rejected, match="could not be decoded"):
        video.transcode(path, probed, plans, video.Limits())


class _Broken:
    """A packet whose decoding fails as FFmpeg's AAC decoder does on corrupt data (not an
    InvalidDataError)."""

    def decode(self) -> list[Any]:
        raise av.error.UndefinedError(50531338, "Unknown error occurred")


def test_a_file_with_corrupt_bytes_mid_stream_is_done(upload, queue, tmp_path):
    """Bytes flipped in the middle fifth: dozens of packets refused, one by the AAC decoder with
    FFmpeg's "unknown error"."""
    whole = bytearray(write_video(tmp_path / "v.mp4", seconds=4.0).read_bytes())
    for at in range(len(whole) * 4 // 10, len(whole) * 6 // 10, 7):
        whole[at] ^= 0xFF
    ticket = upload(bytes(whole), name="v.mp4")["ticket"]
    queue.process_pending()
    assert _state(ticket) == DONE


def test_sound_changing_rate_and_layout_mid_stream(upload, queue, settings, tmp_path):
    data = (_mp3(tmp_path / "a.mp3", 44100, "stereo", 1.0)
            + _mp3(tmp_path / "b.mp3", 22050, "mono", 1.0)
            + _mp3(tmp_path / "c.mp3", 44100, "stereo", 1.0))
    ticket = upload(data, name="joined.mp3")["ticket"]
    queue.process_pending()
    assert _state(ticket) == DONE
    stored = next((Path(settings.data_dir) / "media").rglob("*.mp3.mp3"))
    assert abs(decoded_seconds(stored)["audio"] - 3.0) < 0.2


# -- F6: the time budget and the eta ---------------------------------------------------------------


def test_a_source_is_accepted_only_when_its_estimate_fits_the_budget(upload, ctx, tmp_path):
    source = write_video(tmp_path / "v.mp4", 1280, 720, fps=2, sound=False)
    claimed = matroska_claiming(source, tmp_path / "long.mkv", 3000).read_bytes()  # 50 minutes
    assert ctx.settings.max_media_seconds >= 3000
    assert upload(claimed, name="long.mkv")["api"]["code"] == "3"  # ~2,300 s of work > 1,800
    accepted = video.probe(str(source), video.Limits.of(ctx.settings), decode=False)
    assert accepted.work_seconds() <= ctx.settings.transcode_seconds


def test_eta_is_capped_at_the_budget(call, upload, ctx, token, tmp_path):
    ticket = upload(write_video(tmp_path / "v.mp4").read_bytes(), name="v.mp4")["ticket"]
    UploadTicket.update(params=json.dumps({"work": 10**9})).where(
        UploadTicket.id == int(ticket)).execute()
    answer = call("upload.checkTickets", token=token, tickets=ticket)["tickets"]
    assert answer["eta"] == str(ctx.settings.transcode_seconds)


# -- the transcoding thread's priority ------------------------------------------------------------


def test_the_transcoding_thread_is_niced(upload, queue, tmp_path, monkeypatch):
    seen: list[tuple[int, int]] = []
    real = video.transcode

    def watched(*args: Any, **kwargs: Any) -> float:
        thread = threading.get_native_id()
        seen.append((thread, os.getpriority(os.PRIO_PROCESS, thread)))
        return real(*args, **kwargs)

    monkeypatch.setattr("api.media.worker.transcode", watched)
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    upload(write_video(tmp_path / "v.mp4", seconds=1.0).read_bytes(), name="v.mp4")
    queue.process_pending()
    [(thread, nice)] = seen
    assert nice == min(19, before + queue.settings.transcode_nice)
    if os.geteuid() == 0:  # restored where the process may raise its priority again
        assert os.getpriority(os.PRIO_PROCESS, thread) == before
