"""The decode budget against files built to fool it (issue 10 review): lossless and RGBA WebP,
progressive JPEG (4:4:4, CMYK), a 1x1 TIFF with millions of tag values, 16-bit grey below the
reduction size, EXIF blocks too big to read, MPO. Each hostile file is decoded in a fresh process
whose peak must stay within decode_bytes + DECODE_MARGIN (docs/uploads.md, "Memory")."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from api.media.imaging import Rejected, read_photo, sniff
from api.models.docs import UploadTicket

ROOT = Path(__file__).resolve().parents[2]

MEASURE = """
import resource, sys
from PIL import Image
from api.media import imaging
path = sys.argv[1]
with Image.open(path) as image:
    estimate = imaging.decode_bytes(image)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with Image.open(path) as image:
    imaging.read_photo(image)
    list(imaging.render_thumbs(image, 1))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
print(estimate, peak, estimate + imaging.DECODE_MARGIN)
"""


def tag_bomb(path: Path, values: int) -> None:
    """A 1x1 grey TIFF whose private tag 65000 holds ``values`` SHORTs."""
    tags = [(256, 3, 1, 1), (257, 3, 1, 1), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
            (273, 4, 1, 0), (277, 3, 1, 1), (278, 3, 1, 1), (279, 4, 1, 1), (65000, 3, values, 0)]
    data = 8 + 2 + 12 * len(tags) + 4
    out = bytearray(b"II*\x00" + struct.pack("<IH", 8, len(tags)))
    for tag, kind, count, value in tags:
        value = {273: data, 65000: data + 2}.get(tag, value)
        out += (struct.pack("<HHIHH", tag, kind, count, value, 0) if kind == 3 and count == 1
                else struct.pack("<HHII", tag, kind, count, value))
    path.write_bytes(bytes(out) + struct.pack("<I", 0) + b"\x80\x00" + b"\x01\x00" * values)


def hostile(kind: str, path: Path) -> None:
    if kind == "lossless webp":  # before: 4 B/pixel estimated, 16 measured
        Image.new("RGB", (4000, 4000), (10, 20, 30)).save(path, "WEBP", lossless=True)
    elif kind == "rgba webp":
        Image.new("RGBA", (3000, 3000), (10, 20, 30, 40)).save(path, "WEBP")
    elif kind == "progressive 4:4:4":  # before: +275 MiB of coefficients unseen
        Image.new("RGB", (8000, 6000)).save(path, "JPEG", progressive=True, subsampling=0)
    elif kind == "progressive cmyk":
        Image.new("CMYK", (6000, 5000)).save(path, "JPEG", progressive=True)
    elif kind == "16-bit grey":  # before: 17 MiB estimated, 132 measured
        Image.new("I;16", (3000, 3000), 1000).save(path, "PNG")
    else:  # before: 0 estimated, +115 MiB measured
        tag_bomb(path, 5_000_000)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB")
@pytest.mark.parametrize("kind", ["lossless webp", "rgba webp", "progressive 4:4:4",
                                  "progressive cmyk", "16-bit grey", "tiff tag bomb"])
def test_measured_peak_stays_within_the_estimate(tmp_path, kind):
    path = tmp_path / "hostile"
    hostile(kind, path)
    result = subprocess.run([sys.executable, "-c", MEASURE, str(path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    estimate, peak, bound = map(int, result.stdout.split())
    assert peak <= bound, (kind, estimate >> 20, peak >> 20)


def test_the_default_budget_refuses_a_lossless_webp_of_119_mp(tmp_path):
    """4.6 KB that took +1823 MiB; its header says enough to refuse it."""
    path = tmp_path / "bomb.webp"
    Image.new("RGB", (4000, 4000)).save(path, "WEBP", lossless=True)
    with pytest.raises(Rejected, match="memory"):
        sniff(str(path), max_pixels=120_000_000, max_decode_bytes=200 * 1024 * 1024)


def exif_with(*, big: bool) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Cam"
    exif[ExifTags.Base.Orientation] = 6
    if big:
        exif[ExifTags.Base.ImageDescription] = "x" * 2_000_000
    return exif


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "JPEG"])
def test_exif_blocks_are_read_when_small_and_skipped_when_huge(fmt):
    for big in (False, True):
        out = io.BytesIO()
        exif = exif_with(big=big).tobytes()
        if fmt == "JPEG" and big:
            continue  # an APP1 segment cannot hold more than 64 KiB
        Image.new("RGB", (8, 8)).save(out, fmt, exif=exif)
        info = read_photo(Image.open(io.BytesIO(out.getvalue())))
        assert (info.orientation, info.camera) == ((1, "") if big else (6, "Cam")), (fmt, big)


def test_a_long_tag_is_not_listed_but_the_rest_is(tmp_path):
    path = tmp_path / "long.tif"
    tag_bomb(path, 2000)
    info = read_photo(Image.open(path))
    assert "ImageWidth" in info.exif and len(info.exif) > 3


def tiff_with_exif_ifd(path: Path, values: int) -> None:
    """A 1x1 grey TIFF whose Exif IFD holds DateTimeOriginal and ``values`` SHORTs (tag 65001)."""
    base = [(256, 3, 1, 1), (257, 3, 1, 1), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
            (273, 4, 1, 134), (277, 3, 1, 1), (278, 3, 1, 1), (279, 4, 1, 1), (34665, 4, 1, 136)]
    out = bytearray(b"II*\x00" + struct.pack("<IH", 8, len(base)))
    for tag, kind, count, value in base:
        out += (struct.pack("<HHIHH", tag, kind, count, value, 0) if kind == 3
                else struct.pack("<HHII", tag, kind, count, value))
    out += struct.pack("<I", 0) + b"\x80\x00"  # ends at 136: the Exif IFD
    out += struct.pack("<HHHII", 2, 36867, 2, 20, 166) + struct.pack("<HHII", 65001, 3, values, 186)
    out += struct.pack("<I", 0) + b"2021:05:06 07:08:09\x00" + b"\x01\x00" * values
    path.write_bytes(bytes(out))


@pytest.mark.parametrize("values, created", [(10, "2021-05-06 07:08:09"), (5_000_000, None)])
def test_a_tiff_exif_ifd_is_read_unless_huge(tmp_path, values, created):
    """Pillow unpacks a sub-IFD whole: one of 10 MB is measured from its entries and skipped."""
    path = tmp_path / "exif.tif"
    tiff_with_exif_ifd(path, values)
    assert read_photo(Image.open(path)).created == created


def test_an_mpo_is_a_jpeg_photo(tmp_path):
    """Phones and 3-D cameras write MPO (a JPEG with more pictures after it): it was a KeyError,
    a 500 on upload.file."""
    path = tmp_path / "two.mpo"
    Image.new("RGB", (64, 64), "red").save(path, "MPO", save_all=True,
                                           append_images=[Image.new("RGB", (64, 64), "blue")])
    assert Image.open(path).format == "MPO"
    sniffed = sniff(str(path), max_pixels=10**6, max_decode_bytes=10**8)
    assert (sniffed.media, sniffed.ext, sniffed.mime) == ("photo", "jpg", "image/jpeg")
    # A fresh process, with none of Pillow's plugins loaded: "MPO" had no opener there.
    code = ("import sys; from api.media.imaging import sniff; "
            "print(sniff(sys.argv[1], max_pixels=10**6, max_decode_bytes=10**8).mime)")
    result = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "image/jpeg", result.stderr[-2000:]


def test_upload_file_takes_an_mpo(call, ctx, token_for, owner, tmp_path):
    path = tmp_path / "two.mpo"
    Image.new("RGB", (64, 64), "red").save(path, "MPO", save_all=True,
                                           append_images=[Image.new("RGB", (64, 64), "blue")])
    answer = call("upload.file", token=token_for(owner, doc="write"),
                  files={"file": ("two.mpo", path.read_bytes())})
    assert answer["api"]["status"] == "ok", answer
    ctx.uploads.process_pending()
    assert UploadTicket.get().state == "done"
