"""Test images, generated with pyvips (and, for the decompression bomb, by hand)."""

from __future__ import annotations

import struct
import zlib

import pyvips


def gradient(width: int = 120, height: int = 80) -> pyvips.Image:
    """An sRGB gradient (photographic enough for every operation, and asymmetric)."""
    xyz = pyvips.Image.xyz(width, height)
    red = xyz[0] * (255 / max(1, width - 1))
    green = xyz[1] * (255 / max(1, height - 1))
    blue = (xyz[0] + xyz[1]) * (127 / max(1, width + height))
    return red.bandjoin([green, blue]).cast("uchar").copy(interpretation="srgb")


def marked(width: int = 60, height: int = 40) -> pyvips.Image:
    """Black with a red 10x10 marker in the top-left corner (to follow orientation)."""
    black = pyvips.Image.black(width, height, bands=3)
    red = pyvips.Image.black(10, 10).new_from_image([255, 0, 0])
    return black.insert(red, 0, 0).cast("uchar").copy(interpretation="srgb")


def jpeg(image: pyvips.Image | None = None, **options: object) -> bytes:
    """JPEG bytes of ``image`` (default: the gradient)."""
    return (image if image is not None else gradient()).jpegsave_buffer(**options)


def png(image: pyvips.Image, **options: object) -> bytes:
    """PNG bytes of ``image``."""
    return image.pngsave_buffer(**options)


def with_orientation(image: pyvips.Image, orientation: int) -> bytes:
    """A JPEG whose EXIF says ``orientation`` (stored pixels unchanged)."""
    tagged = image.copy()
    tagged.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return tagged.jpegsave_buffer(Q=95, keep="exif")


def cmyk_jpeg() -> bytes:
    """A CMYK JPEG without an embedded profile."""
    cmyk = gradient().colourspace("cmyk")
    data = cmyk.jpegsave_buffer(keep="none")
    assert pyvips.Image.new_from_buffer(data, "").interpretation == "cmyk"
    return data


def png16() -> bytes:
    """A 16-bit RGB PNG."""
    image = (gradient().cast("ushort") * 257).cast("ushort").copy(interpretation="rgb16")
    data = image.pngsave_buffer(bitdepth=16)
    assert pyvips.Image.new_from_buffer(data, "").format == "ushort"
    return data


def alpha_png() -> bytes:
    """An RGBA PNG, half transparent."""
    image = gradient()
    return image.bandjoin(128).cast("uchar").copy(interpretation="srgb").pngsave_buffer()


def palette_png() -> bytes:
    """An 8-bit palette PNG."""
    return gradient().pngsave_buffer(palette=True, colours=16)


def frames(colours: list[list[int]], width: int = 40, height: int = 30) -> pyvips.Image:
    """Frames of solid colours stacked vertically, with ``page-height`` set."""
    pages = [(pyvips.Image.black(width, height, bands=3) + c).cast("uchar") for c in colours]
    stack = pyvips.Image.arrayjoin(pages, across=1).copy(interpretation="srgb")
    stack.set_type(pyvips.GValue.gint_type, "page-height", height)
    return stack


def animated_gif() -> bytes:
    """A three-frame animated GIF: red, green, blue."""
    return frames([[255, 0, 0], [0, 255, 0], [0, 0, 255]]).gifsave_buffer()


def multipage_tiff() -> bytes:
    """A three-page TIFF: red, green, blue."""
    return frames([[255, 0, 0], [0, 255, 0], [0, 0, 255]]).tiffsave_buffer()


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A PNG that declares width x height RGB pixels in a few dozen bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\0" * 4096, 9)  # the start of an all-black image
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def p3_jpeg() -> bytes:
    """The gradient converted to Display P3, with the P3 profile embedded."""
    p3 = gradient().icc_transform("p3", input_profile="srgb")
    return p3.jpegsave_buffer(Q=100, keep="icc")


def banded(width: int = 300, height: int = 200, band: int = 20) -> pyvips.Image:
    """Grey, with a red band along the top edge and a blue band along the bottom edge."""
    grey = pyvips.Image.black(width, height, bands=3).new_from_image([128, 128, 128])
    red = pyvips.Image.black(width, band).new_from_image([255, 0, 0])
    blue = pyvips.Image.black(width, band).new_from_image([0, 0, 255])
    out = grey.insert(red, 0, 0).insert(blue, 0, height - band)
    return out.cast("uchar").copy(interpretation="srgb")


def detail_on_the_right(width: int = 400, height: int = 100, detail: int = 100) -> pyvips.Image:
    """Flat grey, with a saturated red/yellow checkerboard filling the right ``detail`` columns."""
    grey = pyvips.Image.black(width, height, bands=3).new_from_image([128, 128, 128])
    xyz = pyvips.Image.xyz(detail, height)
    checks = ((xyz[0] // 10 + xyz[1] // 10) % 2).bandjoin([xyz[0] * 0, xyz[0] * 0])
    coloured = (checks == 1).ifthenelse([255, 220, 0], [220, 0, 0])
    return grey.insert(coloured, width - detail, 0).cast("uchar").copy(interpretation="srgb")
