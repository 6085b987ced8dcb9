"""The manifest's thumbnail: the largest one-tile size, named as each Image API names sizes
(issue #13)."""

from __future__ import annotations

from iiif_process import manifest, tiles


def _thumbnail(version: int) -> dict[str, object]:
    plan = tiles.plan_tiles(1000, 700, tiles.TileOptions(api_version=version))
    return manifest.manifest_document("https://x.test/k", "k", plan)["thumbnail"][0]


def test_an_api_2_thumbnail_is_named_by_its_width() -> None:
    thumbnail = _thumbnail(2)
    assert thumbnail["id"] == f"https://x.test/k/full/{thumbnail['width']},/0/default.jpg"


def test_an_api_3_thumbnail_is_named_by_its_width_and_height() -> None:
    thumbnail = _thumbnail(3)
    size = f"{thumbnail['width']},{thumbnail['height']}"
    assert thumbnail["id"] == f"https://x.test/k/full/{size}/0/default.jpg"


def test_the_thumbnail_is_the_largest_size_of_the_plan() -> None:
    plan = tiles.plan_tiles(1000, 700, tiles.TileOptions(api_version=3))
    thumbnail = manifest.manifest_document("https://x.test/k", "k", plan)["thumbnail"][0]
    assert (thumbnail["width"], thumbnail["height"]) == max(plan.sizes)
