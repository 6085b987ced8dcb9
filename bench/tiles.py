"""``make bench``, tiles: the IIIF Level 0 pyramid (512-pixel tiles) of the 24 MP and 100 MP images.

Beside ours (``iiif-tile-seed``'s own ``run()``, Image API 2 and 3, to ``file://`` as dzsave
writes to disk, and for scale to ``mem://``, which leaves out the store's per-object cost), the
reference is libvips' own ``dzsave`` with ``layout="iiif"`` / ``"iiif3"`` (tiles and info.json;
ours also writes the sizes and the full-size image Level 0 requires), and the Python peer is PyPI
``iiif``'s static generator (``iiif.static.IIIFStatic``, Pillow, Image API 2.1).

Each figure comes from a fresh child process (``python -m bench.tiles one PIPELINE IMAGE OUT``)
that times its own work (wall seconds, and CPU seconds of all its threads from ``getrusage``),
so interpreter start-up and imports are left out alike for every pipeline; objects and bytes are
counted on disk afterwards. Best of ``reps`` runs (the peer: one run, it is slow). Targets: ours'
CPU time within 1.3x the reference's; the peer at least 10x slower than ours (wall).

Usage alone: ``python -m bench.tiles [--reps N] [--sizes 24mp,100mp] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.images import TestImage, ensure_images

PYTHON = sys.executable
TILE = 512
RATIO_OURS_REFERENCE = 1.3  # ours' CPU seconds / the reference's, at most
RATIO_PEER_OURS = 10.0  # the peer's seconds / ours, at least
PEER_TIMEOUT = 900.0  # seconds; a slower peer is reported as "over" (its ratio then a lower bound)

# name -> (label, what it is compared with)
PIPELINES: dict[str, str] = {
    "dzsave-iiif": "reference: libvips dzsave layout=iiif",
    "dzsave-iiif3": "reference: libvips dzsave layout=iiif3",
    "ours-v2": "ours: iiif-tile-seed API 2 -> file://",
    "ours-v3": "ours: iiif-tile-seed API 3 -> file://",
    "ours-v3-mem": "  same, API 3 -> mem:// (no store cost)",
    "peer": "peer: PyPI iiif static (Pillow), API 2.1",
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _count(directory: Path) -> tuple[int, int]:
    files = [p for p in directory.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _work(pipeline: str, image: Path, out: Path) -> dict[str, Any]:
    """One pipeline on one image, in this process; returns what it did and what it cost."""
    objects = total = None
    if pipeline.startswith("dzsave"):
        import pyvips

        layout = "iiif3" if pipeline.endswith("3") else "iiif"
        wall, cpu = time.perf_counter(), _cpu()
        source = pyvips.Image.new_from_file(str(image), access="sequential")
        source.dzsave(str(out / "image"), layout=layout, tile_size=TILE)
    elif pipeline.startswith("ours"):
        from iiif_process.tile_seed_cli import run

        version = "3" if "v3" in pipeline else "2"
        cache = "mem://bench" if pipeline.endswith("mem") else out.resolve().as_uri()
        argv = [
            "-config-images-source-uri",
            image.parent.resolve().as_uri(),
            "-config-derivatives-cache-uri",
            cache,
            "-api-version",
            version,
            "-tile-size",
            str(TILE),
            f"{image.name},image",
        ]
        wall, cpu = time.perf_counter(), _cpu()
        status, result = run(argv, {})
        if status != 0:
            raise RuntimeError(f"iiif-tile-seed failed: {result}")
        objects, total = result[image.name]["objects"], result[image.name]["bytes"]
    elif pipeline == "peer":
        import logging

        from iiif.static import IIIFStatic

        logging.getLogger("iiif").setLevel(logging.WARNING)
        wall, cpu = time.perf_counter(), _cpu()
        IIIFStatic(
            dst=str(out), tilesize=TILE, api_version="2.1", prefix="http://localhost"
        ).generate(str(image), identifier="image")
    else:
        raise ValueError(f"unknown pipeline {pipeline!r}")
    seconds, cpu_seconds = time.perf_counter() - wall, _cpu() - cpu
    if objects is None:
        objects, total = _count(out)
    return {"seconds": seconds, "cpu": cpu_seconds, "objects": objects, "bytes": total}


@dataclass(frozen=True)
class Figure:
    """The best run of one pipeline on one image (None: not measured, with a note)."""

    seconds: float | None
    cpu_seconds: float | None
    objects: int | None = None
    bytes: int | None = None
    note: str = ""


def _child(pipeline: str, image: TestImage, out: Path, timeout: float) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    done = subprocess.run(
        [PYTHON, "-m", "bench.tiles", "one", pipeline, str(image.path), str(out)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
    return json.loads(done.stdout)


def measure(image: TestImage, out: Path, reps: int) -> dict[str, Figure]:
    """Every pipeline on one image, interleaved run by run so drift hits all alike."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in PIPELINES}
    notes: dict[str, str] = {}
    for rep in range(reps):
        for name in PIPELINES:
            if name == "peer" and rep > 0:
                continue
            try:
                timeout = PEER_TIMEOUT if name == "peer" else 600.0
                runs[name].append(_child(name, image, out / name, timeout))
            except subprocess.TimeoutExpired:
                notes[name] = f"over {PEER_TIMEOUT:.0f} s"
            except (RuntimeError, json.JSONDecodeError) as exc:
                notes[name] = f"failed: {exc}"
    figures = {}
    for name, found in runs.items():
        if not found:
            seconds = PEER_TIMEOUT if notes.get(name, "").startswith("over") else None
            figures[name] = Figure(seconds, None, note=notes.get(name, "no data"))
            continue
        best = min(found, key=lambda r: r["cpu"])
        figures[name] = Figure(
            min(r["seconds"] for r in found),
            best["cpu"],
            best["objects"],
            best["bytes"],
            notes.get(name, ""),
        )
    shutil.rmtree(out, ignore_errors=True)
    return figures


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("PASS" if ok else "MISS")


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def render(results: dict[str, dict[str, Figure]], images: Sequence[TestImage], reps: int) -> str:
    """The tile section of the report."""
    labels = [i.label for i in images]
    name_width = 44
    lines = [
        f"tile pyramid, {TILE}-pixel tiles: best of {reps} runs (the peer: 1), each in a fresh "
        "process timing its own work; cpu s = user+sys of all its threads",
        f"{'':<{name_width}}" + "".join(f"{'--- ' + label + ' ---':^36}" for label in labels),
        f"{'pipeline':<{name_width}}"
        + "".join(f"{'s':>9}{'cpu s':>9}{'objects':>9}{'MB':>9}" for _ in labels),
    ]
    lines.append("-" * len(lines[-1]))
    for name, text in PIPELINES.items():
        cells = ""
        notes = []
        for label in labels:
            fig = results[label][name]
            megabytes = None if fig.bytes is None else fig.bytes / 1e6
            objects = "-" if fig.objects is None else str(fig.objects)
            cells += f"{_fmt(fig.seconds):>9}{_fmt(fig.cpu_seconds):>9}{objects:>9}"
            cells += f"{_fmt(megabytes, 1):>9}"
            if fig.note:
                notes.append(f"{label}: {fig.note}")
        lines.append(f"{text:<{name_width}}{cells}" + (f"  ({'; '.join(notes)})" if notes else ""))
    checks = [
        (f"ours/reference cpu, API 3 <= {RATIO_OURS_REFERENCE}", "ours-v3", "dzsave-iiif3", "cpu"),
        (f"ours/reference cpu, API 2 <= {RATIO_OURS_REFERENCE}", "ours-v2", "dzsave-iiif", "cpu"),
        ("  for scale: ours (mem://)/reference cpu", "ours-v3-mem", "dzsave-iiif3", "cpu"),
        (f"peer/ours seconds, API 2 >= {RATIO_PEER_OURS:g}", "peer", "ours-v2", "wall"),
    ]
    lines += [
        "",
        f"{'ratio (target)':<{name_width}}" + "".join(f"{'':>18}{'':>18}" for _ in labels),
    ]
    for text, top, bottom, kind in checks:
        cells = ""
        for label in labels:
            a, b = results[label][top], results[label][bottom]
            if kind == "cpu":
                value = _ratio(a.cpu_seconds, b.cpu_seconds)
                ok = None if value is None or "scale" in text else value <= RATIO_OURS_REFERENCE
            else:
                value = _ratio(a.seconds, b.seconds)
                ok = None if value is None else value >= RATIO_PEER_OURS
            cells += f"{_fmt(value, 2):>18}{_verdict(ok):>18}"
        lines.append(f"{text:<{name_width}}{cells}")
    lines.append(
        "(ours writes what dzsave writes plus the full-size image and the sizes Level 0 needs; "
        "an upright sRGB JPEG's full-size image is its own data, metadata removed, not re-encoded)"
    )
    return "\n".join(lines)


def report(images: Sequence[TestImage], out: Path, reps: int) -> str:
    """Measure every pipeline on ``images`` and return the section's text."""
    results = {}
    for image in images:
        print(f"measuring the tile pyramid of {image.label} ...", file=sys.stderr, flush=True)
        results[image.label] = measure(image, out / image.label, reps)
    return render(results, images, reps)


def main(argv: Sequence[str] | None = None) -> int:
    """``one PIPELINE IMAGE OUT`` (a child's single run), or the whole section."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["one"]:
        _, pipeline, image, out = argv
        print(json.dumps(_work(pipeline, Path(image), Path(out))))
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m bench.tiles", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--reps", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument("--sizes", default="24mp,100mp", help="24mp, 100mp (default both)")
    parser.add_argument("--out", type=Path, default=Path("bench-output"), help="work directory")
    args = parser.parse_args(argv)
    wanted = {s.strip() for s in args.sizes.split(",") if s.strip()}
    images = ensure_images(args.out / "images", wanted)
    print(report(images, args.out / "runs" / "tiles", max(1, args.reps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
