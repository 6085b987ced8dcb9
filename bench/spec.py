"""The derivatives every benchmarked pipeline makes: go-iiif v8's default instruction set.

Mirrors what ``iiif-process`` does with ``-instructions-source defaults://`` so that the three
pipelines do the same work: JPEG quality 75; ``!w,h`` fits inside without enlarging (the
computed side truncated, as go-iiif); the smart
crops ``-1,-1,320,320`` are 320x320 thumbnails of the most interesting part (libvips'
``thumbnail_image(320, height=320, crop="attention")``: scale the image until it just covers
320x320, from the smallest already-made copy that does, then cut 320x320 where the attention
strategy points; Pillow, which has no attention crop, cuts around its most detailed area);
``crisp:2.0,0.5,0.025`` is an unsharp mask (gaussian sigma 2, amount 0.5, threshold 2.5 % of
full scale); ``dither`` is an 8x8 ordered (Bayer) black-and-white dither.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T", bound=Any)

JPEG_QUALITY = 75

# label -> (max width, max height) of the `!w,h` fit-inside derivatives, largest first.
FIT_SIZES: dict[str, tuple[int, int]] = {
    "k": (2048, 1536),
    "b": (1024, 768),
    "c": (800, 600),
    "z": (640, 480),
    "n": (320, 240),
}
SMART_CROP = (320, 320)
CRISP = (2.0, 0.5, 0.025)  # radius (gaussian sigma), amount, threshold (fraction of 255)

# The 8x8 Bayer matrix of ordered dithering; a pixel is white when grey > (v + 0.5) * 4.
BAYER8: tuple[tuple[int, ...], ...] = (
    (0, 32, 8, 40, 2, 34, 10, 42),
    (48, 16, 56, 24, 50, 18, 58, 26),
    (12, 44, 4, 36, 14, 46, 6, 38),
    (60, 28, 52, 20, 62, 30, 54, 22),
    (3, 35, 11, 43, 1, 33, 9, 41),
    (51, 19, 59, 27, 49, 17, 57, 25),
    (15, 47, 7, 39, 13, 45, 5, 37),
    (63, 31, 55, 23, 61, 29, 53, 21),
)

# label -> the go-iiif path of each derivative below the image's URI.
PATHS: dict[str, str] = {
    "o": "full/full/-1/color.jpg",
    **{label: f"full/!{w},{h}/0/color.jpg" for label, (w, h) in FIT_SIZES.items()},
    "dc": "full/!800,600/0/dither.jpg",
    "s": "-1,-1,320,320/full/0/crisp:2.0,0.5,0.025.jpg",
    "ds": "-1,-1,320,320/full/0/dither.jpg",
}


def fit(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The size of a width x height image fitted inside box_w x box_h, never enlarged, with
    go-iiif's arithmetic (as ``iiif-process``): the box's side exact, the other truncated
    (6000x4000 in !1024,768 is 1024x682)."""
    scale = min(box_w / width, box_h / height)
    if scale >= 1:
        return width, height
    if box_w / width <= box_h / height:
        return box_w, max(1, int(height * scale))
    return max(1, int(width * scale)), box_h


def cover(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The size of a width x height image scaled to just cover box_w x box_h, never enlarged."""
    scale = min(1.0, max(box_w / width, box_h / height))
    return (
        max(min(box_w, width), round(width * scale)),
        max(min(box_h, height), round(height * scale)),
    )


def smart_crop_seed(made: Sequence[T], full: T) -> T:
    """The smallest already-made copy that still covers the smart crop (``full`` if none does).

    Works for pyvips and Pillow images alike: both have ``width`` and ``height``.
    """
    covering = [i for i in made if i.width >= SMART_CROP[0] and i.height >= SMART_CROP[1]]
    return min(covering, key=lambda i: i.width) if covering else full
