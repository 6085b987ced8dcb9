"""Re-queueing: send keys back to the event queue as S3 notifications (docs/contracts.md).

Reconcile and ``-mode retry`` put keys back through the same queue and batching as uploads: each
message body is an S3-notification-shaped ``{"Records": [...]}`` with several records, sent with
SendMessageBatch 10 messages a call. The trigger then claims the keys as it claims uploads.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from botocore.exceptions import BotoCoreError, ClientError

from .logs import log

RECORDS_PER_MESSAGE = 10
MESSAGES_PER_CALL = 10  # SendMessageBatch's maximum
# SQS allows 256 KiB per message and per call; stay well under both.
MAX_BODY_BYTES = 24 * 1024
CONFIGURATION_ID = "iiif-process-ecs-requeue"


@dataclass(frozen=True)
class RequeueKey:
    """One key to send again, with what the ledger knows of the object.

    ``sequencer`` makes the record's identity (and so the trigger's RunTask clientToken) new, so
    that the key is not answered with the task that already ran it.
    """

    uri: str
    etag: str = ""
    size: int | None = None
    sequencer: str = ""


@dataclass
class SendReport:
    """Which keys reached the queue, and which did not (with the reason)."""

    sent: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def s3_record(bucket: str, key: RequeueKey, region: str = "") -> dict[str, Any]:
    """An S3 ObjectCreated record for ``key`` (URL-encoded as S3 encodes keys)."""
    obj: dict[str, Any] = {"key": quote_plus(key.uri, safe="/")}
    if key.size is not None:
        obj["size"] = key.size
    if key.etag:
        obj["eTag"] = key.etag
    if key.sequencer:
        obj["sequencer"] = key.sequencer
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "iiif-process-ecs"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": CONFIGURATION_ID,
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": obj,
        },
    }


def message_bodies(
    bucket: str,
    keys: Sequence[RequeueKey],
    *,
    region: str = "",
    per_message: int = RECORDS_PER_MESSAGE,
) -> list[tuple[list[str], str]]:
    """Pack keys into message bodies of up to ``per_message`` records and MAX_BODY_BYTES.

    Returns ``(uris, body)`` pairs in key order.
    """
    messages: list[tuple[list[str], str]] = []
    uris: list[str] = []
    records: list[dict[str, Any]] = []

    def close() -> None:
        if records:
            messages.append((list(uris), json.dumps({"Records": records}, ensure_ascii=False)))
            uris.clear()
            records.clear()

    for key in keys:
        record = s3_record(bucket, key, region)
        candidate = json.dumps({"Records": [*records, record]}, ensure_ascii=False)
        if records and (
            len(records) >= per_message or len(candidate.encode("utf-8")) > MAX_BODY_BYTES
        ):
            close()
        uris.append(key.uri)
        records.append(record)
    close()
    return messages


class Requeuer:
    """Sends keys to the event queue; retries entries SQS failed, with backoff."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        bucket: str,
        *,
        region: str = "",
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        retries: int = 4,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.bucket = bucket
        self.region = region
        self.sleep = sleep
        self.rand = rand
        self.retries = retries

    def send(self, keys: Sequence[RequeueKey]) -> SendReport:
        """Send ``keys``; every key ends in ``sent`` or ``failed``."""
        report = SendReport()
        messages = message_bodies(self.bucket, keys, region=self.region)
        for start in range(0, len(messages), MESSAGES_PER_CALL):
            chunk = messages[start : start + MESSAGES_PER_CALL]
            pending = {str(index): entry for index, entry in enumerate(chunk)}
            attempt = 0
            while pending:
                error = ""
                try:
                    response = self.sqs.send_message_batch(
                        QueueUrl=self.queue_url,
                        Entries=[
                            {"Id": entry_id, "MessageBody": body}
                            for entry_id, (_, body) in pending.items()
                        ],
                    )
                except (ClientError, BotoCoreError) as exc:
                    error = f"SendMessageBatch failed: {exc}"
                    response = {}
                for success in response.get("Successful", []):
                    uris, _ = pending.pop(success["Id"])
                    report.sent.extend(uris)
                failures = {
                    f["Id"]: f"{f.get('Code', '')}: {f.get('Message', '')}".strip(": ")
                    for f in response.get("Failed", [])
                }
                if not pending:
                    break
                attempt += 1
                # Failures the sender caused (a malformed entry) do not get better with time.
                sender_fault = any(f.get("SenderFault") for f in response.get("Failed", []))
                if attempt > self.retries or sender_fault:
                    for entry_id, (uris, _) in pending.items():
                        reason = error or f"SendMessageBatch: {failures.get(entry_id, 'failed')}"
                        report.failed.extend((uri, reason) for uri in uris)
                    break
                delay = self.rand() * min(4.0, 0.2 * 2**attempt)
                log("re-queue retried", attempt=attempt, delay=round(delay, 3), error=error)
                self.sleep(delay)
        log("keys re-queued", sent=len(report.sent), failed=report.failed)
        return report
