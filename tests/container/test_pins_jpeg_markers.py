"""JPEG marker walking: which markers stand alone (no length) and which carry one (issue #13)."""

from __future__ import annotations

import pytest
from iiif_process.jpeg_markers import MalformedJpeg, segments

SOI, EOI = b"\xff\xd8", b"\xff\xd9"


def _markers(data: bytes) -> list[int]:
    return [segment.marker for segment in segments(data)]


@pytest.mark.parametrize("marker", [0xD0, 0xD7, 0x01])
def test_restart_and_tem_markers_stand_alone(marker: int) -> None:
    assert _markers(SOI + bytes([0xFF, marker]) + EOI) == [marker, 0xD9]


def test_a_second_start_of_image_is_no_standalone_marker() -> None:
    # Read as a segment, its "length" runs past the data: a damaged JPEG, not a marker skipped.
    with pytest.raises(MalformedJpeg, match="segment cut"):
        _markers(SOI + SOI + b"\xff\xfe\x00\x04ab" + EOI)


def test_a_comment_segment_spans_its_length() -> None:
    [comment, _] = list(segments(SOI + b"\xff\xfe\x00\x04ab" + EOI))
    assert (comment.marker, comment.start, comment.end) == (0xFE, 2, 8)
