"""Parallel work: every URI in a worker process (order, a killed worker, one CPU, the shared
memory budget, an image over the whole budget), and the overlapped rendering of one image."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pyvips
from iiif_process.batch import WorkerJob, process_uris
from iiif_process.config import Config, StoreSpec
from iiif_process.params import parse_instructions
from iiif_process.pool import ABANDONED, PUBLISH_GRACE, Pool, StopSignal, _Worker
from iiif_process.process import ReportOptions, process_uri
from iiif_process.stores import DiskStore, MemoryStore

from . import iiif_images as gen

INSTRUCTIONS = parse_instructions({"a": {"size": "!40,40", "format": "jpg"}})
KILLER = "die.jpg"


class KillingStore(DiskStore):
    """A source that kills the worker process opening ``die.jpg``, as the OOM killer would."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.parent = os.getpid()  # pickled with the store: a worker knows it is not the parent

    def local_path(self, key: str, max_bytes: int) -> tuple[str, int]:
        # A disk source is opened in place through local_path (never read whole).
        # Only ever in a worker: the test process itself is never the one killed.
        if key == KILLER and os.getpid() != self.parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().local_path(key, max_bytes)


class ReaderStore(KillingStore):
    """:class:`KillingStore`, noting which process opened each key (``readers.txt``)."""

    def local_path(self, key: str, max_bytes: int) -> tuple[str, int]:
        with open(os.path.join(self.root, "readers.txt"), "a") as log:
            log.write(f"{key} {os.getpid()}\n")
        if key == BOOM:
            raise RuntimeError("boom")  # a bug, not an IIIFProcessError
        return super().local_path(key, max_bytes)


BOOM = "boom.jpg"


def _readers(tmp_path: Path) -> dict[str, str]:
    """The process that opened each key in a batch of :class:`ReaderStore`."""
    lines = (tmp_path / "src" / "readers.txt").read_text().splitlines()
    return dict(line.split() for line in lines)


def _run(
    tmp_path: Path, uris: list[str], store: type[DiskStore] = KillingStore, **config: Any
) -> tuple[dict[str, Any], Path]:
    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir(exist_ok=True)
    out.mkdir(exist_ok=True)
    for uri in uris:
        if not (source / uri).exists():
            (source / uri).write_bytes(gen.jpeg())
    settings = Config(
        source=StoreSpec("disk", path=str(source)),
        derivatives=StoreSpec("disk", path=str(out)),
        **{"workers": 2, **config},
    )
    results = process_uris(
        uris,
        settings,
        INSTRUCTIONS,
        store(str(source)),
        DiskStore(str(out)),
        ReportOptions(),
    )
    return results, out


def test_worker_processes_return_every_uri_in_input_order(tmp_path: Path) -> None:
    uris = [f"{i}.jpg" for i in range(5)]
    results, _ = _run(tmp_path, uris)
    assert list(results) == uris
    assert all(results[uri]["dimensions"]["a"] == [40, 26] for uri in uris)


def test_a_killed_worker_is_an_error_entry_for_its_uri(tmp_path: Path) -> None:
    results, _ = _run(tmp_path, [KILLER, "a.jpg", "b.jpg", "c.jpg"])
    assert results[KILLER] == {
        "origin": KILLER,
        "error": "worker killed by SIGKILL (out of memory?) while processing this image",
    }


@pytest.mark.parametrize("position", [0, 1, 3])
def test_a_killed_worker_on_one_cpu_does_not_stop_the_batch(tmp_path: Path, position: int) -> None:
    # One worker (a 1-vCPU task): the image killing it, first, in the middle or last, costs
    # only itself; a new worker takes the rest.
    uris = ["a.jpg", "b.jpg", "c.jpg"]
    uris.insert(position, KILLER)
    results, _ = _run(tmp_path, uris, workers=1)
    assert [uri for uri, entry in results.items() if "dimensions" in entry] == [
        "a.jpg",
        "b.jpg",
        "c.jpg",
    ]


def test_a_killed_worker_does_not_stop_the_other_uris(tmp_path: Path) -> None:
    results, _ = _run(tmp_path, [KILLER, "a.jpg", "b.jpg", "c.jpg"])
    assert [uri for uri, entry in results.items() if "dimensions" in entry] == [
        "a.jpg",
        "b.jpg",
        "c.jpg",
    ]


def test_the_uris_after_a_killed_worker_run_on_one_new_worker_process(tmp_path: Path) -> None:
    # One worker: a.jpg and the killer in the first process, b.jpg and c.jpg both in its
    # replacement (one replacement, not one per URI).
    _run(tmp_path, ["a.jpg", KILLER, "b.jpg", "c.jpg"], ReaderStore, workers=1)
    readers = _readers(tmp_path)
    assert (readers[KILLER], readers["b.jpg"], readers["c.jpg"]) == (
        readers["a.jpg"],
        readers["b.jpg"],
        readers["b.jpg"],
    )
    assert readers["b.jpg"] not in (readers["a.jpg"], str(os.getpid()))


def test_an_unexpected_exception_is_an_internal_error_entry_for_its_uri(tmp_path: Path) -> None:
    results, _ = _run(tmp_path, ["a.jpg", BOOM, "b.jpg"], ReaderStore, workers=1)
    assert results[BOOM] == {"origin": BOOM, "error": "internal error: RuntimeError: boom"}


def test_an_unexpected_exception_costs_only_its_uri_and_the_worker_goes_on(
    tmp_path: Path,
) -> None:
    results, _ = _run(tmp_path, ["a.jpg", BOOM, "b.jpg"], ReaderStore, workers=1)
    readers = _readers(tmp_path)
    assert [uri for uri, entry in results.items() if "dimensions" in entry] == ["a.jpg", "b.jpg"]
    assert len(set(readers.values())) == 1  # the same worker process, not a replacement


def test_a_killed_worker_publishes_nothing_for_its_uri(tmp_path: Path) -> None:
    _, out = _run(tmp_path, [KILLER, "a.jpg"])
    assert not (out / KILLER).exists()


def test_images_that_fit_the_shared_budget_only_alone_all_run(tmp_path: Path) -> None:
    # 400x400 RGB needs about 700 KB (decoded x 1.5): a 1 MB budget holds one at a time, none
    # is refused.
    source = tmp_path / "src"
    source.mkdir()
    uris = [f"{i}.jpg" for i in range(4)]
    for uri in uris:
        (source / uri).write_bytes(gen.jpeg(gen.gradient(400, 400)))
    results, _ = _run(tmp_path, uris, memory_budget_mb=1)
    assert all("dimensions" in results[uri] for uri in uris)


@dataclass(frozen=True)
class TimedJob:
    """A job for the real pool whose every URI holds ``need`` bytes of the budget for ``hold``
    seconds, noting when it held them (``URI START END`` lines in ``log``, monotonic clock,
    which is one clock for every process on Linux)."""

    budget: int
    need: int
    log: str
    hold: float = 0.4

    def prepare(self) -> None:
        """Nothing to set up in a worker process."""

    def run(self, uri: str, gate: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        with gate.reserve(self.need, uri):
            start = time.monotonic()
            time.sleep(self.hold)
            end = time.monotonic()
        with open(self.log, "a") as log:
            log.write(f"{uri} {start} {end}\n")
        return {"origin": uri}, {}


def _overlaps(tmp_path: Path, need: int) -> int:
    """How many pairs of URIs held memory at the same time, four URIs on two worker processes
    sharing a budget of 100."""
    log = tmp_path / "held.txt"
    job = TimedJob(100, need, str(log))
    Pool(job, job.budget, deque(f"{i}.jpg" for i in range(4))).run(2, processes=True)
    spans = [tuple(map(float, line.split()[1:])) for line in log.read_text().splitlines()]
    assert len(spans) == 4
    return sum(
        1
        for i, (start, end) in enumerate(spans)
        for other_start, other_end in spans[i + 1 :]
        if start < other_end and other_start < end
    )


def test_decodes_that_do_not_fit_the_budget_together_never_overlap(tmp_path: Path) -> None:
    assert _overlaps(tmp_path, need=60) == 0


def test_decodes_that_fit_the_budget_together_overlap(tmp_path: Path) -> None:
    # The same observation as above, able to see overlap: two workers do run side by side.
    assert _overlaps(tmp_path, need=40) > 0


def test_an_image_over_the_whole_budget_fails_alone_naming_its_size_and_the_budget(
    tmp_path: Path,
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "big.png").write_bytes(gen.png(pyvips.Image.black(1500, 1000, bands=3)))
    results, _ = _run(tmp_path, ["a.jpg", "big.png", "b.jpg"], memory_budget_mb=1)
    assert re.fullmatch(
        r"image needs about \d+ MB of memory \(1500x1000, 3 bands of 8-bit = 4 MB decoded\), "
        r"over the memory budget of 1 MB \(from the task's memory limit, or "
        r"iiif_process.memory_budget_mb\)",
        results["big.png"]["error"],
    )
    assert "dimensions" in results["a.jpg"] and "dimensions" in results["b.jpg"]


class RecordingStore(DiskStore):
    """A source that notes which process read each key (in a file next to the sources)."""

    def local_path(self, key: str, max_bytes: int) -> tuple[str, int]:
        with open(os.path.join(self.root, "readers.txt"), "a") as log:
            log.write(f"{os.getpid()}\n")
        return super().local_path(key, max_bytes)


def test_a_single_uri_runs_in_a_worker_process(tmp_path: Path) -> None:
    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir()
    out.mkdir()
    (source / "a.jpg").write_bytes(gen.jpeg())
    settings = Config(
        source=StoreSpec("disk", path=str(source)),
        derivatives=StoreSpec("disk", path=str(out)),
        workers=4,
    )
    store = RecordingStore(str(source))
    process_uris(["a.jpg"], settings, INSTRUCTIONS, store, DiskStore(str(out)), ReportOptions())
    [reader] = (source / "readers.txt").read_text().split()
    assert reader != str(os.getpid())


class AffinityStore(DiskStore):
    """A source that notes the CPUs each reading process may run on (pid: cpus per line)."""

    def local_path(self, key: str, max_bytes: int) -> tuple[str, int]:
        cpus = ",".join(str(cpu) for cpu in sorted(os.sched_getaffinity(0)))
        with open(os.path.join(self.root, "affinity.txt"), "a") as log:
            log.write(f"{os.getpid()} {cpus}\n")
        return super().local_path(key, max_bytes)


def _affinities(tmp_path: Path, workers: int) -> dict[str, str]:
    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir()
    out.mkdir()
    uris = [f"{index}.jpg" for index in range(2 * workers)]
    for uri in uris:
        (source / uri).write_bytes(gen.jpeg())
    settings = Config(
        source=StoreSpec("disk", path=str(source)),
        derivatives=StoreSpec("disk", path=str(out)),
        workers=workers,
    )
    store = AffinityStore(str(source))
    process_uris(uris, settings, INSTRUCTIONS, store, DiskStore(str(out)), ReportOptions())
    lines = (source / "affinity.txt").read_text().split("\n")
    return dict(line.split() for line in lines if line)


CPUS = sorted(os.sched_getaffinity(0))


@pytest.mark.skipif(len(CPUS) < 2, reason="needs two CPUs")
def test_with_a_worker_per_cpu_each_worker_runs_on_a_cpu_of_its_own(tmp_path: Path) -> None:
    affinities = _affinities(tmp_path, len(CPUS))
    assert sorted(affinities.values()) == [str(cpu) for cpu in CPUS]


@pytest.mark.skipif(len(CPUS) < 2, reason="needs two CPUs")
def test_with_fewer_workers_than_cpus_workers_run_on_every_cpu(tmp_path: Path) -> None:
    affinities = _affinities(tmp_path, len(CPUS) - 1)
    assert set(affinities.values()) == {",".join(str(cpu) for cpu in CPUS)}


def test_overlapped_rendering_makes_the_same_derivatives(tmp_path: Path) -> None:
    # threads=2 encodes the full-size derivative in a second thread; the bytes must not change.
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.jpg").write_bytes(gen.with_orientation(gen.gradient(300, 200), 6))
    instructions = parse_instructions(
        {
            "o": {"size": "full", "format": "jpg", "rotation": "-1"},
            "f": {"size": "full", "format": "png"},
            "k": {"size": "!100,100", "format": "jpg"},
            "s": {"size": "full", "region": "-1,-1,50,50", "format": "png"},
        }
    )
    settings = Config(
        source=StoreSpec("disk", path=str(source)), derivatives=StoreSpec("disk", path="")
    )
    outputs = []
    for threads in (1, 2):
        out = tmp_path / f"out{threads}"
        out.mkdir()
        report = process_uri(
            "a.jpg",
            settings,
            instructions,
            DiskStore(str(source)),
            DiskStore(str(out)),
            ReportOptions(),
            threads=threads,
        )
        outputs.append(
            (report["dimensions"], {k: (out / v).read_bytes() for k, v in report["uris"].items()})
        )
    assert outputs[0] == outputs[1]


def _pool_with_two_workers(
    budget: int, stop: StopSignal | None = None, stop_seconds: float = 20.0
) -> tuple[Any, list[Any]]:
    """The parent's pool logic with two workers on plain pipes (no processes started)."""
    config = Config(StoreSpec("memory"), StoreSpec("memory"))
    store = MemoryStore()
    job = WorkerJob(config, INSTRUCTIONS, store, store, ReportOptions(), 1, budget, None)
    pool = Pool(job, budget, deque(), stop=stop, stop_seconds=stop_seconds)
    ends = []
    for _ in range(2):
        parent, child = multiprocessing.Pipe()
        worker = _Worker(parent, uri="x.jpg")
        pool.busy.append(worker)
        ends.append((worker, child))
    return pool, ends


def test_the_parent_holds_back_a_decode_that_does_not_fit_the_shared_budget() -> None:
    pool, [(first, first_end), (second, second_end)] = _pool_with_two_workers(100)
    pool.handle(first, ("need", 80))
    pool.handle(second, ("need", 50))
    pool.admit()
    assert (first_end.poll(), second_end.poll()) == (True, False)


def test_the_parent_admits_the_held_decode_when_memory_is_freed() -> None:
    pool, [(first, _), (second, second_end)] = _pool_with_two_workers(100)
    pool.handle(first, ("need", 80))
    pool.handle(second, ("need", 50))
    pool.admit()
    pool.handle(first, ("free", 0))
    pool.admit()
    assert second_end.recv() == "go"


def _stopped(stop_seconds: float) -> tuple[Any, list[Any]]:
    """A pool of two workers, both holding a URI, after SIGTERM."""
    stop = StopSignal()
    pool, ends = _pool_with_two_workers(100, stop, stop_seconds)
    stop.set()
    pool.begin_stop()
    return pool, ends


def _reply(end: Any) -> str | None:
    """The parent's answer on a worker's end of the pipe (None: no answer)."""
    return end.recv() if end.poll(2) else None


def test_after_sigterm_a_decode_not_yet_admitted_is_abandoned() -> None:
    pool, [(first, first_end), _] = _stopped(60)
    pool.handle(first, ("need", 10))
    assert _reply(first_end) == "abandon"


def test_after_sigterm_an_image_may_still_publish_within_the_stop_seconds() -> None:
    pool, [(first, first_end), _] = _stopped(60)
    pool.handle(first, ("publish", 0))
    assert _reply(first_end) == "go"


def test_after_sigterm_an_image_may_not_publish_past_the_stop_seconds() -> None:
    pool, [(first, first_end), _] = _stopped(0)
    pool.handle(first, ("publish", 0))
    assert _reply(first_end) == "abandon"


def test_after_sigterm_a_worker_past_the_stop_seconds_is_killed_and_its_image_abandoned() -> None:
    pool, [(first, first_end), _] = _stopped(0)
    first.process = subprocess.Popen(["sleep", "60"])
    pool.enforce_deadline()
    first_end.close()  # the killed worker's end of the pipe closes with it
    pool.died(first)
    assert (first.process.returncode, pool.results["x.jpg"]) == (
        -signal.SIGKILL,
        {"origin": "x.jpg", "error": ABANDONED},
    )


def _publishing_past_the_deadline(seconds: float) -> _Worker:
    """A worker publishing ``seconds`` after the stop deadline (SIGTERM with -stop-seconds 0),
    once the parent enforced the deadline."""
    pool, [(first, _), _] = _stopped(0)
    assert pool.stop is not None and pool.stop.at is not None
    pool.stop.at -= seconds
    first.process = subprocess.Popen(["sleep", "60"])
    first.publishing = True
    pool.enforce_deadline()
    return first


def test_after_sigterm_a_publish_under_way_gets_its_grace_past_the_deadline() -> None:
    worker = _publishing_past_the_deadline(PUBLISH_GRACE - 0.5)
    assert worker.process is not None
    try:
        worker.process.wait(1)  # a kill takes a moment to land
    except subprocess.TimeoutExpired:
        running = True
    else:
        running = False
    worker.process.kill()
    worker.process.wait()
    assert running


def test_after_sigterm_a_publish_is_stopped_once_its_grace_is_over() -> None:
    worker = _publishing_past_the_deadline(PUBLISH_GRACE + 0.5)
    assert worker.process is not None and worker.process.wait(5) == -signal.SIGKILL


def test_after_sigterm_the_parent_wakes_at_the_deadline_while_no_worker_speaks() -> None:
    # Two workers busy and silent: the wait for them ends at the deadline (to stop them), not
    # when one of them next speaks.
    pool, _ends = _stopped(0.2)  # the workers' ends stay open: they are busy, not dead
    waiting = threading.Thread(target=pool.step, daemon=True)
    waiting.start()
    waiting.join(3)
    assert not waiting.is_alive()


def test_after_sigterm_the_uris_not_started_are_abandoned() -> None:
    stop = StopSignal()
    pool, _ = _pool_with_two_workers(100, stop)
    pool.queue.extend(["q1.jpg", "q2.jpg"])
    stop.set()
    pool.begin_stop()
    assert (list(pool.queue), pool.results["q2.jpg"]) == (
        [],
        {"origin": "q2.jpg", "error": ABANDONED},
    )


def test_memory_stores_are_shared_by_threads_not_processes() -> None:
    # A mem:// store lives in this process: several URIs still all land in it.
    source, out = MemoryStore(), MemoryStore()
    for uri in ("a.jpg", "b.jpg"):
        source.write(uri, gen.jpeg(), "image/jpeg")
    config = Config(StoreSpec("memory"), StoreSpec("memory"), workers=2)
    results = process_uris(["a.jpg", "b.jpg"], config, INSTRUCTIONS, source, out, ReportOptions())
    assert sorted(out.objects) == sorted(results[uri]["uris"]["a"] for uri in ("a.jpg", "b.jpg"))


def test_a_worker_that_cannot_start_fails_every_uri_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    results, _ = _run(tmp_path, ["a.jpg", "b.jpg"])
    assert [entry["error"].split(":")[:2] for entry in results.values()] == [
        ["internal error", " cannot start a worker process"]
    ] * 2
