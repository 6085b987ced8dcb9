"""The source JPEG as the full-size derivative: size limit and where the EXIF orientation goes."""

from __future__ import annotations

import os
from pathlib import Path

import pyvips
from iiif_process.tiles import COPY_SOURCE_MAX_BYTES
from iiif_process.transform import browser_jpeg, probe, published_jpeg

# A JFIF APP0 segment (version 1.01, no density, no thumbnail), as most cameras' JPEGs start.
_JFIF = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"


def _jpeg(path: Path) -> Path:
    """A small sRGB JPEG with only a JFIF segment before its image data."""
    image = pyvips.Image.black(64, 48).new_from_image([200, 120, 40]).cast("uchar")
    data = image.jpegsave_buffer(Q=90, strip=True)
    path.write_bytes(data[:2] + _JFIF + data[2:])
    return path


def test_a_small_plain_jpeg_can_be_published_as_it_is(tmp_path: Path) -> None:
    path = _jpeg(tmp_path / "a.jpg")
    assert browser_jpeg(probe(str(path), path.stat().st_size, 0)) is not None


def test_a_jpeg_over_the_copy_limit_is_not_published_as_it_is(tmp_path: Path) -> None:
    path = _jpeg(tmp_path / "a.jpg")
    # A sparse trailer after the end of image: the file is over the limit, the image the same.
    os.truncate(path, COPY_SOURCE_MAX_BYTES + 1)
    assert browser_jpeg(probe(str(path), path.stat().st_size, 0)) is None


def test_exif_orientation_goes_right_after_the_jfif_segment(tmp_path: Path) -> None:
    path = _jpeg(tmp_path / "a.jpg")
    data, layout = browser_jpeg(probe(str(path), path.stat().st_size, 0)) or (b"", None)
    out = published_jpeg(data, layout, keep_all=False, orientation=6)
    assert out[2 + len(_JFIF) : 4 + len(_JFIF)] == b"\xff\xe1"
    assert pyvips.Image.new_from_buffer(out, "").get("orientation") == 6
