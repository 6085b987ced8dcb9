"""An image given up because the batch is stopping: its entry and the ledger's retryable
(issue #13)."""

from __future__ import annotations

from typing import Any, BinaryIO

from iiif_process.batch import WorkerJob, run_one
from iiif_process.config import Config, StoreSpec
from iiif_process.memory import MemoryGate
from iiif_process.params import parse_instructions
from iiif_process.pool import ABANDONED, Abandoned
from iiif_process.process import ReportOptions
from iiif_process.stores import Downloaded, MemoryStore


class _StoppingSource(MemoryStore):
    """A source whose read finds the batch stopping (as the pool's stop check raises it)."""

    def download(self, key: str, handle: BinaryIO, max_bytes: int) -> Downloaded:
        raise Abandoned(ABANDONED)


def _abandoned() -> tuple[dict[str, Any], dict[str, Any]]:
    job = WorkerJob(
        Config(StoreSpec("memory"), StoreSpec("memory")),
        parse_instructions({"a": {"size": "!40,40", "format": "jpg"}}),
        _StoppingSource(),
        MemoryStore(),
        ReportOptions(),
        1,
        1 << 30,
        None,
    )
    return run_one("a.jpg", job, MemoryGate(1 << 30))


def test_an_abandoned_image_is_an_entry_saying_so() -> None:
    entry, _ = _abandoned()
    assert entry == {"origin": "a.jpg", "error": ABANDONED}


def test_an_abandoned_image_is_recorded_retryable() -> None:
    # Nothing of it was published: the next run does it.
    _, meta = _abandoned()
    assert meta["retryable"] is True
