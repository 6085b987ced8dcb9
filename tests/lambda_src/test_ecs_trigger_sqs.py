"""SQS batches from the event queue: pooled keys, TestEvents, bad bodies, batchItemFailures."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError
from iiif_process_ecs.events import parse_event

from tests.lambda_src.conftest import REGION, Infra, command_of, s3_record, uris_of
from tests.lambda_src.test_ecs_trigger_handler import FlakyEcs, ecs_client, run

QUEUE_ARN = f"arn:aws:sqs:{REGION}:123456789012:iiif-events"


def sqs_message(message_id: str, body: Any, receipt: str = "r1") -> dict[str, Any]:
    """A record as Lambda's SQS poller delivers it; a non-string ``body`` is sent as JSON."""
    return {
        "messageId": message_id,
        "receiptHandle": f"{receipt}-{message_id}",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1700000000000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1700000000001",
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": REGION,
    }


def s3_message(message_id: str, *keys: str, sequencer: str = "0A1B") -> dict[str, Any]:
    return sqs_message(
        message_id, {"Records": [s3_record(key, sequencer=sequencer) for key in keys]}
    )


def batch(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(messages)}


TEST_EVENT = {
    "Service": "Amazon S3",
    "Event": "s3:TestEvent",
    "Time": "2024-01-01T00:00:00.000Z",
    "Bucket": "iiif-source",
}


def test_keys_of_several_messages_are_packed_into_one_task(infra: Infra) -> None:
    event = batch(
        s3_message("m1", "a.jpg"),
        s3_message("m2", "b.jpg", "c.jpg"),
        s3_message("m3", "d.jpg"),
    )
    response = run(infra, event)
    (task,) = response["tasks"]
    assert sorted(uris_of(command_of(ecs_client(), infra.cluster, task))) == [
        "a.jpg",
        "b.jpg",
        "c.jpg",
        "d.jpg",
    ]
    assert response["batchItemFailures"] == []


def test_a_test_event_body_starts_nothing(infra: Infra) -> None:
    response = run(infra, batch(sqs_message("m1", TEST_EVENT)))
    assert response == {
        "launched": [],
        "skipped": [],
        "failed": [],
        "tasks": [],
        "batchItemFailures": [],
    }


def test_a_body_that_is_not_json_fails_that_message_only(infra: Infra) -> None:
    response = run(infra, batch(sqs_message("bad", "not { json"), s3_message("m2", "a.jpg")))
    assert [e["uri"] for e in response["launched"]] == ["a.jpg"]
    (failure,) = response["failed"]
    assert "message bad" in failure["reason"] and "not JSON" in failure["reason"]


def test_a_body_that_is_not_an_s3_event_fails_without_retry(infra: Infra) -> None:
    response = run(infra, batch(sqs_message("odd", {"hello": "world"})))
    (failure,) = response["failed"]
    assert "message odd" in failure["reason"]
    assert "not an S3 event notification" in failure["reason"]
    assert response["batchItemFailures"] == []


def test_a_body_with_records_of_another_source_fails_them(infra: Infra) -> None:
    body = {"Records": [{"eventSource": "aws:sns", "s3": {"object": {"key": "a.jpg"}}}]}
    response = run(infra, batch(sqs_message("sns", body)))
    assert "not an S3 event record" in response["failed"][0]["reason"]
    assert response["tasks"] == []


def test_batch_item_failures_name_exactly_the_messages_not_started(infra: Infra) -> None:
    # One URI per task; sorted keys a, b, c: a starts, b is still throttled after botocore's own
    # retries (the ClientError botocore raises then), c starts.
    event = batch(
        s3_message("m-a", "a.jpg"),
        s3_message("m-b", "b.jpg"),
        s3_message("m-c", "c.jpg"),
        s3_message("m-b-again", "b.jpg", sequencer="0A1C"),  # a second upload of b.jpg
        sqs_message("m-bad", "not json"),
    )
    throttled = ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "RunTask"
    )
    ecs = FlakyEcs([None, throttled])
    response = run(infra, event, ecs=ecs, IIIF_PROCESS_MAX_URIS_PER_TASK="1")
    assert response["batchItemFailures"] == [
        {"itemIdentifier": "m-b"},
        {"itemIdentifier": "m-b-again"},
    ]
    assert sorted(e["uri"] for e in response["launched"]) == ["a.jpg", "c.jpg"]


def test_encoded_keys_inside_bodies_are_decoded_once(infra: Infra) -> None:
    event = batch(
        s3_message("m1", "red+flower.jpg"),
        s3_message("m2", "a%2Bb.jpg", "100%2525.jpg"),
    )
    response = run(infra, event)
    command = command_of(ecs_client(), infra.cluster, response["tasks"][0])
    assert sorted(uris_of(command)) == ["100%25.jpg", "a+b.jpg", "red flower.jpg"]


def test_a_redelivered_batch_sends_the_same_client_tokens(infra: Infra) -> None:
    messages = [s3_message(f"m{i}", f"{i}.jpg") for i in range(5)]
    redelivered = [sqs_message(m["messageId"], m["body"], receipt="r2") for m in reversed(messages)]
    first, second = FlakyEcs(), FlakyEcs()
    run(infra, batch(*messages), ecs=first, IIIF_PROCESS_MAX_URIS_PER_TASK="2")
    run(infra, batch(*redelivered), ecs=second, IIIF_PROCESS_MAX_URIS_PER_TASK="2")
    assert len(first.calls) == 3
    assert [c["clientToken"] for c in first.calls] == [c["clientToken"] for c in second.calls]


def test_one_upload_in_two_messages_is_one_uri() -> None:
    # S3 delivers at least once: the same notification may arrive as two messages.
    parsed = parse_event(batch(s3_message("m1", "a.jpg"), s3_message("m2", "a.jpg")))
    assert [(o.key, o.identity, o.message_id) for o in parsed.objects] == [
        ("a.jpg", "0A1B/0123456789abcdef", "m1"),
        ("a.jpg", "0A1B/0123456789abcdef", "m2"),
    ]


def test_other_event_shapes_get_no_batch_item_failures(infra: Infra) -> None:
    response = run(infra, {"Records": [s3_record("a.jpg")]})
    assert "batchItemFailures" not in response
