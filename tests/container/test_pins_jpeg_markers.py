"""JPEG marker walking (which markers stand alone, which carry a length), the frame a JPEG's
markers say, and which layouts a browser shows as they are (issue #13)."""

from __future__ import annotations

import struct

import pytest
from iiif_process.jpeg_markers import (
    JpegLayout,
    MalformedJpeg,
    browser_ready,
    jpeg_layout,
    segments,
)

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


def test_a_segment_ending_with_the_data_leaves_no_end_of_image() -> None:
    with pytest.raises(MalformedJpeg, match="no end of image"):
        _markers(SOI + b"\xff\xfe\x00\x04ab")


# --- which layouts a browser shows as they are ----------------------------------------------


def _layout(
    frame: int = 0xC0, precision: int = 8, components: int = 3, other: bool = False
) -> JpegLayout:
    return JpegLayout(frame, precision, components, end=100, other_metadata=other)


@pytest.mark.parametrize("frame", [0xC0, 0xC1, 0xC2])
def test_huffman_baseline_extended_and_progressive_frames_are_browser_ready(frame: int) -> None:
    assert browser_ready(_layout(frame=frame)) is True


@pytest.mark.parametrize("frame", [0xC3, 0xC5, 0xC9, 0xCA])
def test_lossless_hierarchical_and_arithmetic_frames_are_not(frame: int) -> None:
    assert browser_ready(_layout(frame=frame)) is False


def test_a_12_bit_jpeg_is_not_browser_ready() -> None:
    assert browser_ready(_layout(precision=12)) is False


@pytest.mark.parametrize(("components", "ready"), [(1, True), (3, True), (2, False), (4, False)])
def test_grey_and_colour_jpegs_are_browser_ready_cmyk_is_not(components: int, ready: bool) -> None:
    assert browser_ready(_layout(components=components)) is ready


def test_metadata_the_stripping_would_leave_in_is_not_browser_ready() -> None:
    assert browser_ready(_layout(other=True)) is False


# --- the frame a JPEG's markers say ---------------------------------------------------------


def _jpeg(frame: int) -> bytes:
    """SOI, a frame header (8 bits, 16x16, one component), a scan header, a byte of data, EOI."""
    sof = bytes([0xFF, frame]) + struct.pack(">HBHHB", 11, 8, 16, 16, 1) + b"\x01\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
    return SOI + sof + sos + b"\x12" + EOI


@pytest.mark.parametrize("frame", [0xC0, 0xC3, 0xC9, 0xCD, 0xCF])
def test_every_sof_marker_is_a_frame(frame: int) -> None:
    layout = jpeg_layout(_jpeg(frame))
    assert layout is not None and (layout.frame, layout.precision, layout.components) == (
        frame,
        8,
        1,
    )


@pytest.mark.parametrize("marker", [0xC4, 0xC8, 0xCC])
def test_dht_jpg_and_dac_are_no_frame(marker: int) -> None:
    # With no frame before the end of image, the JPEG is no single-frame JPEG.
    assert jpeg_layout(_jpeg(marker)) is None


def test_an_empty_comment_segment_is_well_formed() -> None:
    assert _markers(SOI + b"\xff\xfe\x00\x02" + EOI) == [0xFE, 0xD9]


def test_a_segment_length_under_two_is_damage() -> None:
    with pytest.raises(MalformedJpeg, match="segment cut"):
        _markers(SOI + b"\xff\xfe\x00\x01" + EOI)


def test_a_segment_longer_than_the_data_is_cut() -> None:
    with pytest.raises(MalformedJpeg, match="segment cut at 2"):
        _markers(SOI + b"\xff\xfe\x00\x06ab")
