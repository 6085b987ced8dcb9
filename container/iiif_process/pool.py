"""The worker pool: long-lived worker processes (or threads), one image each at a time, the
parent's admission of decodes against the task's memory, a killed worker turned into an error
entry and replaced, SIGTERM, and each outcome recorded (metrics, ledger) as it happens.

Workers are child processes (``python -m iiif_process.worker``), one per CPU (or ``-workers``),
each taking one URI at a time from the parent; a batch pays for one start-up per worker, not per
image. The parent holds the results and decodes nothing, so whatever kills a worker (the
kernel's out-of-memory killer on a decode too big for the task, a crash in a codec) costs only
the image it held: that URI gets an error entry naming the signal, a new worker takes the rest.
Children are started as new interpreters running our module (never forked after libvips started
its threads, and never re-running the parent's ``__main__``, which in the image is a script that
runs the tool).

The pool does not know what a URI's work is: the job it is given (sent to each worker once, at
start) does it, through :meth:`Job.run`. :mod:`iiif_process.batch` supplies that job.

Protocol on the pipe between parent and worker (pickled tuples):
worker → parent ``("need", bytes)`` before a decode, ``("free", 0)`` after it, ``("publish", 0)``
before the first write, ``("done", entry, meta)``; parent → worker a URI (or None: exit),
``"go"`` or ``"abandon"`` (the batch is stopping: publish nothing).

Stores that live in this process (``mem://``, a client passed in by a test) cannot move to a
worker process; such a batch runs the same protocol with worker threads in this process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import Pipe
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from . import metrics
from .ledger import Ledger
from .memory import admits, check_fits

log = logging.getLogger(__name__)

ABANDONED = "abandoned: stopped by SIGTERM before it finished"
# After SIGTERM: how long images in progress may go on, and how long a publish already under way
# may take beyond that before its worker is stopped too; with the ledger's last writes (3 s, see
# process_cli.py) the worst case stays inside Fargate's default 30 s stop timeout.
DEFAULT_STOP_SECONDS = 20.0
PUBLISH_GRACE = 4.0


class Abandoned(Exception):
    """The batch is stopping: this image is given up before anything of it is published."""


class StopSignal:
    """Set by the SIGTERM handler: the batch takes no new image. Readable through a pipe, so the
    parent waiting on its workers wakes at once."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self.at: float | None = None  # time.monotonic() of the signal

    def set(self, *_: Any) -> None:
        """Request the stop (safe in a signal handler)."""
        if self.at is None:
            self.at = time.monotonic()
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write, b"x")

    @property
    def requested(self) -> bool:
        """Whether the stop was requested."""
        return self.at is not None

    def fileno(self) -> int:
        """Readable once the stop was requested."""
        return self._read

    def install(self) -> None:
        """Handle SIGTERM (also as PID 1, where the kernel ignores a signal without a handler)."""
        signal.signal(signal.SIGTERM, self.set)


class Job(Protocol):
    """What a worker runs (pickled to each worker process once, so its class must be importable
    there): the shared memory budget, and the work of one URI."""

    budget: int

    def prepare(self) -> None:
        """Set up a worker process once, before its first URI (not called for threads, which
        share the parent's setup)."""
        ...

    def run(self, uri: str, gate: ParentGate) -> tuple[dict[str, Any], dict[str, Any]]:
        """Process one URI; its stdout entry and what the ledger and metrics need of it."""
        ...


class ParentGate:
    """The worker's side of the parent's admission: ask, wait for "go", say "free"; and ask
    before publishing, so a stopping batch publishes nothing it has not started to write."""

    def __init__(self, conn: Connection, budget: int) -> None:
        self.conn = conn
        self.budget = budget

    def _ask(self, message: tuple[str, int]) -> None:
        self.conn.send(message)
        reply = self.conn.recv()
        if reply == "abandon":
            raise Abandoned(ABANDONED)
        if reply != "go":
            raise RuntimeError(f"unexpected message from the parent: {reply!r}")

    @contextmanager
    def reserve(self, amount: int, what: str = "") -> Iterator[None]:
        """Hold ``amount`` bytes of the shared budget while the block runs."""
        check_fits(amount, self.budget, what)
        self._ask(("need", amount))
        try:
            yield
        finally:
            self.conn.send(("free", 0))

    def may_publish(self) -> None:
        """Raise :class:`Abandoned` if the batch is stopping and this image may not publish."""
        self._ask(("publish", 0))


def serve(conn: Connection, job: Job) -> None:
    """Process the URIs the parent sends until it sends None or goes away."""
    gate = ParentGate(conn, job.budget)
    while True:
        try:
            uri = conn.recv()
        except (EOFError, OSError):  # the parent went away
            return
        if uri is None:
            return
        entry, meta = job.run(uri, gate)
        try:
            conn.send(("done", entry, meta))
        except OSError:  # the parent gave up on this worker
            return


def image_metrics(entry: dict[str, Any], meta: dict[str, Any]) -> None:
    """One image's EMF lines (docs/contracts.md "Metrics"): succeeded with what it wrote, or
    failed by reason class; its wall and CPU seconds when a worker measured them."""
    timing = {
        name: float(meta[key])
        for name, key in (("ImageSeconds", "seconds"), ("ImageCpuSeconds", "cpu_seconds"))
        if key in meta
    }
    if "error" in entry:
        reason = metrics.reason_class(str(entry["error"]), bool(meta.get("retryable")))
        metrics.emit({"ImagesFailed": 1}, reason=reason)
        if timing:
            metrics.emit(timing)
        return
    written = {
        "BytesWritten": int(meta.get("bytes_written", 0)),
        "ObjectsWritten": int(meta.get("objects_written", 0)),
    }
    metrics.emit({"ImagesSucceeded": 1, **timing, **written})


# --- the parent's side ------------------------------------------------------------------------


@dataclass(eq=False)
class _Worker:
    conn: Connection
    process: subprocess.Popen[bytes] | None = None  # None: a thread of this process
    thread: threading.Thread | None = None
    uri: str | None = None
    wants: int = 0  # bytes asked for, not yet granted
    holds: int = 0  # bytes granted
    publishing: bool = False
    stopped: bool = False  # stopped by the parent (SIGTERM): its image is abandoned
    cpu: int | None = None  # the CPU its process is pinned to


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Pool:
    """Hands out URIs one at a time, admits decodes against the budget, turns a dead worker into
    an error entry and replaces it, stops on SIGTERM, and records each outcome in the ledger as
    it happens."""

    job: Job
    budget: int
    queue: deque[str]
    stop: StopSignal | None = None
    ledger: Ledger | None = None
    stop_seconds: float = DEFAULT_STOP_SECONDS
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    busy: list[_Worker] = field(default_factory=list)
    waiting: deque[_Worker] = field(default_factory=deque)
    used: int = 0
    started: list[_Worker] = field(default_factory=list)
    stopping: bool = False
    start_error: str = ""
    # One CPU per worker process when there are as many workers as CPUs (see start_process).
    cpus: list[int] = field(default_factory=list)

    # --- workers ---

    def _free_cpu(self) -> int | None:
        taken = {w.cpu for w in self.busy if w.process is not None}
        return next((cpu for cpu in self.cpus if cpu not in taken), None)

    def start_process(self) -> None:
        """Start a worker process; it gets the job, then its first URI.

        With one worker per CPU, each worker is pinned to a CPU of its own: an unpinned worker
        is moved between CPUs by the scheduler (with the parent and libvips' threads around it)
        and refills its caches each time. Measured on 12 x 24 MP with both CPUs busy, in
        interleaved runs: 0.214 CPU s per image pinned, 0.231 unpinned.
        """
        parent, child = Pipe()
        cpu = self._free_cpu()
        env = dict(os.environ)
        # The worker imports what this process imports (the same package, and the module of
        # any store class it is sent), as multiprocessing's spawn does.
        paths = [_package_root(), *filter(None, sys.path)]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        command = [
            sys.executable,
            *subprocess._args_from_interpreter_flags(),  # type: ignore[attr-defined]
            "-m",
            "iiif_process.worker",
            str(child.fileno()),
            *([] if cpu is None else [str(cpu)]),
        ]
        # Its stdout goes to stderr: stdout carries only the tool's JSON result.
        try:
            process = subprocess.Popen(
                command, pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, stdout=2, env=env
            )
        except OSError as exc:
            log.error("cannot start a worker process", extra={"error": str(exc)})
            self.start_error = f"internal error: cannot start a worker process: {exc}"
            parent.close()
            child.close()
            return
        child.close()
        worker = _Worker(parent, process=process, cpu=cpu)
        with contextlib.suppress(OSError):  # it died at once: noticed as a dead worker
            parent.send(self.job)
        self._add(worker)

    def start_thread(self) -> None:
        """Start a worker thread in this process (stores that cannot move to a process)."""
        parent, child = Pipe()
        thread = threading.Thread(
            target=serve, args=(child, self.job), name="iiif-worker", daemon=True
        )
        thread.start()
        self._add(_Worker(parent, thread=thread))

    def _add(self, worker: _Worker) -> None:
        self.started.append(worker)
        self.busy.append(worker)
        self.next_uri(worker)

    def next_uri(self, worker: _Worker) -> None:
        """Give the worker its next URI, or tell it to exit."""
        worker.uri = self.queue.popleft() if self.queue and not self.stopping else None
        worker.publishing = False
        try:
            worker.conn.send(worker.uri)
        except OSError:
            if worker.uri is not None:
                self.died(worker)
                return
        if worker.uri is None:
            self._retire(worker)

    def _retire(self, worker: _Worker) -> None:
        if worker in self.busy:
            self.busy.remove(worker)
        if worker in self.waiting:
            self.waiting.remove(worker)

    # --- outcomes ---

    def record(self, uri: str, entry: dict[str, Any], meta: dict[str, Any]) -> None:
        """Keep a URI's outcome, write its metrics, and write it to the ledger now."""
        self.results[uri] = entry
        image_metrics(entry, meta)
        if self.ledger is None:
            return
        if "error" in entry:
            self.ledger.failed(
                uri,
                entry["error"],
                bool(meta.get("retryable")),
                seconds=meta.get("seconds"),
                etag=meta.get("etag"),
                size=meta.get("size"),
            )
        else:
            self.ledger.succeeded(
                uri,
                int(meta.get("derivatives", 0)),
                float(meta.get("seconds", 0.0)),
                etag=meta.get("etag"),
                size=meta.get("size"),
            )

    def abandon(self, uri: str) -> None:
        """A URI given up because of SIGTERM (never started, or stopped before publishing)."""
        self.record(uri, {"origin": uri, "error": ABANDONED}, {"retryable": True})

    def release(self, worker: _Worker) -> None:
        self.used -= worker.holds
        worker.holds = worker.wants = 0
        if worker in self.waiting:
            self.waiting.remove(worker)

    def handle(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        """Act on one message of a worker."""
        kind = message[0]
        if kind == "need":
            worker.wants = min(max(1, int(message[1])), self.budget)
            if self.stopping:
                self._reply(worker, "abandon")
                worker.wants = 0
            else:
                self.waiting.append(worker)
        elif kind == "free":
            self.release(worker)
        elif kind == "publish":
            late = self.stopping and self._now() >= self._deadline()
            worker.publishing = not late
            self._reply(worker, "abandon" if late else "go")
        elif kind == "done":
            uri = worker.uri or ""
            self.release(worker)
            if worker.stopped:
                self.abandon(uri)
            else:
                self.record(uri, message[1], message[2] if len(message) > 2 else {})
            self.next_uri(worker)

    def _reply(self, worker: _Worker, reply: str) -> None:
        # A worker that died meanwhile is noticed when its pipe closes.
        with contextlib.suppress(OSError):
            worker.conn.send(reply)

    def died(self, worker: _Worker) -> None:
        """The worker's pipe closed while it held a URI: an error entry, and a new worker."""
        uri = worker.uri or ""
        if worker.process is not None:
            try:
                code = worker.process.wait(5)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                code = worker.process.wait()
            if code < 0:
                name = _signal_name(-code)
                hint = " (out of memory?)" if -code == signal.SIGKILL else ""
                error = f"worker killed by {name}{hint} while processing this image"
            else:
                error = f"worker exited with status {code} while processing this image"
        else:
            error = "internal error: the worker thread stopped while processing this image"
        self.release(worker)
        self._retire(worker)
        worker.uri = None
        worker.conn.close()
        if worker.stopped:
            self.abandon(uri)
            return
        log.error("worker died", extra={"uri": uri, "error": error})
        self.record(uri, {"origin": uri, "error": error}, {"retryable": True})
        if self.queue and not self.stopping:
            self._replace(worker)

    def _replace(self, worker: _Worker) -> None:
        if worker.process is not None:
            self.start_process()
        else:
            self.start_thread()

    # --- admission ---

    def admit(self) -> None:
        """Let waiting decodes start, in order, while they fit the budget."""
        while self.waiting and admits(self.used, self.waiting[0].wants, self.budget):
            worker = self.waiting.popleft()
            self.used += worker.wants
            worker.holds, worker.wants = worker.wants, 0
            if worker.uri:
                log.info("started", extra={"uri": worker.uri})
                if self.ledger is not None:
                    self.ledger.started(worker.uri)
            self._reply(worker, "go")

    # --- stopping ---

    def _now(self) -> float:
        return time.monotonic()

    def _deadline(self) -> float:
        at = self.stop.at if self.stop is not None and self.stop.at is not None else self._now()
        return at + self.stop_seconds

    def begin_stop(self) -> None:
        """SIGTERM: no new image; waiting decodes are abandoned; images in progress go on until
        the deadline."""
        self.stopping = True
        log.warning(
            "stopping (SIGTERM)",
            extra={"in_progress": len(self.busy), "not_started": len(self.queue)},
        )
        while self.queue:
            self.abandon(self.queue.popleft())
        for worker in list(self.waiting):
            self.waiting.remove(worker)
            worker.wants = 0
            self._reply(worker, "abandon")

    def enforce_deadline(self) -> None:
        """Stop the workers still busy past the deadline (publishing ones get a little more)."""
        now = self._now()
        for worker in list(self.busy):
            limit = self._deadline() + (PUBLISH_GRACE if worker.publishing else 0.0)
            if worker.uri is None or worker.stopped or now < limit:
                continue
            worker.stopped = True
            if worker.publishing:
                log.error("stopping a worker in the middle of a publish", extra={"uri": worker.uri})
            if worker.process is not None:
                with contextlib.suppress(OSError):
                    worker.process.kill()
            else:
                # A thread cannot be killed: its image is abandoned; it is never allowed to
                # publish (nobody answers it any more) and it dies with the process.
                uri = worker.uri
                self.release(worker)
                self._retire(worker)
                worker.conn.close()
                self.abandon(uri)

    # --- the loop ---

    def step(self) -> None:
        """Wait for a worker to say something or die (or for SIGTERM), and act on it."""
        if self.stop is not None and self.stop.requested and not self.stopping:
            self.begin_stop()
        if self.stopping:
            self.enforce_deadline()
        lookup: dict[Any, _Worker] = {worker.conn: worker for worker in self.busy}
        if not lookup:
            return
        objects: list[Any] = list(lookup)
        if self.stop is not None and not self.stopping:
            objects.append(self.stop)
        timeout = None
        if self.stopping:
            timeout = max(0.0, self._deadline() - self._now()) + 0.05
            if any(worker.publishing for worker in self.busy):
                timeout += PUBLISH_GRACE
        for ready in wait(objects, timeout):
            worker = lookup.get(ready)
            if worker is None or worker not in self.busy:
                continue
            try:
                while worker in self.busy and worker.uri is not None and worker.conn.poll():
                    self.handle(worker, worker.conn.recv())
            except (EOFError, OSError):
                if worker in self.busy:
                    self.died(worker)
        self.admit()

    def run(self, workers: int, processes: bool) -> dict[str, dict[str, Any]]:
        """Start the workers and run until every URI has an outcome."""
        affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if processes and workers == len(affinity):
            self.cpus = affinity
        try:
            for _ in range(workers):
                if self.stop is not None and self.stop.requested:
                    break
                if processes:
                    self.start_process()
                else:
                    self.start_thread()
            while self.busy:
                self.step()
            if self.stop is not None and self.stop.requested and not self.stopping:
                self.begin_stop()
            while self.queue:  # no worker could be started for these
                uri = self.queue.popleft()
                error = self.start_error or "internal error: no worker took this image"
                self.record(uri, {"origin": uri, "error": error}, {"retryable": True})
        finally:
            self.close()
        return self.results

    def close(self) -> None:
        """Let idle workers exit; stop any still running."""
        for worker in self.started:
            with contextlib.suppress(OSError):
                worker.conn.close()  # a worker waiting for a URI sees EOF and exits
        for worker in self.started:
            if worker.process is None:
                continue
            try:
                worker.process.wait(0 if self.stopping else 2)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()


__all__ = [
    "ABANDONED",
    "DEFAULT_STOP_SECONDS",
    "Abandoned",
    "Job",
    "ParentGate",
    "Pool",
    "StopSignal",
    "image_metrics",
    "serve",
]
