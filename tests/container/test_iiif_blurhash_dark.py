"""BlurHash of very dark images: sRGB's linear segment (v * 12.92) encodes the average colour."""

from __future__ import annotations

import pyvips
from iiif_process.services import blurhash

_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def _average_colour(hash_: str) -> tuple[int, int, int]:
    """The DC (average) colour a BlurHash decoder reads from characters 2-5."""
    value = 0
    for char in hash_[2:6]:
        value = value * 83 + _BASE83.index(char)
    return value >> 16, (value >> 8) & 255, value & 255


def test_a_near_black_image_keeps_its_average_colour() -> None:
    image = pyvips.Image.black(16, 16).new_from_image([1, 2, 0]).cast("uchar")
    assert _average_colour(blurhash(image, 4, 3)) == (1, 2, 0)
