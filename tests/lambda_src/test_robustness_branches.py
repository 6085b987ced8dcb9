"""Issue #13's robustness branches, each observed through the handler (moto) or the parser:
the other-bucket refusal for every event shape, EventBridge identity, lone surrogates in keys.
(The safety margin under RunTask's 8192 characters is pinned in test_ecs_trigger_batching.py.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from iiif_process_ecs.events import MAX_DIRECT_URIS, InvalidEvent, parse_event

from tests.lambda_src.conftest import Infra, s3_record
from tests.lambda_src.ledger_support import create_ledger_table, item_of
from tests.lambda_src.test_ecs_trigger_events import eventbridge
from tests.lambda_src.test_ecs_trigger_handler import FlakyEcs, run
from tests.lambda_src.test_ecs_trigger_sqs import batch, sqs_message
from tests.lambda_src.test_ledger_trigger import run as ledger_run

SOURCE = "iiif-source"


def seed_record(key: str, bucket: str) -> dict[str, Any]:
    """A seed `-mode invoke` record (no eventSource, key not encoded) that names a bucket."""
    return {"eventSource": "", "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}


def test_a_seed_invoke_record_naming_another_bucket_fails_and_starts_nothing(
    infra: Infra,
) -> None:
    ecs = FlakyEcs()
    response = run(
        infra,
        {"Records": [seed_record("a.jpg", "other")]},
        ecs=ecs,
        IIIF_PROCESS_SOURCE_BUCKET=SOURCE,
    )
    assert [e["uri"] for e in response["failed"]] == ["a.jpg"]
    assert "'other' is not the source bucket 'iiif-source'" in response["failed"][0]["reason"]
    assert ecs.calls == []


def test_a_seed_invoke_record_naming_the_source_bucket_is_accepted() -> None:
    parsed = parse_event({"Records": [seed_record("a.jpg", SOURCE)]}, source_bucket=SOURCE)
    assert [(r.key, r.bucket, r.source) for r in parsed.objects] == [("a.jpg", SOURCE, "invoke")]


def test_a_seed_invoke_record_with_an_empty_bucket_name_is_accepted() -> None:
    # Go marshals the zero value: "" means "no bucket named", not another bucket.
    parsed = parse_event({"Records": [seed_record("a.jpg", "")]}, source_bucket=SOURCE)
    assert [r.key for r in parsed.objects] == ["a.jpg"]


def test_an_sqs_message_for_another_bucket_fails_without_blocking_its_batch_mate(
    infra: Infra,
) -> None:
    event = batch(
        sqs_message("m1", {"Records": [s3_record("x.jpg", bucket="other")]}),
        sqs_message("m2", {"Records": [s3_record("y.jpg")]}),
    )
    response = run(infra, event, IIIF_PROCESS_SOURCE_BUCKET=SOURCE)
    assert [e["uri"] for e in response["failed"]] == ["x.jpg"]
    assert [e["uri"] for e in response["launched"]] == ["y.jpg"]
    # A refusal is final: the message is not handed back for a retry.
    assert response["batchItemFailures"] == []


def test_an_sqs_record_for_another_bucket_is_refused_by_name() -> None:
    event = batch(sqs_message("m1", {"Records": [s3_record("x.jpg", bucket="other")]}))
    parsed = parse_event(event, source_bucket=SOURCE)
    assert parsed.objects == ()
    assert [(r.uri, r.outcome) for r in parsed.rejected] == [("x.jpg", "failed")]
    assert "'other' is not the source bucket" in parsed.rejected[0].reason


def test_an_eventbridge_event_for_another_bucket_names_both_buckets(infra: Infra) -> None:
    ecs = FlakyEcs()
    response = run(
        infra, eventbridge("a.jpg", bucket="other"), ecs=ecs, IIIF_PROCESS_SOURCE_BUCKET=SOURCE
    )
    assert [e["uri"] for e in response["failed"]] == ["a.jpg"]
    assert "'other' is not the source bucket 'iiif-source'" in response["failed"][0]["reason"]
    assert ecs.calls == []


def test_without_a_source_bucket_setting_any_bucket_is_accepted() -> None:
    parsed = parse_event(eventbridge("a.jpg", bucket="other"))
    assert [(r.key, r.bucket) for r in parsed.objects] == [("a.jpg", "other")]


def with_object(event: dict[str, Any], **fields: str) -> dict[str, Any]:
    """A copy of an EventBridge event whose detail.object has these fields changed."""
    copy = json.loads(json.dumps(event))
    copy["detail"]["object"].update(fields)
    return copy


def test_a_re_upload_seen_through_eventbridge_gets_a_new_client_token(infra: Infra) -> None:
    first_upload = eventbridge("a.jpg")
    re_upload = with_object(first_upload, sequencer="617f0829932a0000", etag="c0ffee00")
    first, second = FlakyEcs(), FlakyEcs()
    run(infra, first_upload, ecs=first)
    run(infra, re_upload, ecs=second)
    assert first.calls[0]["clientToken"] != second.calls[0]["clientToken"]


def test_the_same_eventbridge_event_delivered_twice_sends_the_same_client_token(
    infra: Infra,
) -> None:
    first, second = FlakyEcs(), FlakyEcs()
    run(infra, eventbridge("a.jpg"), ecs=first)
    run(infra, eventbridge("a.jpg"), ecs=second)
    assert first.calls[0]["clientToken"] == second.calls[0]["clientToken"]


def test_eventbridge_identity_is_sequencer_version_and_etag() -> None:
    event = with_object(eventbridge("a.jpg"), **{"version-id": "v7"})
    record = parse_event(event).objects[0]
    assert record.identity == "617f08299329d189/v7/b1946ac9"


def test_a_new_version_with_the_same_etag_and_sequencer_is_a_new_identity() -> None:
    old = parse_event(with_object(eventbridge("a.jpg"), **{"version-id": "v1"})).objects[0]
    new = parse_event(with_object(eventbridge("a.jpg"), **{"version-id": "v2"})).objects[0]
    assert old.identity != new.identity


def test_eventbridge_etag_is_recorded_without_quotes() -> None:
    record = parse_event(with_object(eventbridge("a.jpg"), etag='"b1946ac9"')).objects[0]
    assert record.etag == "b1946ac9"


def test_a_key_with_a_lone_surrogate_fails_alone_and_its_batch_mate_starts(infra: Infra) -> None:
    response = run(infra, {"uris": ["bad-\ud800.jpg", "good.jpg"]})
    assert [e["uri"] for e in response["launched"]] == ["good.jpg"]
    assert [e["uri"] for e in response["failed"]] == ["bad-\ud800.jpg"]
    assert "lone surrogate" in response["failed"][0]["reason"]


def test_an_eventbridge_key_with_a_lone_surrogate_starts_nothing(infra: Infra) -> None:
    ecs = FlakyEcs()
    event = json.loads(json.dumps(eventbridge("x.jpg")).replace("x.jpg", "x\\udc80.jpg"))
    response = run(infra, event, ecs=ecs)
    assert [e["reason"] for e in response["failed"]] == [
        "unsafe key: key contains a lone surrogate (not valid UTF-8)"
    ]
    assert ecs.calls == []


def test_a_direct_invocation_may_hold_exactly_the_maximum_of_uris() -> None:
    uris = [f"{index}.jpg" for index in range(MAX_DIRECT_URIS)]
    assert len(parse_event({"uris": uris}).objects) == MAX_DIRECT_URIS


def test_a_direct_invocations_force_must_be_a_boolean() -> None:
    with pytest.raises(InvalidEvent, match="'force' must be true or false, not str"):
        parse_event({"uris": ["a.jpg"], "force": "yes"})


def test_an_eventbridge_event_with_an_empty_bucket_name_fails() -> None:
    parsed = parse_event(eventbridge("a.jpg", bucket=""))
    assert [(r.uri, r.reason) for r in parsed.rejected] == [
        ("a.jpg", "EventBridge: no detail.bucket.name")
    ]


def with_etag(record: dict[str, Any], etag: str, sequencer: str) -> dict[str, Any]:
    record["s3"]["object"].update(eTag=etag, sequencer=sequencer)
    return record


def test_two_records_of_one_key_claim_the_first_ones_etag(infra: Infra) -> None:
    table = create_ledger_table()
    event = {
        "Records": [
            with_etag(s3_record("twice.jpg"), "etag-first", "01"),
            with_etag(s3_record("twice.jpg"), "etag-second", "02"),
        ]
    }
    ledger_run(infra, table, event)
    assert (item_of(table, "twice.jpg") or {}).get("etag") == "etag-first"


def test_a_record_with_an_etag_is_preferred_to_an_earlier_one_without(infra: Infra) -> None:
    table = create_ledger_table()
    first = s3_record("late.jpg")
    del first["s3"]["object"]["eTag"]
    event = {"Records": [first, with_etag(s3_record("late.jpg"), "etag-known", "02")]}
    ledger_run(infra, table, event)
    assert (item_of(table, "late.jpg") or {}).get("etag") == "etag-known"
