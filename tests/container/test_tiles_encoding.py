"""How the pyramid's tiles are encoded when libvips' ``dzsave`` makes them.

JPEG tiles are asked of ``dzsave`` by its own ``Q`` with no ``suffix``: libvips (8.15+) then
encodes each tile straight from the strip in memory ("direct mode"), where any suffix makes it
build a save pipeline per tile, about a third more CPU for the same bytes (``make bench``,
tiles). These tests pin that the tiles are still what the tool's own encoder makes of the same
pixels, at the quality asked, with no metadata; and that other formats still reach ``dzsave``.
"""

from __future__ import annotations

from typing import Any

import pytest
import pyvips
from iiif_process import tiles

WIDTH, HEIGHT = 1300, 900  # three full-resolution tiles across, two down, edges clipped


def _gradient() -> pyvips.Image:
    """An sRGB gradient in memory (each tile's content differs)."""
    xy = pyvips.Image.xyz(WIDTH, HEIGHT)
    red = xy[0] * (255 / (WIDTH - 1))
    green = xy[1] * (255 / (HEIGHT - 1))
    image = red.bandjoin([green, (red + green) / 2]).cast("uchar")
    return image.copy(interpretation="srgb").copy_memory()


def _plan(api_version: int = 3, fmt: str = "jpg") -> tiles.Plan:
    return tiles.plan_tiles(WIDTH, HEIGHT, tiles.TileOptions(api_version=api_version, format=fmt))


@pytest.mark.parametrize("quality", [75, 40])
def test_dzsave_full_resolution_tiles_are_the_tile_encoders_bytes_at_the_quality_asked(
    quality: int,
) -> None:
    image, plan = _gradient(), _plan()
    found = tiles._dzsave_objects(image, plan, quality)
    assert found is not None
    full_resolution = [o for o in plan.objects if o.scale == 1 and o.path in found]
    assert len(full_resolution) == 6
    for obj in full_resolution:
        x, y, w, h = obj.region
        assert found[obj.path] == tiles.encode_tile(image.crop(x, y, w, h), "jpg", quality)


def test_dzsave_jpeg_tiles_carry_no_metadata() -> None:
    image = _gradient()
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Artist", "A. Photographer")
    image = image.icc_transform("srgb", embedded=False)  # attaches libvips' sRGB profile
    assert image.get_typeof("icc-profile-data")
    found = tiles._dzsave_objects(image, _plan(), 75)
    assert found is not None
    for path, data in found.items():
        assert data[:2] == b"\xff\xd8", path
        assert b"Exif" not in data and b"ICC_PROFILE" not in data, path


def test_jpeg_tiles_are_asked_of_dzsave_by_its_quality_with_no_suffix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []
    real = pyvips.Image.dzsave_buffer

    def spy(self: pyvips.Image, **kwargs: Any) -> bytes:
        calls.append(kwargs)
        return real(self, **kwargs)

    monkeypatch.setattr(pyvips.Image, "dzsave_buffer", spy)
    assert tiles._dzsave_objects(_gradient(), _plan(), 60) is not None
    assert len(calls) == 1
    assert calls[0]["Q"] == 60
    assert "suffix" not in calls[0]


def test_png_tiles_come_from_dzsave_as_png() -> None:
    plan = _plan(fmt="png")
    found = tiles._dzsave_objects(_gradient(), plan, 75)
    assert found is not None
    assert set(found) == {o.path for o in plan.objects} - {tiles.full_image_path(plan.options)}
    assert all(data[:8] == b"\x89PNG\r\n\x1a\n" for data in found.values())
