"""Per-URI orchestration: read → check → decode once → render everything in memory → publish.

Every URI ends with all its derivatives and its report written, or with an error entry saying why;
a failure while writing removes what was already written for that URI, so no partial set is
published. URIs run in parallel on a thread pool (libvips releases the GIL while it works).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .config import Config
from .errors import IIIFProcessError
from .params import Instruction
from .report import build_report, report_key, report_name
from .services import compute_services, fit_box
from .stores import Store, safe_key
from .transform import Rendered, Renderer, SourceImage, configure_vips, probe

log = logging.getLogger(__name__)


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
    """Write every object; on a failure delete what was written, then re-raise."""
    written: list[tuple[Store, str]] = []
    try:
        for store, key, data, content_type in items:
            store.write(key, data, content_type)
            written.append((store, key))
    except Exception:
        for store, key in written:
            try:
                store.delete(key)
            except Exception as exc:
                log.error(
                    "could not remove a derivative after a failed write",
                    extra={"uri": uri, "key": key, "error": str(exc)},
                )
        raise


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


def memory_budget() -> int:
    """Bytes the images may take: 70 % of the cgroup memory limit (the task's memory) or of
    the physical memory, less a baseline for the interpreter and libraries."""
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
    return max(256 << 20, int(limit * 0.7) - (150 << 20))


def _render(
    image: SourceImage, config: Config, instructions: Sequence[Instruction], key: str
) -> tuple[list[Rendered], dict[str, Any]]:
    renderer = Renderer(image)
    rendered = [renderer.render(ins, key) for ins in instructions]
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
    return rendered, services


def process_uri(
    uri: str,
    config: Config,
    instructions: Sequence[Instruction],
    source: Store,
    derivatives: Store,
    report: ReportOptions,
    gate: MemoryGate | None = None,
) -> dict[str, Any]:
    """Process one URI completely; raises an :class:`IIIFProcessError` saying why it failed."""
    started = time.monotonic()
    gate = gate or MemoryGate(memory_budget())
    key = safe_key(uri)
    data = source.read(key)
    fingerprint = hashlib.sha1(data).hexdigest()  # noqa: S324 - go-iiif's fingerprint is sha1
    header = probe(data, config.max_pixels)
    # Decoded pixels plus libvips' working copies; the encoded source is already held.
    with gate.reserve(header.decoded_bytes * 3 // 2 + len(data)):
        rendered, services = _render(SourceImage(header), config, instructions, key)
        del header  # the decoded pixels go before the (slow) writes
    del data
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


def _safe_process(uri: str, *args: Any) -> dict[str, Any]:
    try:
        return process_uri(uri, *args)
    except IIIFProcessError as exc:
        log.error("failed", extra={"uri": uri, "error": str(exc), "kind": type(exc).__name__})
        return {"origin": uri, "error": str(exc)}
    except Exception as exc:  # one image's failure never stops the others
        log.exception("failed unexpectedly", extra={"uri": uri})
        return {"origin": uri, "error": f"internal error: {type(exc).__name__}: {exc}"}


def process_uris(
    uris: Sequence[str],
    config: Config,
    instructions: Sequence[Instruction],
    source: Store,
    derivatives: Store,
    report: ReportOptions,
) -> dict[str, dict[str, Any]]:
    """Process many URIs in parallel: one worker per CPU, libvips threads shared among them.

    Returns one entry per distinct URI (a report, or ``{"origin", "error"}``), in input order.
    """
    unique = list(dict.fromkeys(uris))
    cpus = available_cpus()
    workers = max(1, min(config.workers or cpus, len(unique) or 1))
    # Each worker runs its own libvips pipelines; give libvips the CPUs the workers leave idle.
    configure_vips(concurrency=max(1, cpus // workers))
    log.debug("starting", extra={"count": len(unique), "workers": workers, "cpus": cpus})
    budget = config.memory_budget_mb << 20 if config.memory_budget_mb else memory_budget()
    args = (config, tuple(instructions), source, derivatives, report, MemoryGate(budget))
    if workers == 1:
        return {uri: _safe_process(uri, *args) for uri in unique}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="iiif") as pool:
        futures = {uri: pool.submit(_safe_process, uri, *args) for uri in unique}
        return {uri: future.result() for uri, future in futures.items()}
