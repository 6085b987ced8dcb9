"""The peer: the best Pillow code we know for go-iiif's default derivatives.

What a careful Pillow user would write: one full decode (``o`` needs every pixel), ``k`` by
``resize(..., reducing_gap=1.0)`` (a fast integer box ``reduce()`` first, then lanczos on the
remaining factor; measured the fastest option here: faster than ``reducing_gap=2.0`` or no gap,
and than a second decode in JPEG draft mode), each smaller size from the previous one, the same
ordered dither and unsharp mask via Pillow's C filters, and for the smart crop a cover-resize of
the smallest made copy that covers 320x320, cut at a cheap "interesting area" (edge energy,
box-summed; Pillow has no attention crop).
Same outputs as the reference: labels, sizes, JPEG Q75.

``python -m bench.pillow_peer [--gap G] OUT_DIR IMAGE [IMAGE ...]`` (G: the reducing gap, default
1.0; 2.0 gives the resampling quality of libvips' ``resize``) prints
``{"seconds": [...], "cpu": [...], "sizes": {...}}``.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import time
from pathlib import Path

from PIL import Image, ImageChops, ImageFilter

from bench.spec import (
    BAYER8,
    CRISP,
    FIT_SIZES,
    JPEG_QUALITY,
    PATHS,
    SMART_CROP,
    cover,
    fit,
    smart_crop_seed,
)

Image.MAX_IMAGE_PIXELS = 200_000_000  # our 100 MP test image is not a decompression bomb

_LANCZOS = Image.Resampling.LANCZOS
FASTEST_GAP = 1.0  # measured fastest here
LIBVIPS_GAP = 2.0  # libvips resize's default gap: the same resampling quality as pyvips


def _dither(image: Image.Image) -> Image.Image:
    grey = image.convert("L")
    tile = Image.new("L", (8, 8))
    tile.putdata([min(255, int((v + 0.5) * 4)) for row in BAYER8 for v in row])
    threshold = Image.new("L", grey.size)
    for top in range(0, grey.height, 8):
        for left in range(0, grey.width, 8):
            threshold.paste(tile, (left, top))
    # grey > threshold  <=>  grey - threshold > 0 (subtract clips at 0): white where positive.
    return ImageChops.subtract(grey, threshold).point(lambda v: 255 if v > 0 else 0)


def _crisp(image: Image.Image) -> Image.Image:
    radius, amount, limit = CRISP
    return image.filter(
        ImageFilter.UnsharpMask(
            radius=radius, percent=round(amount * 100), threshold=round(limit * 255)
        )
    )


def _interesting_box(
    full: Image.Image, small: Image.Image, size: tuple[int, int]
) -> tuple[int, ...]:
    """A size-sized box of ``full`` around the most detailed area, found on ``small``."""
    scale = small.width / full.width
    win_w, win_h = max(1, round(size[0] * scale)), max(1, round(size[1] * scale))
    energy = small.convert("L").filter(ImageFilter.FIND_EDGES)
    energy = energy.filter(ImageFilter.BoxBlur(max(win_w, win_h) / 2))
    peak = energy.getextrema()[1]
    cx_cy = energy.point(lambda v: 255 if v >= peak else 0).getbbox() or (0, 0, 1, 1)
    cx = (cx_cy[0] + cx_cy[2]) / 2 / scale
    cy = (cx_cy[1] + cx_cy[3]) / 2 / scale
    left = int(min(max(cx - size[0] / 2, 0), full.width - size[0]))
    top = int(min(max(cy - size[1] / 2, 0), full.height - size[1]))
    return left, top, left + size[0], top + size[1]


def _encode(image: Image.Image, exif: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    if exif:
        image.save(buffer, "JPEG", quality=JPEG_QUALITY, exif=exif)
    else:
        image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def process(
    source: Path, out_dir: Path, reducing_gap: float = FASTEST_GAP
) -> dict[str, tuple[int, int]]:
    """Make every default derivative of ``source`` under ``out_dir``; return label -> size."""
    data = source.read_bytes()
    hashlib.sha1(data).hexdigest()  # go-iiif's origin_fingerprint
    full = Image.open(io.BytesIO(data))
    full.load()
    outputs: dict[str, Image.Image] = {"o": full}

    previous = full
    for label, box in FIT_SIZES.items():
        previous = previous.resize(fit(*full.size, *box), _LANCZOS, reducing_gap=reducing_gap)
        outputs[label] = previous
    outputs["dc"] = _dither(outputs["c"])

    # The smart crop: cover-resize the smallest made copy that covers it, then cut at the
    # interesting box.
    seed = smart_crop_seed([outputs[label] for label in FIT_SIZES], full)
    thumb = seed.resize(cover(*full.size, *SMART_CROP), _LANCZOS)
    crop = thumb.crop(_interesting_box(thumb, thumb, SMART_CROP))
    outputs["s"] = _crisp(crop)
    outputs["ds"] = _dither(crop)

    sizes = {}
    for label, image in outputs.items():
        target = out_dir / PATHS[label]
        target.parent.mkdir(parents=True, exist_ok=True)
        exif = full.info.get("exif") if label == "o" else None
        target.write_bytes(_encode(image, exif))
        sizes[label] = image.size
    return sizes


def main(argv: list[str]) -> None:
    """Process each image once; print the wall and CPU seconds of each and the sizes as JSON."""
    gap = FASTEST_GAP
    if argv[:1] == ["--gap"]:
        gap, argv = float(argv[1]), argv[2:]
    out_dir, images = Path(argv[0]), [Path(a) for a in argv[1:]]
    seconds, cpu, sizes = [], [], {}
    for index, image in enumerate(images):
        start, start_cpu = time.perf_counter(), time.process_time()
        sizes = process(image, out_dir / f"{index}-{image.name}", gap)
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    print(json.dumps({"seconds": seconds, "cpu": cpu, "sizes": sizes}))


if __name__ == "__main__":
    main(sys.argv[1:])
