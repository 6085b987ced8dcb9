"""IIIF_PROCESS_RECIPE: sha256 of container/config.json + NUL + instructions.json (issue #9)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from stacks.recipe import TileRecipe, image_recipe, recipe_of
from tests.stacks.conftest import REPO_ROOT


def test_recipe_is_16_hex_digits_of_sha256_of_config_nul_instructions() -> None:
    expected = hashlib.sha256(b"{}" + b"\0" + b"[]").hexdigest()[:16]
    assert recipe_of(b"{}", b"[]") == expected


def test_recipe_separates_config_from_instructions() -> None:
    assert recipe_of(b"ab", b"c") != recipe_of(b"a", b"bc")


def test_image_recipe_reads_the_container_folder() -> None:
    container = REPO_ROOT / "container"
    config = (container / "config.json").read_bytes()
    instructions = (container / "instructions.json").read_bytes()
    assert image_recipe() == recipe_of(config, instructions)


def test_image_recipe_changes_with_the_instructions(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes((REPO_ROOT / "container" / "config.json").read_bytes())
    (tmp_path / "instructions.json").write_bytes(b'{"o": {"size": "full"}}')
    assert image_recipe(tmp_path) != image_recipe()


# --- deep zoom (issue #11): the tile settings are part of the recipe ---------------------------

TILES = TileRecipe(tiles=True, iiif_api_version=3, tile_size=512, base_url="cloudfront")


def test_tiles_off_leaves_the_recipe_of_config_and_instructions() -> None:
    off = TileRecipe(tiles=False, iiif_api_version=3, tile_size=512, base_url="cloudfront")
    assert image_recipe(tiles=off) == image_recipe()


def test_turning_tiles_on_changes_the_recipe() -> None:
    assert image_recipe(tiles=TILES) != image_recipe()


@pytest.mark.parametrize(
    "changed",
    [
        TileRecipe(tiles=True, iiif_api_version=2, tile_size=512, base_url="cloudfront"),
        TileRecipe(tiles=True, iiif_api_version=3, tile_size=256, base_url="cloudfront"),
        TileRecipe(tiles=True, iiif_api_version=3, tile_size=512, base_url="bucket"),
        TileRecipe(tiles=True, iiif_api_version=3, tile_size=512, base_url="https://x.org"),
    ],
    ids=["api-version", "tile-size", "base-url-source", "base-url"],
)
def test_changing_a_tile_setting_changes_the_recipe(changed: TileRecipe) -> None:
    assert image_recipe(tiles=changed) != image_recipe(tiles=TILES)


def test_tile_settings_are_hashed_after_config_and_instructions() -> None:
    expected = hashlib.sha256(
        b'{}\0[]\0{"iiifApiVersion":3,"publicBaseUrl":"cloudfront","tileSize":512,"tiles":true}'
    ).hexdigest()[:16]
    assert recipe_of(b"{}", b"[]", TILES.as_bytes()) == expected
