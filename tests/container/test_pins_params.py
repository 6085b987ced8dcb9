"""Regions that select nothing are refused; the smallest that select something are kept
(issue #13)."""

from __future__ import annotations

import pytest
from iiif_process.params import ParameterError, Region, parse_region


@pytest.mark.parametrize("value", ["-1,-1,0,5", "-1,-1,5,0", "0,0,0,5", "0,0,5,0"])
def test_a_region_of_zero_area_is_refused(value: str) -> None:
    with pytest.raises(ParameterError, match="has zero area"):
        parse_region(value)


def test_a_smart_crop_of_one_by_one_is_kept() -> None:
    assert parse_region("-1,-1,1,1") == Region("smart", w=1, h=1)


def test_a_pixel_region_of_one_by_one_is_kept() -> None:
    assert parse_region("3,4,1,1") == Region("pixels", 3, 4, 1, 1)


@pytest.mark.parametrize(
    "value", ["pct:0,0,0,5", "pct:0,0,5,0", "pct:100,0,5,5", "pct:0,100,5,5", "pct:100.5,0,5,5"]
)
def test_a_percent_region_that_selects_nothing_is_refused(value: str) -> None:
    with pytest.raises(ParameterError, match="selects nothing"):
        parse_region(value)


def test_a_percent_region_of_the_last_percent_is_kept() -> None:
    assert parse_region("pct:99.5,99.5,0.5,0.5") == Region("percent", 99.5, 99.5, 0.5, 0.5)


def test_a_percent_region_of_one_percent_is_kept() -> None:
    assert parse_region("pct:1,1,1,1") == Region("percent", 1, 1, 1, 1)
