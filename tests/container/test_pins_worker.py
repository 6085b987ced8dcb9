"""A worker's command line: ``python -m iiif_process.worker FD [CPU]``, else a usage error
(issue #13). Run as the pool runs it, in a process of its own."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A descriptor no child has open (subprocess closes every other one): the worker finds no
# parent there, which it takes as the parent gone, and exits 0.
NO_PARENT = "50"


def _worker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iiif_process.worker", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("args", [(), ("1", "0", "0"), ("x",), (NO_PARENT, "cpu")])
def test_a_bad_command_line_is_a_usage_error(args: tuple[str, ...]) -> None:
    done = _worker(*args)
    assert (done.returncode, done.stderr.startswith("usage: python -m iiif_process.worker")) == (
        2,
        True,
    )


def test_a_descriptor_alone_is_accepted() -> None:
    assert _worker(NO_PARENT).returncode == 0


def test_a_descriptor_and_a_cpu_are_accepted() -> None:
    assert _worker(NO_PARENT, "0").returncode == 0
