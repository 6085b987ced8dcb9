"""Run the tests that cover a mutated line against the mutant, in a scratch copy of the repository.

The copy keeps the working tree untouched (several people may be editing it). The packages are
put first on ``PYTHONPATH`` so that the copy's code, not the editable install's, is imported,
in the test process and in every process it starts (``iiif-process``, workers).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mutation.mutants import Mutant
from mutation.pytest_context import DURATIONS as DURATIONS_VARIABLE
from mutation.pytest_context import VARIABLE as CONTEXT_VARIABLE

ROOT = Path(__file__).resolve().parent.parent
# Package folder → (import roots to put on PYTHONPATH, its tests). The in-image and end-to-end
# tests are left out: they take minutes and test the same code through the same entry points.
PACKAGES: dict[str, tuple[str, ...]] = {
    "container/iiif_process": ("tests/container",),
    "lambda_src/iiif_process_ecs": ("tests/lambda_src",),
    "stacks": ("tests/stacks",),
}
IGNORED_TESTS = ("tests/container/test_image.py", "tests/stacks/test_stack_checkov.py")
PYTHONPATH_ROOTS = ("", "container", "lambda_src")
# Put first on every process's path (as ``sitecustomize``): a mutant may act only on the processes
# of its own test run. A worker's ``os.sched_setaffinity(0, ...)`` mutated to pid 1 would pin
# the machine's init process (and all it starts later) to one CPU; refused, the worker is simply
# not pinned, which the tests notice.
GUARD = '''"""Mutation run guard: no process of a mutant's run changes another's CPUs."""

import os

_set_affinity = os.sched_setaffinity


def _own_affinity(pid, mask):
    if pid not in (0, os.getpid()):
        raise PermissionError(f"mutation run: not changing the CPU affinity of process {pid}")
    _set_affinity(pid, mask)


os.sched_setaffinity = _own_affinity
'''


@dataclass(frozen=True)
class Outcome:
    """What the tests did to one mutant."""

    mutant: Mutant
    status: str  # "killed", "survived", "timeout", "no-tests"
    tests: tuple[str, ...]
    seconds: float


def make_copy(scratch: Path) -> Path:
    """The tracked files of the working tree (as they are now) under ``scratch/repo``, and the
    :data:`GUARD` under ``scratch/guard``."""
    copy = scratch / "repo"
    if copy.exists():
        shutil.rmtree(copy)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        relative = raw.decode()
        source = ROOT / relative
        if not source.is_file():
            continue
        target = copy / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    for shared in ("node_modules", ".venv", ".venv-checkov"):
        if (ROOT / shared).exists():
            (copy / shared).symlink_to(ROOT / shared)
    guard = copy.parent / "guard"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(GUARD, encoding="utf-8")
    return copy


def environment(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    roots = [copy.parent / "guard", *(copy / part for part in PYTHONPATH_ROOTS)]
    env["PYTHONPATH"] = os.pathsep.join(str(root) for root in roots)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def pytest_command(tests: Sequence[str]) -> list[str]:
    ignores = [f"--ignore={path}" for path in IGNORED_TESTS]
    return [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "--no-header",
        "-o",
        "addopts=",
        *ignores,
        *tests,
    ]


def run_mutant(copy: Path, mutant: Mutant, tests: Sequence[str], timeout: float) -> Outcome:
    """Apply ``mutant`` in ``copy``, run ``tests`` there, restore the file."""
    if not tests:
        return Outcome(mutant, "no-tests", (), 0.0)
    target = copy / mutant.path
    original = target.read_text(encoding="utf-8")
    target.write_text(mutant.apply(original), encoding="utf-8")
    started = time.monotonic()
    try:
        done = subprocess.run(
            pytest_command(tests),
            cwd=copy,
            env=environment(copy),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
        status = "survived" if done.returncode == 0 else "killed"
    except subprocess.TimeoutExpired:
        status = "timeout"
    finally:
        target.write_text(original, encoding="utf-8")
    return Outcome(mutant, status, tuple(tests), time.monotonic() - started)


def coverage_map(copy: Path, package: str, scratch: Path) -> dict[tuple[str, int], set[str]]:
    """Which tests execute each line of ``package`` (from one run of its tests under coverage
    with per-test contexts): ``{(path, line): {pytest node id, ...}}``.

    Child processes (a batch's workers, ``iiif-process`` run as a command) are measured too:
    ``COVERAGE_PROCESS_START`` makes coverage's ``.pth`` hook start it in every Python process
    of the run (pytest's included), each writing its own data file, combined at the end. A child
    has no test function of its own; its static context, ``${MUTATION_TEST_CONTEXT}``, is the
    node id of the test that started it (set by :mod:`mutation.pytest_context`)."""
    data_file = scratch / f"coverage-{package.replace('/', '_')}"
    rcfile = scratch / "coveragerc"
    rcfile.write_text(
        "[run]\ndynamic_context = test_function\nrelative_files = true\nparallel = true\n"
        f"context = ${{{CONTEXT_VARIABLE}}}\n"
        f"data_file = {data_file}\n"
        f"source = {copy / package}\n"
    )
    tests = PACKAGES[package]
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "mutation.pytest_context",
        "-o",
        "addopts=",
        *[f"--ignore={path}" for path in IGNORED_TESTS],
        *tests,
    ]
    env = environment(copy)
    env["COVERAGE_PROCESS_START"] = str(rcfile)
    env[DURATIONS_VARIABLE] = str(durations_file(package, scratch))
    env.pop(CONTEXT_VARIABLE, None)
    subprocess.run(command, cwd=copy, env=env, check=False, stdout=subprocess.DEVNULL)
    import coverage  # only the mutation run needs it

    combined = coverage.Coverage(data_file=str(data_file), config_file=str(rcfile))
    combined.combine(data_paths=[str(scratch)], keep=False)
    data = combined.get_data()
    lines: dict[tuple[str, int], set[str]] = {}
    for measured in data.measured_files():
        path = Path(measured)
        relative = (path if path.is_absolute() else copy / path).resolve().relative_to(copy)
        for line, contexts in data.contexts_by_lineno(measured).items():
            files = {_test_file(context) for context in contexts if context}
            lines[(str(relative), line)] = {f for f in files if f}
    return lines


def durations_file(package: str, scratch: Path) -> Path:
    """Where the coverage run of ``package`` records each test's duration."""
    return scratch / f"durations-{package.replace('/', '_')}.json"


def test_durations(package: str, scratch: Path) -> dict[str, float]:
    """Seconds each test of ``package`` took in the coverage run, by node id (``{}`` when the
    run wrote none)."""
    path = durations_file(package, scratch)
    try:
        return {str(k): float(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
    except (OSError, ValueError):
        return {}


def _test_file(context: str) -> str | None:
    """``tests.container.test_x.test_y`` (coverage's test_function context) → the pytest node
    ``tests/container/test_x.py::test_y`` (a method: ``...::Class::test_y``). A child process's
    context is already a node id (``tests/container/test_x.py::test_y``)."""
    if "::" in context:
        return context if context.startswith("tests/") else None
    parts = context.split(".")
    if parts[0] != "tests":
        return None
    for end in range(len(parts) - 1, 0, -1):
        relative = Path(*parts[:end]).with_suffix(".py")
        if (ROOT / relative).is_file():
            return "::".join([str(relative), *parts[end:]])
    return None


def save(outcomes: Iterable[Outcome], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "status": o.status,
            "mutant": o.mutant.describe,
            "key": o.mutant.key,
            "tests": list(o.tests),
            "seconds": round(o.seconds, 2),
        }
        for o in outcomes
    ]
    path.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
