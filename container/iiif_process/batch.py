"""A batch of URIs: what one URI's work is in a worker (:func:`run_one`), which failures a
re-run may fix, and :func:`process_uris`, which sizes the workers, their libvips threads and the
shared memory budget and hands the URIs to the worker pool (:mod:`iiif_process.pool`: worker
processes, admission, a killed worker, SIGTERM, the ledger).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .config import Config
from .errors import IIIFProcessError, SourceNotFoundError, StoreError
from .ledger import Ledger
from .logs import setup_logging
from .memory import memory_budget
from .params import Instruction
from .pool import ABANDONED, DEFAULT_STOP_SECONDS, Abandoned, Pool, StopSignal
from .process import ReportOptions, available_cpus, process_uri
from .stores import DiskStore, S3Store, Store
from .transform import configure_vips

log = logging.getLogger(__name__)

# S3 error codes no re-run fixes.
_PERMANENT_S3 = {"AccessDenied", "NoSuchBucket", "InvalidObjectState", "InvalidRequest"}


def retryable(exc: BaseException) -> bool:
    """Whether a re-run may fix a failure: S3 throttling, network and disk trouble yes; a
    missing object, an unsafe key, a bad or oversized image, a bad parameter no."""
    if isinstance(exc, MemoryError):
        return True
    if isinstance(exc, SourceNotFoundError) or not isinstance(exc, StoreError):
        return False
    cause = exc.__cause__
    response = getattr(cause, "response", None)
    code = response.get("Error", {}).get("Code", "") if isinstance(response, dict) else ""
    return code not in _PERMANENT_S3


@dataclass(frozen=True)
class WorkerJob:
    """What a worker needs (sent to it once, at start)."""

    config: Config
    instructions: tuple[Instruction, ...]
    source: Store
    derivatives: Store
    report: ReportOptions
    concurrency: int
    budget: int
    log_level: int | None  # None: the parent has no log handler, leave logging alone

    def prepare(self) -> None:
        """In a new worker process: the parent's log level, and libvips' threads."""
        if self.log_level is not None:
            setup_logging(self.log_level <= logging.DEBUG)
        configure_vips(concurrency=self.concurrency)
        if self.needs_numpy:
            # numpy's import (about 40 ms of CPU) is the worker's start-up, paid once: left to
            # the first dither or service, it was billed to the first image of every worker.
            import numpy  # noqa: F401

    @property
    def needs_numpy(self) -> bool:
        """Whether this job's images use numpy: the services, and the dither (Atkinson)."""
        return bool(self.config.services) or any(
            ins.quality.kind == "dither" for ins in self.instructions
        )

    def run(self, uri: str, gate: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Process one URI in this worker (:func:`run_one`)."""
        return run_one(uri, self, gate)


def run_one(uri: str, job: WorkerJob, gate: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Process one URI; returns its stdout entry and what the ledger needs to know of it."""
    started = time.monotonic()
    # This process's CPU (libvips' threads included): a worker process holds one image at a
    # time, so this is the image's. (Worker threads in one process count each other's too.)
    cpu_started = time.process_time()
    facts: dict[str, Any] = {}
    meta: dict[str, Any] = {"retryable": False}
    try:
        entry = process_uri(
            uri,
            job.config,
            job.instructions,
            job.source,
            job.derivatives,
            job.report,
            gate,
            threads=job.concurrency,
            facts=facts,
        )
        meta["derivatives"] = len(entry.get("uris", {}))
    except Abandoned:
        log.warning("abandoned", extra={"uri": uri})
        entry, meta["retryable"] = {"origin": uri, "error": ABANDONED}, True
    except IIIFProcessError as exc:
        log.error("failed", extra={"uri": uri, "error": str(exc), "kind": type(exc).__name__})
        entry, meta["retryable"] = {"origin": uri, "error": str(exc)}, retryable(exc)
    except MemoryError:
        log.exception("failed: out of memory", extra={"uri": uri})
        entry = {"origin": uri, "error": "out of memory while processing this image"}
        meta["retryable"] = True
    except Exception as exc:  # one image's failure never stops the others
        log.exception("failed unexpectedly", extra={"uri": uri})
        entry = {"origin": uri, "error": f"internal error: {type(exc).__name__}: {exc}"}
    meta.update(
        seconds=round(time.monotonic() - started, 3),
        cpu_seconds=round(time.process_time() - cpu_started, 3),
        **facts,
    )
    return entry, meta


def _portable(store: Store | None) -> bool:
    """Whether a worker process can reopen the store (a memory store lives in this process)."""
    if store is None or isinstance(store, DiskStore):
        return True
    return isinstance(store, S3Store) and store.portable


def process_uris(
    uris: Sequence[str],
    config: Config,
    instructions: Sequence[Instruction],
    source: Store,
    derivatives: Store,
    report: ReportOptions,
    *,
    stop: StopSignal | None = None,
    ledger: Ledger | None = None,
    stop_seconds: float = DEFAULT_STOP_SECONDS,
) -> dict[str, dict[str, Any]]:
    """Process many URIs, each in a worker process (one per CPU, or ``config.workers``).

    Returns one entry per distinct URI (a report, or ``{"origin", "error"}``), in input order.
    With ``stop`` set (SIGTERM), URIs not finished are ``abandoned`` entries.
    """
    unique = list(dict.fromkeys(uris))
    cpus = available_cpus()
    workers = max(1, min(config.workers or cpus, len(unique) or 1))
    # Each worker runs its own libvips pipelines; give libvips the CPUs the workers leave idle
    # (one URI on N CPUs also overlaps its full-size encodes with the resizing).
    concurrency = max(1, cpus // workers)
    processes = all(_portable(store) for store in (source, derivatives, report.store))
    budget_mb = config.memory_budget_mb
    # The parent is a process of its own when the workers are processes.
    budget = budget_mb << 20 if budget_mb else memory_budget(workers + (1 if processes else 0))
    level = logging.getLogger("iiif_process")
    job = WorkerJob(
        config,
        tuple(instructions),
        source,
        derivatives,
        report,
        concurrency=concurrency,
        budget=budget,
        log_level=level.getEffectiveLevel() if level.handlers else None,
    )
    if not processes:
        configure_vips(concurrency=concurrency)  # the worker threads run in this process
    log.debug(
        "starting",
        extra={
            "count": len(unique),
            "workers": workers,
            "kind": "processes" if processes else "threads",
            "cpus": cpus,
            "budget_mb": budget >> 20,
        },
    )
    pool = Pool(job, budget, deque(unique), stop, ledger, stop_seconds)
    results = pool.run(workers, processes)
    fallback = ABANDONED if stop is not None and stop.requested else None
    out: dict[str, dict[str, Any]] = {}
    for uri in unique:
        if uri in results:
            out[uri] = results[uri]
        elif fallback:
            pool.abandon(uri)
            out[uri] = results[uri]
        else:
            out[uri] = {"origin": uri, "error": "internal error: no result from the workers"}
    return out


__all__ = [
    "WorkerJob",
    "process_uris",
    "retryable",
    "run_one",
]
