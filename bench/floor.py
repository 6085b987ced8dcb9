"""The floor: the part of go-iiif's default set no pipeline on libvips can skip, at its cheapest.

``o`` as the source's own bytes (ours publishes them; no decode, no encode), one sequential
decode at the largest shrink-on-load that still leaves ``k`` its pixels (1/2 at 24 MP, 1/4 at
100 MP: what ``iiif-process`` decodes), ``k`` resized from it in the same pass and each smaller
fit-inside size (``b c z n``) from the previous one (lanczos3), every one encoded at Q75. Nothing
else: no dither (``dc``, ``ds``), no smart crop or crisp (``s``), no fingerprint, services, report
or checks of the source. ``make bench`` prints it beside the targets: whatever the rest of the set
costs comes on top of this.

Run as a child process by the benchmark: ``python -m bench.floor OUT_DIR IMAGE [IMAGE ...]``;
prints ``{"seconds": [per image], "sizes": {label: [w, h]}}``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pyvips

from bench.spec import FIT_SIZES, JPEG_QUALITY, PATHS, fit

SHRINKS = (8, 4, 2)  # libjpeg's shrink-on-load factors that libvips offers, largest first


def decode_shrink(width: int, height: int, need: tuple[int, int]) -> int:
    """The largest shrink-on-load that leaves a ``width`` x ``height`` image at least ``need``."""
    for shrink in SHRINKS:
        if width // shrink >= need[0] and height // shrink >= need[1]:
            return shrink
    return 1


def process(source: Path, out_dir: Path) -> dict[str, tuple[int, int]]:
    """Write ``o`` and the fit-inside derivatives of ``source`` under ``out_dir``; their sizes."""
    data = source.read_bytes()
    header = pyvips.Image.new_from_buffer(data, "")
    full = (header.width, header.height)
    outputs: dict[str, bytes] = {"o": data}
    sizes = {"o": full}
    previous: pyvips.Image | None = None
    for label, box in FIT_SIZES.items():
        width, height = fit(*full, *box)
        if previous is None:
            shrink = decode_shrink(*full, (width, height))
            previous = pyvips.Image.new_from_buffer(data, "", access="sequential", shrink=shrink)
        scaled = previous.resize(width / previous.width, vscale=height / previous.height)
        previous = scaled.copy_memory()
        outputs[label] = previous.jpegsave_buffer(Q=JPEG_QUALITY, keep="none")
        sizes[label] = (previous.width, previous.height)
    for label, body in outputs.items():
        target = out_dir / PATHS[label]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
    return sizes


def main(argv: list[str]) -> None:
    """Process each image once; print the wall seconds of each and the sizes as JSON."""
    out_dir, images = Path(argv[0]), [Path(a) for a in argv[1:]]
    seconds, sizes = [], {}
    for index, image in enumerate(images):
        start = time.perf_counter()
        sizes = process(image, out_dir / f"{index}-{image.name}")
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"seconds": seconds, "sizes": sizes}))


if __name__ == "__main__":
    main(sys.argv[1:])
