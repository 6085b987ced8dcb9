"""``make bench``: iiif-process beside a minimal pyvips pipeline (reference) and Pillow (peer).

Builds its test images (24 MP and 100 MP photographic JPEGs) in ``bench-output/images``, then
measures, each figure from fresh child processes (sections, ``--only``):

- cpu (the headline, :mod:`bench.cpu`): CPU seconds per image with every core busy, what Fargate
  bills, for go-iiif's default set (9 derivatives plus the palette, blurhash and imagehash
  services): ours, the reference and Pillow; targets at 24 MP: ours at most 0.5x the reference's
  and 0.4x Pillow's; the 100 MP figures and peak memory beside them;
- latency: one image at a time (wall and CPU seconds, peak memory) and whether every pipeline
  makes the same derivatives (labels and pixel sizes);
- scaling: throughput of ``iiif-process`` over 12 (or more) 24 MP images pinned to 1 CPU and to all
  N CPUs, beside the reference run as N pinned processes (what the machine allows), with the
  machine's load average before and after (other work on the machine disturbs it);
- master (:mod:`bench.master`): the 20000 x 20000 uncompressed TIFF in a 2 GiB task;
- tiles (:mod:`bench.tiles`): the IIIF tile pyramid beside dzsave and PyPI iiif;
- backfill, publish: keys per second of ``-mode backfill``; publishing one image to S3.

Targets are printed with PASS/MISS; the exit status is 0 whatever the figures (a benchmark, not a
test).

Usage: ``python -m bench.run [--reps N] [--throughput-images K] [--out DIR]
[--sizes 24mp,100mp,master,backfill,publish] [--only cpu,latency,scaling,master,tiles,...]``;
the headline alone, at 24 MP: ``python -m bench.run --only cpu --sizes 24mp`` (about a minute
on 2 CPUs, the machine's load average printed before and after it).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import PIL
import pyvips

from bench.cpu import CpuRow, measure_cpu, render_cpu
from bench.images import TestImage, ensure_images
from bench.master import ensure_master, measure_master, render_master
from bench.measure import Run, run_child, run_children, summarize
from bench.tiles import report as tiles_report
from bench.tool import PYTHON, TOOL, copies
from bench.tool import run_tool as _tool
from bench.tool import tool_startup as _tool_startup

PEAK_MB_100MP = 1024.0  # peak memory at 100 MP, below
SCALING_PER_CORE = 0.95  # throughput gained per added core (fraction of one core's), at least
SECTIONS = ("cpu", "latency", "scaling", "master", "tiles", "backfill", "publish")


@dataclass(frozen=True)
class Row:
    """One pipeline at one image size: best wall and CPU seconds per image, peak memory."""

    seconds: float | None
    cpu_seconds: float | None
    peak_mb: float | None
    sizes: dict[str, tuple[int, int]] | None = None
    note: str = ""


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--reps", type=int, default=5, help="runs per figure, best taken (default 5)"
    )
    parser.add_argument(
        "--throughput-images",
        type=int,
        default=0,
        help="24 MP images per throughput run (default: 6 per CPU, at least 12)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-output"), help="work directory")
    parser.add_argument(
        "--sizes",
        default="24mp,100mp,master,backfill,publish",
        help="what to run: 24mp, 100mp, master (the 20000x20000 TIFF), backfill (keys per "
        "second of -mode backfill against the embedded AWS), publish (one 24 MP image's "
        "derivatives, tiles and manifest to the embedded S3, pooled vs serial); default all",
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"sections to run, comma-separated, of {', '.join(SECTIONS)}; default all (the "
        "sizes still come from --sizes)",
    )
    parser.add_argument(
        "--cpu-images",
        type=int,
        default=0,
        help="images per batch of the CPU headline (default: 6 per CPU at 24 MP, at least 12; "
        "2 per CPU at 100 MP; at least 2 per CPU: the figure is what follows each process's "
        "first image)",
    )
    return parser.parse_args(argv)


# --- the three pipelines --------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One measured run: wall and CPU seconds of the work, the run, and the output sizes."""

    seconds: float
    cpu_seconds: float
    run: Run
    sizes: dict[str, tuple[int, int]]


def _in_process(module: str, image: TestImage, out: Path, *options: str) -> Sample:
    """Run a bench pipeline module on one image; its own timing excludes interpreter start-up."""
    shutil.rmtree(out, ignore_errors=True)
    run = run_child([PYTHON, "-m", module, *options, str(out), str(image.path)])
    if run.returncode != 0:
        raise RuntimeError(f"{module} failed on {image.path} (exit {run.returncode})")
    result = json.loads(run.stdout)
    sizes = {label: (size[0], size[1]) for label, size in result["sizes"].items()}
    return Sample(result["seconds"][0], result["cpu"][0], run, sizes)


def _no_services_config(out: Path) -> Path:
    """A config directory holding go-iiif's default config with every service turned off."""
    try:
        from iiif_process.defaults import default_config

        config: dict[str, Any] = default_config()
    except ImportError:
        config = {"level": {"compliance": "2"}, "graphics": {"driver": "native://"}}
    config = copy.deepcopy(config)
    config["profile"] = {"services": {"enable": []}}
    directory = out / "config-no-services"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    return directory


def _tool_sample(image: TestImage, out: Path, config_dir: Path | None, startup: Run) -> Sample:
    uri = image.path.name
    run, result = _tool(image.path.parent, [uri], out, config_dir)
    entry = result.get(uri, {})
    if run.returncode != 0 or "error" in entry or "dimensions" not in entry:
        raise RuntimeError(f"exit {run.returncode}: {entry.get('error', 'no report')}")
    sizes = {label: (size[0], size[1]) for label, size in entry["dimensions"].items()}
    return Sample(
        max(run.seconds - startup.seconds, 0.0),
        max(run.cpu_seconds - startup.cpu_seconds, 0.0),
        run,
        sizes,
    )


# --- measurements ---------------------------------------------------------------------------

PIPELINES = ("reference", "ours", "ours-noservices", "pillow", "pillow-gap2")


def measure_size(image: TestImage, out: Path, reps: int, no_services: Path) -> dict[str, Row]:
    """Every pipeline on one image, ``reps`` times, interleaved so drift hits all alike."""
    samples: dict[str, list[Sample]] = {name: [] for name in PIPELINES}
    startups: list[Run] = []
    notes: dict[str, str] = {}
    for _ in range(reps):
        samples["reference"].append(_in_process("bench.reference", image, out / "reference"))
        samples["pillow"].append(_in_process("bench.pillow_peer", image, out / "pillow"))
        samples["pillow-gap2"].append(
            _in_process("bench.pillow_peer", image, out / "pillow-gap2", "--gap", "2.0")
        )
        if not TOOL.exists():
            notes["ours"] = notes["ours-noservices"] = "iiif-process not installed"
            continue
        try:
            startup = _tool_startup(image.path.parent, out / "ours-startup")
        except RuntimeError as exc:
            notes["ours"] = notes["ours-noservices"] = str(exc)
            continue
        startups.append(startup)
        for name, config in (("ours", None), ("ours-noservices", no_services)):
            try:
                samples[name].append(_tool_sample(image, out / name, config, startup))
            except RuntimeError as exc:
                notes[name] = f"failed: {exc}"

    rows: dict[str, Row] = {}
    for name, found in samples.items():
        if not found:
            rows[name] = Row(None, None, None, None, notes.get(name, "no data"))
            continue
        summary = summarize(
            [s.seconds for s in found], [s.cpu_seconds for s in found], [s.run for s in found]
        )
        rows[name] = Row(
            summary.seconds,
            summary.cpu_seconds,
            summary.peak_mb,
            found[0].sizes,
            notes.get(name, ""),
        )
    if startups:
        best = summarize([r.seconds for r in startups], [r.cpu_seconds for r in startups], startups)
        rows["startup"] = Row(best.seconds, best.cpu_seconds, best.peak_mb)
    return rows


@dataclass(frozen=True)
class Scaling:
    """iiif-process throughput over several images on 1 CPU and on N CPUs."""

    images: int
    cpus: int
    one_cpu_rate: float
    n_cpu_rate: float
    one_cpu_peak_mb: float
    n_cpu_peak_mb: float
    one_cpu_cpu_per_image: float
    n_cpu_cpu_per_image: float

    @property
    def speedup(self) -> float:
        """Throughput on N CPUs over throughput on 1."""
        return self.n_cpu_rate / self.one_cpu_rate

    @property
    def per_added_core(self) -> float:
        """Throughput gained per added core, as a fraction of one core's throughput."""
        if self.cpus < 2:
            return float("nan")
        return (self.speedup - 1) / (self.cpus - 1)


def measure_scaling(image: TestImage, out: Path, count: int, reps: int) -> Scaling | None:
    """Throughput of one iiif-process run over ``count`` copies of ``image``, 1 vs N CPUs."""
    if not TOOL.exists():
        return None
    cpus = sorted(os.sched_getaffinity(0))
    source = out / "throughput-images"
    uris = copies(image.path, source, count)

    def once(pinned: Sequence[int]) -> tuple[float, float, float]:
        startup = _tool_startup(
            source, out / "throughput-startup", cpus=pinned, workers=len(pinned)
        )
        run, result = _tool(source, uris, out / "throughput", cpus=pinned)
        failed = [u for u in uris if "error" in result.get(u, {"error": "missing"})]
        if run.returncode != 0 or failed:
            raise RuntimeError(f"iiif-process failed on {len(failed)} of {count} images")
        rate = count / max(run.seconds - startup.seconds, 1e-9)
        return rate, run.peak_mb, (run.cpu_seconds - startup.cpu_seconds) / count

    # 1 CPU and N CPUs alternate, so a change of load during the runs hits both alike.
    one: list[tuple[float, float, float]] = []
    many: list[tuple[float, float, float]] = []
    for _ in range(reps):
        one.append(once(cpus[:1]))
        many.append(once(cpus))

    def best(runs: list[tuple[float, float, float]]) -> tuple[float, float, float]:
        return max(r[0] for r in runs), max(r[1] for r in runs), min(r[2] for r in runs)

    one_rate, one_peak, one_cpu = best(one)
    n_rate, n_peak, n_cpu = best(many)
    return Scaling(count, len(cpus), one_rate, n_rate, one_peak, n_peak, one_cpu, n_cpu)


def measure_machine_scaling(image: TestImage, out: Path, count: int, reps: int) -> float | None:
    """For scale: the reference pipeline's speed-up from 1 CPU to N CPUs as N separate processes.

    Timed as ours is: the wall time of the processes from outside (each pinned to its own CPU,
    the images split between them) less that of the same processes started with no image. This
    is what the machine itself allows, the ceiling for the tool's scaling.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or count < len(cpus):
        return None

    def wall(parts: int, images: int) -> float:
        jobs = []
        for index in range(parts):
            target = out / f"machine-{index}"
            shutil.rmtree(target, ignore_errors=True)
            share = [str(image.path)] * (images // parts)
            jobs.append(([PYTHON, "-m", "bench.reference", str(target), *share], [cpus[index]]))
        return max(run.seconds for run in run_children(jobs))

    one, many = float("inf"), float("inf")
    images = count - count % len(cpus)
    for _ in range(reps):
        one = min(one, wall(1, images) - wall(1, 0))
        many = min(many, wall(len(cpus), images) - wall(len(cpus), 0))
    return one / many


# --- the table --------------------------------------------------------------------------------

_LABELS = {
    "reference": "reference: minimal pyvips, one decode",
    "ours": "ours: iiif-process defaults:// (+services)",
    "ours-noservices": "ours: iiif-process, services off",
    "pillow": "peer: Pillow, fastest (reducing_gap=1)",
    "pillow-gap2": "  Pillow, libvips' resampling (gap=2)",
}
_NAME_WIDTH = 44
_COLUMNS = ("s/img", "cpu s", "peak MB")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("PASS" if ok else "MISS")


def _row_cells(row: Row) -> str:
    return f"{_fmt(row.seconds):>9}{_fmt(row.cpu_seconds):>9}{_fmt(row.peak_mb, 0):>9}"


def _header(images: Sequence[TestImage]) -> list[str]:
    labels = [i.label for i in images]
    return [
        f"{'':<{_NAME_WIDTH}}" + "".join(f"{'--- ' + label + ' ---':^27}" for label in labels),
        f"{'pipeline':<{_NAME_WIDTH}}" + "".join(f"{c:>9}" for _ in labels for c in _COLUMNS),
    ]


def render_header(images: Sequence[TestImage], reps: int) -> list[str]:
    """What was measured on what."""
    version = ".".join(str(pyvips.version(i)) for i in range(3))
    return [
        f"iiif-process benchmark: {len(os.sched_getaffinity(0))} CPUs ({platform.machine()}), "
        f"Python {platform.python_version()}, libvips {version}, Pillow {PIL.__version__}",
        "images: "
        + ", ".join(
            f"{i.label} = {i.width}x{i.height} JPEG {i.path.stat().st_size / 1e6:.1f} MB"
            for i in images
        ),
        "work per image: go-iiif v8's 9 default derivatives (o k b c dc z n s ds), JPEG Q75; "
        f"best of {reps} runs unless said",
        f"load average when the benchmark started: {_load()}",
        "",
    ]


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min) on {os.cpu_count()} CPUs"


def render_latency(results: dict[str, dict[str, Row]], images: Sequence[TestImage]) -> list[str]:
    """One image at a time (no target: a task processes a batch with every core busy)."""
    labels = [i.label for i in images]
    lines = [
        "one image at a time, each run a fresh process (s/img = wall seconds, cpu s = user+sys "
        "of all threads, peak MB = ru_maxrss; for information: latency, not cost):",
    ]
    head = _header(images)
    width = max(len(h) for h in head)
    lines += [*head, "-" * width]
    for name, text in _LABELS.items():
        notes = {results[label][name].note for label in labels} - {""}
        cells = "".join(_row_cells(results[label][name]) for label in labels)
        lines.append(
            f"{text:<{_NAME_WIDTH}}{cells}" + (f"  ({'; '.join(sorted(notes))})" if notes else "")
        )
    startup = [results[label].get("startup") for label in labels]
    if all(startup):
        lines.append(
            f"{'  iiif-process start-up (subtracted above)':<{_NAME_WIDTH}}"
            + "".join(_row_cells(row) for row in startup if row)
        )
    for image in images:
        if image.megapixels >= 90:
            peak = results[image.label]["ours"].peak_mb
            ok = None if peak is None else peak < PEAK_MB_100MP
            text = f"ours peak memory at {image.label} < {PEAK_MB_100MP:.0f} MB"
            lines.append(f"{text:<{_NAME_WIDTH}}{_fmt(peak, 0) + ' MB':>18}{_verdict(ok):>9}")
    mismatches = []
    for label in labels:
        expected = results[label]["reference"].sizes
        for name in ("ours", "ours-noservices", "pillow", "pillow-gap2"):
            found = results[label][name].sizes
            if found is not None and found != expected:
                mismatches.append(f"{name} at {label}: {found} != reference {expected}")
    lines += [
        "same outputs (labels and pixel sizes of every derivative): "
        + ("yes" if not mismatches else "NO: " + "; ".join(mismatches)),
    ]
    return lines


def render_scaling(
    scaling: Scaling | None, machine_speedup: float | None, label: str, loads: tuple[str, str]
) -> list[str]:
    """Throughput on 1 CPU and on N, the reference's for scale, and the machine's load."""
    if scaling is None:
        return ["throughput: not measured (iiif-process missing or failed)"]
    ok = scaling.per_added_core >= SCALING_PER_CORE
    lines = [
        f"scaling: one iiif-process run over {scaling.images} x {label} images (best of runs, "
        "start-up subtracted):",
        f"  1 CPU {scaling.one_cpu_rate:.2f} images/s (peak {scaling.one_cpu_peak_mb:.0f} MB);"
        f" {scaling.cpus} CPUs {scaling.n_cpu_rate:.2f} images/s"
        f" (peak {scaling.n_cpu_peak_mb:.0f} MB); speed-up x{scaling.speedup:.2f}",
        f"  per added core: {scaling.per_added_core:.2f} of one core's throughput "
        f"(target >= {SCALING_PER_CORE})   {_verdict(ok)}",
    ]
    if machine_speedup and scaling.cpus > 1:
        lines.append(
            f"  for scale, the reference pipeline as {scaling.cpus} separate processes (what this "
            f"machine allows): speed-up x{machine_speedup:.2f}, per added core "
            f"{(machine_speedup - 1) / (scaling.cpus - 1):.2f}"
        )
    lines += [
        f"  cpu s/image: {scaling.one_cpu_cpu_per_image:.3f} on 1 CPU, "
        f"{scaling.n_cpu_cpu_per_image:.3f} on {scaling.cpus} (the cost of running in parallel:"
        f" {scaling.n_cpu_cpu_per_image / scaling.one_cpu_cpu_per_image - 1:+.0%})",
        f"  load average before: {loads[0]}",
        f"  load average after:  {loads[1]}",
        "  (other work on the machine takes CPU from the runs: scaling is only meaningful with a "
        "load well below the CPU count)",
    ]
    return lines


def _cpu_count(image: TestImage, asked: int) -> int:
    cpus = len(os.sched_getaffinity(0))
    if asked:
        return max(asked, 2 * cpus)
    return max(12, 6 * cpus) if image.megapixels < 50 else 2 * cpus


def main(argv: Sequence[str] | None = None) -> int:
    """Build the images, run every measurement, print the table. Always exits 0."""
    args = _parse_args(argv)
    started = time.perf_counter()
    out: Path = args.out
    wanted = {s.strip() for s in args.sizes.split(",") if s.strip()}
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = sections - set(SECTIONS)
    if unknown:
        print(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}", file=sys.stderr)
        return 2
    for name in ("backfill", "publish", "master"):
        if name not in sections:
            wanted.discard(name)
    if "backfill" in wanted:
        from bench.backfill import measure_backfill, render_backfill

        print("measuring -mode backfill over 100,000 keys ...", file=sys.stderr, flush=True)
        print("\n".join(render_backfill(measure_backfill())).lstrip("\n"), flush=True)
        wanted.discard("backfill")
        if not wanted:
            return 0
    if "publish" in wanted:
        from bench.publish import report as publish_report

        print("measuring publishing of one 24 MP image ...", file=sys.stderr, flush=True)
        print(publish_report(out), flush=True)
        wanted.discard("publish")
        if not wanted:
            return 0
    print("building test images (cached in bench-output/images) ...", file=sys.stderr, flush=True)
    images = ensure_images(out / "images", wanted)
    master_lines: list[str] = []
    if "master" in wanted:
        if TOOL.exists():
            print("measuring the 20000x20000 master TIFF ...", file=sys.stderr, flush=True)
            master = ensure_master(out / "images")
            master_lines = render_master(measure_master(TOOL, master, out / "runs" / "master"))
        else:
            master_lines = render_master(None, f"{TOOL} not found")
        if not images:
            print("\n".join(master_lines).lstrip("\n"))
            return 0
    if not images:
        print(f"no image size matches --sizes {args.sizes!r}", file=sys.stderr)
        return 0
    if not TOOL.exists():
        print(f"note: {TOOL} not found; measuring the reference and Pillow only", file=sys.stderr)
    print("\n".join(render_header(images, args.reps)), flush=True)
    no_services = _no_services_config(out)
    reps = max(1, min(args.reps, 3))
    if "cpu" in sections:
        cpu_load = _load()  # CPU time is disturbed less than wall time, but not immune
        cpu: dict[str, dict[str, CpuRow]] = {}
        for image in images:
            count = _cpu_count(image, args.cpu_images)
            print(f"measuring CPU per image on {count} x {image.label} ...", file=sys.stderr)
            cpu[image.label] = measure_cpu(
                image, out / "runs" / "cpu" / image.label, count, reps, no_services
            )
        lines = render_cpu(cpu, images)
        lines += [f"  load average before: {cpu_load}", f"  load average after:  {_load()}", ""]
        print("\n".join(lines), flush=True)
    if "latency" in sections:
        results = {}
        for image in images:
            print(f"measuring {image.label} one image at a time ...", file=sys.stderr, flush=True)
            results[image.label] = measure_size(
                image, out / "runs" / image.label, args.reps, no_services
            )
        print("\n".join([*render_latency(results, images), ""]), flush=True)
    if "scaling" in sections:
        cpus = len(os.sched_getaffinity(0))
        # A task gets up to maxUrisPerTask (50) images; a handful would mostly measure start-up.
        count = args.throughput_images or max(12, 6 * cpus)
        print(f"measuring throughput on {count} images ...", file=sys.stderr, flush=True)
        before = _load()
        try:
            scaling = measure_scaling(images[0], out / "runs", count, reps=args.reps)
        except RuntimeError as exc:
            print(f"throughput not measured: {exc}", file=sys.stderr)
            scaling = None
        machine = measure_machine_scaling(images[0], out / "runs", count, reps=args.reps)
        lines = render_scaling(scaling, machine, images[0].label, (before, _load()))
        print("\n".join([*lines, ""]), flush=True)
    if master_lines:
        print("\n".join(master_lines))
    if "tiles" in sections:
        # The IIIF Level 0 tile pyramid (iiif-tile-seed) beside dzsave and PyPI iiif (issue #11).
        print("\n" + tiles_report(images, out / "runs" / "tiles", reps))
    print(f"\n(benchmark took {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
