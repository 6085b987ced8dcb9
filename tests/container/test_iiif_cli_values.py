"""Command-line values: tile-seed's -format takes a value; -stop-seconds accepts 0, not below."""

from __future__ import annotations

import pytest
from iiif_process import process_cli, tile_seed_cli
from iiif_process.errors import ConfigError


def test_tile_seed_format_flag_takes_the_next_argument() -> None:
    args = tile_seed_cli.parse_args(["-format", "png", "a.jpg"])
    assert tile_seed_cli.tile_options(args).format == "png"


def test_stop_seconds_of_zero_is_accepted() -> None:
    args = process_cli.parse_args(["-stop-seconds", "0", "a.jpg"])
    assert process_cli._seconds_option(args, {}, "stop-seconds", 5.0) == 0.0


def test_negative_stop_seconds_are_refused() -> None:
    args = process_cli.parse_args(["-stop-seconds", "-1", "a.jpg"])
    with pytest.raises(ConfigError, match=r"-stop-seconds must be a finite number of seconds >= 0"):
        process_cli._seconds_option(args, {}, "stop-seconds", 5.0)
