"""Reading an ICC profile's description (v2 ``desc`` and v4 ``mluc`` tags), and undoing a naive
16-bit CMYK separation (issue #13)."""

from __future__ import annotations

import struct

import pyvips
from iiif_process.colour import icc_colour_space, icc_description, naive_cmyk_to_srgb


def _profile(tags: list[tuple[bytes, bytes]], count: int | None = None) -> bytes:
    """A profile of a blank 128-byte header, the tag table (announcing ``count`` tags, default
    all of them) and the tags' data after it."""
    table = struct.pack(">I", len(tags) if count is None else count)
    data = b""
    start = 128 + 4 + 12 * len(tags)
    for signature, body in tags:
        table += struct.pack(">4sII", signature, start + len(data), len(body))
        data += body + b"\0" * (-len(body) % 4)
    return bytes(128) + table + data


def _desc(text: str) -> bytes:
    ascii_text = text.encode("latin-1") + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_text)) + ascii_text


def _mluc(text: str) -> bytes:
    utf16 = text.encode("utf-16-be")
    # One record (12 bytes: language, country, length, offset); its text right after, at 28.
    record = struct.pack(">2s2sII", b"en", b"US", len(utf16), 28)
    return b"mluc" + bytes(4) + struct.pack(">II", 1, 12) + record + utf16


def test_a_v2_desc_tag_gives_its_text() -> None:
    assert icc_description(_profile([(b"desc", _desc("Camera RGB"))])) == "Camera RGB"


def test_a_v4_mluc_tag_gives_its_text() -> None:
    assert icc_description(_profile([(b"desc", _mluc("Display P3"))])) == "Display P3"


def test_the_desc_tag_is_found_after_other_tags() -> None:
    tags = [(b"wtpt", bytes(20)), (b"cprt", _desc("(c) someone")), (b"desc", _desc("Scanner"))]
    assert icc_description(_profile(tags)) == "Scanner"


def test_a_profile_without_a_desc_tag_has_no_description() -> None:
    assert icc_description(_profile([(b"wtpt", bytes(20))])) == ""


def test_a_truncated_profile_has_no_description() -> None:
    assert icc_description(bytes(100)) == ""


def test_the_desc_text_ends_where_its_length_says() -> None:
    # "Scanner" and its NUL fill the tag to a 4-byte boundary: the next tag follows at once.
    tags = [(b"desc", _desc("Scanner")), (b"cprt", _desc("(c) someone"))]
    assert icc_description(_profile(tags)) == "Scanner"


def test_only_the_tags_the_count_announces_are_read() -> None:
    tags = [(b"wtpt", bytes(20)), (b"desc", _desc("Stale"))]
    assert icc_description(_profile(tags, count=1)) == ""


def test_at_most_64_tags_are_read() -> None:
    tags = [(b"wtpt", bytes(4))] * 64 + [(b"desc", _desc("Far"))]
    assert icc_description(_profile(tags)) == ""


# --- the naive separation undone, 16 bits a channel ------------------------------------------


def _naive_pixel(*levels: int) -> list[float]:
    """The sRGB pixel of a 16-bit CMYK (then extra bands) image of one colour, undone naively."""
    image = (pyvips.Image.black(2, 2, bands=len(levels)) + list(levels)).cast("ushort")
    return naive_cmyk_to_srgb(image.copy(interpretation="cmyk")).getpoint(0, 0)


def test_16_bit_ink_levels_become_their_8_bit_levels() -> None:
    # 257 16-bit levels a step: cyan leaving 155 steps of light gives red 155.
    assert _naive_pixel(65535 - 257 * 155, 0, 65535, 0) == [155, 255, 0]


def test_a_16_bit_level_short_of_the_next_step_stays_on_its_step() -> None:
    assert _naive_pixel(65535 - (257 * 200 + 256), 0, 65535, 0) == [200, 255, 0]


def test_16_bit_black_ink_darkens_every_channel() -> None:
    assert _naive_pixel(0, 0, 0, 65535 - 257 * 100) == [100, 100, 100]


def test_a_16_bit_alpha_becomes_its_8_bit_level() -> None:
    assert _naive_pixel(0, 0, 0, 0, 257 * 77) == [255, 255, 255, 77]


def test_a_16_bit_alpha_short_of_the_next_step_stays_on_its_step() -> None:
    assert _naive_pixel(0, 0, 0, 0, 257 * 77 + 256) == [255, 255, 255, 77]


def test_a_profile_too_short_for_its_colour_space_has_none() -> None:
    assert icc_colour_space(bytes(16) + b"RG") == ""


def test_a_profiles_colour_space_is_read_from_its_header() -> None:
    assert icc_colour_space(bytes(16) + b"CMYK" + bytes(108)) == "CMYK"


def test_twenty_bytes_hold_the_colour_space() -> None:
    assert icc_colour_space(bytes(16) + b"GRAY") == "GRAY"
