"""Issue #8 item 7: any exception while reading one SQS message fails that message alone."""

from __future__ import annotations

from typing import Any

import pytest
from iiif_process_ecs.events import InvalidEvent, parse_event

from tests.lambda_src.conftest import Infra
from tests.lambda_src.test_ecs_trigger_handler import run
from tests.lambda_src.test_ecs_trigger_sqs import batch, s3_message, sqs_message

# Far deeper than the interpreter's recursion limit: json.loads raises RecursionError on it.
DEEP_BODY = "[" * 200_000 + "]" * 200_000


def deep_notification() -> str:
    """A body that starts like an S3 notification and nests a value too deeply to read."""
    return '{"Records": [{"eventSource": "aws:s3", "x": ' + DEEP_BODY + "}]}"


def test_a_deeply_nested_body_fails_that_message_and_its_batch_mates_start(
    infra: Infra,
) -> None:
    event = batch(
        s3_message("m1", "a.jpg"),
        sqs_message("deep", DEEP_BODY),
        sqs_message("deep-inside", deep_notification()),
        s3_message("m2", "b.jpg"),
    )
    response = run(infra, event)
    assert sorted(entry["uri"] for entry in response["launched"]) == ["a.jpg", "b.jpg"]
    reasons = [entry["reason"] for entry in response["failed"]]
    assert len(reasons) == 2
    assert any(r.startswith("message deep:") and "nested too deeply" in r for r in reasons)
    assert any(r.startswith("message deep-inside:") and "nested too deeply" in r for r in reasons)
    # Failed in the response, not retried: no retry can make the body readable.
    assert response["batchItemFailures"] == []


class Exploding(str):
    """A body whose reading raises something no parser step expects."""

    def __getitem__(self, index: Any) -> Any:
        raise MemoryError("boom")

    def __len__(self) -> int:
        raise MemoryError("boom")


def test_an_unexpected_error_reading_a_message_fails_that_message_alone() -> None:
    good = s3_message("m1", "a.jpg")
    bad = sqs_message("odd", "x")
    bad["body"] = Exploding("not json")
    parsed = parse_event(batch(good, bad))
    assert [record.key for record in parsed.objects] == ["a.jpg"]
    assert len(parsed.rejected) == 1
    assert parsed.rejected[0].outcome == "failed"
    assert parsed.rejected[0].reason.startswith("message odd: could not be read (MemoryError")
    assert parsed.message_ids == ("m1", "odd")


def test_a_direct_invocation_of_exactly_1000_uris_is_accepted() -> None:
    assert len(parse_event({"uris": ["a.jpg"] * 1000}).objects) == 1000


def test_a_direct_invocation_of_1001_uris_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="holds 1001 entries; at most 1000"):
        parse_event({"uris": ["a.jpg"] * 1001})
