"""Config documents of the wrong shape are refused naming the block; missing blocks are filled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from iiif_process.config import parse_config
from iiif_process.documents import load_config_document
from iiif_process.errors import ConfigError
from iiif_process.process_cli import parse_args


def _cfg(**extra: object) -> dict:
    return {
        "images": {"source": {"uri": "mem://"}},
        "derivatives": {"cache": {"uri": "mem://"}},
        **extra,
    }


def test_palettes_that_are_not_a_list_are_refused() -> None:
    palette = {"palettes": {"uri": "crayola://"}}
    with pytest.raises(ConfigError, match=r"palette_service\.palettes must be a list"):
        parse_config(_cfg(palette_service=palette))


def test_iiif_process_block_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ConfigError, match="iiif_process and blurhash must be objects"):
        parse_config(_cfg(iiif_process=["max_pixels"]))


def test_blurhash_block_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ConfigError, match="iiif_process and blurhash must be objects"):
        parse_config(_cfg(blurhash_service=[8, 8]))


def test_cache_uri_flag_supplies_a_missing_derivatives_block(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"images": {"source": {"uri": "mem://"}}}))
    args = parse_args(["-config", str(path), "-config-derivatives-cache-uri", "file:///out"])
    config = parse_config(load_config_document(args, {}))
    assert config.derivatives.path == "/out"
