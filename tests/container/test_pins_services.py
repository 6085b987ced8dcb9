"""The report's image hashes (goimagehash's definitions, bit for bit) and marekm4 palette colours
(issue #13)."""

from __future__ import annotations

import pytest
import pyvips
from iiif_process.services import imagehash, marekm4_colours, quantised_colours


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


def _row(*colours: tuple[int, int, int]) -> pyvips.Image:
    """An sRGB image one pixel high, of ``colours`` left to right."""
    pixels = [(pyvips.Image.black(1, 1, bands=3) + list(c)).cast("uchar") for c in colours]
    return pyvips.Image.arrayjoin(pixels).copy(interpretation="srgb")


def test_marekm4_gives_a_cubes_mean_rounded_half_up() -> None:
    # Go's math.Round: 10.5 -> 11.
    assert marekm4_colours(_row((10, 20, 30), (11, 21, 31)), 5) == [(11, 21, 31)]


def test_marekm4_gives_the_most_populous_cube_first() -> None:
    image = _row((200, 200, 200), (10, 10, 10), (10, 10, 10), (10, 10, 10))
    assert marekm4_colours(image, 5) == [(10, 10, 10), (200, 200, 200)]


def test_marekm4_leaves_out_a_cube_of_one_percent() -> None:
    image = _row(*[(10, 10, 10)] * 99, (200, 200, 200))
    assert marekm4_colours(image, 5) == [(10, 10, 10)]


def test_marekm4_keeps_a_cube_of_more_than_one_percent() -> None:
    image = _row(*[(10, 10, 10)] * 99, (200, 200, 200), (200, 200, 200))
    assert marekm4_colours(image, 5) == [(10, 10, 10), (200, 200, 200)]


def _strip(*colours: tuple[int, int, int]) -> pyvips.Image:
    """100 pixels wide (the palette's thumbnail size: no resampling), ``colours`` in runs of 25."""
    return _row(*[colour for colour in colours for _ in range(25)])


@pytest.mark.parametrize("other", [(16, 0, 0), (0, 16, 0), (0, 0, 16)])
def test_colours_16_levels_apart_in_one_channel_are_two_colours(
    other: tuple[int, int, int],
) -> None:
    image = _strip((0, 0, 0), (0, 0, 0), (0, 0, 0), other)
    assert quantised_colours(image, 2) == [(0, 0, 0), other]


def test_colours_within_16_levels_are_one_averaged_colour() -> None:
    image = _strip((0, 0, 0), (0, 0, 0), (0, 0, 0), (12, 12, 12))
    assert quantised_colours(image, 2) == [(3, 3, 3)]


@pytest.mark.parametrize(
    ("first", "other"),
    [((16, 0, 0), (0, 128, 0)), ((0, 16, 0), (0, 0, 128)), ((16, 0, 0), (0, 0, 128))],
)
def test_levels_of_different_channels_never_share_a_bucket(
    first: tuple[int, int, int], other: tuple[int, int, int]
) -> None:
    image = _strip(first, first, first, other)
    assert quantised_colours(image, 2) == [first, other]


def test_the_difference_hash_compares_neighbours_of_a_9_by_8_thumbnail() -> None:
    # Already 9 x 8: the thumbnail is the image. Even rows rise left to right, odd rows fall.
    rows = []
    for y in range(8):
        levels = [20 * x + 10 for x in range(9)]
        rows.append(levels if y % 2 == 0 else levels[::-1])
    image = pyvips.Image.new_from_array(rows).cast("uchar")
    image = image.bandjoin([image, image]).copy(interpretation="srgb")
    assert imagehash(image)["difference"] == "d:ff00ff00ff00ff00"
