"""The report services against straightforward re-statements of their reference algorithms."""

from __future__ import annotations

import math

from iiif_process.services import blurhash

from . import iiif_images as gen

_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def _b83(value: int, length: int) -> str:
    return "".join(_BASE83[(value // 83 ** (length - i - 1)) % 83] for i in range(length))


def _linear(v: int) -> float:
    c = v / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _srgb(v: float) -> int:
    v = max(0.0, min(1.0, v))
    return (
        int(v * 12.92 * 255 + 0.5)
        if v <= 0.0031308
        else int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)
    )


def _reference_blurhash(pixels: list[list[list[int]]], cx: int, cy: int) -> str:
    """woltapp/blurhash's encoder, pixel by pixel."""
    height, width = len(pixels), len(pixels[0])
    factors = []
    for j in range(cy):
        for i in range(cx):
            norm = 1 if i == j == 0 else 2
            total = [0.0, 0.0, 0.0]
            for y in range(height):
                for x in range(width):
                    basis = (
                        norm
                        * math.cos(math.pi * i * x / width)
                        * math.cos(math.pi * j * y / height)
                    )
                    for b in range(3):
                        total[b] += basis * _linear(int(pixels[y][x][b]))
            factors.append([t / (width * height) for t in total])
    dc, ac = factors[0], factors[1:]
    actual_max = max(abs(v) for f in ac for v in f)
    quantised = max(0, min(82, math.floor(actual_max * 166 - 0.5)))
    maximum = (quantised + 1) / 166
    out = _b83((cx - 1) + (cy - 1) * 9, 1) + _b83(quantised, 1)
    out += _b83((_srgb(dc[0]) << 16) + (_srgb(dc[1]) << 8) + _srgb(dc[2]), 4)
    for f in ac:
        q = [
            max(0, min(18, math.floor(math.copysign(abs(v / maximum) ** 0.5, v) * 9 + 9.5)))
            for v in f
        ]
        out += _b83(q[0] * 19 * 19 + q[1] * 19 + q[2], 2)
    return out


def test_blurhash_matches_the_reference_encoder() -> None:
    image = gen.gradient(24, 16)
    raw = image.write_to_memory()
    pixels = [
        [list(raw[(y * 24 + x) * 3 : (y * 24 + x) * 3 + 3]) for x in range(24)] for y in range(16)
    ]
    assert blurhash(image, 4, 3) == _reference_blurhash(pixels, 4, 3)
