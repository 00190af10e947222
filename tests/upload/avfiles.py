"""Small videos and audio files made on the spot with PyAV (no fixture files, no system ffmpeg)."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import av
from av.video.stream import VideoStream
from PIL import Image, ImageDraw

RATE = 44100
_CHUNK = 1024
MARK = (50, 200, 50)  # the block drawn in each frame's top-left quarter, to see rotations


def write_video(path: Path, width: int = 320, height: int = 240, *, seconds: float = 2.0,
                fps: int = 10, rotation: int | None = None, sound: bool = True,
                dark_frames: int = 0, metadata: dict[str, str] | None = None,
                faststart: bool = False) -> Path:
    """An H.264 MP4 (AAC sine when ``sound``) whose frames are red with a green block top-left;
    the first ``dark_frames`` black; ``rotation``: a display matrix (counterclockwise degrees)."""
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as out:
        out.metadata.update(metadata or {})
        video = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if rotation is not None:
            video.set_display_rotation(rotation)
        # every stream is added before the first packet is muxed
        audio = out.add_stream("aac", rate=RATE, layout="mono") if sound else None
        for index in range(round(seconds * fps)):
            _mux(out, video, _picture(width, height, dark=index < dark_frames))
        out.mux(video.encode(None))
        if audio is not None:
            _sine(out, audio, seconds)
    return path


def write_audio(path: Path, *, seconds: float = 2.0, codec: str = "libmp3lame",
                fmt: str = "mp3", tags: dict[str, str] | None = None) -> Path:
    """A 440 Hz sine in ``fmt`` with ``tags`` (title, artist …)."""
    with av.open(str(path), "w", format=fmt) as out:
        out.metadata.update(tags or {})
        _sine(out, out.add_stream(codec, rate=RATE, layout="mono"), seconds)
    return path


def _picture(width: int, height: int, *, dark: bool) -> Image.Image:
    if dark:
        return Image.new("RGB", (width, height))
    picture = Image.new("RGB", (width, height), (200, 40, 40))
    ImageDraw.Draw(picture).rectangle((0, 0, width // 2, height // 4), fill=MARK)
    return picture


def _mux(out: Any, video: VideoStream, picture: Image.Image) -> None:
    out.mux(video.encode(av.VideoFrame.from_image(picture)))


def _sine(out: Any, stream: Any, seconds: float) -> None:
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=RATE,
                                  frame_size=stream.codec_context.frame_size or 1152)
    total = round(seconds * RATE)
    for start in range(0, total, _CHUNK):
        count = min(_CHUNK, total - start)
        frame = av.AudioFrame(format="s16", layout="mono", samples=count)
        frame.planes[0].update(b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * (start + k) / RATE)))
            for k in range(count)))
        frame.sample_rate, frame.pts = RATE, start
        for chunk in resampler.resample(frame):
            out.mux(stream.encode(chunk))
    for chunk in resampler.resample(None):
        out.mux(stream.encode(chunk))
    out.mux(stream.encode(None))


def decoded_seconds(path: Path | str) -> dict[str, float]:
    """Seconds of each stream kind found by decoding the whole file (its end time)."""
    ends: dict[str, float] = {}
    with av.open(str(path)) as container:
        for frame in container.decode(*container.streams.video, *container.streams.audio):
            kind = "audio" if isinstance(frame, av.AudioFrame) else "video"
            if isinstance(frame, av.AudioFrame):
                length = frame.samples / frame.sample_rate
            else:
                length = float(frame.duration * frame.time_base) if frame.duration else 0.0
            ends[kind] = max(ends.get(kind, 0.0), (frame.time or 0.0) + length)
    return ends


def matroska_claiming(source: Path, path: Path, seconds: float) -> Path:
    """``source`` remuxed into Matroska whose header claims ``seconds`` (its Duration element,
    which FFmpeg believes; an MP4's durations it recomputes from the sample tables)."""
    with av.open(str(source)) as src, av.open(str(path), "w", format="matroska") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89")  # Segment Info's Duration: a float of milliseconds
    size = data[at + 2] & 0x7F
    data[at + 3:at + 3 + size] = struct.pack(">d" if size == 8 else ">f", seconds * 1000)
    path.write_bytes(bytes(data))
    return path
