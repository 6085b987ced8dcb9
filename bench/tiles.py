"""``make bench``, tiles: the IIIF Level 0 pyramid (512-pixel tiles) of the 24 MP and 100 MP images.

Beside ours (``iiif-tile-seed``'s own ``run()``, Image API 2 and 3, to ``file://`` as dzsave
writes to disk, and for scale to ``mem://``, which leaves out the store's per-object cost), the
reference is libvips' own ``dzsave`` with ``layout="iiif"`` / ``"iiif3"``, and the Python peer is
PyPI ``iiif``'s static generator (``iiif.static.IIIFStatic``, Pillow, Image API 2.1).

Like with like: ``dzsave`` writes the tiles, the one-tile size and ``info.json``, but not the
full-size image Level 0 requires (``full/full/0/default.jpg``, ``full/max/0/default.jpg``), which
ours writes, for an upright sRGB JPEG as the source's own data (metadata removed, not
re-encoded): at 100 MP that is 20 MB more to read and write. So the reference is measured twice:
``dzsave`` alone (the issue's literal reference) and ``dzsave`` plus the source file copied to the
full-size image's path (``shutil.copyfile``, in-kernel, metadata kept: no cheaper way to write it).
The target is judged against the latter; the ratio against ``dzsave`` alone is printed beside.

Each figure comes from a fresh child process (``python -m bench.tiles one PIPELINE IMAGE OUT``)
that times its own work (wall seconds, CPU seconds of all its threads from ``getrusage``, and of
those the kernel's), so interpreter start-up and imports are left out alike for every pipeline;
objects and bytes are counted on disk afterwards. Best of ``reps`` runs, interleaved (the peer:
one run, it is slow). Writing hundreds of small files is kernel CPU that another process's file
churn on the same file system inflates (ext4 searches for inodes not recently freed), for every
pipeline alike; the kernel seconds are printed so that is seen. Targets: ours' CPU time within
1.3x the reference's; the peer at least 10x slower than ours (wall).

Usage alone: ``python -m bench.tiles [--reps N] [--sizes 24mp,100mp] [--no-peer] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
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

# name -> label
PIPELINES: dict[str, str] = {
    "dzsave-iiif": "reference: libvips dzsave layout=iiif",
    "dzsave-iiif-full": "  + full-size image (source copied)",
    "dzsave-iiif3": "reference: libvips dzsave layout=iiif3",
    "dzsave-iiif3-full": "  + full-size image (source copied)",
    "ours-v2": "ours: iiif-tile-seed API 2 -> file://",
    "ours-v3": "ours: iiif-tile-seed API 3 -> file://",
    "ours-v3-mem": "  same, API 3 -> mem:// (no store cost)",
    "peer": "peer: PyPI iiif static (Pillow), API 2.1",
}
# The full-size image's path under the image's directory, by layout (Image API 2, 3).
FULL_IMAGE = {"iiif": "full/full/0/default.jpg", "iiif3": "full/max/0/default.jpg"}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _sys() -> float:
    """Kernel CPU seconds so far (mostly writing files: what a disk under load makes dear)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def _count(directory: Path) -> tuple[int, int]:
    files = [p for p in directory.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _work(pipeline: str, image: Path, out: Path) -> dict[str, Any]:
    """One pipeline on one image, in this process; returns what it did and what it cost."""
    objects = total = None
    if pipeline.startswith("dzsave"):
        import pyvips

        layout = "iiif3" if "iiif3" in pipeline else "iiif"
        wall, cpu, kernel = time.perf_counter(), _cpu(), _sys()
        source = pyvips.Image.new_from_file(str(image), access="sequential")
        source.dzsave(str(out / "image"), layout=layout, tile_size=TILE)
        if pipeline.endswith("-full"):
            full = out / "image" / FULL_IMAGE[layout]
            full.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image, full)
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
        wall, cpu, kernel = time.perf_counter(), _cpu(), _sys()
        status, result = run(argv, {})
        if status != 0:
            raise RuntimeError(f"iiif-tile-seed failed: {result}")
        objects, total = result[image.name]["objects"], result[image.name]["bytes"]
    elif pipeline == "peer":
        import logging

        from iiif.static import IIIFStatic

        logging.getLogger("iiif").setLevel(logging.WARNING)
        wall, cpu, kernel = time.perf_counter(), _cpu(), _sys()
        IIIFStatic(
            dst=str(out), tilesize=TILE, api_version="2.1", prefix="http://localhost"
        ).generate(str(image), identifier="image")
    else:
        raise ValueError(f"unknown pipeline {pipeline!r}")
    seconds, cpu_seconds = time.perf_counter() - wall, _cpu() - cpu
    kernel_seconds = _sys() - kernel
    if objects is None:
        objects, total = _count(out)
    return {
        "seconds": seconds,
        "cpu": cpu_seconds,
        "sys": kernel_seconds,
        "objects": objects,
        "bytes": total,
    }


@dataclass(frozen=True)
class Figure:
    """The best run of one pipeline on one image (None: not measured, with a note)."""

    seconds: float | None
    cpu_seconds: float | None
    objects: int | None = None
    bytes: int | None = None
    note: str = ""
    sys_seconds: float | None = None  # of cpu_seconds, the kernel's (in the same best run)


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


def measure(image: TestImage, out: Path, reps: int, peer: bool = True) -> dict[str, Figure]:
    """Every pipeline on one image, interleaved run by run so drift hits all alike (the peer,
    once, only when ``peer``)."""
    names = [name for name in PIPELINES if peer or name != "peer"]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    notes: dict[str, str] = {} if peer else {"peer": "not run (--no-peer)"}
    for rep in range(reps):
        for name in names:
            if name == "peer" and rep > 0:
                continue
            try:
                timeout = PEER_TIMEOUT if name == "peer" else 600.0
                # A directory per run, all removed at the end: ext4 skips inodes freed in the
                # last minute or so, searching on, so a run after a removal would pay for it.
                runs[name].append(_child(name, image, out / f"{name}-{rep}", timeout))
            except subprocess.TimeoutExpired:
                notes[name] = f"over {PEER_TIMEOUT:.0f} s"
            except (RuntimeError, json.JSONDecodeError) as exc:
                notes[name] = f"failed: {exc}"
    figures = {}
    for name in PIPELINES:
        found = runs.get(name, [])
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
            best.get("sys"),
        )
    shutil.rmtree(out, ignore_errors=True)
    return figures


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("PASS" if ok else "MISS")


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min) on {os.cpu_count()} CPUs"


# (text, ours, reference, kind, judged): the target is judged like with like only.
CHECKS = (
    (
        f"ours/reference cpu, API 3 <= {RATIO_OURS_REFERENCE}",
        "ours-v3",
        "dzsave-iiif3-full",
        "cpu",
        True,
    ),
    (
        f"ours/reference cpu, API 2 <= {RATIO_OURS_REFERENCE}",
        "ours-v2",
        "dzsave-iiif-full",
        "cpu",
        True,
    ),
    ("  against dzsave alone (no full image), API 3", "ours-v3", "dzsave-iiif3", "cpu", False),
    ("  against dzsave alone (no full image), API 2", "ours-v2", "dzsave-iiif", "cpu", False),
    ("  for scale: ours (mem://)/dzsave alone, API 3", "ours-v3-mem", "dzsave-iiif3", "cpu", False),
    (f"peer/ours seconds, API 2 >= {RATIO_PEER_OURS:g}", "peer", "ours-v2", "wall", True),
)


def render(
    results: dict[str, dict[str, Figure]],
    images: Sequence[TestImage],
    reps: int,
    loads: tuple[str, str] | None = None,
) -> str:
    """The tile section of the report (``loads``: the load average before and after)."""
    labels = [i.label for i in images]
    name_width = 46
    lines = [
        f"tile pyramid, {TILE}-pixel tiles: best of {reps} runs, interleaved (the peer: 1), each "
        "in a fresh process timing its own work; cpu s = user+sys of all its threads, sys s = "
        "the kernel's part of it",
        f"{'':<{name_width}}" + "".join(f"{'--- ' + label + ' ---':^45}" for label in labels),
        f"{'pipeline':<{name_width}}"
        + "".join(f"{'s':>9}{'cpu s':>9}{'sys s':>9}{'objects':>9}{'MB':>9}" for _ in labels),
    ]
    lines.append("-" * len(lines[-1]))
    for name, text in PIPELINES.items():
        cells = ""
        notes = []
        for label in labels:
            fig = results[label][name]
            megabytes = None if fig.bytes is None else fig.bytes / 1e6
            objects = "-" if fig.objects is None else str(fig.objects)
            cells += f"{_fmt(fig.seconds):>9}{_fmt(fig.cpu_seconds):>9}{_fmt(fig.sys_seconds):>9}"
            cells += f"{objects:>9}{_fmt(megabytes, 1):>9}"
            if fig.note:
                notes.append(f"{label}: {fig.note}")
        lines.append(f"{text:<{name_width}}{cells}" + (f"  ({'; '.join(notes)})" if notes else ""))
    lines += ["", f"{'ratio (target)':<{name_width}}"]
    for text, top, bottom, kind, judged in CHECKS:
        cells = ""
        for label in labels:
            a, b = results[label][top], results[label][bottom]
            if kind == "cpu":
                value = _ratio(a.cpu_seconds, b.cpu_seconds)
                ok = None if value is None or not judged else value <= RATIO_OURS_REFERENCE
            else:
                value = _ratio(a.seconds, b.seconds)
                ok = None if value is None or not judged else value >= RATIO_PEER_OURS
            cells += f"{_fmt(value, 2):>23}{_verdict(ok):>22}"
        lines.append(f"{text:<{name_width}}{cells}")
    lines.append(
        "(like with like: dzsave writes no full-size image, which Level 0 requires and ours "
        "writes; the reference is judged with the source file copied to its path, the cheapest "
        "way to write it. Ours' full-size image of an upright sRGB JPEG is its own data, "
        "metadata removed, not re-encoded)"
    )
    if loads is not None:
        lines.append(f"load average before: {loads[0]}; after: {loads[1]}")
    return "\n".join(lines)


def report(images: Sequence[TestImage], out: Path, reps: int, peer: bool = True) -> str:
    """Measure every pipeline on ``images`` and return the section's text."""
    results = {}
    before = _load()
    for image in images:
        print(f"measuring the tile pyramid of {image.label} ...", file=sys.stderr, flush=True)
        results[image.label] = measure(image, out / image.label, reps, peer)
    return render(results, images, reps, (before, _load()))


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
    parser.add_argument(
        "--no-peer",
        action="store_true",
        help="leave out PyPI iiif (it takes minutes at 100 MP); its ratio is then not measured",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-output"), help="work directory")
    args = parser.parse_args(argv)
    wanted = {s.strip() for s in args.sizes.split(",") if s.strip()}
    images = ensure_images(args.out / "images", wanted)
    print(report(images, args.out / "runs" / "tiles", max(1, args.reps), not args.no_peer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
