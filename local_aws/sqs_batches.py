"""One batch of Lambda's SQS event source mapping, delivered by hand.

moto's event source mapping invokes the function once per message, the moment the message
arrives, so in the emulator every upload is its own invocation. On AWS, Lambda's pollers gather
up to the mapping's batch size of messages (waiting up to its batching window) into one
invocation. `hold_event_source_mapping` pauses the mapping (as `aws lambda
update-event-source-mapping --no-enabled` does) so that notifications pile up in the queue, and
`deliver_one_batch` then does what a poller does with them: receive them, invoke the function
once with Lambda's SQS event, and delete the messages the function did not report in
`batchItemFailures`. Everything goes through the real AWS APIs (moto's) and the real handler.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from local_aws.server import EmbeddedAws

_RECEIVE_MAX = 10  # ReceiveMessage returns at most 10 messages per call


@dataclass(frozen=True)
class DeliveredBatch:
    """What one hand-delivered batch did."""

    messages: int
    response: dict[str, Any]
    deleted: int
    errored: bool


def event_source_mapping(aws: EmbeddedAws, function_name: str, queue_arn: str) -> dict[str, Any]:
    """The function's event source mapping for `queue_arn`."""
    mappings = aws.client("lambda").list_event_source_mappings(
        FunctionName=function_name, EventSourceArn=queue_arn
    )["EventSourceMappings"]
    if len(mappings) != 1:
        raise LookupError(
            f"expected one event source mapping from {queue_arn} to {function_name}, "
            f"found {len(mappings)}"
        )
    return mappings[0]


def queue_arn(aws: EmbeddedAws, queue_url: str) -> str:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]
    return str(attributes["QueueArn"])


@contextmanager
def hold_event_source_mapping(
    aws: EmbeddedAws, function_name: str, queue_url: str
) -> Iterator[dict[str, Any]]:
    """Disable the queue's event source mapping for the block, then enable it again."""
    mapping = event_source_mapping(aws, function_name, queue_arn(aws, queue_url))
    client = aws.client("lambda")
    client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    try:
        yield mapping
    finally:
        client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)


def _as_lambda_record(message: dict[str, Any], arn: str, region: str) -> dict[str, Any]:
    """An SQS message in the shape Lambda hands it to a function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": dict(message.get("MessageAttributes", {})),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


def deliver_one_batch(
    aws: EmbeddedAws, function_name: str, queue_url: str, batch_size: int
) -> DeliveredBatch:
    """Receive up to `batch_size` queued messages and invoke the function once with them.

    As the mapping does with `ReportBatchItemFailures`: messages named in `batchItemFailures`
    stay in the queue (visible again after the visibility timeout), the others are deleted; when
    the invocation errors, none is deleted.
    """
    sqs = aws.client("sqs")
    arn = queue_arn(aws, queue_url)
    messages: list[dict[str, Any]] = []
    while len(messages) < batch_size:
        received = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(_RECEIVE_MAX, batch_size - len(messages)),
            AttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not received:
            break
        messages.extend(received)
    if not messages:
        return DeliveredBatch(messages=0, response={}, deleted=0, errored=False)
    event = {"Records": [_as_lambda_record(m, arn, aws.region) for m in messages]}
    invoked = aws.client("lambda").invoke(
        FunctionName=function_name, Payload=json.dumps(event).encode()
    )
    payload = invoked["Payload"].read()
    response = json.loads(payload) if payload else {}
    if "FunctionError" in invoked:
        return DeliveredBatch(len(messages), response, deleted=0, errored=True)
    retry = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
    done = [m for m in messages if m["MessageId"] not in retry]
    for message in done:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return DeliveredBatch(len(messages), response, deleted=len(done), errored=False)
