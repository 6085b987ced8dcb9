"""Parameter bounds: right-angle rotations and regions that round to no pixels."""

from __future__ import annotations

import pytest
from iiif_process.params import ParameterError, parse_region, parse_rotation


@pytest.mark.parametrize("degrees", ["90", "180", "270"])
def test_right_angle_rotation_is_allowed_when_arbitrary_rotation_is_disabled(
    degrees: str,
) -> None:
    rotation = parse_rotation(degrees, "r", frozenset({"rotationArbitrary"}))
    assert rotation.degrees == float(degrees)


def test_percent_region_narrower_than_a_pixel_is_refused() -> None:
    with pytest.raises(ParameterError, match="zero width or height"):
        parse_region("pct:0,0,0.5,50").box(100, 100)


def test_percent_region_shorter_than_a_pixel_is_refused() -> None:
    with pytest.raises(ParameterError, match="zero width or height"):
        parse_region("pct:0,0,50,0.5").box(100, 100)
