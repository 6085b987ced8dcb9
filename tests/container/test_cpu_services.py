"""Issue #12: the report services read the thumbnail's pixels once into numpy; their values
stay those of the reference algorithms (restated here pixel by pixel)."""

from __future__ import annotations

import pyvips
from iiif_process.services import marekm4_colours

from . import iiif_images as gen


def _reference_marekm4(image: pyvips.Image, count: int) -> list[tuple[int, int, int]]:
    """marekm4/color-extractor pixel by pixel: eight cubes, alpha-weighted means, 1 % floor."""
    raw = image.write_to_memory()
    bands = image.bands
    cubes = [[0.0, 0.0, 0.0, 0.0] for _ in range(8)]
    for offset in range(0, len(raw), bands):
        pixel = raw[offset : offset + bands]
        colour = list(pixel[:3]) if bands >= 3 else [pixel[0]] * 3
        weight = pixel[-1] / 255 if bands in (2, 4) else 1.0
        cube = cubes[(colour[0] >> 7) << 2 | (colour[1] >> 7) << 1 | colour[2] >> 7]
        for band in range(3):
            cube[band] += colour[band] * weight
        cube[3] += weight
    total = sum(cube[3] for cube in cubes)
    ranked = sorted((c for c in cubes if c[3] > 0), key=lambda c: -c[3])
    return [tuple(int(v / c[3] + 0.5) for v in c[:3]) for c in ranked if c[3] / total > 0.01][
        :count
    ]


def test_marekm4_weights_pixels_by_alpha_as_the_reference() -> None:
    colour = gen.gradient(60, 40)
    alpha = (pyvips.Image.xyz(60, 40)[0] * 4).cast("uchar")  # transparent on the left
    image = colour.bandjoin(alpha).copy(interpretation="srgb")
    assert marekm4_colours(image, 5) == _reference_marekm4(image, 5)


def test_marekm4_of_a_grey_image_uses_its_one_band_for_all_three() -> None:
    image = gen.gradient(50, 30).colourspace("b-w")
    assert marekm4_colours(image, 5) == _reference_marekm4(image, 5)
