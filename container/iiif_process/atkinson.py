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
``y``): the skew itself is a strided view of the buffer (no index arrays), each wavefront is a
row of it and each group of neighbours a fixed strided view, so a step is four numpy calls on
preallocated arrays with no Python arithmetic: about ``width + 2 * height`` steps of under 5 us
(about 12 ms of CPU for an 800x533 derivative, 4 ms for 320x320). A step takes the whole row,
padding included: padding cells hold at most the six errors they received (at most 90 either
way, never a pixel's 128 + offset), which the table turns into no error, so they pass nothing on.
Tall images are done in strips of rows, carrying the error of the strip's last two rows into the
next, and greyed strip by strip, so the working arrays stay small (a full-size 24 MP dither:
the 72 MB copy of its pixels, its 24 MB result and about 100 MB per strip, 195 MB in all).
"""

from __future__ import annotations

from typing import Any

import pyvips

# Rows per strip: the skewed buffer of a strip is (width + 2 * STRIP + 2) x (STRIP + 2) int16.
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
    # 16-bit v is 8-bit v * 257; the largest sum, 4294934528, still fits 32 bits. One band at a
    # time into 32 bits: no 32-bit copy of all three.
    y = np.multiply(rgb[..., 0], 19595 * 257, dtype=np.uint32)
    y += np.multiply(rgb[..., 1], 38470 * 257, dtype=np.uint32)
    y += np.multiply(rgb[..., 2], 7471 * 257, dtype=np.uint32)
    y += 1 << 15
    y >>= 24
    return y.astype(np.uint8)


def atkinson_array(pixels: Any) -> Any:
    """Dither a H x W uint8 array of grey levels, or a H x W x 3 one of sRGB (greyed strip by
    strip with :func:`go_grey`), to 0/255 (numpy in, numpy out)."""
    import numpy as np
    from numpy.lib.stride_tricks import as_strided

    height, width = pixels.shape[:2]
    take = _error_table(np).take
    out = np.empty((height, width), dtype=np.uint8)
    carry = np.zeros((2, width), dtype=np.int16)  # error received by the next strip's first rows
    for top in range(0, height, STRIP):
        rows = min(STRIP, height - top)
        cols = rows + 2  # a wavefront's pixels and the two columns its last ones pass error to
        step = cols * 2  # bytes from one wavefront to the next (int16)
        skewed = np.zeros((width + 2 * rows + 2, cols), dtype=np.int16)
        # Pixel (x, y) of the strip, and of the two rows after it, is skewed[x + 2y, y].
        image = as_strided(skewed, shape=(rows + 2, width), strides=(2 * step + 2, step))
        strip = pixels[top : top + rows]
        block = (go_grey(strip, np) if strip.ndim == 3 else strip).astype(np.int16)
        block += _OFFSET
        block[: min(2, rows)] += carry[: min(2, rows)]
        image[:rows] = block
        here = skewed[:, :rows]
        # (x+1, y), (x+2, y): rows t+1, t+2 of the same column.
        ahead = as_strided(skewed, shape=(len(skewed) - 2, 2, rows), strides=(step, step, 2))
        # (x-1, y+1), (x, y+1), (x+1, y+1): rows t+1 to t+3 of the next column.
        below = as_strided(skewed[:, 1:], shape=(len(skewed) - 3, 3, rows), strides=(step, step, 2))
        far = skewed[:, 2 : rows + 2]  # (x, y+2): row t+4, two columns on
        error = np.empty(rows, dtype=np.int16)
        for t in range(width + 2 * (rows - 1)):
            take(here[t], out=error, mode="clip")  # padding below 0 clips to no error
            ahead[t + 1] += error
            below[t + 1] += error
            far[t + 4] += error
        np.greater_equal(image[:rows], 128 + _OFFSET, out=out[top : top + rows])
        carry = image[rows:].copy()  # the pending error of rows top + rows and top + rows + 1
    out *= 255
    return out


def atkinson(image: pyvips.Image) -> pyvips.Image:
    """go-iiif's dither of an 8-bit sRGB or grey image (no alpha): a black-and-white image."""
    import numpy as np

    data = np.frombuffer(image.write_to_memory(), dtype=np.uint8)
    pixels = data.reshape(image.height, image.width, image.bands)
    out = atkinson_array(pixels[..., :3] if image.bands >= 3 else pixels[..., 0])
    # The array itself, not a copy: pyvips keeps a reference to it for the image's life.
    result = pyvips.Image.new_from_memory(out.data, image.width, image.height, 1, "uchar")
    return result.copy(interpretation="b-w")
