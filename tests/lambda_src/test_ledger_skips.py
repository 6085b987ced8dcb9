"""Keys the trigger skips or fails for input reasons are written to the ledger (issue #9).

``skipped`` (nothing to do: unsupported type, zero-byte, folder placeholder, too large) or
``failed`` (unsafe key, no such object), with the reason, never over an item that is ``started``
or ``succeeded``.
"""

from __future__ import annotations

from typing import Any

import pytest
from iiif_process_ecs.claims import InputOutcome, record_input_outcomes
from iiif_process_ecs.ledger import Ledger, now_iso

from tests.lambda_src.conftest import Infra, s3_record
from tests.lambda_src.ledger_support import create_ledger_table, dynamodb, item_of, put_item
from tests.lambda_src.test_ecs_trigger_sqs import batch, sqs_message
from tests.lambda_src.test_ledger_trigger import EVENT_ETAG, run


@pytest.fixture
def table(aws: None) -> str:
    return create_ledger_table()


def upload(*records: dict[str, Any]) -> dict[str, Any]:
    return batch(sqs_message("m1", {"Records": list(records)}))


def test_an_unsupported_file_type_is_recorded_skipped_with_its_reason_etag_and_size(
    infra: Infra, table: str
) -> None:
    response = run(infra, table, upload(s3_record("notes.txt", size=77)))
    item = item_of(table, "notes.txt")
    assert item is not None
    assert item["status"] == "skipped"
    assert item["reason"] == response["skipped"][0]["reason"]
    assert item["reason"].startswith("unsupported file type ('.txt')")
    assert (item["etag"], item["size"]) == (EVENT_ETAG, 77)


def test_a_zero_byte_object_is_recorded_skipped(infra: Infra, table: str) -> None:
    run(infra, table, upload(s3_record("empty.jpg", size=0)))
    item = item_of(table, "empty.jpg")
    assert (item["status"], item["reason"]) == ("skipped", "zero-byte object")  # type: ignore[index]


def test_a_folder_placeholder_is_recorded_skipped(infra: Infra, table: str) -> None:
    run(infra, table, upload(s3_record("photos/", size=0)))
    assert item_of(table, "photos/")["status"] == "skipped"  # type: ignore[index]


def test_an_object_over_the_size_limit_is_recorded_skipped_too_large(
    infra: Infra, table: str
) -> None:
    run(
        infra,
        table,
        upload(s3_record("huge.tif", size=5000)),
        IIIF_PROCESS_MAX_SOURCE_BYTES="4000",
    )
    item = item_of(table, "huge.tif")
    assert item["status"] == "skipped"  # type: ignore[index]
    assert item["reason"] == "too large: 5000 bytes > limit 4000 bytes"  # type: ignore[index]


def test_an_unsafe_key_is_recorded_failed_with_its_reason(infra: Infra, table: str) -> None:
    response = run(infra, table, upload(s3_record("a/../b.jpg")))
    assert response["failed"][0]["uri"] == "a/../b.jpg"
    item = item_of(table, "a/../b.jpg")
    assert item["status"] == "failed"  # type: ignore[index]
    assert item["reason"] == "unsafe key: key contains a '..' segment"  # type: ignore[index]


def test_an_unstorable_key_is_reported_but_not_written(infra: Infra, table: str) -> None:
    response = run(infra, table, {"uris": [""]})
    assert response["failed"] == [{"uri": "", "reason": "unsafe key: empty key"}]
    assert dynamodb().scan(TableName=table)["Count"] == 0


@pytest.mark.parametrize("status", ["succeeded", "started"])
def test_a_skip_never_overwrites_a_succeeded_or_started_item(
    infra: Infra, table: str, status: str
) -> None:
    put_item(table, uri="was.jpg", status=status, etag="older", attempts=1, updated_at=now_iso())
    run(infra, table, upload(s3_record("was.jpg", size=0)))
    item = item_of(table, "was.jpg")
    assert (item["status"], item["etag"]) == (status, "older")  # type: ignore[index]


@pytest.mark.parametrize("status", ["queued", "failed", "skipped"])
def test_a_skip_replaces_a_queued_failed_or_skipped_item(
    infra: Infra, table: str, status: str
) -> None:
    put_item(
        table,
        uri="again.jpg",
        status=status,
        etag="older",
        attempts=2,
        retryable=True,
        updated_at=now_iso(),
    )
    run(infra, table, upload(s3_record("again.jpg", size=0)))
    item = item_of(table, "again.jpg")
    assert (item["status"], item["reason"]) == ("skipped", "zero-byte object")  # type: ignore[index]
    assert "retryable" not in item  # type: ignore[operator]


def test_without_time_left_the_outcomes_are_counted_not_written(table: str) -> None:
    ledger = Ledger(table, dynamodb())
    counts = record_input_outcomes(
        ledger,
        [InputOutcome("x.txt", "skipped", "r"), InputOutcome("y.txt", "skipped", "r")],
        remaining_seconds=lambda: 4.9,
    )
    assert counts["not_recorded"] == 2
    assert item_of(table, "x.txt") is None


def test_outcomes_are_written_while_time_is_left(table: str) -> None:
    ledger = Ledger(table, dynamodb())
    counts = record_input_outcomes(
        ledger, [InputOutcome("x.txt", "skipped", "r")], remaining_seconds=lambda: 5.1
    )
    assert counts["recorded"] == 1
    assert item_of(table, "x.txt")["status"] == "skipped"  # type: ignore[index]
