"""IIIF Image API parameters of go-iiif instructions: parsing, validation and geometry.

An instructions file maps labels to ``{"region", "size", "rotation", "quality", "format"}``.
Each value is parsed once, before any image is read, into a frozen :class:`Instruction`; an
invalid or disabled value raises :class:`ParameterError` naming the label and the parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ParameterError

FORMATS: dict[str, str] = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "tif": "image/tiff",
    "gif": "image/gif",
}

# When a size may enlarge the region (config ``iiif_process.size_rules``): "2.1" = Image API 2.1
# and go-iiif (``!w,h`` enlarges an image smaller than the box), "3" = Image API 3.0 (only ``^``).
SIZE_RULES = ("2.1", "3")
DEFAULT_SIZE_RULES = "2.1"

# go-iiif's default crisp parameters (radius, amount, threshold).
DEFAULT_CRISP = (2.0, 0.5, 0.025)

_INT = r"(\d+)"
_NUM = r"(\d+(?:\.\d+)?)"
_REGION_PX = re.compile(rf"^{_INT},{_INT},{_INT},{_INT}$")
_REGION_PCT = re.compile(rf"^pct:{_NUM},{_NUM},{_NUM},{_NUM}$")
_REGION_SMART = re.compile(rf"^-1,-1,{_INT},{_INT}$")
_SIZE_W = re.compile(rf"^{_INT},$")
_SIZE_H = re.compile(rf"^,{_INT}$")
_SIZE_PCT = re.compile(rf"^pct:{_NUM}$")
_SIZE_WH = re.compile(rf"^{_INT},{_INT}$")
_SIZE_FIT = re.compile(rf"^!{_INT},{_INT}$")
_ROTATION = re.compile(rf"^(!)?{_NUM}$")
_CRISP = re.compile(r"^crisp(?::(\d+\.\d+),(\d+\.\d+),(\d+\.\d+))?$")


@dataclass(frozen=True)
class Region:
    """A parsed region: ``kind`` is full, square, pixels, percent or smart."""

    kind: str
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Return (left, top, width, height) on an image of the given size, clipped to it.

        Smart crops return the crop size only (left/top are chosen by the image content).
        """
        if self.kind == "full":
            return 0, 0, width, height
        if self.kind == "square":
            side = min(width, height)
            return (width - side) // 2, (height - side) // 2, side, side
        if self.kind == "smart":
            return 0, 0, min(int(self.w), width), min(int(self.h), height)
        if self.kind == "percent":
            left = math.floor(self.x * width / 100)
            top = math.floor(self.y * height / 100)
            w = math.floor(self.w * width / 100)
            h = math.floor(self.h * height / 100)
        else:
            left, top, w, h = int(self.x), int(self.y), int(self.w), int(self.h)
        if left >= width or top >= height:
            raise ParameterError(f"region lies outside the {width}x{height} image")
        w, h = min(w, width - left), min(h, height - top)
        if w <= 0 or h <= 0:
            raise ParameterError("region has zero width or height")
        return left, top, w, h


@dataclass(frozen=True)
class Size:
    """A parsed size: ``kind`` is full, max, w, h, pct, wh or fit; ``upscale`` = ``^``."""

    kind: str
    w: int = 0
    h: int = 0
    pct: float = 0.0
    upscale: bool = False

    def target(self, width: int, height: int, rules: str = DEFAULT_SIZE_RULES) -> tuple[int, int]:
        """Return the output (width, height) for a region of the given size.

        ``rules`` says when a size may enlarge the region: ``"2.1"`` (Image API 2.1, go-iiif's
        behaviour): every form may, ``!w,h`` included; ``"3"`` (Image API 3.0): only with the
        ``^`` prefix, and without it the region's own size is the most a size gives.
        """
        if rules not in SIZE_RULES:
            raise ParameterError(f"size rules must be one of {SIZE_RULES}, not {rules!r}")
        if self.kind in ("full", "max"):
            return width, height
        enlarge = self.upscale or rules == "2.1"
        if self.kind == "wh":  # distorts: each side on its own
            if enlarge:
                return self.w, self.h
            return min(self.w, width), min(self.h, height)
        # go-iiif's arithmetic (image/transformation.go), so that dimensions match its own: the
        # computed side is truncated, int(float(side) * ratio) (6000x4000 at !1024,768 gives
        # 1024x682, not 683), and pct:n is the ceiling of n / 100 * side.
        if self.kind == "w":
            scale = self.w / width
        elif self.kind == "h":
            scale = self.h / height
        elif self.kind == "pct":
            scale = self.pct / 100
        else:  # fit inside w x h, keeping the aspect ratio
            scale = min(self.w / width, self.h / height)
        if not enlarge and scale > 1:
            return width, height
        if self.kind == "w":
            tw, th = self.w, int(height * scale)
        elif self.kind == "h":
            tw, th = int(width * scale), self.h
        elif self.kind == "pct":
            tw, th = math.ceil(scale * width), math.ceil(scale * height)
        elif self.w / width <= self.h / height:  # fit, confined by the width
            # The box's side is exact: go-iiif's int(width * (w / width)) is one short for
            # some widths (float rounding: 1023 for a 1122-wide image at !1024,768).
            tw, th = self.w, int(height * scale)
        else:  # fit, confined by the height
            tw, th = int(width * scale), self.h
        return max(tw, 1), max(th, 1)


@dataclass(frozen=True)
class Rotation:
    """A parsed rotation: ``mirror`` first, then ``degrees`` clockwise; ``auto_orient`` = EXIF."""

    degrees: float = 0.0
    mirror: bool = False
    auto_orient: bool = True


@dataclass(frozen=True)
class Quality:
    """A parsed quality: default, color, gray, bitonal, dither or crisp (with USM parameters)."""

    kind: str
    crisp: tuple[float, float, float] = DEFAULT_CRISP


@dataclass(frozen=True)
class Instruction:
    """One derivative to make: the parsed parameters and their literal strings for the path."""

    label: str
    region: Region
    size: Size
    rotation: Rotation
    quality: Quality
    format: str
    region_str: str
    size_str: str
    rotation_str: str
    quality_str: str

    def key(self, uri: str) -> str:
        """go-iiif's derivative path: ``{uri}/{region}/{size}/{rotation}/{quality}.{format}``."""
        quality = "color" if self.quality_str == "default" else self.quality_str
        return (
            f"{uri}/{self.region_str}/{self.size_str}/{self.rotation_str}/{quality}.{self.format}"
        )

    @property
    def content_type(self) -> str:
        """The MIME type of the encoded derivative."""
        return FORMATS[self.format]


def _disabled(name: str, disabled: frozenset[str], label: str, param: str, value: str) -> None:
    if name in disabled:
        raise ParameterError(
            f"instruction {label!r}: {param} {value!r} is disabled by the config's features"
        )


def parse_region(value: str, label: str = "", disabled: frozenset[str] = frozenset()) -> Region:
    """Parse an IIIF region (plus go-iiif's smart crop ``-1,-1,w,h``)."""
    if value == "full":
        return Region("full")
    if value == "square":
        _disabled("regionSquare", disabled, label, "region", value)
        return Region("square")
    if m := _REGION_SMART.match(value):
        _disabled("regionSmart", disabled, label, "region", value)
        w, h = int(m[1]), int(m[2])
        if w == 0 or h == 0:
            raise ParameterError(f"instruction {label!r}: region {value!r} has zero area")
        return Region("smart", w=w, h=h)
    if m := _REGION_PX.match(value):
        _disabled("regionByPx", disabled, label, "region", value)
        x, y, w, h = (int(g) for g in m.groups())
        if w == 0 or h == 0:
            raise ParameterError(f"instruction {label!r}: region {value!r} has zero area")
        return Region("pixels", x, y, w, h)
    if m := _REGION_PCT.match(value):
        _disabled("regionByPct", disabled, label, "region", value)
        x, y, w, h = (float(g) for g in m.groups())
        if w == 0 or h == 0 or x >= 100 or y >= 100:
            raise ParameterError(f"instruction {label!r}: region {value!r} selects nothing")
        return Region("percent", x, y, w, h)
    raise ParameterError(f"instruction {label!r}: unsupported region {value!r}")


def parse_size(value: str, label: str = "", disabled: frozenset[str] = frozenset()) -> Size:
    """Parse an IIIF size (2.1 forms plus 3.0's ``max`` and ``^``)."""
    upscale = value.startswith("^")
    body = value[1:] if upscale else value
    if body == "full" and not upscale:
        return Size("full")
    if body == "max":
        _disabled("max", disabled, label, "size", value)
        return Size("max", upscale=upscale)
    size: Size | None = None
    if m := _SIZE_W.match(body):
        _disabled("sizeByW", disabled, label, "size", value)
        size = Size("w", w=int(m[1]), upscale=upscale)
    elif m := _SIZE_H.match(body):
        _disabled("sizeByH", disabled, label, "size", value)
        size = Size("h", h=int(m[1]), upscale=upscale)
    elif m := _SIZE_PCT.match(body):
        _disabled("sizeByPct", disabled, label, "size", value)
        pct = float(m[1])
        if pct <= 0:
            raise ParameterError(f"instruction {label!r}: size {value!r} is zero")
        return Size("pct", pct=pct, upscale=upscale)
    elif m := _SIZE_WH.match(body):
        _disabled("sizeByWh", disabled, label, "size", value)
        size = Size("wh", w=int(m[1]), h=int(m[2]), upscale=upscale)
    elif m := _SIZE_FIT.match(body):
        _disabled("sizeByConfinedWh", disabled, label, "size", value)
        size = Size("fit", w=int(m[1]), h=int(m[2]), upscale=upscale)
    if size is None:
        raise ParameterError(f"instruction {label!r}: unsupported size {value!r}")
    if (size.kind in ("w", "wh", "fit") and size.w == 0) or (
        size.kind in ("h", "wh", "fit") and size.h == 0
    ):
        raise ParameterError(f"instruction {label!r}: size {value!r} is zero")
    return size


def parse_rotation(value: str, label: str = "", disabled: frozenset[str] = frozenset()) -> Rotation:
    """Parse an IIIF rotation; go-iiif's ``-1`` means "do not apply the EXIF orientation"."""
    if value == "-1":
        _disabled("noAutoRotate", disabled, label, "rotation", value)
        return Rotation(auto_orient=False)
    m = _ROTATION.match(value)
    if not m:
        raise ParameterError(f"instruction {label!r}: unsupported rotation {value!r}")
    mirror, degrees = bool(m[1]), float(m[2])
    if mirror:
        _disabled("mirroring", disabled, label, "rotation", value)
    if degrees >= 360:
        raise ParameterError(f"instruction {label!r}: rotation {value!r} is not below 360")
    if degrees % 90:
        _disabled("rotationArbitrary", disabled, label, "rotation", value)
    elif degrees:
        _disabled("rotationBy90s", disabled, label, "rotation", value)
    return Rotation(degrees=degrees, mirror=mirror)


def parse_quality(value: str, label: str = "", disabled: frozenset[str] = frozenset()) -> Quality:
    """Parse an IIIF quality plus go-iiif's ``dither`` and ``crisp[:radius,amount,threshold]``."""
    if value in ("default", "color", "gray", "bitonal", "dither"):
        _disabled(value, disabled, label, "quality", value)
        return Quality(value)
    if m := _CRISP.match(value):
        _disabled("crisp", disabled, label, "quality", value)
        if m[1] is None:
            return Quality("crisp")
        return Quality("crisp", crisp=(float(m[1]), float(m[2]), float(m[3])))
    raise ParameterError(f"instruction {label!r}: unsupported quality {value!r}")


def parse_format(value: str, label: str = "", disabled: frozenset[str] = frozenset()) -> str:
    """Parse an output format; go-iiif v8 turns an empty format into ``jpg``."""
    fmt = value or "jpg"
    if fmt not in FORMATS:
        raise ParameterError(f"instruction {label!r}: unsupported format {value!r}")
    _disabled(fmt, disabled, label, "format", value)
    return fmt


def _text(label: str, spec: Mapping[str, Any], key: str, default: str) -> str:
    value = spec.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ParameterError(f"instruction {label!r}: {key} must be a string, not {value!r}")
    return value or default


def parse_instruction(
    label: str, spec: Mapping[str, Any], disabled: frozenset[str] = frozenset()
) -> Instruction:
    """Parse one labelled instruction; missing or empty fields take go-iiif's defaults."""
    if not isinstance(spec, Mapping):
        raise ParameterError(f"instruction {label!r} must be an object")
    region = _text(label, spec, "region", "full")
    size = _text(label, spec, "size", "full")
    rotation = _text(label, spec, "rotation", "0")
    quality = _text(label, spec, "quality", "default")
    fmt = parse_format(_text(label, spec, "format", "jpg"), label, disabled)
    return Instruction(
        label=label,
        region=parse_region(region, label, disabled),
        size=parse_size(size, label, disabled),
        rotation=parse_rotation(rotation, label, disabled),
        quality=parse_quality(quality, label, disabled),
        format=fmt,
        region_str=region,
        size_str=size,
        rotation_str=rotation,
        quality_str=quality,
    )


def parse_instructions(data: Any, disabled: Iterable[str] = ()) -> tuple[Instruction, ...]:
    """Parse a whole instruction set (label → parameters) into instructions, in label order."""
    if not isinstance(data, Mapping) or not data:
        raise ParameterError("instructions must be a non-empty JSON object of label → parameters")
    off = frozenset(disabled)
    return tuple(parse_instruction(str(label), spec, off) for label, spec in data.items())
