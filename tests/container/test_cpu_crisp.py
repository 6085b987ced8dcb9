"""Issue #12: the crisp quality's unsharp mask is a table lookup made by the same libvips
operations as the float pipeline it replaces: the same pixels for any parameters."""

from __future__ import annotations

import pytest
import pyvips
from iiif_process.transform import _unsharp, crisp

from . import iiif_images as gen


def _noisy(width: int = 90, height: int = 70, bands: int = 3) -> pyvips.Image:
    noise = pyvips.Image.gaussnoise(width, height, sigma=60, mean=128, seed=7)
    image = noise.bandjoin([noise.flip("horizontal"), noise.flip("vertical")])[:bands]
    return image.cast("uchar").copy(interpretation="srgb" if bands == 3 else "b-w")


def _same(a: pyvips.Image, b: pyvips.Image) -> bool:
    return (a.width, a.height, a.bands) == (b.width, b.height, b.bands) and (
        a.write_to_memory() == b.write_to_memory()
    )


@pytest.mark.parametrize(
    ("radius", "amount", "threshold"),
    [(2.0, 0.5, 0.025), (1.0, 1.7, 0.0), (3.5, 0.3, 0.1), (0.8, 2.0, 0.004)],
)
def test_crisp_is_the_float_unsharp_mask_pixel_for_pixel(
    radius: float, amount: float, threshold: float
) -> None:
    image = _noisy()
    expected = _unsharp(image, image.gaussblur(radius), amount, threshold)
    assert _same(crisp(image, radius, amount, threshold), expected)


def test_crisp_of_grey_is_the_float_unsharp_mask() -> None:
    image = _noisy(bands=1)
    expected = _unsharp(image, image.gaussblur(2.0), 0.5, 0.025)
    assert _same(crisp(image, 2.0, 0.5, 0.025), expected)


def test_crisp_keeps_alpha_as_it_is() -> None:
    image = pyvips.Image.new_from_buffer(gen.alpha_png(), "")
    out = crisp(image, 2.0, 0.5, 0.025)
    assert out.extract_band(out.bands - 1).write_to_memory() == (
        image.extract_band(image.bands - 1).write_to_memory()
    )


def test_crisp_of_16_bit_pixels_takes_the_float_path() -> None:
    image = _noisy().cast("ushort") * 256
    image = image.cast("ushort").copy(interpretation="rgb16")
    expected = _unsharp(image, image.gaussblur(2.0), 0.5, 0.025)
    assert _same(crisp(image, 2.0, 0.5, 0.025), expected)
