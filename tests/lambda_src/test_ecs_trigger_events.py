"""Each event shape the Lambda accepts, and how its keys are decoded."""

from __future__ import annotations

import re

import pytest
from iiif_process_ecs.events import MAX_DIRECT_URIS, InvalidEvent, parse_event

from tests.lambda_src.conftest import s3_record


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("red+flower.jpg", "red flower.jpg"),
        ("caf%C3%A9.jpg", "café.jpg"),
        ("a%2Bb.jpg", "a+b.jpg"),
        ("dir/sub%2Fdir/x%25y.png", "dir/sub/dir/x%y.png"),
    ],
)
def test_s3_notification_key_is_decoded_exactly_once(encoded: str, decoded: str) -> None:
    parsed = parse_event({"Records": [s3_record(encoded)]})
    assert [record.key for record in parsed.objects] == [decoded]


def test_s3_notification_keeps_bucket_size_and_sequencer() -> None:
    record = parse_event({"Records": [s3_record("a.jpg", size=7, sequencer="00F1")]}).objects[0]
    assert (record.bucket, record.size, record.source) == ("iiif-source", 7, "s3")
    assert "00F1" in record.identity


def test_s3_record_for_another_bucket_is_refused() -> None:
    parsed = parse_event(
        {"Records": [s3_record("a.jpg", bucket="other"), s3_record("b.jpg")]},
        source_bucket="iiif-source",
    )
    assert [r.key for r in parsed.objects] == ["b.jpg"]
    assert parsed.rejected[0].outcome == "failed"
    assert "'other' is not the source bucket 'iiif-source'" in parsed.rejected[0].reason


def test_s3_record_with_invalid_percent_encoding_fails_alone() -> None:
    parsed = parse_event({"Records": [s3_record("bad%FF.jpg"), s3_record("good.jpg")]})
    assert [r.key for r in parsed.objects] == ["good.jpg"]
    assert "not valid percent-encoded UTF-8" in parsed.rejected[0].reason


def test_s3_removal_event_is_skipped() -> None:
    record = s3_record("a.jpg")
    record["eventName"] = "ObjectRemoved:Delete"
    parsed = parse_event({"Records": [record]})
    assert parsed.objects == ()
    assert parsed.rejected[0].outcome == "skipped"


def test_s3_test_event_is_a_no_op() -> None:
    event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2024-01-01T00:00:00.000Z",
        "Bucket": "iiif-source",
        "RequestId": "X",
        "HostId": "Y",
    }
    parsed = parse_event(event)
    assert (parsed.shape, parsed.objects, parsed.rejected) == ("s3:TestEvent", (), ())


def test_seed_invoke_payload_key_is_not_decoded() -> None:
    # The seed's Go client marshals every field: eventSource and bucket name are "".
    event = {
        "Records": [
            {
                "eventSource": "",
                "eventTime": "0001-01-01T00:00:00Z",
                "s3": {"bucket": {"name": ""}, "object": {"key": "a+b%20c.jpg", "size": 0}},
            },
            {"s3": {"object": {"key": "red flower.jpg"}}},
        ]
    }
    parsed = parse_event(event, source_bucket="iiif-source")
    assert [r.key for r in parsed.objects] == ["a+b%20c.jpg", "red flower.jpg"]
    assert {r.source for r in parsed.objects} == {"invoke"}


def test_record_of_another_event_source_fails_alone() -> None:
    parsed = parse_event(
        {"Records": [{"eventSource": "aws:sns", "s3": {"object": {"key": "a.jpg"}}}]}
    )
    assert parsed.objects == ()
    assert "unsupported eventSource 'aws:sns'" in parsed.rejected[0].reason


def test_record_without_key_fails_alone() -> None:
    parsed = parse_event({"Records": [{"eventSource": "aws:s3"}, s3_record("ok.jpg")]})
    assert [r.key for r in parsed.objects] == ["ok.jpg"]
    assert "Records[0]" in parsed.rejected[0].reason


def test_direct_uris_are_used_as_given() -> None:
    parsed = parse_event({"uris": ["a.jpg", "dir/b+c.tif"]})
    assert [r.key for r in parsed.objects] == ["a.jpg", "dir/b+c.tif"]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"uris": "a.jpg"}, "must be a list"),
        ({"uris": ["a.jpg", 3]}, "uris[1] must be a string"),
        ({"uris": ["a.jpg"], "bucket": "x"}, "unknown field(s) bucket"),
        ({"uris": []}, "is empty"),
        ({"uris": ["a.jpg"] * (MAX_DIRECT_URIS + 1)}, "at most"),
        ({"something": 1}, "unrecognised event"),
        (["a.jpg"], "must be a JSON object"),
        ({"Records": "a.jpg"}, "'Records' must be a list"),
    ],
)
def test_malformed_events_are_refused_with_their_reason(event: object, message: str) -> None:
    with pytest.raises(InvalidEvent, match=re.escape(message)):
        parse_event(event)


def eventbridge(key: str, detail_type: str = "Object Created", bucket: str = "iiif-source") -> dict:
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "111122223333",
        "time": "2021-11-12T00:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 5, "etag": "b1946ac9", "sequencer": "617f08299329d189"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


def test_eventbridge_object_created_key_is_not_decoded() -> None:
    parsed = parse_event(eventbridge("red flower+x.jpg"), source_bucket="iiif-source")
    assert [(r.key, r.bucket, r.size) for r in parsed.objects] == [
        ("red flower+x.jpg", "iiif-source", 5)
    ]


def test_eventbridge_other_detail_type_is_skipped() -> None:
    parsed = parse_event(eventbridge("a.jpg", detail_type="Object Deleted"))
    assert parsed.objects == ()
    assert parsed.rejected[0].outcome == "skipped"


def test_eventbridge_for_another_bucket_is_refused() -> None:
    parsed = parse_event(eventbridge("a.jpg", bucket="other"), source_bucket="iiif-source")
    assert parsed.rejected[0].outcome == "failed"
