"""The JSON log line: extra fields kept, private ones dropped; package logs not propagated."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from iiif_process.logs import JsonFormatter, setup_logging


def _line(**extra: object) -> dict:
    record = logging.LogRecord("iiif_process.t", logging.INFO, __file__, 1, "hello", None, None)
    record.__dict__.update(extra)
    return json.loads(JsonFormatter().format(record))


def test_extra_fields_are_kept() -> None:
    assert _line(key="a/b.jpg")["key"] == "a/b.jpg"


def test_fields_starting_with_an_underscore_are_dropped() -> None:
    assert "_private" not in _line(_private=1)


@pytest.fixture
def package_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("iiif_process")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def test_package_logs_are_not_repeated_by_the_root_logger(package_logger: logging.Logger) -> None:
    setup_logging(verbose=False)
    assert package_logger.propagate is False
