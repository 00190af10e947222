"""Large images are shrunk once, right after decoding, and still get every thumbnail at its size."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from api.media.imaging import plan_thumbs, render_thumbs


@pytest.mark.parametrize("mode, orientation", [("LA", 1), ("P", 6), ("RGB", 8), ("1", 1)])
def test_big_image_thumbnails_match_the_plan_of_its_full_size(mode, orientation):
    out = io.BytesIO()
    Image.new(mode, (6000, 4100)).save(out, "PNG")
    thumbs = {label: (w, h) for label, w, h, _ in
              render_thumbs(Image.open(io.BytesIO(out.getvalue())), orientation)}
    upright = (4100, 6000) if orientation in (6, 8) else (6000, 4100)
    assert list(thumbs) == [label for label, _ in plan_thumbs(*upright)]
    assert thumbs["75x"] == (75, 75) and thumbs["250x"] == (250, 250)
    longest = 2048
    shortest = round(longest * min(upright) / max(upright))
    expected = (longest, shortest) if upright[0] > upright[1] else (shortest, longest)
    assert thumbs["2048"] in {expected, (expected[0] - 1, expected[1]), (expected[0],
                                                                          expected[1] - 1)}
