"""Which failures a re-run may fix: only store errors, never a missing source or a bad image."""

from __future__ import annotations

import pytest
from iiif_process.batch import retryable
from iiif_process.errors import (
    ImageRejectedError,
    ParameterError,
    SourceNotFoundError,
    StoreError,
)


@pytest.mark.parametrize(
    "error",
    [
        SourceNotFoundError("no such object: a.jpg"),
        ImageRejectedError("not an image"),
        ParameterError("bad size"),
        ValueError("a bug"),
    ],
    ids=["missing-source", "rejected-image", "bad-parameter", "bug"],
)
def test_failures_other_than_store_errors_are_not_retryable(error: Exception) -> None:
    assert retryable(error) is False


def test_a_store_error_without_an_s3_cause_is_retryable() -> None:
    # Disk or network trouble: nothing says a re-run cannot fix it.
    assert retryable(StoreError("cannot write /out/a.jpg: No space left on device")) is True
