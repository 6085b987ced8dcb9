"""Per-URI orchestration: read → check → decode once → render everything in memory → publish.

Every URI ends with all its derivatives and its report written, or with an error entry saying why;
a failure while writing removes what was already written for that URI, so no partial set is
published.

Parallelism: several URIs on several CPUs run in a pool of workers, one per CPU: the parent's
own thread plus worker processes (started with ``spawn``, never forked after libvips started its
threads), each running libvips with the CPUs it has to itself. The parent hands out one URI at a
time, admits each decode against one memory budget for the whole task (a worker asks before
decoding and waits for room), and turns a worker that dies (killed, out of memory) into an error
entry for the URI it held, then starts a replacement for the rest. One URI, or one CPU, runs in
this process with no pool; an image with CPUs to spare encodes its full-size derivatives in a
second thread while the resized ones are made (libvips releases the GIL; the JPEG encoder is
serial).
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from .config import Config
from .errors import IIIFProcessError
from .logs import setup_logging
from .params import Instruction
from .report import build_report, report_key, report_name
from .services import compute_services, fit_box
from .stores import DiskStore, S3Store, Store, file_sha1, local_source, safe_key
from .transform import Rendered, Renderer, SourceImage, configure_vips, probe, vips_warnings

log = logging.getLogger(__name__)

# Interpreter, libvips and buffers of one process, outside the images' budget.
PROCESS_BASELINE = 150 << 20


@dataclass(frozen=True)
class ReportOptions:
    """Whether and where reports are stored."""

    enabled: bool = False
    name_template: str = "process.json"
    store: Store | None = None  # None = the derivatives store


def available_cpus() -> int:
    """CPUs this process may use: the cgroup CPU quota (a Fargate task's vCPUs) or affinity."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpus = cpus or 1
    quota: float | None = None
    try:
        with open("/sys/fs/cgroup/cpu.max") as handle:
            limit, period = handle.read().split()[:2]
            if limit != "max":
                quota = int(limit) / int(period)
    except (OSError, ValueError):
        try:
            with (
                open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as q,
                open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as p,
            ):
                limit_us, period_us = int(q.read()), int(p.read())
                if limit_us > 0:
                    quota = limit_us / period_us
        except (OSError, ValueError):
            pass
    if quota:
        cpus = min(cpus, max(1, round(quota)))
    return cpus


def _publish(uri: str, items: list[tuple[Store, str, bytes, str]]) -> None:
    """Write every object in order (the report, last in ``items``, only after every derivative);
    on a failure delete only what this run created, then re-raise.

    An object that existed before this run (a derivative of an earlier, complete run) is never
    deleted: it was replaced or it is still the earlier one, and the earlier report still
    describes files that exist. Which keys exist is asked once per store before writing.
    """
    before: dict[int, set[str]] = {}
    for store, _key, _data, _type in items:
        if id(store) not in before:
            before[id(store)] = store.existing([k for s, k, _d, _t in items if s is store])
    created: list[tuple[Store, str]] = []
    try:
        for store, key, data, content_type in items:
            store.write(key, data, content_type)
            if key not in before[id(store)]:
                created.append((store, key))
    except Exception:
        for store, key in created:
            try:
                store.delete(key)
            except Exception as exc:
                log.error(
                    "could not remove a derivative after a failed write",
                    extra={"uri": uri, "key": key, "error": str(exc)},
                )
        raise


class Gate(Protocol):
    """Admission of decoded images against a memory budget."""

    def reserve(self, amount: int) -> Any:
        """A context manager holding ``amount`` bytes of the budget while it is open."""


class MemoryGate:
    """Admits images while their estimated memory fits a budget, so parallel workers never
    decode more than the task can hold (an image bigger than the whole budget runs alone)."""

    def __init__(self, budget: int) -> None:
        self.budget = max(1, budget)
        self.used = 0
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self, amount: int) -> Iterator[None]:
        """Hold ``amount`` bytes of the budget for the duration of the block."""
        amount = min(amount, self.budget)
        with self._cond:
            self._cond.wait_for(lambda: self.used == 0 or self.used + amount <= self.budget)
            self.used += amount
        try:
            yield
        finally:
            with self._cond:
                self.used -= amount
                self._cond.notify_all()


def memory_budget(processes: int = 1) -> int:
    """Bytes the images may take: 70 % of the cgroup memory limit (the task's memory) or of
    the physical memory, less a baseline per process for the interpreter and libraries."""
    limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as handle:
                value = handle.read().strip()
            if value != "max":
                limit = min(limit, int(value))
            break
        except (OSError, ValueError):
            continue
    return max(256 << 20, int(limit * 0.7) - PROCESS_BASELINE * max(1, processes))


def _full_size(instruction: Instruction) -> bool:
    """Whether a derivative is the whole image at full size (its encode is the longest job)."""
    return instruction.region.kind == "full" and instruction.size.kind in ("full", "max")


def _render(
    image: SourceImage,
    config: Config,
    instructions: Sequence[Instruction],
    key: str,
    side: Executor | None = None,
) -> tuple[list[Rendered], dict[str, Any]]:
    """Every derivative and the services; with a ``side`` thread, the full-size derivatives are
    encoded there while this thread makes the resized ones."""
    renderer = Renderer(image, keep_metadata=config.keep_metadata)
    offloaded: dict[int, Future[Rendered]] = {}
    if side is not None and not all(_full_size(ins) for ins in instructions):
        offloaded = {
            index: side.submit(renderer.render, ins, key)
            for index, ins in enumerate(instructions)
            if _full_size(ins)
        }
    try:
        here = {
            index: renderer.render(ins, key)
            for index, ins in enumerate(instructions)
            if index not in offloaded
        }
        services: dict[str, Any] = {}
        if config.services:
            base = image.base(True)
            width, height = fit_box(base.width, base.height, config.blurhash_size)
            thumbnail = image.scaled(True, width, height, keep=True)
            services = compute_services(
                config.services,
                thumbnail,
                x=config.blurhash_x,
                y=config.blurhash_y,
                count=config.palette_count,
                extruder=config.palette_extruder,
            )
    finally:
        # Never leave a side job running on pixels that are about to be freed.
        for future in offloaded.values():
            future.exception()
    rendered = [
        offloaded[index].result() if index in offloaded else here[index]
        for index in range(len(instructions))
    ]
    return rendered, services


def process_uri(
    uri: str,
    config: Config,
    instructions: Sequence[Instruction],
    source: Store,
    derivatives: Store,
    report: ReportOptions,
    gate: Gate | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Process one URI completely; raises an :class:`IIIFProcessError` saying why it failed.

    ``threads`` > 1 (CPUs to spare) overlaps the fingerprint with the decode and the full-size
    encodes with the resizing.
    """
    started = time.monotonic()
    gate = gate or MemoryGate(memory_budget())
    key = safe_key(uri)
    side = ThreadPoolExecutor(1, thread_name_prefix="iiif-side") if threads > 1 else None
    # The source is a file on the task's disk (streamed there, never whole in memory; refused
    # from its size first), removed when the block ends.
    with local_source(source, key, config.max_source_bytes) as local, vips_warnings(uri):
        try:
            fingerprint: Future[str] | str
            if local.sha1:
                fingerprint = local.sha1
            else:
                fingerprint = side.submit(file_sha1, local.path) if side else file_sha1(local.path)
            header = probe(local.path, local.size, config.max_pixels)
            with gate.reserve(header.working_bytes):
                rendered, services = _render(SourceImage(header), config, instructions, key, side)
                del header  # the decoded pixels go before the (slow) writes
            if isinstance(fingerprint, Future):
                fingerprint = fingerprint.result()
        finally:
            if side:
                side.shutdown()
    result = build_report(key, fingerprint, rendered, services)
    items = [(derivatives, r.key, r.data, r.instruction.content_type) for r in rendered]
    if report.enabled:
        body = json.dumps(result, separators=(",", ":")).encode()
        name = report_key(key, report_name(key, report.name_template))
        items.append((report.store or derivatives, name, body, "application/json"))
    _publish(key, items)
    log.info(
        "processed",
        extra={
            "uri": uri,
            "derivatives": len(rendered),
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    return result


def _safe_process(uri: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        return process_uri(uri, *args, **kwargs)
    except IIIFProcessError as exc:
        log.error("failed", extra={"uri": uri, "error": str(exc), "kind": type(exc).__name__})
        return {"origin": uri, "error": str(exc)}
    except Exception as exc:  # one image's failure never stops the others
        log.exception("failed unexpectedly", extra={"uri": uri})
        return {"origin": uri, "error": f"internal error: {type(exc).__name__}: {exc}"}


# --- the process pool -------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerJob:
    """What a worker process needs (pickled to it once, at start)."""

    config: Config
    instructions: tuple[Instruction, ...]
    source: Store
    derivatives: Store
    report: ReportOptions
    concurrency: int
    log_level: int | None  # None: the parent has no log handler, leave logging alone


class _ParentGate:
    """The worker's side of the parent's memory admission: ask, wait for "go", say "free"."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @contextmanager
    def reserve(self, amount: int) -> Iterator[None]:
        self.conn.send(("need", amount))
        reply = self.conn.recv()
        if reply != "go":
            raise RuntimeError(f"unexpected message from the parent: {reply!r}")
        try:
            yield
        finally:
            self.conn.send(("free", 0))


def _serve(conn: Connection, job: WorkerJob) -> None:
    """Process the URIs the parent sends until it sends ``None`` (or goes away)."""
    gate = _ParentGate(conn)
    while True:
        try:
            uri = conn.recv()
        except (EOFError, OSError):  # the parent went away
            return
        if uri is None:
            return
        # With fewer URIs than CPUs a worker has CPUs to spare: overlap its encodes too.
        result = _safe_process(
            uri,
            job.config,
            job.instructions,
            job.source,
            job.derivatives,
            job.report,
            gate,
            threads=job.concurrency,
        )
        conn.send(("done", result))


def worker_main(conn: Connection, job: WorkerJob) -> None:
    """A worker process's entry point."""
    if job.log_level is not None:
        setup_logging(job.log_level <= logging.DEBUG)
    configure_vips(concurrency=job.concurrency)
    _serve(conn, job)


@dataclass(eq=False)
class _Worker:
    conn: Connection
    process: BaseProcess | None = None  # None: the thread working in the parent
    thread: threading.Thread | None = None
    uri: str | None = None
    wants: int = 0  # bytes asked for, not yet granted
    holds: int = 0  # bytes granted


@dataclass
class _Pool:
    """The parent's side: hands out URIs, admits decodes, turns dead workers into errors.

    The parent works too, in a thread, so a run on N CPUs starts only N - 1 processes and the
    parent's share starts at once, while the processes are still importing.
    """

    job: WorkerJob
    budget: int
    queue: deque[str]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    busy: list[_Worker] = field(default_factory=list)
    waiting: deque[_Worker] = field(default_factory=deque)
    used: int = 0
    started: list[_Worker] = field(default_factory=list)

    def start_process(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=worker_main, args=(child, self.job), name="iiif-worker", daemon=True
        )
        process.start()
        child.close()
        self._add(_Worker(parent, process=process))

    def start_thread(self) -> None:
        parent, child = multiprocessing.Pipe()
        thread = threading.Thread(
            target=_serve, args=(child, self.job), name="iiif-parent-worker", daemon=True
        )
        thread.start()
        self._add(_Worker(parent, thread=thread))

    def _add(self, worker: _Worker) -> None:
        self.started.append(worker)
        self.busy.append(worker)
        self.next_uri(worker)

    def next_uri(self, worker: _Worker) -> None:
        worker.uri = self.queue.popleft() if self.queue else None
        try:
            worker.conn.send(worker.uri)
        except OSError:
            if worker.uri is not None:
                self.died(worker)
                return
        if worker.uri is None:
            self.busy.remove(worker)

    def release(self, worker: _Worker) -> None:
        self.used -= worker.holds
        worker.holds = worker.wants = 0
        if worker in self.waiting:
            self.waiting.remove(worker)

    def handle(self, worker: _Worker, message: tuple[str, Any]) -> None:
        kind, value = message
        if kind == "need":
            worker.wants = min(max(1, int(value)), self.budget)
            self.waiting.append(worker)
        elif kind == "free":
            self.release(worker)
        elif kind == "done":
            self.results[worker.uri or ""] = value
            self.release(worker)
            self.next_uri(worker)

    def died(self, worker: _Worker) -> None:
        uri = worker.uri or ""
        if worker.process is not None:
            worker.process.join(5)
            code = worker.process.exitcode
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
            error = f"worker process died ({how}; out of memory?) while processing this image"
        else:
            error = "internal error: the worker thread stopped while processing this image"
        log.error("worker died", extra={"uri": uri, "error": error})
        self.results[uri] = {"origin": uri, "error": error}
        self.release(worker)
        worker.uri = None
        worker.conn.close()
        self.busy.remove(worker)
        if self.queue:
            self.start_process()

    def admit(self) -> None:
        while self.waiting and (self.used == 0 or self.used + self.waiting[0].wants <= self.budget):
            worker = self.waiting.popleft()
            self.used += worker.wants
            worker.holds, worker.wants = worker.wants, 0
            # A worker that died meanwhile is noticed through its sentinel on the next round.
            with contextlib.suppress(OSError):
                worker.conn.send("go")

    def step(self) -> None:
        """Wait for any worker to say something or die, and act on it."""
        lookup: dict[Any, _Worker] = {}
        for worker in self.busy:
            lookup[worker.conn] = worker
            if worker.process is not None:
                lookup[worker.process.sentinel] = worker
        for ready in wait(list(lookup)):
            worker = lookup[ready]
            if worker not in self.busy:
                continue
            try:
                while worker.uri is not None and worker.conn.poll():
                    self.handle(worker, worker.conn.recv())
            except (EOFError, OSError):
                self.died(worker)
                continue
            if worker in self.busy and worker.process and not worker.process.is_alive():
                self.died(worker)
        self.admit()

    def close(self) -> None:
        for worker in self.started:
            worker.conn.close()  # a worker still waiting for a URI sees EOF and stops
        for worker in self.started:
            if worker.thread is not None:
                worker.thread.join()
                continue
            assert worker.process is not None
            worker.process.join(2)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(2)


def _portable(store: Store | None) -> bool:
    """Whether a worker process can reopen the store (a memory store lives in this process)."""
    if store is None or isinstance(store, DiskStore):
        return True
    return isinstance(store, S3Store) and store.portable


def _run_pool(uris: Sequence[str], job: WorkerJob, workers: int, budget: int) -> dict[str, Any]:
    pool = _Pool(job, budget, deque(uris))
    try:
        for _ in range(min(workers, len(uris)) - 1):
            pool.start_process()
        pool.start_thread()
        while pool.busy:
            pool.step()
    finally:
        pool.close()
    return pool.results


def process_uris(
    uris: Sequence[str],
    config: Config,
    instructions: Sequence[Instruction],
    source: Store,
    derivatives: Store,
    report: ReportOptions,
) -> dict[str, dict[str, Any]]:
    """Process many URIs in parallel: one worker process per CPU (none for a single URI).

    Returns one entry per distinct URI (a report, or ``{"origin", "error"}``), in input order.
    """
    unique = list(dict.fromkeys(uris))
    cpus = available_cpus()
    workers = max(1, min(config.workers or cpus, len(unique) or 1))
    # Each worker runs its own libvips pipelines; give libvips the CPUs the workers leave idle.
    concurrency = max(1, cpus // workers)
    budget_mb = config.memory_budget_mb
    args = (config, tuple(instructions), source, derivatives, report)
    if workers == 1:
        configure_vips(concurrency=concurrency)
        gate = MemoryGate(budget_mb << 20 if budget_mb else memory_budget())
        log.debug("starting", extra={"count": len(unique), "workers": 1, "cpus": cpus})
        return {uri: _safe_process(uri, *args, gate, threads=concurrency) for uri in unique}
    if all(_portable(store) for store in (source, derivatives, report.store)):
        level = logging.getLogger("iiif_process")
        job = WorkerJob(
            *args,
            concurrency=concurrency,
            log_level=level.getEffectiveLevel() if level.handlers else None,
        )
        budget = budget_mb << 20 if budget_mb else memory_budget(workers)
        configure_vips(concurrency=concurrency)  # for the parent's own worker thread
        log.debug("starting", extra={"count": len(unique), "processes": workers, "cpus": cpus})
        results = _run_pool(unique, job, workers, budget)
        lost = {"error": "internal error: no result from the worker processes"}
        return {uri: results.get(uri, {"origin": uri, **lost}) for uri in unique}
    # A store that lives in this process (mem://): threads, sharing it.
    configure_vips(concurrency=concurrency)
    gate = MemoryGate(budget_mb << 20 if budget_mb else memory_budget())
    log.debug("starting", extra={"count": len(unique), "threads": workers, "cpus": cpus})
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="iiif") as pool:
        futures = {uri: pool.submit(_safe_process, uri, *args, gate) for uri in unique}
        return {uri: future.result() for uri, future in futures.items()}
