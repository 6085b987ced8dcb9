"""An EMF document's timestamp is the time it was made, in milliseconds (issue #13)."""

from __future__ import annotations

import time

from iiif_process import metrics


def test_the_timestamp_is_now_in_milliseconds() -> None:
    before = time.time()
    stamp = metrics.document({"ImagesSucceeded": 1}, stack="s")["_aws"]["Timestamp"]
    after = time.time()
    assert int(before * 1000) <= stamp <= int(after * 1000)


def test_a_given_time_is_used_as_it_is() -> None:
    doc = metrics.document({"ImagesSucceeded": 1}, stack="s", now_ms=1_700_000_000_123)
    assert doc["_aws"]["Timestamp"] == 1_700_000_000_123
