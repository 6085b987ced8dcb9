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
Several images are diffused together with the steps of the largest alone (:func:`_diffuse`):
the renderer dithers a set's small dithered derivatives so.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def _diffuse(blocks: Sequence[Any], np: Any) -> list[Any]:
    """Diffuse the error of one strip of each image at once: ``blocks`` are int16 arrays of
    offset values (rows x width, every strip at most :data:`STRIP` rows); returns for each its
    values after diffusion as a (rows + 2) x width view (the last two rows: the error the rows
    after the strip received).

    The strips sit side by side in one skewed buffer (each in its own columns, then the two
    columns its last rows pass error to), and each wavefront step takes the row of every strip
    at once: a step's cost is numpy's per-call overhead, not its cells, so two images take the
    steps of the larger one instead of both. Cells between and after strips only ever hold
    received errors, which the table turns into no error, as for the padding.
    """
    from numpy.lib.stride_tricks import as_strided

    take = _error_table(np).take
    columns = sum(len(block) + 2 for block in blocks)
    length = max(block.shape[1] + 2 * len(block) + 2 for block in blocks)
    skewed = np.zeros((length, columns), dtype=np.int16)
    step = columns * 2  # bytes from one wavefront to the next (int16)
    views, first = [], 0
    for block in blocks:
        rows, width = block.shape
        # Pixel (x, y) of the strip, and of the two rows after it, is skewed[x + 2y, first + y].
        view = as_strided(skewed[:, first:], shape=(rows + 2, width), strides=(2 * step + 2, step))
        view[:rows] = block
        views.append(view)
        first += rows + 2
    cells = columns - 2  # every column but the last strip's two received-only ones
    here = skewed[:, :cells]
    # (x+1, y), (x+2, y): rows t+1, t+2 of the same column.
    ahead = as_strided(skewed, shape=(length - 2, 2, cells), strides=(step, step, 2))
    # (x-1, y+1), (x, y+1), (x+1, y+1): rows t+1 to t+3 of the next column.
    below = as_strided(skewed[:, 1:], shape=(length - 3, 3, cells), strides=(step, step, 2))
    far = skewed[:, 2 : cells + 2]  # (x, y+2): row t+4, two columns on
    error = np.empty(cells, dtype=np.int16)
    for t in range(max(block.shape[1] + 2 * (len(block) - 1) for block in blocks)):
        take(here[t], out=error, mode="clip")  # padding below 0 clips to no error
        ahead[t + 1] += error
        below[t + 1] += error
        far[t + 4] += error
    return views


def atkinson_arrays(images: Sequence[Any]) -> list[Any]:
    """Dither H x W uint8 arrays of grey levels, or H x W x 3 ones of sRGB (greyed strip by
    strip with :func:`go_grey`), to 0/255 (numpy in, numpy out), the strips of all of them
    diffused together (:func:`_diffuse`): each result is what each alone would give."""
    import numpy as np

    outs = [np.empty(image.shape[:2], dtype=np.uint8) for image in images]
    # The error received by each image's next strip's first two rows.
    carries = [np.zeros((2, image.shape[1]), dtype=np.int16) for image in images]
    for top in range(0, max((image.shape[0] for image in images), default=0), STRIP):
        active = [index for index, image in enumerate(images) if image.shape[0] > top]
        blocks = []
        for index in active:
            strip = images[index][top : top + STRIP]
            block = (go_grey(strip, np) if strip.ndim == 3 else strip).astype(np.int16)
            block += _OFFSET
            rows = min(2, len(block))
            block[:rows] += carries[index][:rows]
            blocks.append(block)
        for index, block, view in zip(active, blocks, _diffuse(blocks, np), strict=True):
            rows = len(block)
            np.greater_equal(view[:rows], 128 + _OFFSET, out=outs[index][top : top + rows])
            carries[index] = view[rows:].copy()  # the pending error of the next two rows
    for out in outs:
        out *= 255
    return outs


def atkinson_array(pixels: Any) -> Any:
    """Dither a H x W uint8 array of grey levels, or a H x W x 3 one of sRGB, to 0/255."""
    return atkinson_arrays([pixels])[0]


def atkinson_many(images: Sequence[pyvips.Image]) -> list[pyvips.Image]:
    """go-iiif's dither of several 8-bit sRGB or grey images (no alpha) at once (cheaper than
    one by one: :func:`_diffuse`): black-and-white images."""
    import numpy as np

    arrays = []
    for image in images:
        data = np.frombuffer(image.write_to_memory(), dtype=np.uint8)
        pixels = data.reshape(image.height, image.width, image.bands)
        arrays.append(pixels[..., :3] if image.bands >= 3 else pixels[..., 0])
    results = []
    for image, out in zip(images, atkinson_arrays(arrays), strict=True):
        # The array itself, not a copy: pyvips keeps a reference to it for the image's life.
        result = pyvips.Image.new_from_memory(out.data, image.width, image.height, 1, "uchar")
        results.append(result.copy(interpretation="b-w"))
    return results


def atkinson(image: pyvips.Image) -> pyvips.Image:
    """go-iiif's dither of an 8-bit sRGB or grey image (no alpha): a black-and-white image."""
    return atkinson_many([image])[0]
