"""Atkinson error-diffusion dither, as go-iiif's ``dither`` quality makes it (go-atkinson).

go-iiif converts the image to grey with Go's ``color.GrayModel``, then walks it top to bottom,
left to right: each pixel becomes black (< 128) or white, and an eighth of its error, truncated
towards zero, goes to each of six neighbours: (x+1, y), (x+2, y), (x-1, y+1), (x, y+1),
(x+1, y+1) and (x, y+2). Where go-atkinson's 8-bit pixels wrap around (a near-white pixel pushed
past 255 turns black) ours saturate instead; everywhere else the result is go-iiif's, pixel for
pixel.

Error diffusion is sequential along a row, so it is not one libvips operation. It runs in numpy
on wavefronts instead: every pixel depends only on pixels with a smaller ``x + 2y``, so all the
pixels of one ``t = x + 2y`` are done at once. The image is held skewed (row ``t``, column
``y``), which makes each wavefront a contiguous slice and each neighbour a shifted slice: about
``width + 2 * height`` numpy steps of four operations (about 20 ms of CPU for an 800x533
derivative). Tall images are done in strips of rows, carrying the error of the strip's last two
rows into the next, and greyed strip by strip, so the working arrays stay small (a full-size
24 MP dither: about 1.3 s of CPU and 300 MB, the copy of its pixels included).
"""

from __future__ import annotations

from typing import Any

import pyvips

# Rows per strip: the skewed buffer of a strip is (width + 2 * STRIP + 6) x (STRIP + 2) int16.
STRIP = 1024
# Values held in the buffer are offset so that a saturating lookup table indexes them directly:
# a pixel is 0..255 plus at most six errors of at most 15 either way.
_OFFSET = 128
_TABLE_SIZE = 512


def _error_table(np: Any) -> Any:
    """The error a pixel of (offset) value v passes to each neighbour: go-atkinson's
    int((v - mono(v)) / 8) of the value saturated to 0..255."""
    value = np.clip(np.arange(_TABLE_SIZE) - _OFFSET, 0, 255)
    return np.where(value < 128, value >> 3, -((255 - value) >> 3)).astype(np.int16)


def go_grey(rgb: Any, np: Any) -> Any:
    """Go's ``color.GrayModel`` of 8-bit sRGB pixels (H x W x 3 uint8): the 16-bit values'
    (19595 R + 38470 G + 7471 B + 2^15) >> 24."""
    # 16-bit v is 8-bit v * 257; the largest sum, 4294934528, still fits 32 bits.
    wide = rgb.astype(np.uint32)
    y = wide[..., 0] * (19595 * 257)
    y += wide[..., 1] * (38470 * 257)
    y += wide[..., 2] * (7471 * 257)
    y += 1 << 15
    return (y >> 24).astype(np.uint8)


def atkinson_array(pixels: Any) -> Any:
    """Dither a H x W uint8 array of grey levels, or a H x W x 3 one of sRGB (greyed strip by
    strip with :func:`go_grey`), to 0/255 (numpy in, numpy out)."""
    import numpy as np

    height, width = pixels.shape[:2]
    table = _error_table(np)
    out = np.empty((height, width), dtype=np.uint8)
    carry = np.zeros((2, width), dtype=np.int16)  # error received by the next strip's first rows
    for top in range(0, height, STRIP):
        rows = min(STRIP, height - top)
        skewed = np.zeros((width + 2 * rows + 6, rows + 2), dtype=np.int16)
        ys = np.arange(rows, dtype=np.int32)[:, None]
        ts = np.arange(width, dtype=np.int32)[None, :] + 2 * ys
        strip = pixels[top : top + rows]
        grey = go_grey(strip, np) if strip.ndim == 3 else strip
        block = grey.astype(np.int16) + _OFFSET
        block[: min(2, rows)] += carry[: min(2, rows)]
        skewed[ts, ys] = block
        for t in range(width + 2 * (rows - 1)):
            lo = max(0, (t - width + 2) // 2)
            hi = min(rows - 1, t // 2) + 1
            error = table.take(skewed[t, lo:hi])
            skewed[t + 1 : t + 3, lo:hi] += error  # (x+1, y), (x+2, y)
            skewed[t + 1 : t + 4, lo + 1 : hi + 1] += error  # (x-1, y+1), (x, y+1), (x+1, y+1)
            skewed[t + 4, lo + 2 : hi + 2] += error  # (x, y+2)
        out[top : top + rows] = np.where(skewed[ts, ys] >= 128 + _OFFSET, 255, 0)
        xs = np.arange(width)
        carry = np.stack(
            [skewed[xs + 2 * rows, rows], skewed[xs + 2 * rows + 2, rows + 1]]
        )  # the pending error of rows top + rows and top + rows + 1
    return out


def atkinson(image: pyvips.Image) -> pyvips.Image:
    """go-iiif's dither of an 8-bit sRGB or grey image (no alpha): a black-and-white image."""
    import numpy as np

    data = np.frombuffer(image.write_to_memory(), dtype=np.uint8)
    pixels = data.reshape(image.height, image.width, image.bands)
    out = atkinson_array(pixels[..., :3] if image.bands >= 3 else pixels[..., 0])
    result = pyvips.Image.new_from_memory(out.tobytes(), image.width, image.height, 1, "uchar")
    return result.copy(interpretation="b-w")
