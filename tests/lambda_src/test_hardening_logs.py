"""Issue #8 item 10: no log line of the trigger exceeds a bound, whatever the event's size."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from iiif_process_ecs import logs
from iiif_process_ecs.logs import MAX_LINE_BYTES, SAMPLE_CHARS, SAMPLE_ITEMS, log
from iiif_process_ecs.service import TasksNotStarted

from tests.lambda_src.conftest import Infra, s3_record
from tests.lambda_src.test_ecs_trigger_handler import FlakyEcs, run
from tests.lambda_src.test_ecs_trigger_sqs import batch, sqs_message

CLOUDWATCH_EVENT_LIMIT = 256 * 1024


def long_key(index: int) -> str:
    """A safe key of exactly 900 UTF-8 bytes, the longest the key rule accepts."""
    key = f"k{index:05d}/" + "a" * (900 - 7 - 4) + ".jpg"
    assert len(key.encode()) == 900
    return key


def lines_of(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def line_sizes(stream: io.StringIO) -> list[int]:
    return [len(line.encode("utf-8")) for line in lines_of(stream)]


def record(stream: io.StringIO, message: str) -> dict[str, Any]:
    found = [json.loads(line) for line in lines_of(stream) if f'"message": "{message}"' in line]
    assert len(found) == 1, message
    return found[0]


@pytest.fixture
def big_batch() -> dict[str, Any]:
    """An SQS batch of 1,000 messages of 10 records: 10,000 keys of 900 bytes."""
    return batch(
        *(
            sqs_message(f"m{m}", {"Records": [s3_record(long_key(m * 10 + r)) for r in range(10)]})
            for m in range(1000)
        )
    )


def test_every_line_of_a_10000_key_batch_stays_under_256_kb(
    infra: Infra, big_batch: dict[str, Any], quiet_logs: io.StringIO
) -> None:
    response = run(infra, big_batch)
    assert response["counts"]["launched"] == 10_000
    sizes = line_sizes(quiet_logs)
    assert len(sizes) > 3
    assert max(sizes) < CLOUDWATCH_EVENT_LIMIT
    assert max(sizes) <= MAX_LINE_BYTES


def test_event_received_logs_counts_and_a_bounded_sample(
    infra: Infra, big_batch: dict[str, Any], quiet_logs: io.StringIO
) -> None:
    run(infra, big_batch, ecs=FlakyEcs([not_found()] * 2000))
    received = record(quiet_logs, "event received")
    assert received["uri_count"] == 10_000
    assert received["messages"] == 1000
    assert len(received["uris_sample"]) == SAMPLE_ITEMS
    assert received["uris_sample"][0].startswith(long_key(0)[:SAMPLE_CHARS])
    assert all(len(key) < SAMPLE_CHARS + 20 for key in received["uris_sample"])
    assert "truncated" not in received
    assert max(line_sizes(quiet_logs)) <= MAX_LINE_BYTES


def not_found() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ClusterNotFoundException", "Message": "Cluster not found."}}, "RunTask"
    )


def test_tasks_not_started_for_many_keys_is_a_bounded_message(
    infra: Infra, quiet_logs: io.StringIO
) -> None:
    keys = [long_key(index) for index in range(1000)]
    with pytest.raises(TasksNotStarted) as raised:
        run(infra, {"uris": keys}, ecs=FlakyEcs([not_found()] * 1000))
    assert len(raised.value.outcome.aws_failed) == 1000
    message = str(raised.value)
    assert message.startswith("1000 URI(s) not started because of AWS errors")
    assert "ClusterNotFoundException" in message
    assert len(message.encode()) <= MAX_LINE_BYTES
    assert max(line_sizes(quiet_logs)) <= MAX_LINE_BYTES


def test_a_line_over_the_bound_keeps_a_marked_sample(quiet_logs: io.StringIO) -> None:
    log("big", items=["x" * 1000] * 1000)
    line = lines_of(quiet_logs)[0]
    assert len(line.encode()) <= MAX_LINE_BYTES
    shown = json.loads(line)
    assert shown["truncated"] is True
    assert len(shown["items"]) == SAMPLE_ITEMS + 1
    assert shown["items"][-1] == f"...(+{1000 - SAMPLE_ITEMS} more)"


def test_a_line_that_cannot_be_shrunk_keeps_its_message(quiet_logs: io.StringIO) -> None:
    log("huge", table={f"key{index}": "v" * 100 for index in range(5000)}, n=1)
    line = lines_of(quiet_logs)[0]
    assert len(line.encode()) <= MAX_LINE_BYTES
    shown = json.loads(line)
    assert (shown["message"], shown["truncated"], shown["dropped_fields"]) == (
        "huge",
        True,
        ["table", "n"],
    )


def test_a_small_line_is_written_whole(quiet_logs: io.StringIO) -> None:
    logs.log("small", uris=["a.jpg"] * 20)
    shown = json.loads(lines_of(quiet_logs)[0])
    assert shown["uris"] == ["a.jpg"] * 20
    assert "truncated" not in shown


LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024


def test_the_response_to_a_10000_key_batch_fits_lambdas_limit_and_names_every_message(
    infra: Infra, big_batch: dict[str, Any]
) -> None:
    # Over Lambda's 6 MB the invocation fails and SQS retries the whole batch: bound it, but
    # keep batchItemFailures whole, since they alone decide what SQS delivers again.
    response = run(infra, big_batch, ecs=FlakyEcs([not_found()] * 2000))
    assert len(json.dumps(response).encode()) < LAMBDA_RESPONSE_LIMIT
    assert len(response["batchItemFailures"]) == 1000
    assert response["counts"] == {"launched": 0, "skipped": 0, "failed": 10_000}
    assert response["truncated"] is True
    assert len(response["failed"]) == SAMPLE_ITEMS
    assert "ClusterNotFoundException" in response["failed"][0]["reason"]
