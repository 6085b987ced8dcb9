"""iiif-tile-seed's pyramid: the objects written agree exactly with what info.json announces, at
every scale factor and edge, for odd sizes (1x1, 511x513, 6000x4000, a tall 300x9000).

The expected paths are computed here from info.json alone, with the Image API's level 0 tile
formula (a tile at scale factor s covers tile*s pixels, clipped at the edges; its size is
ceil(region / s)), independently of the code under test; a few counts are spelled out by hand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pyvips
from iiif_process import tiles
from iiif_process.tile_seed_cli import run

SIZES = [(1, 1), (511, 513), (6000, 4000), (300, 9000)]
DZSAVE_GEOMETRY = tiles._dzsave_geometry  # the real one (a fixture below replaces it a while)


def _source(width: int, height: int) -> pyvips.Image:
    """A gradient of the given size (each tile's content differs)."""
    xy = pyvips.Image.xyz(width, height)
    red = xy[0] * (255 / max(1, width - 1))
    green = xy[1] * (255 / max(1, height - 1))
    return red.bandjoin([green, (red + green) / 2]).cast("uchar").copy(interpretation="srgb")


@pytest.fixture(scope="module", params=["dzsave", "shrink"])
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[tuple[int, int, int], Path]]:
    """Every size seeded once per Image API version, through the command's own run(), by each
    of the two pyramid engines (libvips' dzsave; levels shrunk one from the other here)."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "shrink":
            patch.setattr(tiles, "_dzsave_geometry", lambda plan: False)
        yield _seed_all(tmp_path_factory.mktemp(f"tiles-{request.param}"))


def _seed_all(root: Path) -> dict[tuple[int, int, int], Path]:
    source, out = root / "src", root / "out"
    source.mkdir()
    for width, height in SIZES:
        _source(width, height).jpegsave(str(source / f"{width}x{height}.jpg"), Q=90)
    found = {}
    for version in (2, 3):
        names = [f"{w}x{h}.jpg,v{version}/{w}x{h}" for w, h in SIZES]
        status, result = run(
            [
                "-config-images-source-uri",
                source.as_uri(),
                "-config-derivatives-cache-uri",
                out.as_uri(),
                "-endpoint",
                "https://tiles.example.org/iiif",
                "-api-version",
                str(version),
                *names,
            ],
            {},
        )
        assert status == 0, result
        for width, height in SIZES:
            found[(version, width, height)] = out / f"v{version}" / f"{width}x{height}"
    return found


def expected_paths(info: dict[str, Any], version: int) -> set[str]:
    """Every path a level 0 client may request, from info.json alone."""
    width, height = info["width"], info["height"]
    (tile_spec,) = info["tiles"]
    tile = tile_spec["width"]
    paths = {"info.json", "full/full/0/default.jpg" if version == 2 else "full/max/0/default.jpg"}
    for s in tile_spec["scaleFactors"]:
        for row in range(math.ceil(height / (tile * s))):
            for col in range(math.ceil(width / (tile * s))):
                x, y = col * tile * s, row * tile * s
                w, h = min(tile * s, width - x), min(tile * s, height - y)
                sw, sh = math.ceil(w / s), math.ceil(h / s)
                region = "full" if (x, y, w, h) == (0, 0, width, height) else f"{x},{y},{w},{h}"
                if version == 2:
                    size = "full" if sw == width else f"{sw},"
                else:
                    size = "max" if (sw, sh) == (width, height) else f"{sw},{sh}"
                paths.add(f"{region}/{size}/0/default.jpg")
    for entry in info["sizes"]:
        w, h = entry["width"], entry["height"]
        paths.add(f"full/{w},/0/default.jpg" if version == 2 else f"full/{w},{h}/0/default.jpg")
    return paths


def written(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()}


def info_of(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "info.json").read_text())


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_files_written_are_exactly_what_info_json_announces(
    seeded: dict, version: int, width: int, height: int
) -> None:
    directory = seeded[(version, width, height)]
    info = info_of(directory)
    assert (info["width"], info["height"]) == (width, height)
    assert written(directory) == expected_paths(info, version)


def _region_size(region: str, width: int, height: int) -> tuple[int, int]:
    if region == "full":
        return width, height
    w, h = (int(v) for v in region.split(",")[2:])
    return w, h


def _v3_heights(directory: Path) -> dict[tuple[str, int], int]:
    """(region, width) -> height, from the Image API 3 paths (which name both)."""
    heights = {}
    for path in written(directory) - {"info.json"}:
        region, size = path.split("/")[:2]
        if size != "max":
            w, h = (int(v) for v in size.split(","))
            heights[(region, w)] = h
    return heights


def _expected_size(path: str, width: int, height: int, v3: dict) -> tuple[int, int]:
    region, size = path.split("/")[:2]
    if size in ("full", "max"):  # unscaled
        return _region_size(region, width, height)
    w_text, _, h_text = size.partition(",")
    if h_text:
        return int(w_text), int(h_text)
    return int(w_text), v3[(region, int(w_text))]


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_every_tile_has_the_pixel_size_its_path_names(
    seeded: dict, version: int, width: int, height: int
) -> None:
    directory = seeded[(version, width, height)]
    v3 = _v3_heights(seeded[(3, width, height)])
    paths = sorted(written(directory) - {"info.json"})
    for path in paths:
        image = pyvips.Image.new_from_file(str(directory / path))  # reads the header only
        assert (image.width, image.height) == _expected_size(path, width, height, v3), path
    assert len(paths) >= 2


def test_6000x4000_at_512_has_five_levels_and_129_tiles(seeded: dict) -> None:
    info = info_of(seeded[(3, 6000, 4000)])
    assert info["tiles"] == [{"width": 512, "height": 512, "scaleFactors": [1, 2, 4, 8, 16]}]
    # 12x8 + 6x4 + 3x2 + 2x1 + 1 tiles, the full image, info.json
    assert len(written(seeded[(3, 6000, 4000)])) == 96 + 24 + 6 + 2 + 1 + 1 + 1
    assert info["sizes"] == [{"width": 375, "height": 250}]


def test_tall_300x9000_edge_tiles(seeded: dict) -> None:
    directory = seeded[(2, 300, 9000)]
    assert info_of(directory)["tiles"][0]["scaleFactors"] == [1, 2, 4, 8, 16, 32]
    files = written(directory)
    # the last row of each level: 9000 = 17*512 + 104 at s=1; 8*1024 + 808 at s=2; ...
    assert "0,8704,300,296/full/0/default.jpg" in files
    assert "0,8192,300,808/150,/0/default.jpg" in files
    assert "0,8192,300,808/19,/0/default.jpg" in files  # s=16: ceil(300/16) = 19
    assert "full/10,/0/default.jpg" in files  # s=32: the one-tile level, 10x282
    assert (
        pyvips.Image.new_from_file(str(directory / "0,8192,300,808/150,/0/default.jpg")).height
        == 404
    )


def test_511x513_objects_spelled_out(seeded: dict) -> None:
    assert written(seeded[(3, 511, 513)]) == {
        "info.json",
        "full/max/0/default.jpg",
        "0,0,511,512/511,512/0/default.jpg",
        "0,512,511,1/511,1/0/default.jpg",
        "full/256,257/0/default.jpg",
    }
    assert written(seeded[(2, 511, 513)]) == {
        "info.json",
        "full/full/0/default.jpg",
        "0,0,511,512/full/0/default.jpg",
        "0,512,511,1/full/0/default.jpg",
        "full/256,/0/default.jpg",
    }


def test_1x1_is_one_level_and_the_full_image(seeded: dict) -> None:
    info = info_of(seeded[(3, 1, 1)])
    assert info["tiles"][0]["scaleFactors"] == [1]
    assert info["sizes"] == [{"width": 1, "height": 1}]
    assert written(seeded[(3, 1, 1)]) == {
        "info.json",
        "full/max/0/default.jpg",
        "full/1,1/0/default.jpg",
    }


def test_tiles_show_their_own_region(seeded: dict, tmp_path: Path) -> None:
    # The gradient's red rises to the right, green downwards: the bottom-right tile at s=2 holds
    # the image's bottom-right corner, a top-left tile its top-left corner.
    directory = seeded[(3, 6000, 4000)]
    corner = pyvips.Image.new_from_file(str(directory / "5120,3072,880,928/440,464/0/default.jpg"))
    origin = pyvips.Image.new_from_file(str(directory / "0,0,1024,1024/512,512/0/default.jpg"))
    bottom_right = corner.extract_area(432, 456, 8, 8)
    assert bottom_right[0].avg() > 240 and bottom_right[1].avg() > 240
    assert origin.extract_area(0, 0, 8, 8).max() < 12


def test_info_json_ids_are_endpoint_slash_target(seeded: dict) -> None:
    assert info_of(seeded[(2, 511, 513)])["@id"] == "https://tiles.example.org/iiif/v2/511x513"
    assert info_of(seeded[(3, 511, 513)])["id"] == "https://tiles.example.org/iiif/v3/511x513"


def test_explicit_scale_factors_without_a_one_tile_level_list_the_smallest_as_a_size() -> None:
    plan = tiles.plan_tiles(6000, 4000, tiles.TileOptions(api_version=2, scale_factors=(4, 2, 1)))
    assert plan.scale_factors == (1, 2, 4)
    assert plan.sizes == ((1500, 1000),)
    assert "full/1500,/0/default.jpg" in {o.path for o in plan.objects}


def test_tile_size_option_changes_the_grid() -> None:
    plan = tiles.plan_tiles(1000, 700, tiles.TileOptions(api_version=3, tile_size=256))
    assert plan.scale_factors == (1, 2, 4)
    level1 = [o for o in plan.objects if o.scale == 1 and o.path != "full/max/0/default.jpg"]
    assert len(level1) == 4 * 3
    assert "768,512,232,188/232,188/0/default.jpg" in {o.path for o in level1}


def test_a_one_pixel_edge_column_gets_its_own_tile() -> None:
    plan = tiles.plan_tiles(513, 2, tiles.TileOptions(api_version=3))
    assert "512,0,1,2/1,2/0/default.jpg" in {o.path for o in plan.objects}


def test_a_level_exactly_one_tile_wide_is_listed_in_sizes() -> None:
    plan = tiles.plan_tiles(1024, 1024, tiles.TileOptions(api_version=3))
    assert plan.scale_factors == (1, 2)
    assert plan.sizes == ((512, 512),)
    explicit = tiles.plan_tiles(
        1024, 1024, tiles.TileOptions(api_version=3, scale_factors=(4, 2, 1))
    )
    assert explicit.sizes == ((256, 256), (512, 512))


def test_a_pyramid_dzsave_does_not_match_is_made_by_shrinking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tiles._dzsave_objects
    calls = []

    def mismatched(image: pyvips.Image, plan: tiles.Plan) -> None:
        calls.append(real(image, plan))  # reads the source, as a real mismatch would
        return None

    monkeypatch.setattr(tiles, "_dzsave_objects", mismatched)
    monkeypatch.setattr(tiles, "_dzsave_geometry", DZSAVE_GEOMETRY)
    directory = _seed_all(tmp_path)[(2, 511, 513)]
    assert calls and calls[0] is not None
    assert written(directory) == expected_paths(info_of(directory), 2)
