"""A JPEG's marker structure, walked once: what it says (:func:`jpeg_layout`) and the same data
without its metadata segments (:func:`jpeg_without_metadata`).

Both answers come from one walker, :func:`segments`, so what counts as a well-formed JPEG is
decided in one place: the full-size derivative published as the source's own bytes is stripped
by the same reading of the markers that judged it publishable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# Frame types every browser decodes: baseline, extended sequential and progressive, Huffman
# coded. Lossless (SOF3), hierarchical (SOF5-7) and arithmetic-coded (SOF9-15) JPEGs are not
# shown by Chrome or Safari: such sources are re-encoded.
_BROWSER_FRAMES = {0xC0, 0xC1, 0xC2}
_FRAME_MARKERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOFn (not DHT, JPG, DAC)
_SOS, _EOI = 0xDA, 0xD9
# The next marker in entropy-coded data: 0xFF followed by neither a stuffed zero, a restart
# marker nor another 0xFF (fill bytes: the match is then the last of them). A plain class, so
# that re scans at C speed (a few ms for a 5 MB JPEG).
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# JPEG segments kept when metadata is removed: JFIF (APP0), the ICC profile (APP2), Adobe's
# colour transform flag (APP14) and everything that is not an APPn or comment (tables, frame,
# scans). EXIF (GPS, serials), XMP, IPTC and comments go.
_KEPT_APP = {0xE0, 0xE2, 0xEE}


class MalformedJpeg(ValueError):
    """The marker structure is not a well-formed JPEG's (raised by :func:`segments`)."""


@dataclass(frozen=True)
class Segment:
    """One marker segment: ``data[start:end]`` is the marker and its length-counted body (for a
    start of scan, its header only: the entropy-coded data follows up to the next segment);
    ``data[start + 4:end]`` is the body of a segment that has one."""

    marker: int
    start: int
    end: int


def is_metadata(marker: int) -> bool:
    """Whether ``marker`` starts an APPn or comment segment (metadata, not image data)."""
    return 0xE0 <= marker <= 0xEF or marker == 0xFE


def segments(data: bytes | memoryview) -> Iterator[Segment]:
    """The segments of the JPEG ``data`` in order, from the first after SOI to EOI (included).

    Raises :class:`MalformedJpeg` at the first thing that is not a JPEG's structure: no SOI, a
    byte where a marker should be, a cut segment, data ending before EOI. Lazy: a caller that
    stops at the first start of scan never pays for scanning the entropy-coded data.
    """
    if data[:2] != b"\xff\xd8":
        raise MalformedJpeg("no start of image")
    pos, size = 2, len(data)
    while pos + 2 <= size:
        if data[pos] != 0xFF:
            raise MalformedJpeg(f"no marker at {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == _EOI:
            yield Segment(marker, pos, pos + 2)
            return
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # standalone markers
            yield Segment(marker, pos, pos + 2)
            pos += 2
            continue
        if pos + 4 > size:
            raise MalformedJpeg(f"segment cut at {pos}")
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2 or pos + 2 + length > size:
            raise MalformedJpeg(f"segment cut at {pos}")
        yield Segment(marker, pos, pos + 2 + length)
        pos += 2 + length
        if marker == _SOS:  # entropy-coded data up to the next marker
            found = _NEXT_MARKER.search(data, pos)
            if found is None:
                raise MalformedJpeg("scan without an end")
            pos = found.start()
    raise MalformedJpeg("no end of image")


@dataclass(frozen=True)
class JpegLayout:
    """What a JPEG's markers say: its frame type, sample precision and components, where its
    image ends (just past EOI: anything after it is a trailer, e.g. a camera's preview images),
    and whether it has metadata :func:`jpeg_without_metadata` would leave in (an APP2 that is
    not the ICC profile, e.g. MPF or FlashPix; an APPn or comment between scans)."""

    frame: int
    precision: int
    components: int
    end: int
    other_metadata: bool


def jpeg_layout(data: bytes) -> JpegLayout | None:
    """Walk the markers of the JPEG ``data`` to its end of image; None when it is not a
    well-formed single-frame JPEG (no EOI, a cut segment, a second frame, no scan)."""
    frame: tuple[int, int, int] | None = None
    scanned = other = False
    try:
        for seg in segments(data):
            marker = seg.marker
            if marker == _EOI:
                if frame is None or not scanned:
                    return None
                return JpegLayout(*frame, end=seg.end, other_metadata=other)
            if seg.end - seg.start == 2:  # standalone marker
                continue
            body = data[seg.start + 4 : seg.end]
            if marker in _FRAME_MARKERS:
                if frame is not None or len(body) < 6:
                    return None
                frame = (marker, body[0], body[5])
            else:
                not_icc = marker == 0xE2 and not body.startswith(b"ICC_PROFILE\0")
                other = other or not_icc or (scanned and is_metadata(marker))
            scanned = scanned or marker == _SOS
    except MalformedJpeg:
        return None
    return None  # unreachable: segments ends at EOI or raises


def browser_ready(layout: JpegLayout) -> bool:
    """Whether a JPEG of this layout can be published as it is, metadata stripped: a frame
    every browser decodes (8-bit baseline, extended or progressive, Huffman coded), 1 or 3
    components (not CMYK or YCCK), and no metadata the stripping would leave in."""
    return (
        layout.frame in _BROWSER_FRAMES
        and layout.precision == 8
        and layout.components in (1, 3)
        and not layout.other_metadata
    )


def jpeg_without_metadata(data: bytes | memoryview) -> bytes | None:
    """The JPEG ``data`` with its metadata segments before the first scan removed (JFIF, the ICC
    profile and Adobe's flag kept) and its image data untouched (no re-encode, no generation
    loss); None when the marker structure is not a JPEG's up to that scan."""
    out = [bytes(data[:2])]
    try:
        for seg in segments(data):
            if seg.marker == _SOS:  # the rest is image data (and later scans)
                out.append(data[seg.start :])
                return b"".join(out)
            if not is_metadata(seg.marker) or seg.marker in _KEPT_APP:
                out.append(data[seg.start : seg.end])
    except MalformedJpeg:
        return None
    return None  # an end of image before any scan
