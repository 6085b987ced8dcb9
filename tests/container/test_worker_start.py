"""A worker's start-up imports what its images will need, so the first image of each worker is
not billed for it (issue #12: scaling per added core)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from iiif_process.batch import WorkerJob
from iiif_process.config import Config, StoreSpec
from iiif_process.params import parse_instructions
from iiif_process.process import ReportOptions
from iiif_process.stores import MemoryStore

PLAIN = {"a": {"size": "!40,40", "format": "jpg"}}
DITHER = {"a": {"size": "!40,40", "quality": "dither", "format": "png"}}


def _job(instructions: dict[str, dict[str, str]], services: tuple[str, ...] = ()) -> WorkerJob:
    return WorkerJob(
        Config(StoreSpec("memory"), StoreSpec("memory"), services=services),
        parse_instructions(instructions),
        MemoryStore(),
        MemoryStore(),
        ReportOptions(),
        1,
        1 << 30,
        None,
    )


def test_a_dither_needs_numpy() -> None:
    assert _job(DITHER).needs_numpy


def test_a_service_needs_numpy() -> None:
    assert _job(PLAIN, ("palette",)).needs_numpy


def test_plain_derivatives_without_services_do_not_need_numpy() -> None:
    assert not _job(PLAIN).needs_numpy


_PREPARE = """
import sys
from iiif_process.batch import WorkerJob
from iiif_process.config import Config, StoreSpec
from iiif_process.params import parse_instructions
from iiif_process.process import ReportOptions
from iiif_process.stores import MemoryStore
job = WorkerJob(Config(StoreSpec("memory"), StoreSpec("memory")),
                parse_instructions({instructions!r}), MemoryStore(), MemoryStore(),
                ReportOptions(), 1, 1 << 30, None)
before = "numpy" in sys.modules
job.prepare()
print(before, "numpy" in sys.modules)
"""


def _imports_in_a_new_worker(instructions: dict[str, dict[str, str]]) -> str:
    # A new interpreter, as a worker is: this test process has numpy already.
    done = subprocess.run(
        [sys.executable, "-c", _PREPARE.format(instructions=instructions)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.parametrize(
    ("instructions", "expected"), [(DITHER, "False True"), (PLAIN, "False False")]
)
def test_prepare_imports_numpy_only_when_the_images_need_it(
    instructions: dict[str, dict[str, str]], expected: str
) -> None:
    assert _imports_in_a_new_worker(instructions) == expected
