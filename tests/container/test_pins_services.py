"""The image hashes of the report follow goimagehash's definitions bit for bit (issue #13)."""

from __future__ import annotations

import pyvips
from iiif_process.services import imagehash


def _flat(value: int, width: int = 64, height: int = 64) -> pyvips.Image:
    return (
        (pyvips.Image.black(width, height, bands=3) + value)
        .cast("uchar")
        .copy(interpretation="srgb")
    )


def _halves(dark: int, light: int, *, across: bool) -> pyvips.Image:
    """``dark`` on the left (top) half and ``light`` on the right (bottom) half."""
    size = (32, 64) if across else (64, 32)
    first, second = _flat(dark, *size), _flat(light, *size)
    return first.join(second, "horizontal" if across else "vertical")


def test_a_flat_image_has_no_pixel_above_the_mean() -> None:
    # goimagehash sets a bit only for a pixel strictly brighter than the mean.
    assert imagehash(_flat(128))["average"] == "a:0000000000000000"


def test_a_flat_image_has_no_pixel_darker_than_its_right_neighbour() -> None:
    assert imagehash(_flat(128))["difference"] == "d:0000000000000000"


def test_a_light_right_half_sets_the_low_four_bits_of_each_row() -> None:
    assert imagehash(_halves(20, 230, across=True))["average"] == "a:0f0f0f0f0f0f0f0f"


def test_a_light_bottom_half_sets_the_last_four_rows() -> None:
    assert imagehash(_halves(20, 230, across=False))["average"] == "a:00000000ffffffff"


def test_a_left_to_right_ramp_sets_every_difference_bit() -> None:
    ramp = (pyvips.Image.xyz(90, 80)[0] * 2.5).cast("uchar")
    image = ramp.bandjoin([ramp, ramp]).copy(interpretation="srgb")
    assert imagehash(image)["difference"] == "d:ffffffffffffffff"
