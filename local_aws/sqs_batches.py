"""Lambda's SQS event source mappings, polled as Lambda polls them.

moto's event source mapping invokes the function once per message, inside the SendMessage call
that queued it, and deletes the message whatever the function reported. On AWS, Lambda's pollers
gather up to the mapping's batch size of messages (waiting up to its batching window) into one
invocation, and with `ReportBatchItemFailures` delete only the messages the function did not
name in `batchItemFailures`; the others come back after the queue's visibility timeout.

`lambda_pollers` does the latter for every enabled SQS mapping in the emulator, whichever stack
made it (the trigger's event queue, the reconcile queue, ...): it takes the mappings away from
moto's inline delivery and runs one poller thread per mapping. `hold_event_source_mapping` pauses
a mapping (as `aws lambda update-event-source-mapping --no-enabled` does) so that messages pile up
in the queue, and `deliver_one_batch` then does by hand what a poller does with them. Everything
goes through the real AWS APIs (moto's) and the real handler.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto.awslambda.models import LambdaBackend
from moto.sqs.models import sqs_backends

from local_aws.server import EmbeddedAws

_RECEIVE_MAX = 10  # ReceiveMessage returns at most 10 messages per call
_GATHER_SLEEP_SECONDS = 0.05
_IDLE_SLEEP_SECONDS = 0.1
_DISCOVER_SECONDS = 0.5
# Lambda's longest timeout: an invocation may take that long to answer.
_INVOKE_READ_TIMEOUT = 900


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


class DeliveryHolds:
    """The mappings held in this process, and the deliveries under way for each.

    Disabling a mapping through the API does not stop a poller that read "Enabled" a moment
    before: it may still take the first message sent inside the hold and hand it back only after
    the holder's own batch was received, splitting it. A hold therefore also waits here for the
    mapping's deliveries under way to end, and pollers start none while it lasts.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._held: set[str] = set()
        self._busy: dict[str, int] = {}

    def hold(self, uuid: str, timeout: float = _INVOKE_READ_TIMEOUT) -> None:
        with self._changed:
            self._held.add(uuid)
            if not self._changed.wait_for(lambda: not self._busy.get(uuid), timeout):
                raise TimeoutError(f"a delivery for mapping {uuid} did not end in {timeout} s")

    def release(self, uuid: str) -> None:
        with self._changed:
            self._held.discard(uuid)

    def begin(self, uuid: str) -> bool:
        """Count a delivery for ``uuid`` as under way, unless the mapping is held."""
        with self._changed:
            if uuid in self._held:
                return False
            self._busy[uuid] = self._busy.get(uuid, 0) + 1
            return True

    def end(self, uuid: str) -> None:
        with self._changed:
            self._busy[uuid] -= 1
            self._changed.notify_all()


HOLDS = DeliveryHolds()


@contextmanager
def hold_event_source_mapping(
    aws: EmbeddedAws, function_name: str, queue_url: str
) -> Iterator[dict[str, Any]]:
    """Disable the queue's event source mapping for the block, then enable it again. When
    this process's pollers deliver that mapping, a batch one of them had started is first
    delivered (or handed back), so that messages sent inside the block reach only the holder."""
    mapping = event_source_mapping(aws, function_name, queue_arn(aws, queue_url))
    client = aws.client("lambda")
    client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    try:
        HOLDS.hold(mapping["UUID"])
        yield mapping
    finally:
        HOLDS.release(mapping["UUID"])
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


def receive_batch(
    aws: EmbeddedAws, queue_url: str, batch_size: int, window_seconds: float = 0.0
) -> list[dict[str, Any]]:
    """Up to `batch_size` messages, gathered for up to `window_seconds` after the first arrived."""
    sqs = aws.client("sqs")
    messages: list[dict[str, Any]] = []
    first_at: float | None = None
    while len(messages) < batch_size:
        received = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(_RECEIVE_MAX, batch_size - len(messages)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        messages.extend(received)
        if first_at is None and messages:
            first_at = time.monotonic()
        if received:
            continue
        if first_at is None or time.monotonic() - first_at >= window_seconds:
            break
        time.sleep(_GATHER_SLEEP_SECONDS)
    return messages


def invoke_with_batch(
    aws: EmbeddedAws,
    function_name: str,
    queue_url: str,
    messages: list[dict[str, Any]],
    report_batch_item_failures: bool = True,
) -> DeliveredBatch:
    """Invoke the function once with `messages` as Lambda's SQS event; delete what it handled.

    When the invocation errors, none is deleted; with `report_batch_item_failures` (the
    mapping's `FunctionResponseTypes`), the messages named in `batchItemFailures` stay in the
    queue (visible again after the visibility timeout), the others are deleted.
    """
    if not messages:
        return DeliveredBatch(messages=0, response={}, deleted=0, errored=False)
    sqs = aws.client("sqs")
    arn = queue_arn(aws, queue_url)
    event = {"Records": [_as_lambda_record(m, arn, aws.region) for m in messages]}
    invoked = aws.client("lambda", read_timeout=_INVOKE_READ_TIMEOUT).invoke(
        FunctionName=function_name, Payload=json.dumps(event).encode()
    )
    payload = invoked["Payload"].read()
    try:
        response = json.loads(payload) if payload else {}
    except ValueError:
        response = {"unparsed": payload.decode("utf-8", "replace")}
    if "FunctionError" in invoked:
        return DeliveredBatch(len(messages), response, deleted=0, errored=True)
    retry: set[str] = set()
    if report_batch_item_failures and isinstance(response, dict):
        retry = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
    done = [m for m in messages if m["MessageId"] not in retry]
    for message in done:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return DeliveredBatch(len(messages), response, deleted=len(done), errored=False)


def deliver_one_batch(
    aws: EmbeddedAws, function_name: str, queue_url: str, batch_size: int
) -> DeliveredBatch:
    """Receive up to `batch_size` queued messages and invoke the function once with them,
    deleting those it did not report in `batchItemFailures` (see `invoke_with_batch`)."""
    messages = receive_batch(aws, queue_url, batch_size)
    return invoke_with_batch(aws, function_name, queue_url, messages)


# --- the pollers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolledBatch:
    """One batch a poller delivered."""

    function_name: str
    queue_url: str
    delivered: DeliveredBatch
    seconds: float


#: Called after each batch a poller delivered.
BatchListener = Callable[[PolledBatch], None]


def _queue_url(aws: EmbeddedAws, arn: str) -> str:
    *_, account, name = arn.split(":")
    return str(
        aws.client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    )


class LambdaPollers:
    """Lambda's pollers for every SQS event source mapping in the emulator, one thread each.

    `batch_window_cap` shortens every mapping's `MaximumBatchingWindowInSeconds` to at most that
    many seconds (None: as deployed), so that tests and demos need not wait 30 s for a batch.
    """

    def __init__(
        self,
        aws: EmbeddedAws,
        batch_window_cap: float | None = None,
        on_batch: BatchListener | None = None,
    ) -> None:
        self._aws = aws
        self.batch_window_cap = batch_window_cap
        self._on_batch = on_batch
        self.batches: list[PolledBatch] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self._threads: dict[str, threading.Thread] = {}
        self._queues: dict[str, str] = {}  # mapping UUID -> queue URL, enabled mappings only
        self._stop = threading.Event()
        self._manager = threading.Thread(target=self._discover, name="sqs-pollers", daemon=True)
        self._original_create = LambdaBackend.create_event_source_mapping

    def start(self) -> None:
        original = self._original_create

        def create_event_source_mapping(backend: LambdaBackend, spec: dict[str, Any]) -> Any:
            mapping = original(backend, spec)
            _detach_from_moto(backend, mapping)
            return mapping

        LambdaBackend.create_event_source_mapping = create_event_source_mapping  # type: ignore[method-assign]
        self._manager.start()

    def stop(self) -> None:
        self._stop.set()
        self._manager.join()
        for thread in list(self._threads.values()):
            thread.join()
        LambdaBackend.create_event_source_mapping = self._original_create  # type: ignore[method-assign]

    def busy(self) -> bool:
        """Whether a batch is being delivered or an enabled mapping's queue holds messages.

        The mappings are listed here rather than taken from the pollers: a mapping deployed a
        moment ago may have no poller yet, and its queue's messages are still work to wait for.
        """
        with self._lock:
            if self._in_flight:
                return True
            queues = dict(self._queues)
        sqs = self._aws.client("sqs")
        try:
            mappings = [
                m
                for page in self._aws.client("lambda")
                .get_paginator("list_event_source_mappings")
                .paginate()
                for m in page["EventSourceMappings"]
            ]
        except Exception:  # the server stopping under us: what the pollers know will do
            mappings = []
        for mapping in mappings:
            arn = str(mapping.get("EventSourceArn", ""))
            enabled = arn.startswith("arn:aws:sqs:") and mapping.get("State") == "Enabled"
            if enabled and mapping["UUID"] not in queues:
                try:
                    queues[mapping["UUID"]] = _queue_url(self._aws, arn)
                except sqs.exceptions.QueueDoesNotExist:
                    continue
        for url in queues.values():
            try:
                attributes = sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=[
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesDelayed",
                    ],
                )["Attributes"]
            except sqs.exceptions.QueueDoesNotExist:  # the emulator was reset
                continue
            if any(int(v) for v in attributes.values()):
                return True
        return False

    def _discover(self) -> None:
        client = self._aws.client("lambda")
        while not self._stop.is_set():
            try:
                mappings = [
                    m
                    for page in client.get_paginator("list_event_source_mappings").paginate()
                    for m in page["EventSourceMappings"]
                ]
            except Exception as error:  # the server stopping under us
                if not self._stop.is_set():
                    print(f"sqs pollers: cannot list mappings: {error!r}", file=sys.stderr)
                mappings = []
            for mapping in mappings:
                uuid = mapping["UUID"]
                if not str(mapping.get("EventSourceArn", "")).startswith("arn:aws:sqs:"):
                    continue
                thread = self._threads.get(uuid)
                if thread is None or not thread.is_alive():
                    thread = threading.Thread(
                        target=self._poll, args=(uuid,), name=f"sqs-poller-{uuid[:8]}", daemon=True
                    )
                    self._threads[uuid] = thread
                    thread.start()
            self._stop.wait(_DISCOVER_SECONDS)

    def _poll(self, uuid: str) -> None:
        client = self._aws.client("lambda")
        queue_url: str | None = None
        try:
            while not self._stop.is_set():
                try:
                    mapping = client.get_event_source_mapping(UUID=uuid)
                except client.exceptions.ResourceNotFoundException:
                    return  # deleted, or the emulator was reset
                if mapping.get("State") != "Enabled":
                    with self._lock:
                        self._queues.pop(uuid, None)
                    self._stop.wait(_IDLE_SLEEP_SECONDS)
                    continue
                if queue_url is None:
                    queue_url = _queue_url(self._aws, mapping["EventSourceArn"])
                with self._lock:
                    self._queues[uuid] = queue_url
                if not HOLDS.begin(uuid):
                    self._stop.wait(_IDLE_SLEEP_SECONDS)
                    continue
                try:
                    delivered = self._deliver(mapping, queue_url)
                finally:
                    HOLDS.end(uuid)
                if not delivered:
                    self._stop.wait(_IDLE_SLEEP_SECONDS)
        except Exception as error:
            gone = "NonExistentQueue" in str(error)  # the emulator was reset: nothing to say
            if not self._stop.is_set() and not gone:
                print(f"sqs poller {uuid}: stopped: {error!r}", file=sys.stderr)
        finally:
            with self._lock:
                self._queues.pop(uuid, None)

    def _still_enabled(self, uuid: str) -> bool:
        client = self._aws.client("lambda")
        try:
            return client.get_event_source_mapping(UUID=uuid).get("State") == "Enabled"
        except client.exceptions.ResourceNotFoundException:
            return False

    def _deliver(self, mapping: dict[str, Any], queue_url: str) -> bool:
        """One batch, if the queue holds any; return whether one was delivered."""
        window = float(mapping.get("MaximumBatchingWindowInSeconds") or 0)
        if self.batch_window_cap is not None:
            window = min(window, self.batch_window_cap)
        with self._lock:
            self._in_flight += 1
        try:
            messages = receive_batch(
                self._aws, queue_url, int(mapping.get("BatchSize") or 10), window
            )
            if not messages:
                return False
            if not self._still_enabled(mapping["UUID"]):
                # Disabled while these were gathered (hold_event_source_mapping): hand them back,
                # so that whoever disabled the mapping gets the whole batch.
                _release(self._aws, queue_url, messages)
                return False
            started = time.monotonic()
            function_name = mapping["FunctionArn"].split(":")[6]
            delivered = invoke_with_batch(
                self._aws,
                function_name,
                queue_url,
                messages,
                "ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or []),
            )
            batch = PolledBatch(function_name, queue_url, delivered, time.monotonic() - started)
            with self._lock:
                self.batches.append(batch)
            if self._on_batch:
                self._on_batch(batch)
            return True
        finally:
            with self._lock:
                self._in_flight -= 1


def _release(aws: EmbeddedAws, queue_url: str, messages: list[dict[str, Any]]) -> None:
    """Make received messages visible again at once."""
    sqs = aws.client("sqs")
    for message in messages:
        sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )


def _detach_from_moto(backend: LambdaBackend, mapping: Any) -> None:
    """Take a new SQS mapping away from moto's inline delivery (the pollers deliver it)."""
    for queue in sqs_backends[backend.account_id][backend.region_name].queues.values():
        if queue.lambda_event_source_mappings.get(mapping.function_arn) is mapping:
            del queue.lambda_event_source_mappings[mapping.function_arn]


@contextmanager
def lambda_pollers(
    aws: EmbeddedAws, batch_window_cap: float | None = None, on_batch: BatchListener | None = None
) -> Iterator[LambdaPollers]:
    """Poll every SQS event source mapping as Lambda does, for the duration of the block."""
    pollers = LambdaPollers(aws, batch_window_cap=batch_window_cap, on_batch=on_batch)
    pollers.start()
    try:
        yield pollers
    finally:
        pollers.stop()
