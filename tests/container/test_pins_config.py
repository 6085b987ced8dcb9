"""The config's counts: negatives refused, zero and out-of-range values clamped (issue #13)."""

from __future__ import annotations

from typing import Any

import pytest
from iiif_process.config import parse_config
from iiif_process.defaults import default_config
from iiif_process.errors import ConfigError


def _cfg(**extra: Any) -> dict[str, Any]:
    return {
        "images": {"source": {"uri": "mem://"}},
        "derivatives": {"cache": {"uri": "mem://"}},
        **extra,
    }


def _palette(count: int) -> dict[str, Any]:
    return {"palette_service": {"extruders": [{"uri": "vibrant://", "count": count}]}}


def test_a_palette_of_one_colour_is_kept() -> None:
    assert parse_config(_cfg(**_palette(1))).palette_count == 1


def test_a_palette_of_zero_colours_becomes_one() -> None:
    assert parse_config(_cfg(**_palette(0))).palette_count == 1


def test_a_negative_palette_count_is_refused() -> None:
    with pytest.raises(ConfigError, match="palette_service count must not be negative"):
        parse_config(_cfg(**_palette(-2)))


def test_a_negative_worker_count_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"iiif_process\.workers must not be negative"):
        parse_config(_cfg(iiif_process={"workers": -1}))


@pytest.mark.parametrize(("given", "used"), [(0, 1), (1, 1), (9, 9), (12, 9)])
def test_blurhash_components_are_clamped_to_one_to_nine(given: int, used: int) -> None:
    config = parse_config(_cfg(blurhash_service={"x": given, "y": given}))
    assert (config.blurhash_x, config.blurhash_y) == (used, used)


def test_blurhash_defaults_to_eight_by_eight_components() -> None:
    config = parse_config(_cfg())
    assert (config.blurhash_x, config.blurhash_y) == (8, 8)


def test_the_default_config_reports_five_palette_colours() -> None:
    # go-iiif v8's default extruder: marekm4, five colours.
    config = parse_config(default_config())
    assert (config.palette_extruder, config.palette_count) == ("marekm4", 5)
