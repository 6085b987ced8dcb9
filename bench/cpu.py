"""``make bench`` headline: CPU seconds per image with every core busy, what Fargate bills.

For go-iiif's default set, three pipelines process a batch of images with every CPU of this
machine busy, as a task does:

- ours: one ``iiif-process`` run over the batch (a worker process per CPU, libvips single-threaded
  in each), on ``defaults://`` (9 derivatives plus the palette, blurhash and imagehash services),
  and the same with the services off (the reference's work);
- reference: ``bench.reference`` (a minimal pyvips pipeline) as one process per CPU, each pinned to
  its CPU (so libvips runs one thread, as in our workers), the batch split between them;
- peer: ``bench.pillow_peer`` (the fastest Pillow code we know) the same way.

CPU seconds are the user + system time of the whole process tree (``os.wait4``), less that of the
same processes started with nothing to do (interpreter start-up, imports, ours' workers): the cost
of one more image in a long-running task. Best of ``reps`` batches (the least disturbed by other
work on the machine; CPU time is disturbed far less than wall time), the pipelines' batches
interleaved so that a change of load meets them alike. Peak memory is the largest resident set
of any one process of the batch.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.images import TestImage
from bench.measure import Run, run_children
from bench.tool import PYTHON, TOOL, copies, run_tool, tool_startup

# At 24 MP: ours' CPU seconds per image at most these fractions of the reference's and Pillow's.
RATIO_REFERENCE = 0.5
RATIO_PILLOW = 0.4
TARGET_SIZE = "24mp"

PIPELINES: dict[str, str] = {
    "ours": "ours: iiif-process defaults:// (+services)",
    "ours-noservices": "ours: iiif-process, services off",
    "reference": "reference: minimal pyvips, 1 process/CPU",
    "pillow": "peer: Pillow (fastest), 1 process/CPU",
}


@dataclass(frozen=True)
class CpuRow:
    """One pipeline on one image size: CPU seconds per image, peak memory, or why not."""

    cpu_per_image: float | None
    peak_mb: float | None
    images: int = 0
    note: str = ""


def _split(items: Sequence[str], parts: int) -> list[list[str]]:
    return [list(items[index::parts]) for index in range(parts)]


def _peers(module: str, options: Sequence[str], paths: Sequence[str], out: Path) -> list[Run]:
    """The batch split over one pinned process per CPU (an empty batch: start-up only)."""
    cpus = sorted(os.sched_getaffinity(0))
    jobs = []
    for index, (cpu, share) in enumerate(zip(cpus, _split(paths, len(cpus)), strict=True)):
        target = out / f"{index}"
        shutil.rmtree(target, ignore_errors=True)
        jobs.append(([PYTHON, "-m", module, *options, str(target), *share], [cpu]))
    runs = run_children(jobs)
    failed = [run.returncode for run in runs if run.returncode != 0]
    if failed:
        raise RuntimeError(f"{module} failed (exit {failed[0]})")
    if paths and not all(json.loads(run.stdout)["seconds"] for run in runs if run.stdout):
        raise RuntimeError(f"{module} processed nothing")
    return runs


def _tree(runs: Sequence[Run]) -> tuple[float, float]:
    return sum(run.cpu_seconds for run in runs), max(run.peak_mb for run in runs)


def measure_peer(
    module: str, image: TestImage, count: int, out: Path, reps: int, options: Sequence[str] = ()
) -> CpuRow:
    """CPU seconds per image of a bench pipeline module over ``count`` images, every CPU busy."""
    paths = [str(image.path)] * count
    best, peak = float("inf"), 0.0
    for _ in range(reps):
        idle, _ = _tree(_peers(module, options, [], out / "idle"))
        busy, busy_peak = _tree(_peers(module, options, paths, out / "busy"))
        best = min(best, (busy - idle) / count)
        peak = max(peak, busy_peak)
    return CpuRow(best, peak, count)


def measure_ours(
    image: TestImage, count: int, out: Path, reps: int, config_dir: Path | None = None
) -> CpuRow:
    """CPU seconds per image of one ``iiif-process`` run over ``count`` copies of ``image``."""
    if not TOOL.exists():
        return CpuRow(None, None, note=f"{TOOL} not found")
    source = out / "source"
    uris = copies(image.path, source, count)
    workers = min(len(os.sched_getaffinity(0)), count)
    best, peak = float("inf"), 0.0
    for _ in range(reps):
        idle = tool_startup(source, out / "idle", workers=workers)
        run, result = run_tool(source, uris, out / "busy", config_dir)
        failed = [uri for uri in uris if "error" in result.get(uri, {"error": "missing"})]
        if run.returncode != 0 or failed:
            return CpuRow(None, None, note=f"failed on {len(failed)} of {count} images")
        best = min(best, (run.cpu_seconds - idle.cpu_seconds) / count)
        peak = max(peak, run.peak_mb)
    shutil.rmtree(out / "busy", ignore_errors=True)
    return CpuRow(best, peak, count)


def _better(best: CpuRow | None, row: CpuRow) -> CpuRow:
    """The lower CPU per image of two runs of one pipeline, with the higher peak memory."""
    if best is None:
        return row
    low = min(best.cpu_per_image or 0.0, row.cpu_per_image or 0.0)
    peak = max(best.peak_mb or 0.0, row.peak_mb or 0.0)
    return CpuRow(low, peak, row.images)


def measure_cpu(
    image: TestImage, out: Path, count: int, reps: int, no_services: Path
) -> dict[str, CpuRow]:
    """Every pipeline over ``count`` images of ``image``, every CPU busy, best of ``reps``.

    The runs are interleaved (each rep runs every pipeline once), so a change in the machine's
    load meets every pipeline alike and the ratios stay fair; a pipeline that fails keeps its
    failure and is not run again."""
    rows: dict[str, CpuRow] = {}
    for _ in range(reps):
        for name in PIPELINES:
            if name in rows and rows[name].cpu_per_image is None:
                continue
            try:
                if name == "ours":
                    row = measure_ours(image, count, out / name, 1)
                elif name == "ours-noservices":
                    row = measure_ours(image, count, out / name, 1, no_services)
                elif name == "reference":
                    row = measure_peer("bench.reference", image, count, out / name, 1)
                else:
                    row = measure_peer("bench.pillow_peer", image, count, out / name, 1)
            except RuntimeError as exc:
                row = CpuRow(None, None, note=str(exc))
            rows[name] = row if row.cpu_per_image is None else _better(rows.get(name), row)
    return rows


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ratio(top: CpuRow, bottom: CpuRow) -> float | None:
    if top.cpu_per_image is None or not bottom.cpu_per_image:
        return None
    return top.cpu_per_image / bottom.cpu_per_image


def render_cpu(results: dict[str, dict[str, CpuRow]], images: Sequence[TestImage]) -> list[str]:
    """The headline table: CPU s/image and peak MB per pipeline and size, then the ratios."""
    labels = [image.label for image in images]
    width = 44
    counts = ", ".join(
        f"{next(iter(results[label].values())).images} at {label}" for label in labels
    )
    lines = [
        f"CPU seconds per image, every core busy ({len(os.sched_getaffinity(0))} CPUs; batches "
        f"of {counts}; start-up subtracted; best of runs) = what Fargate bills:",
        f"{'pipeline':<{width}}"
        + "".join(f"{label + ' cpu s':>14}{'peak MB':>9}" for label in labels),
    ]
    for name, text in PIPELINES.items():
        cells = "".join(
            f"{_fmt(results[label][name].cpu_per_image):>14}"
            f"{_fmt(results[label][name].peak_mb, 0):>9}"
            for label in labels
        )
        notes = sorted({results[label][name].note for label in labels} - {""})
        lines.append(f"{text:<{width}}{cells}" + (f"  ({'; '.join(notes)})" if notes else ""))
    lines.append(f"ratio of CPU seconds per image (targets at {TARGET_SIZE}):")
    checks = (
        (f"ours / reference (target <= {RATIO_REFERENCE})", "ours", "reference", RATIO_REFERENCE),
        ("  services off / reference", "ours-noservices", "reference", RATIO_REFERENCE),
        (f"ours / Pillow (target <= {RATIO_PILLOW})", "ours", "pillow", RATIO_PILLOW),
        ("  services off / Pillow", "ours-noservices", "pillow", RATIO_PILLOW),
    )
    for text, top, bottom, target in checks:
        cells = ""
        for label in labels:
            ratio = _ratio(results[label][top], results[label][bottom])
            verdict = ""
            if label == TARGET_SIZE and ratio is not None:  # the targets are set at 24 MP
                verdict = "PASS" if ratio <= target else "MISS"
            cells += f"{_fmt(ratio, 2):>14}{verdict:>9}"
        lines.append(f"{text:<{width}}{cells}")
    return lines
