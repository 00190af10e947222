"""Transcoding throughput of ``video.transcode`` beside the same conversion written plainly with
PyAV (the floor), and the ratio.

    python bench/transcode_bench.py [--seconds 20] [--size 1920x1080] [--rounds 5] [--threads 1]

The source is made here with PyAV: ``--seconds`` of ``--size`` video at 30 frames a second, a
textured picture panning under a moving disc (x264 has motion to search and detail to spend
bits on, unlike flat frames), with a stereo AAC track. Both sides make the renditions
``plan_renditions`` names for it (for 1080p: ``ipod`` 480×270, ``mp4`` 640×360, ``hd``
1920×1080) with the same codec settings and ``--threads`` codec threads (the setting
``API_VIDEO_THREADS``, 1 by default): one decoding pass, each frame scaled (bicubic) for each
output and encoded, the sound resampled and encoded into each. The floor has none of ours'
checks, bounds, rotation, frame-rate guard or progress calls. Rounds alternate which runs first;
the figures are medians, per wall-clock second and per second of CPU time (this process's, all
its threads), since a VM's speed drifts: seconds of video transcoded per second.
"""

from __future__ import annotations

import argparse
import array
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageChops, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.media import video  # noqa: E402

FPS = 30
AUDIO_RATE = 48000
_CHUNK = 1024  # samples per source audio frame


def write_source(path: Path, seconds: float, size: tuple[int, int], *,
                 loop_seconds: float | None = None, crf: int = 18) -> Path:
    """An H.264/AAC MP4 of ``seconds`` at ``size``: a textured picture panning under a moving
    disc, with a stereo chord. With ``loop_seconds`` only that much picture is encoded and its
    packets repeated (each repeat starts on a key frame): a long source made in a few seconds,
    decoded and encoded like any other. ``crf``: x264's quality (18: a camera's bit rate)."""
    clip = path.with_suffix(".clip.mp4")
    frames = round((loop_seconds or seconds) * FPS)
    _write_clip(clip, frames, size, crf)
    sound = _Chord()
    with av.open(str(clip)) as first:
        template = first.streams.video[0]
        with av.open(str(path), "w", format="mp4") as out:
            pictures = out.add_stream_from_template(template)
            audio = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo", bit_rate=192_000)
            tick = 1 / template.time_base
            for loop in range(math.ceil(seconds * FPS / frames)):
                shift = round(loop * frames / FPS * tick)
                with av.open(str(clip)) as source:
                    for packet in source.demux(source.streams.video[0]):
                        if packet.dts is None or packet.pts + shift >= seconds * tick:
                            continue
                        packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
                        packet.stream = pictures
                        out.mux(packet)
                        sound.encode_until(out, audio, float(packet.pts / tick))
            sound.encode_until(out, audio, seconds)
            out.mux(audio.encode(None))
    clip.unlink()
    return path


def _write_clip(path: Path, frames: int, size: tuple[int, int], crf: int) -> None:
    width, height = size
    canvas = _canvas(width * 2, height * 3 // 2)
    disc = max(8, height // 5)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast",
                                                                 "crf": str(crf)})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            left = index * 7 % (canvas.width - width)
            top = abs(index * 3 % (2 * (canvas.height - height)) - (canvas.height - height))
            picture = canvas.crop((left, top, left + width, top + height))
            x = index * 11 % max(1, width - disc)
            ImageDraw.Draw(picture).ellipse((x, height // 3, x + disc, height // 3 + disc),
                                            fill=(240, 220, 40))
            out.mux(stream.encode(av.VideoFrame.from_image(picture)))
        out.mux(stream.encode(None))


def _canvas(width: int, height: int) -> Image.Image:
    """Detail at every scale: a Mandelbrot set, smooth noise and gradients as the three
    channels."""
    fractal = Image.effect_mandelbrot((width, height), (-2.2, -1.2, 1.0, 1.2), 120)
    noise = Image.effect_noise((width // 4, height // 4), 60).resize((width, height),
                                                                    Image.Resampling.BICUBIC)
    ramp = Image.linear_gradient("L").resize((width, height))
    return Image.merge("RGB", (fractal.convert("L"), ImageChops.add(noise, ramp, 2),
                               ImageChops.blend(ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                                                noise, 0.5)))


class _Chord:
    """A stereo chord (220, 277 and 330 Hz), one second of it made once and repeated."""

    def __init__(self) -> None:
        second = array.array("h")
        for n in range(AUDIO_RATE):
            left = sum(math.sin(2 * math.pi * f * n / AUDIO_RATE) for f in (220, 330))
            right = sum(math.sin(2 * math.pi * f * n / AUDIO_RATE) for f in (277, 330))
            second.extend((int(5000 * left), int(5000 * right)))
        self.twice = second.tobytes() * 2  # a frame's slice may run past the second's end
        self.samples = 0
        self.resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE,
                                           frame_size=1024)

    def encode_until(self, out: Any, stream: Any, moment: float) -> None:
        """Encode the chord up to ``moment`` seconds."""
        while self.samples < moment * AUDIO_RATE:
            frame = av.AudioFrame(format="s16", layout="stereo", samples=_CHUNK)
            start = self.samples % AUDIO_RATE * 4
            frame.planes[0].update(self.twice[start:start + _CHUNK * 4])
            frame.sample_rate, frame.pts = AUDIO_RATE, self.samples
            self.samples += _CHUNK
            for chunk in self.resampler.resample(frame):
                out.mux(stream.encode(chunk))


def floor(source: str, renditions: list[video.Rendition], threads: int,
          source_bits: int) -> None:
    """The renditions made as plainly as PyAV allows: decode, scale, encode, mux; the same x264
    settings as ours, each rendition's bit-rate cap included (``video.rendition_bits``)."""
    with av.open(source) as container:
        pictures, sound = container.streams.video[0], container.streams.audio[0]
        for stream in (pictures, sound):
            stream.codec_context.thread_count = threads
            stream.codec_context.thread_type = "AUTO"
        rate = Fraction(pictures.average_rate or FPS)
        outputs = []
        for plan in renditions:
            out = av.open(plan.path, "w", format="mp4", options={"movflags": "+faststart"})
            bits = video.rendition_bits(plan.label, source_bits)
            encoder = out.add_stream("libx264", rate=rate, options=dict(
                video._X264, maxrate=str(bits), bufsize=str(2 * bits)))
            encoder.width, encoder.height, encoder.pix_fmt = plan.width, plan.height, "yuv420p"
            encoder.codec_context.thread_count = threads
            aac = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo",
                                 bit_rate=video._AUDIO_BITS)
            outputs.append((out, plan, encoder, aac))
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE,
                                      frame_size=1024)
        for frame in container.decode(pictures, sound):
            if isinstance(frame, av.AudioFrame):
                for chunk in resampler.resample(frame):
                    for out, _, _, aac in outputs:
                        out.mux(aac.encode(chunk))
                continue
            for out, plan, encoder, _ in outputs:
                scaled = frame.reformat(width=plan.width, height=plan.height, format="yuv420p",
                                        interpolation="BICUBIC")
                out.mux(encoder.encode(scaled))
        for chunk in resampler.resample(None):
            for out, _, _, aac in outputs:
                out.mux(aac.encode(chunk))
        for out, _, encoder, aac in outputs:
            out.mux(encoder.encode(None))
            out.mux(aac.encode(None))
            out.close()


@dataclass
class Run:
    """One transcode of the source."""

    per_second: float  # seconds of video per wall-clock second
    per_cpu_second: float  # seconds of video per CPU second


def timed(work: Callable[[], None], seconds: float) -> Run:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Run(seconds / wall, seconds / cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    size = tuple(int(side) for side in args.size.lower().split("x"))
    if len(size) != 2:
        sys.exit("--size: WIDTHxHEIGHT, e.g. 1920x1080")
    work = Path(tempfile.mkdtemp(prefix="transcode-bench-"))
    try:
        started = time.perf_counter()
        source = str(write_source(work / "source.mp4", args.seconds, (size[0], size[1])))
        limits = video.Limits(threads=args.threads)
        probed = video.probe(source, limits)
        renditions = {name: video.plan_renditions(probed, work / name) for name in ("ours",
                                                                                  "floor")}
        for folder in renditions:
            (work / folder).mkdir()
        print(f"source: {probed.duration:g} s of {probed.width}x{probed.height} at {FPS} fps "
              f"with stereo AAC, made in {time.perf_counter() - started:.1f} s; renditions "
              + ", ".join(f"{r.label} {r.width}x{r.height}" for r in renditions["ours"])
              + f"; codec threads {args.threads}")
        sides: dict[str, Callable[[], Any]] = {
            "ours": lambda: video.transcode(source, probed, renditions["ours"], limits),
            "floor": lambda: floor(source, renditions["floor"], args.threads,
                                   probed.bit_rate)}
        pairs = []
        for round_ in range(args.rounds):
            order = ("ours", "floor") if round_ % 2 == 0 else ("floor", "ours")
            runs = {name: timed(sides[name], probed.duration) for name in order}
            pairs.append((runs["ours"], runs["floor"]))
            print(f"  round {round_ + 1}: ours {runs['ours'].per_second:.3f}, floor "
                  f"{runs['floor'].per_second:.3f} video s per s")
        for label, attr in (("video s per second", "per_second"),
                            ("video s per CPU second", "per_cpu_second")):
            ours = statistics.median(getattr(o, attr) for o, _ in pairs)
            bare = statistics.median(getattr(f, attr) for _, f in pairs)
            ratio = statistics.median(getattr(o, attr) / getattr(f, attr) for o, f in pairs)
            print(f"{label:23s} ours {ours:6.3f}   floor {bare:6.3f}   ratio {ratio:.3f}"
                  "   (target ≥ 0.90)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
