"""Turn the events the Lambda accepts into object records.

Shapes, and how they are told apart:

* SQS batch from the event queue: ``Records`` whose ``eventSource`` are all ``"aws:sqs"``; each
  message's ``body`` is an S3 notification (parsed as below) or an ``s3:TestEvent`` (a no-op). A
  body that is not JSON, nested too deeply, or not an S3 notification - or any error while
  reading it - fails that message alone with a reason. Every
  object remembers its ``messageId``, so the caller can report the messages it did not finish.
* S3 notification: ``Records`` whose ``eventSource`` is ``"aws:s3"``. The key is URL-encoded
  form-style and is decoded exactly once with ``unquote_plus``; the bucket name is required.
* The seed's ``-mode invoke`` payload: ``Records`` whose ``eventSource`` is missing or empty (Go
  marshals the zero value ``""``) with ``s3.object.key`` set. The key is used as given (the seed
  never encoded it); a bucket name, if one is present and not empty, is checked like S3's.
* ``s3:TestEvent`` (sent when a notification is configured): a no-op.
* Direct invocation ``{"uris": [...]}``: strictly validated (only that field, a list of 1 to
  MAX_DIRECT_URIS strings); keys used as given.
* EventBridge ``Object Created`` from S3 (``source`` ``"aws.s3"``): ``detail.object.key`` is used as
  given; S3 documents URL-encoding only for its notification format, not for EventBridge.

One bad record never blocks the others: it becomes a RejectedRecord with its reason. Only an event
that has none of these shapes raises InvalidEvent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote_plus

MAX_DIRECT_URIS = 1000
SQS_SHAPE = "sqs"


class InvalidEvent(ValueError):
    """The event as a whole has no shape the trigger accepts; the message says what is wrong."""


@dataclass(frozen=True)
class ObjectRecord:
    """One object to process: its decoded key, and what the event said about it.

    ``identity`` distinguishes two uploads of the same key (S3's sequencer, version ID or ETag);
    it is empty when the event has none. It feeds the RunTask clientToken. ``message_id`` is the
    SQS message the record came in (empty for other shapes); it does not feed the clientToken,
    since S3 may deliver one upload in two messages.
    """

    key: str
    source: str
    bucket: str | None = None
    size: int | None = None
    identity: str = ""
    message_id: str = ""
    # S3's ETag without quotes, when the event carries one (the ledger's "etag"; issue #9).
    etag: str = ""


@dataclass(frozen=True)
class RejectedRecord:
    """A record that will not be processed: ``outcome`` is "skipped" or "failed"."""

    uri: str
    outcome: str
    reason: str


@dataclass(frozen=True)
class ParsedEvent:
    """The records of one event, in event order; ``message_ids`` of an SQS batch, in order."""

    shape: str
    objects: tuple[ObjectRecord, ...]
    rejected: tuple[RejectedRecord, ...]
    message_ids: tuple[str, ...] = ()
    # A direct invocation's ``"force": true``: launch even keys the ledger has as unchanged.
    force: bool = False

    @property
    def is_sqs_batch(self) -> bool:
        """True for a batch from the event queue (answered with batchItemFailures)."""
        return self.shape == SQS_SHAPE


def parse_event(event: Any, *, source_bucket: str | None = None) -> ParsedEvent:
    """Parse any accepted event shape; refuse records for a bucket other than ``source_bucket``."""
    if not isinstance(event, Mapping):
        raise InvalidEvent(f"event must be a JSON object, not {type(event).__name__}")
    if "Records" in event:
        if _is_sqs_batch(event["Records"]):
            return _parse_sqs(event["Records"], source_bucket)
        return _parse_records(event["Records"], source_bucket)
    if event.get("Event") == "s3:TestEvent":
        return ParsedEvent("s3:TestEvent", (), ())
    if "uris" in event:
        return _parse_direct(event)
    if event.get("source") == "aws.s3" and "detail" in event:
        return _parse_eventbridge(event, source_bucket)
    fields = ", ".join(sorted(map(str, event))) or "none"
    raise InvalidEvent(
        "unrecognised event: expected S3 'Records', an s3:TestEvent, {\"uris\": [...]} or an "
        f"EventBridge event from aws.s3; top-level fields: {fields}"
    )


def _parse_direct(event: Mapping[str, Any]) -> ParsedEvent:
    unknown = sorted(str(name) for name in event if name not in ("uris", "force"))
    if unknown:
        raise InvalidEvent(
            f"direct invocation: unknown field(s) {', '.join(unknown)}; only 'uris' and 'force'"
        )
    force = event.get("force", False)
    if not isinstance(force, bool):
        raise InvalidEvent(
            f"direct invocation: 'force' must be true or false, not {type(force).__name__}"
        )
    uris = event["uris"]
    if not isinstance(uris, list):
        raise InvalidEvent(f"direct invocation: 'uris' must be a list, not {type(uris).__name__}")
    if not uris:
        raise InvalidEvent("direct invocation: 'uris' is empty")
    if len(uris) > MAX_DIRECT_URIS:
        raise InvalidEvent(
            f"direct invocation: 'uris' holds {len(uris)} entries; at most {MAX_DIRECT_URIS}"
        )
    for index, uri in enumerate(uris):
        if not isinstance(uri, str):
            raise InvalidEvent(
                f"direct invocation: uris[{index}] must be a string, not {type(uri).__name__}"
            )
    return ParsedEvent(
        "uris", tuple(ObjectRecord(key=uri, source="uris") for uri in uris), (), force=force
    )


def _parse_records(records: Any, source_bucket: str | None) -> ParsedEvent:
    if not isinstance(records, list):
        raise InvalidEvent(f"'Records' must be a list, not {type(records).__name__}")
    objects: list[ObjectRecord] = []
    rejected: list[RejectedRecord] = []
    shapes: set[str] = set()
    for index, record in enumerate(records):
        result = _parse_record(f"Records[{index}]", record, source_bucket)
        if isinstance(result, ObjectRecord):
            objects.append(result)
            shapes.add(result.source)
        else:
            rejected.append(result)
    shape = "+".join(sorted(shapes)) if shapes else "records"
    return ParsedEvent(shape, tuple(objects), tuple(rejected))


def _get(mapping: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(name)
    return mapping


def _size(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _etag(value: Any) -> str:
    return value.strip('"') if isinstance(value, str) else ""


def _identity(*parts: Any) -> str:
    return "/".join(str(part) for part in parts if isinstance(part, str | int) and part != "")


def _parse_record(
    where: str, record: Any, source_bucket: str | None
) -> ObjectRecord | RejectedRecord:
    if not isinstance(record, Mapping):
        return RejectedRecord("", "failed", f"{where}: a record must be a JSON object")
    event_source = record.get("eventSource")
    raw_key = _get(record, "s3", "object", "key")
    shown = raw_key if isinstance(raw_key, str) else ""
    if not isinstance(raw_key, str):
        return RejectedRecord("", "failed", f"{where}: no string s3.object.key")
    bucket = _get(record, "s3", "bucket", "name")
    bucket = bucket if isinstance(bucket, str) and bucket else None
    obj = _get(record, "s3", "object")

    if event_source == "aws:s3":
        event_name = record.get("eventName")
        try:
            key = unquote_plus(raw_key, errors="strict")
        except UnicodeDecodeError:
            return RejectedRecord(
                shown, "failed", f"{where}: key is not valid percent-encoded UTF-8"
            )
        if not isinstance(event_name, str) or not event_name.startswith("ObjectCreated:"):
            return RejectedRecord(
                key, "skipped", f"{where}: not an ObjectCreated event ({event_name!r})"
            )
        if bucket is None:
            return RejectedRecord(key, "failed", f"{where}: S3 record without s3.bucket.name")
        refusal = _bucket_refusal(where, bucket, source_bucket)
        if refusal:
            return RejectedRecord(key, "failed", refusal)
        return ObjectRecord(
            key=key,
            source="s3",
            bucket=bucket,
            size=_size(_get(obj, "size")),
            identity=_identity(_get(obj, "sequencer"), _get(obj, "versionId"), _get(obj, "eTag")),
            etag=_etag(_get(obj, "eTag")),
        )

    if event_source in (None, ""):
        # The seed's -mode invoke payload: the key is not encoded.
        if bucket is not None:
            refusal = _bucket_refusal(where, bucket, source_bucket)
            if refusal:
                return RejectedRecord(raw_key, "failed", refusal)
        return ObjectRecord(
            key=raw_key,
            source="invoke",
            bucket=bucket,
            size=_size(_get(obj, "size")),
            identity=_identity(_get(obj, "sequencer")),
        )

    return RejectedRecord(shown, "failed", f"{where}: unsupported eventSource {event_source!r}")


def _is_sqs_batch(records: Any) -> bool:
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, Mapping) and r.get("eventSource") == "aws:sqs" for r in records)
    )


def _parse_sqs(records: list[Mapping[str, Any]], source_bucket: str | None) -> ParsedEvent:
    objects: list[ObjectRecord] = []
    rejected: list[RejectedRecord] = []
    message_ids: list[str] = []
    for index, record in enumerate(records):
        message_id = record.get("messageId")
        if not isinstance(message_id, str) or not message_id:
            rejected.append(
                RejectedRecord("", "failed", f"Records[{index}]: SQS record without messageId")
            )
            continue
        message_ids.append(message_id)
        where = f"message {message_id}"
        try:
            found, refused = _parse_sqs_body(where, record.get("body"), source_bucket)
        except Exception as error:
            # Anything else (a parser bug, MemoryError on a huge body) fails this message alone,
            # in the response and not retried, like a bad body; its batch mates go on.
            found, refused = (
                [],
                [
                    RejectedRecord(
                        "", "failed", f"{where}: could not be read ({type(error).__name__})"
                    )
                ],
            )
        objects.extend(replace(o, message_id=message_id) for o in found)
        rejected.extend(refused)
    return ParsedEvent(SQS_SHAPE, tuple(objects), tuple(rejected), tuple(message_ids))


def _parse_sqs_body(
    where: str, body: Any, source_bucket: str | None
) -> tuple[list[ObjectRecord], list[RejectedRecord]]:
    """One message's body: an S3 notification, an s3:TestEvent (nothing), or a failure."""
    if not isinstance(body, str):
        return [], [RejectedRecord("", "failed", f"{where}: body is not a string")]
    try:
        payload = json.loads(body)
    except RecursionError:
        return [], [RejectedRecord("", "failed", f"{where}: body is JSON nested too deeply")]
    except ValueError:
        shown = body[:80] + ("..." if len(body) > 80 else "")
        return [], [RejectedRecord("", "failed", f"{where}: body is not JSON: {shown!r}")]
    if isinstance(payload, Mapping) and payload.get("Event") == "s3:TestEvent":
        return [], []
    inner = payload.get("Records") if isinstance(payload, Mapping) else None
    if not isinstance(inner, list) or not inner:
        return [], [
            RejectedRecord(
                "", "failed", f"{where}: body is not an S3 event notification (no 'Records' list)"
            )
        ]
    objects: list[ObjectRecord] = []
    rejected: list[RejectedRecord] = []
    for index, record in enumerate(inner):
        here = f"{where} Records[{index}]"
        if not isinstance(record, Mapping) or record.get("eventSource") != "aws:s3":
            source = record.get("eventSource") if isinstance(record, Mapping) else None
            rejected.append(
                RejectedRecord(
                    "", "failed", f"{here}: not an S3 event record (eventSource {source!r})"
                )
            )
            continue
        result = _parse_record(here, record, source_bucket)
        if isinstance(result, ObjectRecord):
            objects.append(result)
        else:
            rejected.append(result)
    return objects, rejected


def _bucket_refusal(where: str, bucket: str, source_bucket: str | None) -> str | None:
    if source_bucket and bucket != source_bucket:
        return f"{where}: bucket {bucket!r} is not the source bucket {source_bucket!r}"
    return None


def _parse_eventbridge(event: Mapping[str, Any], source_bucket: str | None) -> ParsedEvent:
    detail_type = event.get("detail-type")
    key = _get(event, "detail", "object", "key")
    if not isinstance(key, str):
        return ParsedEvent(
            "eventbridge", (), (RejectedRecord("", "failed", "EventBridge: no detail.object.key"),)
        )
    if detail_type != "Object Created":
        return ParsedEvent(
            "eventbridge",
            (),
            (
                RejectedRecord(
                    key, "skipped", f"EventBridge: not an Object Created event ({detail_type!r})"
                ),
            ),
        )
    bucket = _get(event, "detail", "bucket", "name")
    if not isinstance(bucket, str) or not bucket:
        return ParsedEvent(
            "eventbridge",
            (),
            (RejectedRecord(key, "failed", "EventBridge: no detail.bucket.name"),),
        )
    refusal = _bucket_refusal("EventBridge", bucket, source_bucket)
    if refusal:
        return ParsedEvent("eventbridge", (), (RejectedRecord(key, "failed", refusal),))
    obj = _get(event, "detail", "object")
    record = ObjectRecord(
        key=key,
        source="eventbridge",
        bucket=bucket,
        size=_size(_get(obj, "size")),
        identity=_identity(_get(obj, "sequencer"), _get(obj, "version-id"), _get(obj, "etag")),
        etag=_etag(_get(obj, "etag")),
    )
    return ParsedEvent("eventbridge", (record,), ())
