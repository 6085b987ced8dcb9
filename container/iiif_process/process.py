"""Per-URI orchestration: read → check → decode once → render everything in memory → publish.

Every URI ends with all its derivatives and its report written, or with an error entry saying why;
a failure while writing removes what was already written for that URI, so no partial set is
published. With deep zoom on (``config.deep_zoom.tiles``), the same decode also gives the image's
Level 0 tiles, ``info.json`` and Presentation 3 manifest (:mod:`iiif_process.deepzoom`), and the
image's objects are written by a bounded pool (:mod:`iiif_process.publish`): derivatives and tiles,
then ``info.json`` and ``manifest.json``, the report last.

A batch of URIs (:mod:`iiif_process.batch`) runs in worker processes (:mod:`iiif_process.pool`),
which call :func:`process_uri` for one image at a time; an image with CPUs to spare encodes its
full-size derivatives in a second thread while the resized ones are made (libvips releases the
GIL; the JPEG encoder is serial).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from . import deepzoom
from .config import Config
from .memory import MemoryGate, describe_decoded, memory_budget
from .params import Instruction
from .publish import DEFAULT_CONCURRENCY, Item, publish
from .report import build_report, report_key, report_name
from .services import compute_services, fit_box
from .stores import Store, file_sha1, local_source, safe_key
from .tiles import TILE_CACHE_CONTROL
from .transform import (
    Rendered,
    Renderer,
    SourceImage,
    dither_working_bytes,
    probe,
    vips_warnings,
)

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


def publish_concurrency(config: Config) -> int:
    """Writes of one image under way at once: ``config.publish_concurrency``, or automatically
    :data:`~.publish.DEFAULT_CONCURRENCY` with tiles on and 1 (in order, as go-iiif) without."""
    if config.publish_concurrency:
        return config.publish_concurrency
    return DEFAULT_CONCURRENCY if config.deep_zoom.tiles else 1


class Gate(Protocol):
    """Admission of decoded images against a memory budget (:class:`~.memory.MemoryGate` in
    one process, the parent's admission in a worker process)."""

    def reserve(self, amount: int, what: str = "") -> Any:
        """A context manager holding ``amount`` bytes of the budget while it is open; raises
        :class:`~.memory.OverBudgetError` naming ``what`` when it can never fit."""

    def may_publish(self) -> None:
        """Called before an image's first write; raises when the batch is stopping (SIGTERM)
        and the image must be abandoned with nothing published."""


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
    renderer = Renderer(
        image,
        keep_metadata=config.keep_metadata,
        size_rules=config.size_rules,
        jpeg_quality=config.jpeg_quality,
    )
    # The decode shrinks on load as far as every derivative, the services' thumbnail and the
    # deep zoom tiles (full size, made from this decode) allow.
    thumbnail = config.blurhash_size if config.services else 0
    renderer.plan(instructions, thumbnail, full_size=config.deep_zoom.tiles)
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
            width, height = fit_box(*image.size(True), config.blurhash_size)
            thumbnail = image.scaled(True, width, height, keep=True)
            services = compute_services(
                config.services,
                thumbnail,
                x=config.blurhash_x,
                y=config.blurhash_y,
                count=config.palette_count,
                extruder=config.palette_extruder,
                colour_lists=config.palette_lists,
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
    facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Process one URI completely; raises an :class:`IIIFProcessError` saying why it failed.

    ``threads`` > 1 (CPUs to spare) overlaps the fingerprint with the decode and the full-size
    encodes with the resizing. ``facts``, when given, receives the ``size`` and ``etag`` of the
    object read (for the ledger), and once published ``objects_written`` and ``bytes_written``
    (for the metrics).
    """
    started = time.monotonic()
    gate = gate or MemoryGate(memory_budget())
    key = safe_key(uri)
    zoom = config.deep_zoom
    pyramid: deepzoom.Pyramid | None = None
    side = ThreadPoolExecutor(1, thread_name_prefix="iiif-side") if threads > 1 else None
    # The source is a file on the task's disk (streamed there, never whole in memory; refused
    # from its size first), removed when the block ends.
    with local_source(source, key, config.max_source_bytes) as local, vips_warnings(uri):
        if facts is not None:
            facts.update(size=local.size, etag=local.etag)
        try:
            fingerprint: Future[str] | str
            if local.sha1:
                fingerprint = local.sha1
            else:
                fingerprint = side.submit(file_sha1, local.path) if side else file_sha1(local.path)
            header = probe(local.path, local.size, config.max_pixels)
            decoded = describe_decoded(
                header.width, header.height, header.image.bands, header.image.format
            )
            need = header.working_bytes + dither_working_bytes(
                header, instructions, config.size_rules
            )
            if zoom.tiles:
                need += deepzoom.working_bytes(header, local.size, zoom)
            with gate.reserve(need, decoded):
                image = SourceImage(header)
                rendered, services = _render(image, config, instructions, key, side)
                if zoom.tiles:
                    # From the same decode, after the derivatives (libvips' threads make it).
                    pyramid = deepzoom.make_pyramid(
                        image, header, local.size, key, zoom, config.jpeg_quality, threads
                    )
                del header, image  # the decoded pixels go before the (slow) writes
            if isinstance(fingerprint, Future):
                fingerprint = fingerprint.result()
        finally:
            if side:
                side.shutdown()
    result = build_report(key, fingerprint, rendered, services)
    # With tiles on, derivatives are served publicly beside the tiles: the same long caching.
    cache = TILE_CACHE_CONTROL if zoom.tiles else None
    images = [Item(derivatives, r.key, r.data, r.instruction.content_type, cache) for r in rendered]
    documents: list[Item] = []
    if pyramid is not None:
        taken = {item.key for item in images}
        # A derivative at a tile's path (not with go-iiif's "color" naming) is kept as instructed.
        images += [i for i in pyramid.tile_items(derivatives) if i.key not in taken]
        documents = pyramid.document_items(derivatives)
    phases = [images, documents]
    if report.enabled:
        body = json.dumps(result, separators=(",", ":")).encode()
        name = report_key(key, report_name(key, report.name_template))
        phases.append([Item(report.store or derivatives, name, body, "application/json")])
    gate.may_publish()  # a batch stopping on SIGTERM publishes nothing it has not started
    publish(key, phases, publish_concurrency(config))
    if facts is not None:
        written = [item for phase in phases for item in phase]
        facts.update(objects_written=len(written), bytes_written=sum(len(i.data) for i in written))
    log.info(
        "processed",
        extra={
            "uri": uri,
            "derivatives": len(rendered),
            "tiles": len(pyramid.objects) if pyramid is not None else 0,
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    return result
