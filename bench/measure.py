"""Run one measurement in a fresh child process: wall time, peak memory, output.

Peak memory is the child's ``ru_maxrss`` from ``os.wait4`` (on Linux the largest resident set of
the child or any descendant it waited for), so every figure comes from its own process and one
measurement cannot inherit another's peak. ``cpus`` pins the child (and the threads it starts) to
those CPUs with ``sched_setaffinity``, which both libvips and ``iiif-process`` honour when they
size their thread pools.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Run:
    """One child process: wall and CPU seconds, peak resident memory (MB), exit status, stdout."""

    seconds: float
    cpu_seconds: float
    peak_mb: float
    returncode: int
    stdout: str


def _start(argv: Sequence[str], cpus: Sequence[int] | None, stderr: Any) -> subprocess.Popen:
    def pin() -> None:
        if cpus is not None:
            os.sched_setaffinity(0, set(cpus))

    return subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=stderr, preexec_fn=pin)


def _finish(child: subprocess.Popen, start: float) -> Run:
    assert child.stdout is not None
    stdout = child.stdout.read()  # small (a JSON summary): no pipe can fill while others run
    child.stdout.close()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen consistent
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, cpu, usage.ru_maxrss / 1024, child.returncode, stdout.decode())


def run_child(
    argv: Sequence[str], *, cpus: Sequence[int] | None = None, stderr_path: Path | None = None
) -> Run:
    """Run ``argv`` to completion and measure it."""
    with open(stderr_path or os.devnull, "wb") as stderr:
        start = time.perf_counter()
        return _finish(_start(argv, cpus, stderr), start)


def run_children(jobs: Sequence[tuple[Sequence[str], Sequence[int]]]) -> list[Run]:
    """Start every ``(argv, cpus)`` job at once, each pinned to its CPUs; measure each."""
    with open(os.devnull, "wb") as stderr:
        start = time.perf_counter()
        children = [_start(argv, cpus, stderr) for argv, cpus in jobs]
        return [_finish(child, start) for child in children]


@dataclass(frozen=True)
class Summary:
    """Several runs of one measurement: the best wall and CPU seconds, the highest peak memory.

    The best (lowest) time is the least disturbed by other work on the machine; memory takes the
    worst run.
    """

    seconds: float
    cpu_seconds: float
    peak_mb: float


def summarize(
    seconds: Sequence[float], cpu_seconds: Sequence[float], runs: Sequence[Run]
) -> Summary:
    """Best of ``seconds`` and of ``cpu_seconds``, highest peak memory of ``runs``."""
    return Summary(min(seconds), min(cpu_seconds), max(r.peak_mb for r in runs))
