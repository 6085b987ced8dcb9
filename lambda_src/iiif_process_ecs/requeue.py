"""Re-queueing: send keys back to the event queue as S3 notifications (docs/contracts.md).

Reconcile and ``-mode retry`` put keys back through the same queue and batching as uploads: each
message body is an S3-notification-shaped ``{"Records": [...]}`` with several records, sent with
SendMessageBatch 10 messages a call. The trigger then claims the keys as it claims uploads.
"""

from __future__ import annotations

import hashlib
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
MAX_CALL_BYTES = 256 * 1024
# json.dumps({"Records": [...]}) with the default separators, built from records dumped once.
_BODY_START, _BODY_END, _SEPARATOR = '{"Records": [', "]}", ", "
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


def run_sequencer(purpose: str, run: str, uri: str) -> str:
    """A sequencer new for each run (``purpose``: retry, backfill), so the trigger's RunTask
    clientToken is not that of an earlier run of the same key."""
    return hashlib.sha256(f"{purpose}\0{run}\0{uri}".encode()).hexdigest()[:16].upper()


def message_bodies(
    bucket: str,
    keys: Sequence[RequeueKey],
    *,
    region: str = "",
    per_message: int = RECORDS_PER_MESSAGE,
    max_bytes: int = MAX_BODY_BYTES,
) -> list[tuple[list[str], str]]:
    """Pack keys into message bodies of up to ``per_message`` records and ``max_bytes``.

    Returns ``(uris, body)`` pairs in key order. Each record is serialised once (a backfill
    packs a million keys), and a body is exactly ``json.dumps({"Records": records})``.
    """
    messages: list[tuple[list[str], str]] = []
    uris: list[str] = []
    parts: list[str] = []
    fixed = len(_BODY_START) + len(_BODY_END)
    size = fixed

    def close() -> None:
        nonlocal size
        if parts:
            messages.append((list(uris), _BODY_START + _SEPARATOR.join(parts) + _BODY_END))
            uris.clear()
            parts.clear()
            size = fixed

    for key in keys:
        text = json.dumps(s3_record(bucket, key, region), ensure_ascii=False)
        length = len(text.encode("utf-8"))
        if parts and (len(parts) >= per_message or size + len(_SEPARATOR) + length > max_bytes):
            close()
        size += length + (len(_SEPARATOR) if parts else 0)
        uris.append(key.uri)
        parts.append(text)
    close()
    return messages


def send_calls(
    messages: Sequence[tuple[list[str], str]], *, max_bytes: int = MAX_CALL_BYTES
) -> list[list[tuple[list[str], str]]]:
    """Group messages into SendMessageBatch calls: at most 10 messages and ``max_bytes`` of
    bodies a call (SQS's limits), in order."""
    calls: list[list[tuple[list[str], str]]] = []
    current: list[tuple[list[str], str]] = []
    total = 0
    for message in messages:
        length = len(message[1].encode("utf-8"))
        if current and (len(current) >= MESSAGES_PER_CALL or total + length > max_bytes):
            calls.append(current)
            current, total = [], 0
        current.append(message)
        total += length
    if current:
        calls.append(current)
    return calls


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
        return self.send_messages(message_bodies(self.bucket, keys, region=self.region))

    def send_messages(self, messages: Sequence[tuple[list[str], str]]) -> SendReport:
        """Send ``(uris, body)`` messages from message_bodies, SendMessageBatch by send_calls;
        every URI ends in ``sent`` or ``failed``."""
        report = SendReport()
        for chunk in send_calls(messages):
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
