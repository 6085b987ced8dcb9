"""What go-iiif's formats say a derivative's key and size must be (docs: go-iiif-formats.md).

Written from the format description, not from the tool's code, so that the end-to-end tests check
the tool against the contract. Covers the parameter forms the project's instructions use.
"""

from __future__ import annotations

from typing import Any


def derivative_key(uri: str, spec: dict[str, Any]) -> str:
    """`{uri}/{region}/{size}/{rotation}/{quality}.{format}`; quality default is written color."""
    region = spec.get("region") or "full"
    size = spec.get("size") or "full"
    rotation = spec.get("rotation") or "0"
    quality = spec.get("quality") or "default"
    if quality == "default":
        quality = "color"
    image_format = spec.get("format") or "jpg"
    return f"{uri}/{region}/{size}/{rotation}/{quality}.{image_format}"


def region_size(spec: dict[str, Any], width: int, height: int) -> tuple[int, int]:
    """The region's width and height: `full`, or a w x h smart crop clipped to the image."""
    region = spec.get("region") or "full"
    if region == "full":
        return width, height
    x, y, w, h = region.split(",")
    if (x, y) == ("-1", "-1"):
        return min(int(w), width), min(int(h), height)
    return min(int(w), width - int(x)), min(int(h), height - int(y))


def size_is_right(spec: dict[str, Any], source: tuple[int, int], got: tuple[int, int]) -> bool:
    """Whether `got` is the size IIIF asks for, with one pixel of rounding freedom."""
    width, height = region_size(spec, *source)
    size = spec.get("size") or "full"
    if size in ("full", "max"):
        return got == (width, height)
    if size.startswith("!"):
        box_w, box_h = (int(v) for v in size[1:].split(","))
        # Best fit inside the box, also enlarging a smaller image: Image API 2.1 allows it and
        # go-iiif does it (go-iiif-v8-observed.md: 451x300 gives k = 2048x1362).
        scale = min(box_w / width, box_h / height)
        fits = got[0] <= box_w and got[1] <= box_h
        return fits and abs(got[0] - width * scale) <= 1 and abs(got[1] - height * scale) <= 1
    raise ValueError(f"size {size!r} is not covered by these expectations")


# --- deep zoom (issue #11): what docs/contracts.md, "Deep zoom", says the task publishes -------


def _size_text(size: tuple[int, int], full: tuple[int, int], version: int) -> str:
    """`w,h` (Image API 3) or `w,` (2); `max` (3) or `full` (2) at the image's full size."""
    if size == full:
        return "max" if version == 3 else "full"
    return f"{size[0]},{size[1]}" if version == 3 else f"{size[0]},"


def level0_keys(uri: str, info: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Every object an `info.json` announces, key -> (width, height) in pixels: the tiles at
    every scale factor (edges clipped), each of `sizes`, and the full image Level 0 requires."""
    version = 3 if "id" in info else 2
    width, height = info["width"], info["height"]
    keys: dict[str, tuple[int, int]] = {}
    for tiles in info["tiles"]:
        tile_w = tiles["width"]
        tile_h = tiles.get("height", tile_w)
        for scale in tiles["scaleFactors"]:
            for y in range(0, height, tile_h * scale):
                for x in range(0, width, tile_w * scale):
                    region_w = min(tile_w * scale, width - x)
                    region_h = min(tile_h * scale, height - y)
                    whole = (x, y, region_w, region_h) == (0, 0, width, height)
                    region = "full" if whole else f"{x},{y},{region_w},{region_h}"
                    size = (-(-region_w // scale), -(-region_h // scale))
                    text = _size_text(size, (width, height), version)
                    keys[f"{uri}/{region}/{text}/0/default.jpg"] = size
    for entry in info.get("sizes", []):
        size = (entry["width"], entry["height"])
        keys[f"{uri}/full/{_size_text(size, (width, height), version)}/0/default.jpg"] = size
    keys[f"{uri}/full/{_size_text((width, height), (width, height), version)}/0/default.jpg"] = (
        width,
        height,
    )
    return keys
