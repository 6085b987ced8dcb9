"""Deterministic, photographic-looking test JPEGs for the benchmark.

A photo has structure at every scale: broad gradients (sky, light falloff), mid-scale shapes and
fine texture and sensor grain. We sum smooth noise at several octaves, add a colour gradient and
fine grain, and save a camera-like JPEG (quality 90, 4:2:0 chroma). The noise generator is seeded,
so the same call always gives the same pixels; the files are cached in ``bench-output/images``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyvips


@dataclass(frozen=True)
class TestImage:
    """One benchmark image: a label, its pixel size, and the file it is written to."""

    label: str
    width: int
    height: int
    path: Path

    @property
    def megapixels(self) -> float:
        """The pixel count in millions."""
        return self.width * self.height / 1e6


# (label, width, height): 24 MP is a common DSLR size (3:2); 100 MP a medium-format back (4:3).
SIZES: tuple[tuple[str, int, int], ...] = (("24mp", 6000, 4000), ("100mp", 11648, 8736))

# (octave size in pixels, amplitude) of the smooth noise layers.
_OCTAVES: tuple[tuple[int, float], ...] = (
    (512, 45.0),
    (128, 28.0),
    (32, 16.0),
    (8, 10.0),
    (3, 4.0),
)
_GRAIN_SIGMA = 2.5
_JPEG_QUALITY = 90


def _octave(width: int, height: int, cell: int, amplitude: float, seed: int) -> pyvips.Image:
    """Smooth noise whose features are about ``cell`` pixels across, zero mean."""
    small_w, small_h = width // cell + 3, height // cell + 3
    noise = pyvips.Image.gaussnoise(small_w, small_h, sigma=amplitude, mean=0.0, seed=seed)
    smooth = noise.resize(cell, kernel="cubic")
    return smooth.crop(cell, cell, width, height)


def _band(width: int, height: int, seed: int, base: float, tilt: float) -> pyvips.Image:
    """One colour channel: a diagonal gradient plus octaves of smooth noise (float)."""
    xy = pyvips.Image.xyz(width, height)
    gradient = (xy[0] * (tilt / width) + xy[1] * (-40.0 / height)) + base
    image = gradient
    for index, (cell, amplitude) in enumerate(_OCTAVES):
        image = image + _octave(width, height, cell, amplitude, seed * 10 + index)
    return image


def render(width: int, height: int) -> pyvips.Image:
    """A photographic-looking sRGB image of the given size (lazy; pixels made on save)."""
    # Shared luminance structure keeps channels correlated, as in a real scene.
    shared = _band(width, height, seed=1, base=0.0, tilt=25.0)
    bands = [
        shared + _band(width, height, seed=seed, base=0.0, tilt=tilt) * 0.4 + base
        for seed, base, tilt in ((2, 135.0, 30.0), (3, 120.0, -10.0), (4, 105.0, -35.0))
    ]
    grain = pyvips.Image.gaussnoise(width, height, sigma=_GRAIN_SIGMA, mean=0.0, seed=99)
    rgb = bands[0].bandjoin(bands[1:]) + grain
    return rgb.cast("uchar").copy(interpretation="srgb")


def ensure_images(directory: Path, labels: set[str] | None = None) -> list[TestImage]:
    """Write the benchmark JPEGs (those in ``labels``, default all) into ``directory`` unless
    already there; return them."""
    directory.mkdir(parents=True, exist_ok=True)
    images = []
    for label, width, height in SIZES:
        if labels is not None and label not in labels:
            continue
        path = directory / f"photo-{label}.jpg"
        if not _is_valid(path, width, height):
            tmp = path.with_suffix(".tmp.jpg")
            render(width, height).jpegsave(
                str(tmp), Q=_JPEG_QUALITY, subsample_mode="on", optimize_coding=True
            )
            tmp.replace(path)
        images.append(TestImage(label, width, height, path))
    return images


def _is_valid(path: Path, width: int, height: int) -> bool:
    if not path.is_file():
        return False
    try:
        header = pyvips.Image.new_from_file(str(path))
    except pyvips.Error:
        return False
    return (header.width, header.height) == (width, height)
