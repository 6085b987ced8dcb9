"""The bitonal quality's threshold: grey levels above 127 are white, the rest black (issue #13)."""

from __future__ import annotations

import pyvips
from iiif_process.params import parse_quality
from iiif_process.transform import apply_quality


def _bitonal(*levels: int) -> list[int]:
    pixels = [(pyvips.Image.black(1, 1) + level).cast("uchar") for level in levels]
    grey = pyvips.Image.arrayjoin(pixels).copy(interpretation="b-w")
    out = apply_quality(grey, parse_quality("bitonal"))
    return [int(out.getpoint(x, 0)[0]) for x in range(len(levels))]


def test_grey_128_is_white_and_127_black() -> None:
    assert _bitonal(127, 128) == [0, 255]


def test_black_and_white_stay_as_they_are() -> None:
    assert _bitonal(0, 255) == [0, 255]
