"""The reference: a minimal hand-written pyvips pipeline for go-iiif's default derivatives.

One decode of the source into memory, then every derivative from it: ``o`` re-encoded, ``k``
resized from the full image, each smaller size from the previous one, the smart crop made once
and used by both ``s`` (crisp) and ``ds`` (dither): a thumbnail (``thumbnail_image`` with
``crop="attention"``) of the smallest made copy that covers it. Plus the sha1 fingerprint of the
source bytes, as go-iiif's report has. No config, no stores, no report: the floor for this work
in pyvips.

Run as a child process by the benchmark: ``python -m bench.reference OUT_DIR IMAGE [IMAGE ...]``;
prints ``{"seconds": [per image], "cpu": [per image], "sizes": {label: [w, h]}}``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import pyvips

from bench.spec import (
    BAYER8,
    CRISP,
    FIT_SIZES,
    JPEG_QUALITY,
    PATHS,
    SMART_CROP,
    fit,
    smart_crop_seed,
)


def _dither(image: pyvips.Image) -> pyvips.Image:
    grey = image.colourspace("b-w")
    matrix = pyvips.Image.new_from_array([[(v + 0.5) * 4 for v in row] for row in BAYER8])
    threshold = matrix.replicate(-(-grey.width // 8), -(-grey.height // 8))
    threshold = threshold.crop(0, 0, grey.width, grey.height)
    return (grey > threshold).ifthenelse(255, 0).cast("uchar")


def _crisp(image: pyvips.Image) -> pyvips.Image:
    radius, amount, limit = CRISP
    diff = image.cast("float") - image.gaussblur(radius)
    return (diff.abs() > limit * 255).ifthenelse(image + diff * amount, image).cast("uchar")


def process(source: Path, out_dir: Path) -> dict[str, tuple[int, int]]:
    """Make every default derivative of ``source`` under ``out_dir``; return label -> size."""
    data = source.read_bytes()
    hashlib.sha1(data).hexdigest()  # go-iiif's origin_fingerprint
    full = pyvips.Image.new_from_buffer(data, "", access="sequential").copy_memory()
    outputs: dict[str, pyvips.Image] = {"o": full}

    previous = full
    for label, box in FIT_SIZES.items():
        width, height = fit(full.width, full.height, *box)
        scaled = previous.resize(width / previous.width, vscale=height / previous.height)
        previous = outputs[label] = scaled.copy_memory()
    outputs["dc"] = _dither(outputs["c"])

    # The smart crop: a thumbnail of the most interesting part, from the smallest made copy
    # that still covers it.
    seed = smart_crop_seed([outputs[label] for label in FIT_SIZES], full)
    crop = seed.thumbnail_image(
        SMART_CROP[0], height=SMART_CROP[1], crop="attention", size="down"
    ).copy_memory()
    outputs["s"] = _crisp(crop)
    outputs["ds"] = _dither(crop)

    sizes = {}
    for label, image in outputs.items():
        target = out_dir / PATHS[label]
        target.parent.mkdir(parents=True, exist_ok=True)
        keep = "exif" if label == "o" else "none"
        target.write_bytes(image.jpegsave_buffer(Q=JPEG_QUALITY, keep=keep))
        sizes[label] = (image.width, image.height)
    return sizes


def main(argv: list[str]) -> None:
    """Process each image once; print the wall and CPU seconds of each and the sizes as JSON."""
    out_dir, images = Path(argv[0]), [Path(a) for a in argv[1:]]
    seconds, cpu, sizes = [], [], {}
    for index, image in enumerate(images):
        start, start_cpu = time.perf_counter(), time.process_time()
        sizes = process(image, out_dir / f"{index}-{image.name}")
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    print(json.dumps({"seconds": seconds, "cpu": cpu, "sizes": sizes}))


if __name__ == "__main__":
    main(sys.argv[1:])
