"""One URI's work in a worker (:func:`iiif_process.batch.run_one`) and which failures a re-run
may fix (:func:`iiif_process.batch.retryable`): what the ledger's ``retryable`` and the
image's timing come from."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

import pytest
from botocore.exceptions import ClientError
from iiif_process.batch import WorkerJob, retryable, run_one
from iiif_process.config import Config, StoreSpec
from iiif_process.errors import StoreError
from iiif_process.memory import MemoryGate
from iiif_process.params import parse_instructions
from iiif_process.process import ReportOptions
from iiif_process.stores import Downloaded, MemoryStore

from . import iiif_images as gen

INSTRUCTIONS = parse_instructions({"a": {"size": "!40,40", "format": "jpg"}})


def _s3_failure(code: str) -> StoreError:
    """A store error caused by S3 answering ``code``, as the S3 store raises it."""
    cause = ClientError({"Error": {"Code": code, "Message": code}}, "GetObject")
    error = StoreError(f"cannot read s3://b/a.jpg: {code}")
    error.__cause__ = cause
    return error


def test_running_out_of_memory_is_retryable() -> None:
    assert retryable(MemoryError()) is True


@pytest.mark.parametrize("code", ["SlowDown", "InternalError", "RequestTimeout"])
def test_a_passing_s3_failure_is_retryable(code: str) -> None:
    assert retryable(_s3_failure(code)) is True


@pytest.mark.parametrize("code", ["AccessDenied", "NoSuchBucket", "InvalidObjectState"])
def test_an_s3_failure_no_rerun_fixes_is_not_retryable(code: str) -> None:
    assert retryable(_s3_failure(code)) is False


class FailingStore(MemoryStore):
    """A source whose every read raises ``error`` (an instance, raised as is)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def download(self, key: str, handle: BinaryIO, max_bytes: int) -> Downloaded:
        raise self.error


def _job(source: MemoryStore) -> WorkerJob:
    config = Config(StoreSpec("memory"), StoreSpec("memory"))
    return WorkerJob(config, INSTRUCTIONS, source, MemoryStore(), ReportOptions(), 1, 1 << 30, None)


def _run(source: MemoryStore) -> tuple[dict[str, Any], dict[str, Any]]:
    return run_one("a.jpg", _job(source), MemoryGate(1 << 30))


def test_running_out_of_memory_is_an_entry_saying_so() -> None:
    entry, _ = _run(FailingStore(MemoryError()))
    assert entry == {"origin": "a.jpg", "error": "out of memory while processing this image"}


def test_running_out_of_memory_is_recorded_retryable() -> None:
    _, meta = _run(FailingStore(MemoryError()))
    assert meta["retryable"] is True


def test_an_unexpected_exception_is_recorded_not_retryable() -> None:
    # A bug fails the same way on a re-run.
    _, meta = _run(FailingStore(RuntimeError("boom")))
    assert meta["retryable"] is False


def test_an_image_is_timed_from_its_start_to_its_end() -> None:
    source = MemoryStore()
    source.write("a.jpg", gen.jpeg(), "image/jpeg")
    started = time.monotonic()
    _, meta = _run(source)
    elapsed = time.monotonic() - started
    assert 0 < meta["seconds"] <= round(elapsed, 3) + 0.001


@pytest.fixture
def package_logger() -> Iterator[logging.Logger]:
    """The package's logger, restored after the test."""
    logger = logging.getLogger("iiif_process")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved


def test_a_worker_of_a_verbose_parent_logs_debug(package_logger: logging.Logger) -> None:
    job = WorkerJob(
        Config(StoreSpec("memory"), StoreSpec("memory")),
        INSTRUCTIONS,
        MemoryStore(),
        MemoryStore(),
        ReportOptions(),
        1,
        1 << 30,
        logging.DEBUG,
    )
    job.prepare()
    assert package_logger.level == logging.DEBUG
