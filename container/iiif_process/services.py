"""go-iiif's report services: ``palette``, ``blurhash`` and ``imagehash``, computed on a small
sRGB copy of the (EXIF-oriented) image.

The algorithms follow the libraries go-iiif uses (blurhash's reference encoder, goimagehash's
average and difference hashes); values can differ from go-iiif's in the last bits because the
downscaling filters differ. The palette comes from the configured extruder (``marekm4``, go-iiif
v8's default: marekm4/color-extractor's eight colour cubes; any other name: a population-ranked
colour quantisation) and is reported in go-iiif v8's shape ``{"name", "hex", "reference",
"closest"}``, where ``closest`` holds the nearest colour of each configured list (``crayola``,
``css4``, ``css3``) by go-colours' euclidian grid.
"""

from __future__ import annotations

import array
import functools
import json
import math
from importlib import resources
from typing import Any

import pyvips

_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def fit_box(width: int, height: int, box: int) -> tuple[int, int]:
    """Dimensions scaled down to fit a box x box square (never enlarged)."""
    scale = min(1.0, box / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _rgb(image: pyvips.Image) -> pyvips.Image:
    if image.hasalpha():
        image = image.flatten(background=255)
    if image.bands == 1:
        image = image.bandjoin([image, image])
    return image.cast("uchar")


def _encode83(value: int, length: int) -> str:
    return "".join(_BASE83[(value // 83 ** (length - i - 1)) % 83] for i in range(length))


def _linear_to_srgb(value: float) -> int:
    v = max(0.0, min(1.0, value))
    if v <= 0.0031308:
        return int(v * 12.92 * 255 + 0.5)
    return int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _sign_pow(value: float, exp: float) -> float:
    return math.copysign(abs(value) ** exp, value)


# sRGB (0..255) to linear light, as the reference encoder computes it.
_LINEAR = tuple(
    (v / 255 / 12.92) if v / 255 <= 0.04045 else ((v / 255 + 0.055) / 1.055) ** 2.4
    for v in range(256)
)


def _pixels(image: pyvips.Image) -> Any:
    """The pixels of an 8-bit image as a H x W x bands numpy array (one read of the image)."""
    import numpy as np

    data = np.frombuffer(image.write_to_memory(), dtype=np.uint8)
    return data.reshape(image.height, image.width, image.bands)


def blurhash(image: pyvips.Image, x_components: int, y_components: int) -> str:
    """The BlurHash of an sRGB image (reference algorithm; the basis sums as two small matrix
    products per band in numpy: a thumbnail's pixels are few, and libvips' per-call cost was
    most of the time)."""
    import numpy as np

    pixels = _pixels(_rgb(image))
    height, width = pixels.shape[:2]
    linear = np.asarray(_LINEAR)[pixels]  # H x W x 3, float64
    # The cosines as the reference computes them (math.cos, same operand order).
    cos_x = np.array(
        [[math.cos(math.pi * i * x / width) for i in range(x_components)] for x in range(width)]
    )
    cos_y = np.array(
        [[math.cos(math.pi * j * y / height) for y in range(height)] for j in range(y_components)]
    )
    # cos_y (Y x H) . band (H x W) . cos_x (W x X), per band: Y x X x 3.
    sums = [(cos_y @ linear[..., band] @ cos_x).ravel().tolist() for band in range(3)]
    factors: list[tuple[float, ...]] = []
    for j in range(y_components):
        for i in range(x_components):
            norm = (1.0 if i == 0 and j == 0 else 2.0) / (width * height)
            factors.append(tuple(norm * sums[b][j * x_components + i] for b in range(3)))
    dc, ac = factors[0], factors[1:]
    out = _encode83((x_components - 1) + (y_components - 1) * 9, 1)
    if ac:
        actual_max = max(abs(v) for f in ac for v in f)
        quantised = int(max(0, min(82, math.floor(actual_max * 166 - 0.5))))
        maximum = (quantised + 1) / 166
        out += _encode83(quantised, 1)
    else:
        maximum = 1.0
        out += _encode83(0, 1)
    r, g, b = (_linear_to_srgb(v) for v in dc)
    out += _encode83((r << 16) + (g << 8) + b, 4)
    for f in ac:
        qr, qg, qb = (
            int(max(0, min(18, math.floor(_sign_pow(v / maximum, 0.5) * 9 + 9.5)))) for v in f
        )
        out += _encode83(qr * 19 * 19 + qg * 19 + qb, 2)
    return out


def _grey_values(image: pyvips.Image, width: int, height: int) -> list[float]:
    image = _rgb(image)
    small = image.resize(width / image.width, vscale=height / image.height, kernel="linear")
    small = small.embed(0, 0, width, height, extend="copy")
    # goimagehash's grey: 0.299 R + 0.587 G + 0.114 B.
    grey = small.recomb(pyvips.Image.new_from_list([[0.299, 0.587, 0.114]])).cast("float")
    values = array.array("f")
    values.frombytes(grey.write_to_memory())
    return list(values)


def imagehash(image: pyvips.Image) -> dict[str, str]:
    """goimagehash's average (8x8) and difference (9x8) hashes as ``a:``/``d:`` hex strings."""
    pixels = _grey_values(image, 8, 8)
    mean = sum(pixels) / len(pixels)
    average = 0
    for idx, value in enumerate(pixels):
        if value > mean:
            average |= 1 << (len(pixels) - idx - 1)
    rows = _grey_values(image, 9, 8)
    difference, idx = 0, 0
    for y in range(8):
        for x in range(8):
            if rows[y * 9 + x] < rows[y * 9 + x + 1]:
                difference |= 1 << (64 - idx - 1)
            idx += 1
    return {"average": f"a:{average:016x}", "difference": f"d:{difference:016x}"}


# The named colour lists of go-colours (public data, kept in the order go-colours lists them).
DEFAULT_COLOUR_LISTS = ("crayola", "css4")  # go-iiif's default palettes


@functools.cache
def colour_list(name: str) -> tuple[tuple[str, str, tuple[int, int, int]], ...]:
    """The colours of a named list as (name, hex, (r, g, b)), in go-colours' order."""
    data = json.loads(resources.files(__package__).joinpath("colour_names.json").read_text())
    return tuple(
        (
            colour,
            hex_value,
            (int(hex_value[1:3], 16), int(hex_value[3:5], 16), int(hex_value[5:7], 16)),
        )
        for colour, hex_value in data["palettes"][name]
    )


def closest(rgb: tuple[int, int, int], list_name: str) -> dict[str, str]:
    """The nearest colour of a named list, as go-colours' euclidian grid picks it: the least
    squared RGB distance, and of equally near colours the last listed."""
    best: tuple[str, str] = ("", "")
    best_distance = -1
    for name, hex_value, (r, g, b) in colour_list(list_name):
        distance = (r - rgb[0]) ** 2 + (g - rgb[1]) ** 2 + (b - rgb[2]) ** 2
        if best_distance < 0 or distance <= best_distance:
            best, best_distance = (name, hex_value), distance
    return {"name": best[0], "hex": best[1], "reference": list_name}


def marekm4_colours(image: pyvips.Image, count: int) -> list[tuple[int, int, int]]:
    """marekm4/color-extractor (go-iiif v8's default extruder): pixels sorted into the eight
    cubes of the RGB cube's halves, each cube's mean colour, most populous first, cubes under 1 %
    of the (alpha-weighted) pixels left out."""
    import numpy as np

    pixels = _pixels(image.cast("uchar"))
    alpha = image.hasalpha()
    colour = pixels[..., : image.bands - 1] if alpha else pixels
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    high = colour >> 7  # each channel's half: 0 or 1
    index = (high[..., 0] << 2 | high[..., 1] << 1 | high[..., 2]).ravel()
    # Per cube (in scan order, as libvips' indexed histogram adds them): the sums of r, g, b
    # weighted by alpha / 255, and of the weights.
    weight = pixels[..., -1].astype(np.float64) / 255 if alpha else None
    columns = [colour[..., band].astype(np.float64) for band in range(3)]
    if weight is not None:
        columns = [column * weight for column in columns]
    weights = weight.ravel() if weight is not None else None
    sums = [np.bincount(index, column.ravel(), minlength=8) for column in columns]
    counts = np.bincount(index, weights, minlength=8).astype(np.float64)
    cubes = [(*(float(s[i]) for s in sums), float(counts[i])) for i in range(8)]
    total = sum(c[3] for c in cubes)
    ranked = sorted((c for c in cubes if c[3] > 0), key=lambda c: -c[3])  # stable, as Go's
    result = []
    for r, g, b, n in ranked:
        if n / total > 0.01:
            result.append(tuple(math.floor(v / n + 0.5) for v in (r, g, b)))  # Go's math.Round
    return result[:count]


def palette(
    image: pyvips.Image,
    count: int,
    reference: str,
    lists: tuple[str, ...] = DEFAULT_COLOUR_LISTS,
) -> list[dict[str, Any]]:
    """The image's colours in go-iiif v8's shape, each with its ``closest`` named colours."""
    if reference == "marekm4":
        colours = marekm4_colours(image, count)
    else:
        colours = quantised_colours(image, count)
    result: list[dict[str, Any]] = []
    for rgb in colours:
        hex_value = "#{:02x}{:02x}{:02x}".format(*rgb)
        entry: dict[str, Any] = {"name": hex_value, "hex": hex_value, "reference": reference}
        if lists:  # go-iiif omits an empty closest
            entry["closest"] = [closest(rgb, name) for name in lists]
        result.append(entry)
    return result


def quantised_colours(image: pyvips.Image, count: int) -> list[tuple[int, int, int]]:
    """The ``count`` dominant, mutually distinct colours, most populous first."""
    image = _rgb(image)
    w, h = fit_box(image.width, image.height, 100)
    small = image.resize(w / image.width, vscale=h / image.height)
    data = bytes(small.write_to_memory())
    buckets: dict[int, list[int]] = {}
    for offset in range(0, len(data) - 2, 3):
        r, g, b = data[offset], data[offset + 1], data[offset + 2]
        key = (r >> 4) << 8 | (g >> 4) << 4 | (b >> 4)
        entry = buckets.get(key)
        if entry is None:
            buckets[key] = [1, r, g, b]
        else:
            entry[0] += 1
            entry[1] += r
            entry[2] += g
            entry[3] += b
    ranked = sorted(buckets.values(), key=lambda e: -e[0])
    chosen: list[tuple[int, int, int]] = []
    for min_distance in (48, 24, 0):
        for n, r, g, b in ranked:
            colour = (round(r / n), round(g / n), round(b / n))
            if len(chosen) >= count:
                break
            if all(math.dist(colour, c) > min_distance for c in chosen) and colour not in chosen:
                chosen.append(colour)
        if len(chosen) >= count:
            break
    return chosen


def compute_services(
    names: tuple[str, ...],
    thumbnail: pyvips.Image,
    *,
    x: int,
    y: int,
    count: int,
    extruder: str,
    colour_lists: tuple[str, ...] = DEFAULT_COLOUR_LISTS,
) -> dict[str, Any]:
    """Run the enabled services on a thumbnail; returns report fields keyed by service name."""
    out: dict[str, Any] = {}
    for name in names:
        if name == "palette":
            out["palette"] = palette(thumbnail, count, extruder, colour_lists)
        elif name == "blurhash":
            out["blurhash"] = blurhash(thumbnail, x, y)
        elif name == "imagehash":
            out["imagehash"] = imagehash(thumbnail)
    return out
