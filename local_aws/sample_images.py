"""The demo's and the end-to-end tests' images: the committed photos plus two made at run time."""

from __future__ import annotations

import random
from pathlib import Path

import pyvips

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def sample_photos(folder: Path = SAMPLES_DIR) -> list[Path]:
    """The committed sample photographs (see samples/SOURCES.md), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)


def make_large_image(
    target: Path, width: int = 6000, height: int = 4000, source: Path | None = None
) -> Path:
    """A large JPEG: a sample photo enlarged to cover `width` x `height`, then centre-cropped."""
    image = pyvips.Image.new_from_file(str(source or SAMPLES_DIR / "coffee.jpg"))
    scale = max(width / image.width, height / image.height)
    image = image.resize(scale, kernel="lanczos3")
    image = image.crop((image.width - width) // 2, (image.height - height) // 2, width, height)
    target.parent.mkdir(parents=True, exist_ok=True)
    image.jpegsave(str(target), Q=85)
    return target


def corrupt_jpeg_bytes(source: Path | None = None, keep: int = 600, seed: int = 5) -> bytes:
    """The first `keep` bytes of a real JPEG (so it looks like one) followed by garbage."""
    head = (source or SAMPLES_DIR / "chelsea.jpg").read_bytes()[:keep]
    noise = random.Random(seed).randbytes(4096)  # noqa: S311 - deterministic garbage, not secrets
    return head + noise


def make_corrupt_jpeg(target: Path) -> Path:
    """Write `corrupt_jpeg_bytes()` to `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(corrupt_jpeg_bytes())
    return target


def make_poison_image(target: Path, side: int = 12000) -> Path:
    """A `side` x `side` RGB JPEG (a gradient, so the file stays small: about 5 MB) whose decoded
    pixels (432 MB at 12000) and working copies need more than a 512 MiB task holds."""
    ramp = (pyvips.Image.xyz(side, side)[0] % 256).cast("uchar")
    image = ramp.bandjoin([ramp, ramp]).copy(interpretation="srgb")
    target.parent.mkdir(parents=True, exist_ok=True)
    image.jpegsave(str(target), Q=80)
    return target
