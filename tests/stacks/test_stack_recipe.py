"""IIIF_PROCESS_RECIPE: sha256 of container/config.json + NUL + instructions.json (issue #9)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from stacks.recipe import image_recipe, recipe_of
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
