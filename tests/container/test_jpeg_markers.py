"""Issue #13, one implementation per rule: the one JPEG marker walker both the layout check and
the metadata stripping use, and the one clean-up of a failed publication or tile seeding."""

from __future__ import annotations

import logging
import struct

import pytest
from iiif_process.jpeg_markers import (
    MalformedJpeg,
    jpeg_layout,
    jpeg_without_metadata,
    segments,
)
from iiif_process.publish import remove_objects
from iiif_process.stores import MemoryStore

from . import iiif_images as gen


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def test_the_walk_ends_at_end_of_image_with_the_scan_before_it() -> None:
    data = gen.jpeg()
    walked = list(segments(data))
    assert [s.marker for s in walked[-2:]] == [0xDA, 0xD9]
    assert walked[-1].end == len(data)


def test_the_walk_refuses_data_cut_before_end_of_image() -> None:
    with pytest.raises(MalformedJpeg):
        list(segments(gen.jpeg()[:-2]))


def test_a_restart_marker_before_the_frame_is_two_bytes_not_a_segment() -> None:
    data = gen.jpeg(keep="none")  # no EXIF: nothing for the stripping to take
    with_rst = data[:2] + b"\xff\xd0" + data[2:]
    assert jpeg_without_metadata(with_rst) == with_rst


def test_stripping_and_layout_read_the_same_segments() -> None:
    data = gen.jpeg(keep="none")
    tagged = data[:2] + _segment(0xFE, b"serial 1234") + data[2:]
    layout = jpeg_layout(tagged)
    assert layout is not None and layout.end == len(tagged)
    assert jpeg_without_metadata(tagged) == data


class _RefusingStore(MemoryStore):
    """A memory store whose deletes of one key fail (a real exception from the store)."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused

    def delete(self, key: str) -> None:
        if key == self.refused:
            raise OSError("delete refused")
        super().delete(key)


@pytest.mark.parametrize("workers", [1, 4])
def test_removal_goes_on_past_a_failed_delete(workers: int) -> None:
    store = _RefusingStore("b")
    for key in "abc":
        store.write(key, b"x", "image/jpeg")
    remove_objects([(store, k) for k in "abc"], workers, {"uri": "img.jpg"})
    assert set(store.objects) == {"b"}


def test_removal_logs_the_failed_key_with_its_context(caplog: pytest.LogCaptureFixture) -> None:
    store = _RefusingStore("b")
    store.write("b", b"x", "image/jpeg")
    with caplog.at_level(logging.ERROR):
        remove_objects([(store, "b")], 1, {"target": "t/img"})
    (record,) = caplog.records
    assert (record.key, record.target) == ("b", "t/img")  # type: ignore[attr-defined]


# --- the walk's edges --------------------------------------------------------------------------

SOI, EOI = b"\xff\xd8", b"\xff\xd9"


def _plain() -> bytes:
    return gen.jpeg(keep="none")


def test_data_without_start_of_image_is_refused() -> None:
    with pytest.raises(MalformedJpeg, match="no start of image"):
        list(segments(b"\xff\xd9" + _plain()[2:]))


def test_a_byte_where_a_marker_belongs_is_refused() -> None:
    with pytest.raises(MalformedJpeg, match="no marker at 2"):
        list(segments(SOI + b"\x00" + _plain()[2:]))


def test_fill_bytes_before_a_marker_are_skipped() -> None:
    data = _plain()
    filled = SOI + b"\xff\xff" + data[2:]
    assert [s.marker for s in segments(filled)] == [s.marker for s in segments(data)]
    assert next(iter(segments(filled))).start == 4


def test_a_temporary_marker_is_two_bytes() -> None:
    data = _plain()
    walked = list(segments(SOI + b"\xff\x01" + data[2:]))
    assert (walked[0].marker, walked[0].end - walked[0].start) == (0x01, 2)


@pytest.mark.parametrize("length", [0, 1])
def test_a_segment_length_under_two_is_refused(length: int) -> None:
    with pytest.raises(MalformedJpeg, match="segment cut at 2"):
        list(segments(SOI + b"\xff\xfe" + struct.pack(">H", length) + _plain()[2:]))


def test_a_segment_longer_than_the_data_is_refused() -> None:
    with pytest.raises(MalformedJpeg, match="segment cut"):
        list(segments(SOI + b"\xff\xfe\x00\x09abc"))


def test_a_segment_header_cut_short_is_refused() -> None:
    with pytest.raises(MalformedJpeg, match="segment cut at 2"):
        list(segments(SOI + b"\xff\xfe\x00"))


def test_a_segment_exactly_at_the_end_is_read() -> None:
    walked = segments(SOI + _segment(0xFE, b"abc"))
    first = next(walked)
    assert (first.marker, first.start, first.end) == (0xFE, 2, 9)
    with pytest.raises(MalformedJpeg, match="no end of image"):
        next(walked)


def test_a_scan_without_a_following_marker_is_refused() -> None:
    data = _plain()
    with pytest.raises(MalformedJpeg, match="scan without an end"):
        list(segments(data[:-2] + b"\xff\x00"))


def test_restart_markers_inside_a_scan_are_part_of_its_data() -> None:
    data = _plain()
    sos = next(s for s in segments(data) if s.marker == 0xDA)
    spliced = data[: sos.end] + b"\xff\xd0" + data[sos.end :]
    assert [s.marker for s in segments(spliced)][-2:] == [0xDA, 0xD9]


@pytest.mark.parametrize(
    ("marker", "metadata"),
    [(0xDF, False), (0xE0, True), (0xEF, True), (0xF0, False), (0xFD, False), (0xFE, True)],
)
def test_metadata_is_the_app_segments_and_comments(marker: int, metadata: bool) -> None:
    from iiif_process.jpeg_markers import is_metadata

    assert is_metadata(marker) is metadata


# --- the layout --------------------------------------------------------------------------------


def test_the_layout_reads_frame_precision_and_components() -> None:
    layout = jpeg_layout(_plain())
    assert layout is not None
    assert (layout.frame, layout.precision, layout.components) == (0xC0, 8, 3)


def test_the_layout_of_a_grey_jpeg_has_one_component() -> None:
    layout = jpeg_layout(gen.jpeg(gen.gradient().colourspace("b-w"), keep="none"))
    assert layout is not None and layout.components == 1


def test_a_second_frame_has_no_layout() -> None:
    data = _plain()
    frame = next(s for s in segments(data) if s.marker == 0xC0)
    doubled = data[: frame.end] + data[frame.start : frame.end] + data[frame.end :]
    assert jpeg_layout(doubled) is None


def test_a_frame_too_short_to_read_has_no_layout() -> None:
    data = _plain()
    assert jpeg_layout(data[:2] + _segment(0xC0, b"\x08\x00\x10\x00\x10") + data[2:]) is None


def test_an_end_of_image_before_any_frame_has_no_layout() -> None:
    assert jpeg_layout(SOI + EOI) is None


def test_an_end_of_image_before_any_scan_has_no_layout() -> None:
    data = _plain()
    sos = next(s for s in segments(data) if s.marker == 0xDA)
    assert jpeg_layout(data[: sos.start] + EOI) is None


def test_an_icc_profile_is_not_other_metadata() -> None:
    data = _plain()
    layout = jpeg_layout(data[:2] + _segment(0xE2, b"ICC_PROFILE\0\x01\x01abc") + data[2:])
    assert layout is not None and not layout.other_metadata


def test_an_app2_that_is_not_a_profile_is_other_metadata() -> None:
    data = _plain()
    layout = jpeg_layout(data[:2] + _segment(0xE2, b"MPF\0abc") + data[2:])
    assert layout is not None and layout.other_metadata


def test_a_comment_between_scans_is_other_metadata() -> None:
    data = _plain()
    layout = jpeg_layout(data[:-2] + _segment(0xFE, b"late") + EOI)
    assert layout is not None and layout.other_metadata


def test_a_comment_before_the_scan_is_not_other_metadata() -> None:
    data = _plain()
    layout = jpeg_layout(data[:2] + _segment(0xFE, b"early") + data[2:])
    assert layout is not None and not layout.other_metadata


def test_the_layout_ends_just_past_end_of_image() -> None:
    data = _plain()
    layout = jpeg_layout(data + b"trailer")
    assert layout is not None and layout.end == len(data)


# --- the stripping -----------------------------------------------------------------------------


def test_stripping_keeps_jfif_the_profile_and_adobes_flag() -> None:
    data = _plain()
    kept = _segment(0xE0, b"JFIF\0") + _segment(0xE2, b"ICC_PROFILE\0") + _segment(0xEE, b"Adobe")
    dropped = _segment(0xE1, b"Exif\0\0") + _segment(0xED, b"8BIM") + _segment(0xFE, b"c")
    assert jpeg_without_metadata(data[:2] + kept + dropped + data[2:]) == data[:2] + kept + data[2:]


def test_stripping_keeps_everything_from_the_first_scan_on() -> None:
    data = _plain()
    tail = _segment(0xFE, b"after the scan")
    assert jpeg_without_metadata(data + tail) == data + tail


def test_stripping_refuses_data_without_a_scan() -> None:
    assert jpeg_without_metadata(SOI + _segment(0xE1, b"Exif\0\0") + EOI) is None


def test_stripping_refuses_a_cut_segment() -> None:
    assert jpeg_without_metadata(SOI + b"\xff\xe1\x00\x20Exif") is None


# --- pinned by the mutation run ----------------------------------------------------------------


def test_an_odd_run_of_fill_bytes_is_skipped() -> None:
    data = _plain()
    filled = SOI + b"\xff\xff\xff" + data[2:]
    assert [s.marker for s in segments(filled)] == [s.marker for s in segments(data)]


def test_restart_marker_seven_is_two_bytes() -> None:
    walked = list(segments(SOI + b"\xff\xd7" + _plain()[2:]))
    assert (walked[0].marker, walked[0].end - walked[0].start) == (0xD7, 2)


def test_an_empty_segment_is_read() -> None:
    first = next(segments(SOI + b"\xff\xfe\x00\x02" + _plain()[2:]))
    assert (first.marker, first.start, first.end) == (0xFE, 2, 6)


def test_an_empty_segment_at_the_very_end_is_read_before_the_missing_end() -> None:
    walked = segments(SOI + b"\xff\xfe\x00\x02")
    assert next(walked).end == 6
    with pytest.raises(MalformedJpeg, match="no end of image"):
        next(walked)


def test_a_frame_of_six_bytes_is_enough_to_read() -> None:
    data = _plain()
    frame = next(s for s in segments(data) if s.marker == 0xC0)
    short = _segment(0xC0, data[frame.start + 4 : frame.start + 10])
    layout = jpeg_layout(data[: frame.start] + short + data[frame.end :])
    assert layout is not None and layout.components == 3
