"""``python -m mutation``: mutate, run the covering tests, print the score and the survivors.

Usage: ``python -m mutation [--package container/iiif_process ...] [--module NAME ...]
[--sample N] [--seed S] [--jobs J] [--timeout SECONDS] [--out DIR]``

For each module of the packages (default: all three), every mutant (:mod:`mutation.mutants`) is
run against the tests that execute its line (a coverage run with per-test contexts says which,
child processes included: a batch's workers, ``iiif-process`` run as a command);
a line no test runs itself (one run only at import) falls back to every
test that runs the module's code, else to the test files that name the module. A mutant of
``stacks`` then runs the whole ``tests/stacks`` as well (its stacks are built once, in shared
fixtures). A mutant is killed when those tests fail (or time out), survives when they pass.
``--sample N`` takes N mutants per module (seeded) for a quicker estimate. Survivors listed in
``mutation/accepted.txt`` (``key<TAB>why``) are printed apart, with why; the score counts them
as survivors all the same.
Exits 1 when the score is under the target.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from queue import Queue

from mutation.mutants import Mutant, mutants_of
from mutation.runner import (
    PACKAGES,
    ROOT,
    Outcome,
    coverage_map,
    make_copy,
    run_mutant,
    save,
    test_durations,
)

TARGET = 0.85
ACCEPTED = ROOT / "mutation" / "accepted.txt"
# Packages whose code runs mostly in shared fixtures: the stacks are synthesized once per session,
# under whichever test happened to start first, so coverage's per-test contexts do not say which
# tests check a line. Each mutant there runs the covering tests first, then the whole folder.
WHOLE_SUITE = frozenset({"stacks"})


def read_accepted(path: Path) -> dict[str, str]:
    """``key<TAB>why`` lines (``#`` comments and blank lines ignored)."""
    accepted: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, why = line.partition("\t")
                accepted[key] = why.strip()
    return accepted


def module_files(package: str, only: list[str]) -> list[Path]:
    files = sorted((ROOT / package).glob("*.py"))
    if only:
        files = [f for f in files if f.stem in only]
    return files


def fallback_tests(package: str, module: str) -> list[str]:
    """Test files of the package that name the module (for a module no test runs)."""
    top = package.split("/")[-1]
    pattern = re.compile(rf"\b{top}\.{module}\b|from {top} import .*\b{module}\b")
    found = []
    for tests in PACKAGES[package]:
        for path in sorted((ROOT / tests).glob("test_*.py")):
            if pattern.search(path.read_text(encoding="utf-8")):
                found.append(str(path.relative_to(ROOT)))
    return found


def tests_for(
    package: str, covering: set[str], fallback: list[str], seconds: dict[str, float] | None = None
) -> list[str]:
    """The tests a mutant of ``package`` runs: those covering its line, quickest first (by
    ``seconds``, their times in the coverage run: ``-x`` stops a killed mutant at its first
    failure, so a quick test that notices saves running the slow ones), else ``fallback``; for a
    :data:`WHOLE_SUITE` package, followed by the package's whole test folder (pytest runs a file
    named twice once)."""
    times = seconds or {}
    chosen = sorted(covering, key=lambda test: (times.get(test, 0.0), test)) or list(fallback)
    if package in WHOLE_SUITE:
        chosen += [folder for folder in PACKAGES[package] if folder not in chosen]
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mutation", description=__doc__.split("\n")[0])
    parser.add_argument("--package", action="append", choices=sorted(PACKAGES), default=[])
    parser.add_argument("--module", action="append", default=[], help="module stem, e.g. launcher")
    parser.add_argument("--sample", type=int, default=0, help="mutants per module (0 = all)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--out", type=Path, default=ROOT / "mutation-output")
    args = parser.parse_args(argv)
    packages = args.package or list(PACKAGES)
    accepted = read_accepted(ACCEPTED)

    scratch = Path(tempfile.mkdtemp(prefix="iiif-mutate-"))
    copies: Queue[Path] = Queue()
    for job in range(args.jobs):
        copies.put(make_copy(scratch / f"job{job}"))
    work: list[tuple[Mutant, list[str]]] = []
    for package in packages:
        files = module_files(package, args.module)
        if not files:
            continue
        print(f"coverage map of {package} ...", flush=True)
        covered = coverage_map(scratch / "job0" / "repo", package, scratch)
        seconds = test_durations(package, scratch)
        for path in files:
            relative = str(path.relative_to(ROOT))
            mutants = list(mutants_of(relative, path.read_text(encoding="utf-8")))
            if args.sample and len(mutants) > args.sample:
                chooser = random.Random(f"{args.seed}:{relative}")  # noqa: S311 (a sample, not a secret)
                mutants = chooser.sample(mutants, args.sample)
            # A line run only at import (a constant, a default, a class field) has no test of
            # its own: every test that runs any of the module's code may notice it.
            of_module = sorted(set().union(*(t for (f, _), t in covered.items() if f == relative)))
            fallback = of_module or fallback_tests(package, path.stem)
            for mutant in mutants:
                covering = covered.get((relative, mutant.line), set())
                tests = tests_for(package, covering, fallback, seconds)
                work.append((mutant, tests))
    print(f"{len(work)} mutants, {args.jobs} at a time", flush=True)

    def one(item: tuple[Mutant, list[str]]) -> Outcome:
        copy = copies.get()
        try:
            outcome = run_mutant(copy, item[0], item[1], args.timeout)
        finally:
            copies.put(copy)
        mark = {"killed": ".", "timeout": "T", "survived": "S", "no-tests": "0"}[outcome.status]
        print(mark, end="", flush=True)
        return outcome

    with ThreadPoolExecutor(args.jobs) as pool:
        outcomes = list(pool.map(one, work))
    print()
    save(outcomes, args.out / "outcomes.json")
    print(render(outcomes, accepted))
    killed = sum(o.status in ("killed", "timeout") for o in outcomes)
    return 0 if outcomes and killed / len(outcomes) >= TARGET else 1


def render(outcomes: list[Outcome], accepted: dict[str, str]) -> str:
    by_module: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_module[outcome.mutant.path].append(outcome)
    lines = ["", f"{'module':55} {'mutants':>8} {'killed':>7} {'score':>7}"]
    for module, rows in sorted(by_module.items()):
        killed = sum(o.status in ("killed", "timeout") for o in rows)
        lines.append(f"{module:55} {len(rows):8} {killed:7} {killed / len(rows):7.1%}")
    total = len(outcomes)
    killed = sum(o.status in ("killed", "timeout") for o in outcomes)
    score = killed / total if total else 0.0
    verdict = "PASS" if score >= TARGET else "FAIL"
    lines.append(f"{'all':55} {total:8} {killed:7} {score:7.1%}  target {TARGET:.0%}: {verdict}")
    survivors = [o for o in outcomes if o.status in ("survived", "no-tests")]
    known = [o for o in survivors if o.mutant.key in accepted]
    unknown = [o for o in survivors if o.mutant.key not in accepted]
    if known:
        lines.append("\nsurvivors accepted (mutation/accepted.txt), with why:")
        lines += [f"  {o.mutant.describe}\n      {accepted[o.mutant.key]}" for o in known]
    if unknown:
        lines.append("\nsurvivors to pin with a test (or accept, with why):")
        for o in unknown:
            note = "  (no test runs this line)" if o.status == "no-tests" else ""
            lines.append(f"  {o.mutant.describe}{note}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
