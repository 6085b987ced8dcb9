"""Publishing one image's objects: in phases, each phase's writes concurrent and bounded, all or
nothing.

A phase starts only when every write of the previous one has succeeded: the derivatives and tiles
first, then ``info.json`` and ``manifest.json`` (which announce tiles that must exist), the report
last (it says the image is done). Within a phase at most ``concurrency`` writes are under way at
once: a 24 MP image makes over a hundred tiles, and one PUT at a time would make S3's latency, not
the pixels, the task's cost. On any failure no new write starts, the writes under way finish, and
every object this run created is deleted (an object that existed before the run, from an earlier
complete run, is never deleted) and the documents it replaced (``restore``: ``info.json`` and
``manifest.json``, which must keep describing the earlier run's tiles) are written back as they
were, then the first error is raised.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from .errors import IIIFProcessError
from .stores import Store, write_object

log = logging.getLogger(__name__)

# Writes of one image under way at once when tiles are on (-publish-concurrency): enough to
# hide S3's per-request latency (tens of ms) behind each other, few enough for one worker's
# connection pool (S3Store keeps 32) and the S3 request rate of a prefix.
DEFAULT_CONCURRENCY = 16
MAX_CONCURRENCY = 256


@dataclass(frozen=True)
class Item:
    """One object to write."""

    store: Store
    key: str
    data: bytes
    content_type: str
    cache_control: str | None = None
    # Read the object before replacing it and write it back after a failure (a small document
    # that describes other objects; images are left replaced, as the derivatives always were).
    restore: bool = False


def publish(uri: str, phases: Sequence[Sequence[Item]], concurrency: int = 1) -> None:
    """Write every phase in order, each phase's objects with at most ``concurrency`` writes at
    once (1: one at a time, in order); on a failure delete only what this run created, then
    re-raise the first error.

    Which keys exist is asked once per store before writing.
    """
    items = [item for phase in phases for item in phase]
    before: dict[int, set[str]] = {}
    for item in items:
        if id(item.store) not in before:
            keys = [i.key for i in items if i.store is item.store]
            before[id(item.store)] = item.store.existing(keys)
    previous: dict[tuple[int, str], bytes] = {}
    for item in items:
        if item.restore and item.key in before[id(item.store)]:
            try:
                previous[(id(item.store), item.key)] = item.store.read(item.key)
            except IIIFProcessError as exc:
                log.warning(
                    "cannot read an object before replacing it; a failure will not restore it",
                    extra={"uri": uri, "key": item.key, "error": str(exc)},
                )
    created: list[tuple[Store, str]] = []
    replaced: list[tuple[Item, bytes]] = []
    lock = threading.Lock()

    def write(item: Item) -> None:
        old = previous.get((id(item.store), item.key))
        if old is not None:
            with lock:  # before the write: a write that fails may still have landed
                replaced.append((item, old))
        write_object(item.store, item.key, item.data, item.content_type, item.cache_control)
        if item.key not in before[id(item.store)]:
            with lock:
                created.append((item.store, item.key))

    workers = max(1, min(concurrency, max((len(p) for p in phases), default=1)))
    try:
        if workers == 1:
            for item in items:
                write(item)
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="iiif-publish") as pool:
                for phase in phases:
                    _run_phase(pool, write, phase)
    except BaseException:
        remove_objects(created, workers, {"uri": uri})
        _restore(uri, replaced)
        raise


def _run_phase(
    pool: ThreadPoolExecutor, write: Callable[[Item], None], phase: Sequence[Item]
) -> None:
    """Run one phase's writes on ``pool``; the first failure cancels what has not started,
    waits for what has, and is raised."""
    futures: list[Future[None]] = [pool.submit(write, item) for item in phase]
    wait(futures, return_when=FIRST_EXCEPTION)
    failed = [f for f in futures if f.done() and f.exception() is not None]
    if failed:
        for future in futures:
            future.cancel()
        wait(futures)  # the writes under way: what they create is known before deleting
        raise failed[0].exception()  # type: ignore[misc]


def _restore(uri: str, replaced: list[tuple[Item, bytes]]) -> None:
    """Write back the documents a failed publication replaced (each failure logged)."""
    for item, old in replaced:
        try:
            write_object(item.store, item.key, old, item.content_type, item.cache_control)
        except Exception as exc:
            log.error(
                "could not restore an object after a failed write",
                extra={"uri": uri, "key": item.key, "error": str(exc)},
            )


def remove_objects(
    created: Sequence[tuple[Store, str]], workers: int, context: dict[str, str]
) -> None:
    """Delete the objects a failed run created, at most ``workers`` at once (each failure
    logged with ``context``, e.g. the image's URI, none raised): the one clean-up of both a
    failed publication and a failed tile seeding."""

    def delete(store: Store, key: str) -> None:
        try:
            store.delete(key)
        except Exception as exc:
            log.error(
                "could not remove an object after a failed write",
                extra={**context, "key": key, "error": str(exc)},
            )

    if workers <= 1 or len(created) < 2:
        for store, key in created:
            delete(store, key)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="iiif-unpublish") as pool:
        list(pool.map(lambda pair: delete(*pair), created))
