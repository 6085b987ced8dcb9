"""``make bench`` headline: CPU seconds per image with every core busy, what Fargate bills.

For go-iiif's default set, these pipelines process a batch of images with every CPU of this
machine busy, as a task does:

- ours: one ``iiif-process`` run over the batch (a worker process per CPU, libvips single-threaded
  in each), on ``defaults://`` (9 derivatives plus the palette, blurhash and imagehash services),
  and the same with the services off (the reference's work);
- reference: ``bench.reference`` (a minimal pyvips pipeline) as one process per CPU, each pinned to
  its CPU (so libvips runs one thread, as in our workers), the batch split between them;
- peer: ``bench.pillow_peer`` (the fastest Pillow code we know) the same way;
- floor: ``bench.floor``, the same way: the part of the set no libvips pipeline can skip (the
  decode at 1/2, ``k`` and the smaller fit-inside sizes, their encodes), with no dither, smart
  crop, fingerprint or services. Not a target: the line under which ours cannot go.

CPU seconds are the user + system time of the whole process tree (``os.wait4``). The figure is
the cost of one more image in a long-running task, the marginal cost: each rep runs the
processes three ways, started with nothing to do (interpreter start-up, imports, ours' workers),
with one image each (the warm-up: a process's first image also grows its heap and makes what it
keeps, such as ours' lookup tables), and with the whole batch; the batch less the warm-up, over
the images between them. What a first image costs beyond that is printed beside it: a task pays
it once per process, not per image. Each way's lowest of ``reps`` (the least disturbed by other
work on the machine; CPU time is disturbed far less than wall time), the pipelines' runs
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
    "floor": "floor: decode, k b c z n, encodes only",
}
# The pipelines run as one pinned process per CPU, by module.
PEER_MODULES: dict[str, str] = {
    "reference": "bench.reference",
    "pillow": "bench.pillow_peer",
    "floor": "bench.floor",
}


@dataclass(frozen=True)
class CpuRow:
    """One pipeline on one image size: CPU seconds per image, peak memory, or why not.

    ``cpu_per_image`` is the marginal cost (one more image in a warm process); ``first_extra``
    what each process's first image costs beyond it (heap growth, lazy set-up), paid once per
    process of a task."""

    cpu_per_image: float | None
    peak_mb: float | None
    images: int = 0
    note: str = ""
    first_extra: float | None = None


@dataclass(frozen=True)
class Batches:
    """One rep of a pipeline over ``processes`` processes: the CPU seconds of its process tree
    started with nothing to do (``idle``), with one image per process (``warm``), and with the
    whole batch (``busy``)."""

    idle: float
    warm: float
    busy: float
    peak_mb: float
    processes: int


def cpu_row(reps: Sequence[Batches], count: int) -> CpuRow:
    """Marginal CPU per image from ``reps``: the least disturbed (lowest) whole batch less the
    least disturbed warm-up batch, over the images between them; and the first image's extra."""
    processes = reps[0].processes
    idle = min(rep.idle for rep in reps)
    warm = min(rep.warm for rep in reps)
    busy = min(rep.busy for rep in reps)
    marginal = (busy - warm) / (count - processes)
    first_extra = (warm - idle) / processes - marginal
    return CpuRow(marginal, max(rep.peak_mb for rep in reps), count, first_extra=first_extra)


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


def peer_batches(
    module: str, image: TestImage, count: int, out: Path, options: Sequence[str] = ()
) -> Batches:
    """One rep of a bench pipeline module (one pinned process per CPU): idle, warm and busy."""
    processes = len(os.sched_getaffinity(0))
    idle, _ = _tree(_peers(module, options, [], out / "idle"))
    warm, _ = _tree(_peers(module, options, [str(image.path)] * processes, out / "warm"))
    busy, peak = _tree(_peers(module, options, [str(image.path)] * count, out / "busy"))
    return Batches(idle, warm, busy, peak, processes)


def _tool_batch(source: Path, uris: Sequence[str], out: Path, config_dir: Path | None) -> Run:
    run, result = run_tool(source, uris, out, config_dir)
    failed = [uri for uri in uris if "error" in result.get(uri, {"error": "missing"})]
    if run.returncode != 0 or failed:
        raise RuntimeError(f"failed on {len(failed)} of {len(uris)} images")
    shutil.rmtree(out, ignore_errors=True)
    return run


def ours_batches(
    image: TestImage, count: int, out: Path, config_dir: Path | None = None
) -> Batches:
    """One rep of ``iiif-process`` (a worker per CPU): idle, warm and busy, one run each."""
    if not TOOL.exists():
        raise RuntimeError(f"{TOOL} not found")
    uris = copies(image.path, out / "source", count)
    workers = min(len(os.sched_getaffinity(0)), count)  # as many as iiif-process starts
    idle = tool_startup(out / "source", out / "idle", workers=workers)
    warm = _tool_batch(out / "source", uris[:workers], out / "warm", config_dir)
    busy = _tool_batch(out / "source", uris, out / "busy", config_dir)
    return Batches(idle.cpu_seconds, warm.cpu_seconds, busy.cpu_seconds, busy.peak_mb, workers)


def measure_cpu(
    image: TestImage, out: Path, count: int, reps: int, no_services: Path
) -> dict[str, CpuRow]:
    """Every pipeline over ``count`` images of ``image``, every CPU busy, from ``reps`` reps.

    The runs are interleaved (each rep runs every pipeline once), so a change in the machine's
    load meets every pipeline alike and the ratios stay fair; a pipeline that fails keeps its
    failure and is not run again."""
    samples: dict[str, list[Batches]] = {name: [] for name in PIPELINES}
    notes: dict[str, str] = {}
    for _ in range(reps):
        for name in PIPELINES:
            if name in notes:
                continue
            try:
                if name in PEER_MODULES:
                    batches = peer_batches(PEER_MODULES[name], image, count, out / name)
                else:
                    config = no_services if name == "ours-noservices" else None
                    batches = ours_batches(image, count, out / name, config)
            except RuntimeError as exc:
                notes[name] = str(exc)
                continue
            samples[name].append(batches)
    failed = {name: CpuRow(None, None, note=note) for name, note in notes.items()}
    return {name: failed.get(name) or cpu_row(samples[name], count) for name in PIPELINES}


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
        f"of {counts}; one more image in a warm process, least disturbed runs) = what Fargate "
        "bills; first +s: a process's first image beyond that, paid once per process:",
        f"{'pipeline':<{width}}"
        + "".join(f"{label + ' cpu s':>14}{'peak MB':>9}{'first +s':>9}" for label in labels),
    ]
    for name, text in PIPELINES.items():
        cells = "".join(
            f"{_fmt(results[label][name].cpu_per_image):>14}"
            f"{_fmt(results[label][name].peak_mb, 0):>9}"
            f"{_fmt(results[label][name].first_extra, 2):>9}"
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
        ("  floor / reference (the set's least)", "floor", "reference", None),
        ("  floor / Pillow", "floor", "pillow", None),
        ("  ours / floor", "ours", "floor", None),
    )
    for text, top, bottom, target in checks:  # the targets are set at 24 MP
        cells = ""
        for label in labels:
            ratio = _ratio(results[label][top], results[label][bottom])
            verdict = ""
            if label == TARGET_SIZE and ratio is not None and target is not None:
                verdict = "PASS" if ratio <= target else "MISS"
            cells += f"{_fmt(ratio, 2):>14}{verdict:>9}{'':>9}"
        lines.append(f"{text:<{width}}{cells}")
    return lines
