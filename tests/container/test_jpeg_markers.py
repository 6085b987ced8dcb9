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
