"""requeue.py: keys back to the event queue, packed within SQS's limits, retried with backoff."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from botocore.exceptions import ClientError
from iiif_process_ecs.requeue import (
    RequeueKey,
    Requeuer,
    message_bodies,
    run_sequencer,
    s3_record,
    send_calls,
)
from moto import mock_aws

REGION = "us-east-1"
BUCKET = "iiif-source"
BODY_LIMIT = 24 * 1024  # the documented bounds, written out so that a changed constant shows
CALL_LIMIT = 256 * 1024


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    """A moto SQS client and the URL of an empty queue."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        yield sqs, sqs.create_queue(QueueName="iiif-events")["QueueUrl"]


class FlakySqs:
    """The moto SQS client, except that the first send_message_batch calls follow a script:
    an exception to raise, or ``(code, sender_fault)`` to answer every entry Failed with."""

    def __init__(self, real: Any, script: list[Any]) -> None:
        self.real = real
        self.script = list(script)
        self.calls = 0

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, Exception):
                raise step
            code, sender_fault = step
            failed = [
                {"Id": e["Id"], "SenderFault": sender_fault, "Code": code, "Message": "no"}
                for e in kwargs["Entries"]
            ]
            return {"Successful": [], "Failed": failed}
        return self.real.send_message_batch(**kwargs)


def received(sqs: Any, url: str) -> list[str]:
    """The keys of every record on the queue (decoded as the trigger decodes them)."""
    found: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            records = json.loads(message["Body"])["Records"]
            found += [unquote_plus(r["s3"]["object"]["key"]) for r in records]
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def keys(*uris: str) -> list[RequeueKey]:
    return [RequeueKey(uri) for uri in uris]


def record_length(key: RequeueKey) -> int:
    return len(json.dumps(s3_record(BUCKET, key)).encode())


def test_a_message_holds_ten_records() -> None:
    bodies = message_bodies(BUCKET, keys(*(f"{i}.jpg" for i in range(11))))
    assert [len(uris) for uris, _ in bodies] == [10, 1]


def test_a_body_is_the_s3_notification_of_its_records() -> None:
    ((_, body),) = message_bodies(BUCKET, keys("a b.jpg", "c.jpg"))
    assert json.loads(body) == {
        "Records": [
            s3_record(BUCKET, RequeueKey("a b.jpg")),
            s3_record(BUCKET, RequeueKey("c.jpg")),
        ]
    }


def long_pair(extra: int) -> list[RequeueKey]:
    """Two keys whose one body measures 24 KiB + ``extra`` bytes."""
    first = RequeueKey("a" * 5000 + ".jpg")
    short = RequeueKey("b.jpg")
    body = len('{"Records": [') + record_length(first) + len(", ") + len("]}")
    padding = BODY_LIMIT - body - record_length(short) + extra
    return [first, RequeueKey("b" * (1 + padding) + ".jpg")]


def test_a_body_of_exactly_24_kib_is_one_message() -> None:
    bodies = message_bodies(BUCKET, long_pair(0))
    assert [len(body.encode()) for _, body in bodies] == [BODY_LIMIT]


def test_a_body_one_byte_over_24_kib_is_split() -> None:
    bodies = message_bodies(BUCKET, long_pair(1))
    assert [len(uris) for uris, _ in bodies] == [1, 1]


def test_every_separator_counts_toward_the_24_kib() -> None:
    first, last = long_pair(1)
    middle = RequeueKey("m.jpg")
    shorter = RequeueKey(last.uri[: -len(".jpg") - record_length(middle) - 2] + ".jpg")
    bodies = message_bodies(BUCKET, [first, middle, shorter])
    assert [len(uris) for uris, _ in bodies] == [2, 1]


def test_a_record_says_its_size_when_known() -> None:
    assert s3_record(BUCKET, RequeueKey("a.jpg", size=7))["s3"]["object"]["size"] == 7


def test_a_record_without_a_known_size_has_none() -> None:
    assert "size" not in s3_record(BUCKET, RequeueKey("a.jpg"))["s3"]["object"]


def test_a_run_sequencer_is_sixteen_hex_digits() -> None:
    sequencer = run_sequencer("retry", "run-1", "a.jpg")
    assert len(sequencer) == 16 and sequencer == sequencer.upper()
    assert int(sequencer, 16) >= 0


def messages(*sizes: int) -> list[tuple[list[str], str]]:
    return [([f"{i}.jpg"], "x" * size) for i, size in enumerate(sizes)]


def test_a_call_holds_ten_messages() -> None:
    assert [len(call) for call in send_calls(messages(*[10] * 11))] == [10, 1]


def test_a_call_of_exactly_256_kib_is_one_call() -> None:
    assert [len(call) for call in send_calls(messages(CALL_LIMIT // 2, CALL_LIMIT // 2))] == [2]


def test_a_call_one_byte_over_256_kib_is_split() -> None:
    sizes = (CALL_LIMIT // 2, CALL_LIMIT // 2 + 1)
    assert [len(call) for call in send_calls(messages(*sizes))] == [1, 1]


def test_each_call_counts_its_bytes_afresh() -> None:
    sizes = (*[10] * 10, CALL_LIMIT // 2, CALL_LIMIT // 2)
    assert [len(call) for call in send_calls(messages(*sizes))] == [10, 2]


def test_a_message_over_the_call_limit_is_a_call_of_its_own() -> None:
    assert [len(call) for call in send_calls(messages(CALL_LIMIT + 1))] == [1]


def test_keys_reach_the_queue(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    report = Requeuer(sqs, url, BUCKET).send(keys(*(f"k{i} é.jpg" for i in range(25))))
    assert (report.sent, report.failed) == ([f"k{i} é.jpg" for i in range(25)], [])
    assert sorted(received(sqs, url)) == sorted(f"k{i} é.jpg" for i in range(25))


def test_failed_entries_are_sent_again(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    flaky = FlakySqs(sqs, [("InternalError", False)])
    report = Requeuer(flaky, url, BUCKET, sleep=lambda _: None).send(keys("a.jpg"))
    assert (report.sent, received(sqs, url)) == (["a.jpg"], ["a.jpg"])


def test_entries_are_tried_five_times_by_default(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    flaky = FlakySqs(sqs, [("InternalError", False)] * 10)
    Requeuer(flaky, url, BUCKET, sleep=lambda _: None).send(keys("a.jpg"))
    assert flaky.calls == 5


def test_the_backoff_doubles_from_0_4_seconds_up_to_4(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    delays: list[float] = []
    flaky = FlakySqs(sqs, [("InternalError", False)] * 10)
    requeuer = Requeuer(flaky, url, BUCKET, sleep=delays.append, rand=lambda: 0.5, retries=6)
    requeuer.send(keys("a.jpg"))
    assert delays == pytest.approx([0.2, 0.4, 0.8, 1.6, 2.0, 2.0])


def test_a_failure_the_sender_caused_is_not_retried(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    flaky = FlakySqs(sqs, [("InvalidMessageContents", True)])
    report = Requeuer(flaky, url, BUCKET, sleep=lambda _: None).send(keys("a.jpg"))
    assert (flaky.calls, report.sent) == (1, [])


def test_a_key_that_never_got_through_is_failed_with_sqs_reason(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    flaky = FlakySqs(sqs, [("InvalidMessageContents", True)])
    report = Requeuer(flaky, url, BUCKET, sleep=lambda _: None).send(keys("a.jpg"))
    assert report.failed == [("a.jpg", "SendMessageBatch: InvalidMessageContents: no")]


def test_a_call_that_raised_fails_its_keys_with_the_error(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    error = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessageBatch")
    flaky = FlakySqs(sqs, [error] * 5)
    report = Requeuer(flaky, url, BUCKET, sleep=lambda _: None).send(keys("a.jpg"))
    assert report.failed == [("a.jpg", f"SendMessageBatch failed: {error}")]
