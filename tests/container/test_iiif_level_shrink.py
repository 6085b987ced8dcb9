"""A pyramid level is made exactly the planned size, even when the box shrink rounds otherwise."""

from __future__ import annotations

import pyvips
from iiif_process.tiles import _shrink_to


def test_a_level_is_padded_to_the_planned_size() -> None:
    image = pyvips.Image.black(10, 10).new_from_image([1, 2, 3]).cast("uchar")
    level = _shrink_to(image, 2, (6, 7))
    assert (level.width, level.height) == (6, 7)
