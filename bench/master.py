"""The museum master: a 1.2 GB, 20000 x 20000 RGB uncompressed TIFF through go-iiif's default set.

``iiif-process`` must process it in a 1-vCPU, 2 GiB Fargate task once ``max_pixels`` allows
400 MP. We run the command as the task does (defaults://, ``-max-pixels 400000000 -workers 1``),
pinned to one CPU and, where this machine allows it (cgroup v1, root: the same enforcement as
``local_aws``), inside a 2 GiB memory cgroup as on Fargate, and report wall and CPU seconds and the
peak resident memory of the whole process tree (sampled from ``/proc`` every 20 ms, summed over
the tool and any process it starts), beside the target: fits in 2 GiB.

The TIFF is generated once (photographic structure at 2500 x 2500, enlarged, plus fine texture so
the full-size JPEG is not trivially small) and cached in ``bench-output/images``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyvips

from bench.images import render

WIDTH = HEIGHT = 20000
MAX_PIXELS = 400_000_000
TARGET_MB = 2048.0  # the task's memory: 2 GiB
NAME = f"master-{WIDTH}x{HEIGHT}.tif"
_PAGE = os.sysconf("SC_PAGE_SIZE")


def ensure_master(directory: Path) -> Path:
    """Write the uncompressed 20000 x 20000 RGB TIFF into ``directory`` unless already there."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / NAME
    try:
        header = pyvips.Image.new_from_file(str(path))
        if (header.width, header.height, header.bands) == (WIDTH, HEIGHT, 3):
            return path
    except pyvips.Error:
        pass
    small = render(WIDTH // 8, HEIGHT // 8)
    xyz = pyvips.Image.xyz(WIDTH, HEIGHT)
    texture = ((xyz[0] * 7 + xyz[1] * 13) % 17) - 8  # fine, cheap detail at every pixel
    image = (small.resize(8, kernel="linear") + texture).cast("uchar").copy(interpretation="srgb")
    tmp = path.with_suffix(".tmp.tif")
    image.tiffsave(str(tmp), compression="none", bigtiff=False)
    tmp.replace(path)
    return path


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants, now."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/statm") as handle:
                rss[int(entry)] = int(handle.read().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            continue
        parents[int(entry)] = int(fields[1])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total


@dataclass(frozen=True)
class MasterRun:
    """One run on the master: seconds, CPU seconds, peak memory of the tree, outcome."""

    seconds: float
    cpu_seconds: float
    tree_peak_mb: float
    error: str = ""
    cgroup: str = ""  # how the 2 GiB limit was enforced, and the cgroup's own peak


def measure_master(tool: Path, image: Path, out: Path, cpus: Sequence[int] = (0,)) -> MasterRun:
    """Run ``iiif-process`` on the master as a 1-vCPU task would, sampling its memory."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    argv = [
        str(tool),
        "-config-source", "defaults://",
        "-instructions-source", "defaults://",
        "-config-images-source-uri", image.parent.resolve().as_uri(),
        "-config-derivatives-cache-uri", out.resolve().as_uri(),
        "-max-pixels", str(MAX_PIXELS),
        "-workers", "1",
        image.name,
    ]  # fmt: skip
    confinement = _confine()
    if confinement is not None:
        argv = confinement.wrap(argv)
    with open(out.parent / "master.stderr.log", "wb") as stderr:
        start = time.perf_counter()
        child = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=stderr,
            preexec_fn=lambda: os.sched_setaffinity(0, set(cpus)),
        )
        peak = 0
        held = False
        done = threading.Event()

        def sample() -> None:
            nonlocal peak, held
            while not done.is_set():
                peak = max(peak, _tree_rss(child.pid))
                if confinement is not None and confinement.over_limit():
                    held = True  # held at the limit: Fargate would kill the task
                    confinement.kill_all()
                done.wait(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        assert child.stdout is not None
        stdout = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    error = "" if child.returncode == 0 else f"exit {child.returncode}: {stdout[-300:]!r}"
    if held:
        error = "killed at the 2 GiB limit of its memory cgroup (out of memory)"
    cgroup = ""
    if confinement is not None:
        try:
            usage_peak = int((confinement.path / "memory.max_usage_in_bytes").read_text())
            peak_mb = usage_peak / 2**20
            cgroup = f"in a 2 GiB memory cgroup; its peak, page cache included, {peak_mb:.0f} MB"
        except (OSError, ValueError):
            cgroup = "in a 2 GiB memory cgroup"
        confinement.close()
    shutil.rmtree(out, ignore_errors=True)  # 45 MB of full-size JPEG: not worth keeping
    return MasterRun(seconds, usage.ru_utime + usage.ru_stime, peak / 2**20, error, cgroup)


def _confine() -> Any:
    """A 2 GiB memory cgroup for the run (local_aws' enforcement), or None where there is none."""
    try:
        from local_aws.memory_limit import CgroupV1Memory
    except ImportError:
        return None
    enforcement = CgroupV1Memory.available()
    if enforcement is None:
        return None
    return enforcement.confine(f"bench-master-{uuid.uuid4().hex[:8]}", int(TARGET_MB) << 20)


def render_master(run: MasterRun | None, note: str = "") -> list[str]:
    """The report section of the master."""
    lines = [
        "",
        f"museum master: {WIDTH}x{HEIGHT} RGB uncompressed TIFF (1.2 GB), go-iiif's default set, "
        f"-max-pixels {MAX_PIXELS} -workers 1, pinned to 1 CPU:",
    ]
    if run is None:
        return [*lines, f"  not measured: {note}"]
    if run.error:
        return [*lines, f"  FAILED: {run.error}"]
    verdict = "PASS" if run.tree_peak_mb < TARGET_MB else "MISS"
    return [
        *lines,
        f"  {run.seconds:.1f} s wall, {run.cpu_seconds:.1f} s CPU; peak memory of the process tree "
        f"{run.tree_peak_mb:.0f} MB (target: fits in 2 GiB = {TARGET_MB:.0f} MB)   {verdict}",
        f"  ran {run.cgroup or 'with no memory cgroup on this machine (RSS measured only)'}",
    ]
