"""Video and audio through PyAV (FFmpeg's libraries, carried in its wheel): probing (duration,
displayed size, rotation, codecs, date, tags), a poster frame for the thumbnail pipeline, and the
web renditions (H.264/AAC MP4 at the ``ipod``, ``mp4`` and ``hd`` sizes; MP3 for audio). Pure
functions over files, no database; the worker (worker.py) stores what they make.

Every bound is a ``Limits`` field (settings): duration, pixels, a time budget per transcode and
the codec's threads. A file FFmpeg cannot read, or one breaking a bound, is ``Rejected`` (code 3
at upload, a failed ticket later); a full disk stays the ``OSError`` it is (the ticket waits).
Choices and sizes: docs/uploads.md, "Video and audio".
"""

from __future__ import annotations

import dataclasses
import errno
import io
import math
import mimetypes
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.filter
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.stream import Disposition
from av.video.format import VideoFormat
from av.video.stream import VideoStream
from PIL import Image, ImageDraw, ImageStat

from api.media.imaging import LARGEST_THUMB, Rejected, Sniffed, decode_bytes

# Labels of spec §10.2's <media>, with the box each fits in (longest side, shortest side) and the
# shortest source side that earns it; ``flv`` (Flash video) is not made.
VIDEO_LABELS: tuple[tuple[str, int, int, int], ...] = (
    ("ipod", 480, 320, 0), ("mp4", 640, 480, 0), ("hd", 1920, 1080, 720))
AUDIO_LABEL = "mp3"
VIDEO_EXT = "mp4"
UNPLAYABLE = ("mid",)  # audio FFmpeg has no decoder for (MIDI): kept as it is, no rendition
# Names of files that ought to be video or audio: one whose bytes no magic number knows (MPEG-TS
# from a camcorder, raw streams) is given to FFmpeg, and refused if FFmpeg cannot read it either.
MEDIA_EXTENSIONS = frozenset({
    "3g2", "3gp", "aac", "ac3", "aif", "aiff", "amr", "asf", "avi", "dv", "f4v", "flac", "flv",
    "m2t", "m2ts", "m4a", "m4b", "m4v", "mka", "mkv", "mov", "mp2", "mp3", "mp4", "mpeg", "mpg",
    "mts", "oga", "ogg", "ogv", "opus", "qt", "ts", "vob", "wav", "weba", "webm", "wma", "wmv",
    "y4m"})

_X264 = {"preset": "veryfast", "crf": "23", "profile": "main"}
_AUDIO_BITS = 128_000
_AUDIO_RATES = (44100, 48000)  # kept when the source has one; anything else becomes 48 kHz
_DEFAULT_RATE = Fraction(30)
_MAX_RATE = 60  # frames a second: faster sources lose frames
_POSTER_AT = 0.1  # of the duration …
_POSTER_MAX_SECONDS = 3.0  # … at most this far in
_DARK = 24  # mean luminance (0–255) below which a frame counts as black
_PROBE_PACKETS = 500  # read at most this many packets looking for the first frame
_AUDIO_POSTER = 500  # side of the drawn poster of an audio doc without cover art
_COVER_BYTES = 10 * 1024 * 1024
_TAGS = ("title", "artist", "album", "date", "genre", "comment")
_TAG_MAX = 255
_SHORT_BY = 0.5  # seconds a decode may end before the declared duration (beyond: truncated)
_SECONDS = 1_000_000  # av.time_base
_DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO})
# A second of video takes about (its pixels + those of its small renditions) / _WORK_PIXELS
# seconds to transcode (work_seconds): fitted to bench/transcode_bench.py's wall-clock figures
# at 720p and 1080p, 30 frames a second, on the 2-core development VM under load.
_WORK_PIXELS = 1_600_000
_SMALL_RENDITIONS = 480 * 270 + 640 * 360  # ``ipod`` and ``mp4`` of a 16:9 source
_AUDIO_WORK = 0.05  # seconds of work per second of audio
# Sound below this rate, or with more channels than this, is refused: an 8 Hz WAV declaring an
# hour would be a day of MP3 at 48 kHz (the rendition resamples it), and the renditions downmix
# to stereo anyway.
MIN_SAMPLE_RATE = 8000
MAX_CHANNELS = 8
# The most bits a second each video rendition's H.264 may spend (x264's VBV ``maxrate``, with a
# two-second ``bufsize``), and never more than this many times the source's own bit rate (noise
# amplified by re-encoding), though never under _MIN_VIDEO_BITS.
VIDEO_BITS = {"ipod": 1_000_000, "mp4": 2_000_000, "hd": 6_000_000}
SOURCE_BITS_MULTIPLE = 1.5
_MIN_VIDEO_BITS = 200_000
# Packets that fail to decode are skipped (as players do) up to this many, or a tenth of the
# packets read when that is more; beyond, the file is refused.
MAX_BAD_PACKETS = 100

# One transcode at a time in a process (the worker, async=0 requests): it takes the codec's threads
# and its memory; a second one waits (docs/uploads.md, "Video and audio").
TRANSCODES = threading.BoundedSemaphore(1)


@dataclass(frozen=True)
class Limits:
    """The bounds of one probe or transcode (settings ``max_media_seconds``,
    ``max_video_pixels``, ``transcode_seconds``, ``video_threads``, ``max_image_pixels``,
    ``max_decode_bytes``)."""

    max_seconds: float = 3600.0
    max_pixels: int = 4096 * 4096
    budget_seconds: float = 1800.0
    threads: int = 1
    max_image_pixels: int = 120_000_000  # an audio file's cover art
    max_decode_bytes: int = 512 * 1024 * 1024
    max_frame_bytes: int = 64 * 1024 * 1024  # one decoded frame in its declared pixel format
    nice: int = 10  # added to the transcoding thread's nice value while it transcodes

    @classmethod
    def of(cls, settings: Any) -> Limits:
        return cls(max_seconds=settings.max_media_seconds, max_pixels=settings.max_video_pixels,
                   budget_seconds=settings.transcode_seconds, threads=settings.video_threads,
                   max_image_pixels=settings.max_image_pixels,
                   max_decode_bytes=settings.max_decode_bytes,
                   max_frame_bytes=settings.max_video_frame_bytes,
                   nice=settings.transcode_nice)


@dataclass(frozen=True)
class Probed:
    """What the container says, checked against the limits (and, when probed with
    ``decode``, with one frame decoded)."""

    media: str  # video | audio
    duration: float  # seconds
    width: int = 0  # displayed (rotation applied)
    height: int = 0
    rotation: int = 0  # degrees counterclockwise the stored picture is turned to be shown
    video_codec: str = ""
    audio_codec: str = ""
    created: str | None = None  # "YYYY-MM-DD HH:MM:SS"
    tags: dict[str, str] = field(default_factory=dict)
    bit_rate: int = 0  # bits a second of the whole file, as the container says (0: unknown)

    @property
    def seconds(self) -> int:
        """The duration in whole seconds (``Doc.duration``, quotas)."""
        return whole_seconds(self.duration)

    def work_seconds(self) -> int:
        """A guess at the seconds its processing takes (a ticket's ``eta``), from the bench's
        figures on textured moving pictures with one codec thread: a 720p second takes about
        0.8 s, a 1080p one 1.5 s (the three renditions together); audio 1/20 of its length."""
        if self.media == "audio":
            return 1 + math.ceil(self.duration * _AUDIO_WORK)
        pixels = self.width * self.height
        work = (pixels + min(pixels, _SMALL_RENDITIONS)) / _WORK_PIXELS
        return 1 + math.ceil(self.duration * work)

    def details(self) -> dict[str, str]:
        """What doc.getExif shows of it (``Doc.exif``)."""
        shown = {"Duration": f"{self.duration:.2f}", "VideoCodec": self.video_codec,
                 "AudioCodec": self.audio_codec, "Rotation": str(self.rotation) if
                 self.rotation else ""}
        shown |= {name.capitalize(): value for name, value in self.tags.items()}
        return {name: value for name, value in shown.items() if value}


def whole_seconds(seconds: float) -> int:
    """A duration in whole seconds as ``lenght`` and quotas show it: a started second counts
    (a 2.02 s clip, its sound a frame longer than its pictures, is 2)."""
    return math.ceil(seconds - 0.05) if seconds > 0 else 0


@dataclass(frozen=True)
class Rendition:
    """One web rendition to make (or made): label, extension, size, and where its file is."""

    label: str
    ext: str
    width: int
    height: int
    path: str


def examine(path: str, filename: str, sniffed: Sniffed, limits: Limits, *, decode: bool = True
            ) -> tuple[Sniffed, Probed | None]:
    """``sniffed`` as FFmpeg sees the file: a video or audio file is probed (Rejected when it
    does not read; ``decode``: see ``probe``) and its media type becomes the probe's (an MP4 with
    sound alone is audio); a file no magic number knew whose name says video or audio is probed
    too, and kept under its name's extension. Anything else comes back as it was, with no
    probe."""
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    by_name = sniffed.media == "other" and ext in MEDIA_EXTENSIONS
    if not by_name and (sniffed.media not in ("video", "audio") or sniffed.ext in UNPLAYABLE):
        return sniffed, None
    probed = probe(path, limits, decode=decode)
    if by_name:
        mime = mimetypes.guess_type(f"file.{ext}")[0] or f"{probed.media}/{ext}"
        sniffed = dataclasses.replace(sniffed, ext=ext, mime=mime)
    return dataclasses.replace(sniffed, media=probed.media, width=probed.width,
                               height=probed.height), probed


def probe(path: str, limits: Limits, *, decode: bool = True) -> Probed:
    """Read the container at ``path`` and, with ``decode``, its first frame (the worker, in a
    decoding slot; upload.file reads the container alone, no frame allocated); Rejected when
    FFmpeg cannot, when it has no audio or video, or breaks a bound (duration, pixels, bytes of
    a frame in its declared pixel format, sample rate, channels, the work it would take).

    Without ``decode`` the rotation is unknown (0) and the size the stored one."""
    with _opened(path) as container:
        video, audio = _streams(container)
        if video is None and audio is None:
            raise Rejected("no audio or video stream")
        duration = _duration(container, video or audio)
        if duration > limits.max_seconds:
            raise Rejected(f"longer than {limits.max_seconds:g} s")
        if audio is not None:
            _check_sound(audio)
        common: dict[str, Any] = {
            "duration": duration, "created": _created(container.metadata),
            "tags": _tags(container.metadata), "bit_rate": max(0, container.bit_rate or 0),
            "audio_codec": audio.codec_context.name if audio is not None else ""}
        if video is None:
            assert audio is not None
            if decode:
                _first_frame(container, audio)
            return _within_budget(Probed(media="audio", **common), limits)
        width, height = video.codec_context.width, video.codec_context.height
        if width < 1 or height < 1 or width * height > limits.max_pixels:
            raise Rejected(f"{width}x{height} video: more than {limits.max_pixels} pixels")
        _check_frame_bytes(video, limits)
        rotation = 0
        if decode:
            video.codec_context.thread_count = 1
            rotation = _rotation(_first_frame(container, video))
        if rotation in (90, 270):
            width, height = height, width
        return _within_budget(Probed(media="video", width=width, height=height,
                                     rotation=rotation, video_codec=video.codec_context.name,
                                     **common), limits)


def _check_sound(audio: AudioStream) -> None:
    """Rejected below MIN_SAMPLE_RATE or above MAX_CHANNELS (a rate or layout that changes
    later in the stream is resampled as it comes)."""
    rate, channels = audio.codec_context.sample_rate or 0, audio.codec_context.channels or 0
    if rate < MIN_SAMPLE_RATE:
        raise Rejected(f"sound at {rate} Hz: under {MIN_SAMPLE_RATE} Hz")
    if channels > MAX_CHANNELS:
        raise Rejected(f"sound with {channels} channels: more than {MAX_CHANNELS}")


def _check_frame_bytes(video: VideoStream, limits: Limits) -> None:
    """Rejected when one decoded frame in the stream's declared pixel format would take more
    than ``limits.max_frame_bytes`` (a 16-bit RGBA frame is eight bytes a pixel, not 1.5)."""
    declared = video.codec_context.format
    bits = declared.padded_bits_per_pixel if declared is not None else 0
    frame_bytes = video.codec_context.width * video.codec_context.height * max(bits, 12) // 8
    if frame_bytes > limits.max_frame_bytes:
        raise Rejected(f"a {declared.name if declared else 'video'} frame of {frame_bytes} "
                       f"bytes: more than {limits.max_frame_bytes}")


def _within_budget(probed: Probed, limits: Limits) -> Probed:
    """``probed``, unless its estimated work would not fit the time budget of a transcode
    (refused at upload rather than failed after the budget was spent)."""
    if probed.work_seconds() > limits.budget_seconds:
        raise Rejected(f"about {probed.work_seconds()} s of transcoding: more than the "
                       f"{limits.budget_seconds:g} s budget")
    return probed


@contextmanager
def _opened(path: str) -> Iterator[InputContainer]:
    """The input container, FFmpeg's complaints turned into Rejected (a full disk excepted)."""
    try:
        with av.open(path, metadata_errors="ignore") as container:
            yield container
    except (av.FFmpegError, ValueError, UnicodeDecodeError, OverflowError,
            ZeroDivisionError, IndexError) as error:
        if isinstance(error, OSError) and error.errno in _DISK_ERRORS:
            raise
        raise Rejected(f"not a readable video or audio file: {type(error).__name__}") from None


def _streams(container: InputContainer) -> tuple[VideoStream | None, AudioStream | None]:
    """The first video stream that is not cover art, and the first audio stream."""
    video = next((s for s in container.streams.video
                  if not s.disposition & Disposition.attached_pic), None)
    audio = next(iter(container.streams.audio), None)
    return video, audio


def _duration(container: InputContainer, stream: Any) -> float:
    """Seconds, from the container or else the stream (0 when neither says)."""
    if container.duration is not None and container.duration > 0:
        return container.duration / _SECONDS
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return 0.0


def _first_frame(container: InputContainer, stream: Any) -> Any:
    """The first frame of ``stream``, reading at most _PROBE_PACKETS packets."""
    for count, packet in enumerate(container.demux(stream)):
        if count >= _PROBE_PACKETS:
            break
        for frame in _decoded(packet) or ():
            return frame
    raise Rejected("no frame could be decoded")


def _decoded(packet: Any) -> list[Any] | None:
    """The frames of one packet; None when the decoder refuses it (a corrupt packet: FFmpeg's
    players skip it, so do we, the caller counting them)."""
    try:
        return list(packet.decode())
    except av.FFmpegError as error:
        if isinstance(error, OSError) and error.errno in _DISK_ERRORS:
            raise
        return None


def _rotation(frame: Any) -> int:
    """The frame's display rotation as 0, 90, 180 or 270 degrees counterclockwise."""
    return round((frame.rotation or 0) / 90.0) % 4 * 90


def _tags(metadata: dict[str, str]) -> dict[str, str]:
    """Title, artist … (ID3, MP4, Vorbis comments alike) as short printable text."""
    lowered = {str(k).lower(): str(v) for k, v in metadata.items()}
    out = {}
    for name in _TAGS:
        text = "".join(c for c in lowered.get(name, "") if c.isprintable()).strip()[:_TAG_MAX]
        if text:
            out[name] = text
    return out


def _created(metadata: dict[str, str]) -> str | None:
    """``creation_time`` (ISO 8601) as ``YYYY-MM-DD HH:MM:SS``; None when absent or a zero date
    (MP4's 1904 and 1970 epochs)."""
    raw = str(metadata.get("creation_time", ""))[:19]
    try:
        moment = datetime.strptime(raw, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    return None if moment.year <= 1970 else moment.strftime("%Y-%m-%d %H:%M:%S")


# -- the poster --------------------------------------------------------------------------------


def poster(path: str, probed: Probed, limits: Limits) -> Image.Image:
    """The picture a doc's thumbnails are cut from, upright: for a video, a frame a little into it
    (``_POSTER_AT`` of the duration, at most ``_POSTER_MAX_SECONDS``), a later one if that one is
    near-black; for audio, its cover art, else a drawn note."""
    if probed.media == "audio":
        return _cover(path, limits) or drawn_poster()
    with _opened(path) as container:
        video, _audio = _streams(container)
        assert video is not None
        video.codec_context.thread_count = limits.threads
        first = min(probed.duration * _POSTER_AT, _POSTER_MAX_SECONDS)
        best: tuple[float, Image.Image] | None = None
        for moment in (first, probed.duration * 0.5, 0.0):
            picture = _frame_at(container, video, moment)
            if picture is None:
                continue
            light = ImageStat.Stat(picture.convert("L").reduce(4)).mean[0]
            if best is None or light > best[0]:
                best = (light, picture)
            if light >= _DARK:
                break
    if best is None:
        raise Rejected("no frame could be decoded")
    return _turned(best[1], probed.rotation)


def _frame_at(container: InputContainer, video: VideoStream, moment: float) -> Image.Image | None:
    """The first frame at or after ``moment`` seconds (the last one before the end if none), as
    an RGB picture no larger than the largest thumbnail."""
    try:
        container.seek(int(moment * _SECONDS), backward=True)
    except av.FFmpegError:
        return None
    picked = None
    for count, packet in enumerate(container.demux(video)):
        if count >= _PROBE_PACKETS:
            break
        for frame in _decoded(packet) or ():
            picked = frame
            if frame.time is None or frame.time >= moment - 0.001:
                return _pictured(frame)
    return _pictured(picked) if picked is not None else None


def _pictured(frame: Any) -> Image.Image:
    width, height = frame.width, frame.height
    scale = min(1.0, LARGEST_THUMB / max(width, height))
    return frame.reformat(width=max(2, round(width * scale)), height=max(2, round(height * scale)),
                          format="rgb24").to_image()


def _turned(picture: Image.Image, rotation: int) -> Image.Image:
    """The picture shown as its display matrix says (Image.rotate turns counterclockwise too)."""
    return picture.rotate(rotation, expand=True) if rotation else picture


def _cover(path: str, limits: Limits) -> Image.Image | None:
    """An audio file's embedded cover art (ID3 APIC, MP4 covr, FLAC picture) when it is a sane
    picture within the image bounds; None otherwise."""
    try:
        with av.open(path, metadata_errors="ignore") as container:
            art = next((s for s in container.streams.video
                        if s.disposition & Disposition.attached_pic), None)
            if art is None:
                return None
            packet = next(iter(container.demux(art)), None)
            data = bytes(packet) if packet is not None else b""
        if not data or len(data) > _COVER_BYTES:
            return None
        with Image.open(io.BytesIO(data), formats=["JPEG", "PNG"]) as image:
            width, height = image.size
            if (width * height > limits.max_image_pixels
                    or decode_bytes(image) > limits.max_decode_bytes):
                return None
            image.thumbnail((LARGEST_THUMB, LARGEST_THUMB))
            return image.convert("RGB")
    except (av.FFmpegError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def drawn_poster() -> Image.Image:
    """A square with a musical note: what an audio doc without cover art shows."""
    side = _AUDIO_POSTER
    picture = Image.new("RGB", (side, side), (48, 52, 64))
    draw = ImageDraw.Draw(picture)
    unit = side // 10
    draw.ellipse((3 * unit, 6 * unit, 5 * unit, 8 * unit), fill=(230, 230, 235))
    draw.rectangle((int(4.6 * unit), 2 * unit, 5 * unit, 7 * unit), fill=(230, 230, 235))
    draw.polygon([(5 * unit, 2 * unit), (7 * unit, 3 * unit), (7 * unit, 4 * unit),
                  (5 * unit, 3 * unit)], fill=(230, 230, 235))
    return picture


# -- renditions --------------------------------------------------------------------------------


def plan_renditions(probed: Probed, folder: Path) -> list[Rendition]:
    """The renditions to make of ``probed``, with their files in ``folder``: for a video each
    label of VIDEO_LABELS whose minimum the source's shortest side reaches, fitted in its box
    (never enlarged, even sides); for audio one MP3."""
    if probed.media == "audio":
        return [Rendition(AUDIO_LABEL, "mp3", 0, 0, str(folder / f"{AUDIO_LABEL}.mp3"))]
    plans = []
    for label, longest, shortest, needed in VIDEO_LABELS:
        if min(probed.width, probed.height) < needed:
            continue
        width, height = _fitted(probed.width, probed.height, longest, shortest)
        plans.append(Rendition(label, VIDEO_EXT, width, height,
                               str(folder / f"{label}.{VIDEO_EXT}")))
    return plans


def _fitted(width: int, height: int, longest: int, shortest: int) -> tuple[int, int]:
    """The size within a box of ``longest`` × ``shortest`` (turned to the picture's way), never
    larger than the source, both sides even (H.264 in 4:2:0)."""
    box_w, box_h = (longest, shortest) if width >= height else (shortest, longest)
    scale = min(1.0, box_w / width, box_h / height)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def transcode(source: str, probed: Probed, renditions: Sequence[Rendition], limits: Limits,
              progress: Callable[[], None] = lambda: None) -> float:
    """Write every rendition of ``source`` in one decoding pass: H.264/AAC MP4 for a video (each
    size once: renditions of equal size share their file), MP3 for audio. ``progress`` is called
    after each packet (the worker renews its lease there). Returns the seconds of media written.

    Rejected when the file breaks while decoded (more corrupt packets than MAX_BAD_PACKETS),
    runs past ``limits.max_seconds`` (whatever its header said), a video ends well before the
    duration it declared (truncated), or the whole takes longer
    than ``limits.budget_seconds``. The caller removes the files on any failure."""
    deadline = time.monotonic() + limits.budget_seconds
    with _opened(source) as container:
        video, audio = _streams(container)
        if probed.media == "video" and video is None:
            raise Rejected("no video stream")
        inputs = [s for s in ((video if probed.media == "video" else None), audio) if s]
        for stream in inputs:
            stream.codec_context.thread_count = limits.threads
            stream.codec_context.thread_type = "AUTO"
        outputs = _outputs(probed, renditions, video, audio, limits)
        try:
            end = _pump(container, inputs, outputs, limits, deadline, progress)
            for output in outputs:
                output.close()
        finally:
            for output in outputs:
                output.abandon()
    # A sound's declared duration may be a guess from its bit rate (an MP3 without a Xing
    # header, joined MP3s): what decodes is its length (the worker's ``duration``).
    if (probed.media == "video" and probed.duration
            and end < probed.duration - max(_SHORT_BY, probed.duration * 0.05)):
        raise Rejected(f"truncated: {end:.1f} s of {probed.duration:.1f} s decoded")
    return end


def _outputs(probed: Probed, renditions: Sequence[Rendition], video: VideoStream | None,
             audio: AudioStream | None, limits: Limits) -> list[_Output]:
    """One output per distinct file to write (renditions of equal size share one)."""
    if probed.media == "audio":
        return [_Output(renditions[0].path, "mp3", None, audio, probed, limits)]
    by_size: dict[tuple[int, int], _Output] = {}
    for plan in renditions:
        if (plan.width, plan.height) not in by_size:
            by_size[(plan.width, plan.height)] = _Output(plan.path, "mp4", plan, audio,
                                                         probed, limits, video)
        else:
            by_size[(plan.width, plan.height)].copies.append(plan.path)
    return list(by_size.values())


def _pump(container: InputContainer, inputs: list[Any], outputs: list[_Output], limits: Limits,
          deadline: float, progress: Callable[[], None]) -> float:
    """Decode the inputs and feed every output; the end time all of them reached, in seconds
    (the shortest stream's: a file cut short may have its pictures whole and half its sound).
    Packets the decoder refuses are skipped, up to MAX_BAD_PACKETS (or a tenth of them)."""
    ends = dict.fromkeys((stream.index for stream in inputs), 0.0)
    bad = 0
    for count, packet in enumerate(container.demux(*inputs), start=1):
        if time.monotonic() > deadline:
            raise Rejected(f"transcoding took more than {limits.budget_seconds:g} s")
        frames = _decoded(packet)
        if frames is None:
            bad += 1
            if bad > max(MAX_BAD_PACKETS, count // 10):
                raise Rejected(f"{bad} of {count} packets could not be decoded")
            continue
        for frame in frames:
            end = ends[packet.stream.index]
            moment = frame.time if frame.time is not None else end
            if moment > limits.max_seconds:
                raise Rejected(f"runs past {limits.max_seconds:g} s")
            ends[packet.stream.index] = max(end, moment + _frame_seconds(frame))
            for output in outputs:
                output.feed(frame)
        progress()
    return min(ends.values())


def rendition_bits(label: str, source_bits: int) -> int:
    """The most bits a second a rendition's video may take: its label's VIDEO_BITS, and no more
    than SOURCE_BITS_MULTIPLE times the source's bit rate when that is known."""
    bits = VIDEO_BITS[label]
    if source_bits > 0:
        bits = min(bits, max(_MIN_VIDEO_BITS, int(source_bits * SOURCE_BITS_MULTIPLE)))
    return bits


@contextmanager
def lowered_priority(nice: int) -> Iterator[None]:
    """The calling thread ``nice`` steps nicer meanwhile (Linux: a thread's own nice value; the
    codec's threads, started within, inherit it), so the calls' threads keep their latency on
    a busy machine. Restored afterwards where the process may raise its priority again (root,
    or RLIMIT_NICE); elsewhere the thread (the worker's) stays nicer, which is what it is for."""
    thread = threading.get_native_id()
    before: int | None = None
    if nice > 0:
        try:
            before = os.getpriority(os.PRIO_PROCESS, thread)
            os.setpriority(os.PRIO_PROCESS, thread, min(19, before + nice))
        except OSError:  # not allowed: run as we are
            before = None
    try:
        yield
    finally:
        if before is not None:
            try:
                os.setpriority(os.PRIO_PROCESS, thread, before)
            except OSError:
                pass


def _frame_seconds(frame: Any) -> float:
    """How long one decoded frame lasts (audio: its samples; video: its duration, if known)."""
    if isinstance(frame, av.AudioFrame):
        return frame.samples / frame.sample_rate if frame.sample_rate else 0.0
    if frame.duration and frame.time_base:
        return float(frame.duration * frame.time_base)
    return 0.0


class _Output:
    """One file being written: an MP4 (H.264 at ``plan``'s size, turned upright, with AAC sound
    when the source has some) or an MP3."""

    def __init__(self, path: str, kind: str, plan: Rendition | None, audio: AudioStream | None,
                 probed: Probed, limits: Limits, video: VideoStream | None = None) -> None:
        self.path = path
        self.copies: list[str] = []
        self.limits = limits
        self.container = av.open(path, "w", format=kind,
                                 options={"movflags": "+faststart"} if kind == "mp4" else {})
        self.video: VideoStream | None = None
        self.audio: AudioStream | None = None
        self.graph: av.filter.Graph | None = None
        self.last_pts = -1
        if plan is not None and video is not None:
            self._add_video(plan, video, probed)
        if audio is not None:
            self._add_audio(audio, *(("aac", 1024) if kind == "mp4" else ("libmp3lame", 1152)))
        self.samples = 0

    def _add_video(self, plan: Rendition, source: VideoStream, probed: Probed) -> None:
        rate = source.average_rate or source.guessed_rate or _DEFAULT_RATE
        if not 1 <= rate <= _MAX_RATE:
            rate = _DEFAULT_RATE
        self.rate = Fraction(rate).limit_denominator(1001)
        bits = rendition_bits(plan.label, probed.bit_rate)
        stream = self.container.add_stream("libx264", rate=self.rate, options=dict(
            _X264, maxrate=str(bits), bufsize=str(2 * bits)))
        stream.width, stream.height, stream.pix_fmt = plan.width, plan.height, "yuv420p"
        stream.codec_context.thread_count = self.limits.threads
        stream.codec_context.time_base = 1 / self.rate
        self.video = stream
        # Scaled at the stored orientation, then turned: the picture as players would show it.
        self.stored = (plan.height, plan.width) if probed.rotation in (90, 270) else (
            plan.width, plan.height)
        if probed.rotation:
            self.graph = _turning_graph(self.stored, probed.rotation, self.rate)

    def _add_audio(self, source: AudioStream, codec: str, frame_size: int) -> None:
        rate = source.codec_context.sample_rate
        rate = rate if rate in _AUDIO_RATES else _AUDIO_RATES[-1]
        stereo = (source.codec_context.channels or 1) >= 2
        stream = self.container.add_stream(codec, rate=rate, layout="stereo" if stereo else "mono",
                                           bit_rate=_AUDIO_BITS)
        assert isinstance(stream, AudioStream)
        stream.codec_context.time_base = Fraction(1, rate)
        self.audio = stream
        # Two steps: ``converter`` takes the source's frames to the output's format, layout and
        # rate, and is made anew when they change mid-stream (concatenated MP3s, a broadcast
        # switching to 5.1); ``framer`` cuts the result into the encoder's frame size.
        layout = "stereo" if stereo else "mono"
        self.converter: tuple[tuple[Any, ...], av.AudioResampler] | None = None
        self.layout, self.rate_hz = layout, rate
        self.framer = av.AudioResampler(format="fltp", layout=layout, rate=rate,
                                        frame_size=frame_size)

    def feed(self, frame: Any) -> None:
        if isinstance(frame, av.AudioFrame):
            if self.audio is not None:
                self._feed_audio(frame)
        elif self.video is not None:
            self._feed_video(frame)

    def _feed_video(self, frame: Any) -> None:
        assert self.video is not None
        if frame.width * frame.height > self.limits.max_pixels:  # a size change mid-stream
            raise Rejected("a frame larger than the pixel limit")
        pts = round((frame.time or 0.0) * self.rate)
        if pts <= self.last_pts:  # a frame faster than the rate, or time going backwards
            return
        self.last_pts = pts
        width, height = self.stored
        scaled = frame.reformat(width=width, height=height, format="yuv420p",
                                interpolation="BICUBIC")
        if self.graph is not None:
            self.graph.push(scaled)
            scaled = self.graph.pull()
        scaled.pts, scaled.time_base = pts, 1 / self.rate
        self.container.mux(self.video.encode(scaled))

    def _feed_audio(self, frame: Any) -> None:
        assert self.audio is not None
        frame.pts = None
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        if self.converter is None or self.converter[0] != shape:
            self._frame_audio(None)
            self.converter = (shape, av.AudioResampler(format="fltp", layout=self.layout,
                                                       rate=self.rate_hz))
        self._frame_audio(frame)

    def _frame_audio(self, frame: Any) -> None:
        """``frame`` through the converter (None: flush it) and the framer to the encoder."""
        if self.converter is None:
            return
        for converted in self.converter[1].resample(frame):
            converted.pts = None
            for chunk in self.framer.resample(converted):
                self._encode_audio(chunk)

    def _encode_audio(self, chunk: Any) -> None:
        assert self.audio is not None
        chunk.pts, chunk.time_base = self.samples, Fraction(1, self.audio.codec_context.sample_rate)
        self.samples += chunk.samples
        self.container.mux(self.audio.encode(chunk))

    def close(self) -> None:
        """Flush the encoders and finish the file, then write its copies."""
        if self.audio is not None:
            self._frame_audio(None)
            for chunk in self.framer.resample(None):
                self._encode_audio(chunk)
            self.container.mux(self.audio.encode(None))
        if self.video is not None:
            self.container.mux(self.video.encode(None))
        self.container.close()
        for copy in self.copies:
            shutil.copyfile(self.path, copy)

    def abandon(self) -> None:
        """Close the file if ``close`` did not (an error on the way); idempotent."""
        try:
            self.container.close()
        except av.FFmpegError:
            pass


def _turning_graph(size: tuple[int, int], rotation: int, rate: Fraction) -> av.filter.Graph:
    """buffer → transpose (or both flips) → buffersink: frames of ``size`` turned
    ``rotation`` degrees counterclockwise."""
    graph = av.filter.Graph()
    source = graph.add_buffer(width=size[0], height=size[1], format=VideoFormat("yuv420p"),
                              time_base=1 / rate)
    steps = {90: [("transpose", "cclock")], 270: [("transpose", "clock")],
             180: [("hflip", ""), ("vflip", "")]}[rotation]
    node = source
    for name, argument in steps:
        step = graph.add(name, argument)
        node.link_to(step)
        node = step
    sink = graph.add("buffersink")
    node.link_to(sink)
    graph.configure()
    return graph
