"""The ledger API over a moto table shaped exactly as docs/contracts.md says (issue #9)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from iiif_process_ecs.ledger import (
    ALREADY_STARTED,
    STALE_CLAIM_SECONDS,
    UNCHANGED,
    Ledger,
    LedgerError,
    concurrently,
    now_iso,
)

from tests.lambda_src.ledger_support import (
    ThrottledFirst,
    create_ledger_table,
    dynamodb,
    item_of,
    put_item,
)

ETAG = "9b2cf535f27731c974343645a3985328"


@pytest.fixture
def table(aws: None) -> Iterator[str]:
    yield create_ledger_table()


def ledger(table: str, client: object = None) -> Ledger:
    return Ledger(table, client or dynamodb(), sleep=lambda _: None, rand=lambda: 0.5)


def test_a_new_key_is_claimed_as_started_with_one_attempt(table: str) -> None:
    result = ledger(table).claim("a.jpg", etag=ETAG, size=10, recipe="r1")
    assert result.claimed
    item = item_of(table, "a.jpg")
    assert item is not None
    assert (item["status"], item["attempts"], item["etag"], item["size"], item["recipe"]) == (
        "started",
        1,
        ETAG,
        10,
        "r1",
    )


def test_timestamps_use_the_contract_format(table: str) -> None:
    ledger(table).claim("a.jpg", etag=ETAG, size=10, recipe="r1")
    item = item_of(table, "a.jpg")
    assert item is not None
    for name in ("created_at", "updated_at", "started_at"):
        datetime.strptime(item[name], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert item[name].endswith("Z")


def test_a_key_started_for_the_same_etag_and_recipe_is_skipped_already_started(
    table: str,
) -> None:
    book = ledger(table)
    book.claim("a.jpg", etag=ETAG, size=10, recipe="r1")
    book.set_task("a.jpg", "arn:task/1")
    result = book.claim("a.jpg", etag=ETAG, size=10, recipe="r1")
    assert (result.claimed, result.reason) == (False, ALREADY_STARTED)
    assert item_of(table, "a.jpg")["task_arn"] == "arn:task/1"  # type: ignore[index]


def test_a_succeeded_key_with_the_same_etag_and_recipe_is_skipped_unchanged(table: str) -> None:
    put_item(
        table,
        uri="a.jpg",
        status="succeeded",
        etag=ETAG,
        recipe="r1",
        attempts=1,
        updated_at=now_iso(),
    )
    result = ledger(table).claim("a.jpg", etag=ETAG, size=10, recipe="r1")
    assert (result.claimed, result.reason) == (False, UNCHANGED)
    assert item_of(table, "a.jpg")["status"] == "succeeded"  # type: ignore[index]


def test_force_claims_a_succeeded_unchanged_key_as_another_attempt(table: str) -> None:
    put_item(
        table,
        uri="a.jpg",
        status="succeeded",
        etag=ETAG,
        recipe="r1",
        attempts=1,
        updated_at=now_iso(),
    )
    result = ledger(table).claim("a.jpg", etag=ETAG, size=10, recipe="r1", force=True)
    assert (result.claimed, result.attempts) == (True, 2)


def test_a_new_recipe_claims_a_succeeded_key_and_resets_attempts(table: str) -> None:
    put_item(
        table,
        uri="a.jpg",
        status="succeeded",
        etag=ETAG,
        recipe="r1",
        attempts=2,
        updated_at=now_iso(),
    )
    result = ledger(table).claim("a.jpg", etag=ETAG, size=10, recipe="r2")
    assert (result.claimed, result.attempts) == (True, 1)


def test_a_new_etag_resets_attempts(table: str) -> None:
    put_item(
        table,
        uri="a.jpg",
        status="failed",
        etag="old",
        recipe="r1",
        attempts=3,
        updated_at=now_iso(),
    )
    result = ledger(table).claim("a.jpg", etag=ETAG, size=10, recipe="r1")
    assert (result.claimed, result.attempts) == (True, 1)


def test_a_queued_key_of_the_same_etag_counts_one_more_attempt(table: str) -> None:
    put_item(
        table,
        uri="a.jpg",
        status="queued",
        etag=ETAG,
        recipe="r1",
        attempts=2,
        task_arn="arn:task/old",
        updated_at=now_iso(),
    )
    result = ledger(table).claim("a.jpg", etag=ETAG, size=10, recipe="r1")
    assert (result.claimed, result.attempts) == (True, 3)
    # The new claim holds no task until RunTask names one.
    assert "task_arn" not in item_of(table, "a.jpg")  # type: ignore[operator]


def test_a_claim_that_loses_the_race_is_skipped_already_started(table: str) -> None:
    book = ledger(table)
    seen = book.get_many(["a.jpg"]).get("a.jpg")  # nothing yet
    ledger(table).claim("a.jpg", etag=ETAG, size=10, recipe="r1")  # another trigger wins
    result = book.claim("a.jpg", etag=ETAG, size=10, recipe="r1", seen=seen, read=False)
    assert (result.claimed, result.reason) == (False, ALREADY_STARTED)


def test_a_claim_without_a_task_is_taken_over_once_stale(table: str) -> None:
    old = datetime.now(UTC) - timedelta(seconds=STALE_CLAIM_SECONDS + 5)
    put_item(
        table,
        uri="a.jpg",
        status="started",
        etag=ETAG,
        recipe="r1",
        attempts=1,
        started_at=now_iso(old),
        updated_at=now_iso(old),
    )
    result = ledger(table).claim("a.jpg", etag=ETAG, size=10, recipe="r1")
    assert (result.claimed, result.attempts) == (True, 2)


def test_unclaim_sets_queued_with_the_aws_reason(table: str) -> None:
    book = ledger(table)
    book.claim("a.jpg", etag=ETAG, size=10, recipe="r1")
    assert book.unclaim("a.jpg", "RunTask failed (not retried): AccessDeniedException")
    item = item_of(table, "a.jpg")
    assert (item["status"], item["reason"]) == (  # type: ignore[index]
        "queued",
        "RunTask failed (not retried): AccessDeniedException",
    )


def test_unclaim_leaves_a_key_that_has_a_task(table: str) -> None:
    book = ledger(table)
    book.claim("a.jpg", etag=ETAG, size=10, recipe="r1")
    book.set_task("a.jpg", "arn:task/1")
    assert not book.unclaim("a.jpg", "RunTask failed")
    assert item_of(table, "a.jpg")["status"] == "started"  # type: ignore[index]


def test_get_many_reads_more_than_one_batch_get_call_holds(table: str) -> None:
    for index in range(130):
        put_item(table, uri=f"k{index:03}.jpg", status="succeeded", updated_at=now_iso())
    client = ThrottledFirst("none", failures=0)
    found = ledger(table, client).get_many(f"k{index:03}.jpg" for index in range(140))
    assert len(found) == 130
    assert client.calls.count("batch_get_item") == 2


def test_get_many_asks_again_for_unprocessed_keys(table: str) -> None:
    put_item(table, uri="a.jpg", status="succeeded", updated_at=now_iso())
    put_item(table, uri="b.jpg", status="succeeded", updated_at=now_iso())

    class Partial:
        def __init__(self) -> None:
            self.real = dynamodb()
            self.calls = 0

        def batch_get_item(self, RequestItems: dict) -> dict:
            self.calls += 1
            if self.calls == 1:
                keys = RequestItems[table]["Keys"]
                first = self.real.batch_get_item(
                    RequestItems={table: {**RequestItems[table], "Keys": keys[:1]}}
                )
                first["UnprocessedKeys"] = {table: {**RequestItems[table], "Keys": keys[1:]}}
                return first
            return self.real.batch_get_item(RequestItems=RequestItems)

    client = Partial()
    found = ledger(table, client).get_many(["a.jpg", "b.jpg"])
    assert sorted(found) == ["a.jpg", "b.jpg"]
    assert client.calls == 2


def test_a_throttled_write_is_retried_with_backoff(table: str) -> None:
    client = ThrottledFirst("update_item", failures=1)
    delays: list[float] = []
    book = Ledger(table, client, sleep=delays.append, rand=lambda: 1.0)
    result = book.claim("a.jpg", etag=ETAG, size=10, recipe="r1")
    assert result.claimed
    assert client.calls.count("update_item") == 2
    assert len(delays) == 1 and delays[0] > 0
    assert item_of(table, "a.jpg")["status"] == "started"  # type: ignore[index]


def test_throttling_that_outlasts_the_retries_raises_ledger_error(table: str) -> None:
    client = ThrottledFirst("update_item", failures=100)
    book = Ledger(table, client, sleep=lambda _: None, rand=lambda: 0.0, retries=3)
    with pytest.raises(LedgerError, match="ProvisionedThroughputExceededException"):
        book.claim("a.jpg", etag=ETAG, size=10, recipe="r1")
    assert client.calls.count("update_item") == 4


def test_a_missing_table_raises_ledger_error_naming_it(aws: None) -> None:
    with pytest.raises(LedgerError, match="no-such-table"):
        ledger("no-such-table").get("a.jpg")


def test_by_status_pages_through_results_newest_first(table: str) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for index in range(5):
        put_item(
            table,
            uri=f"f{index}.jpg",
            status="failed",
            reason="x",
            updated_at=now_iso(base + timedelta(minutes=index)),
        )
    put_item(table, uri="ok.jpg", status="succeeded", updated_at=now_iso(base))

    class SmallPages:
        def __init__(self) -> None:
            self.real = dynamodb()
            self.pages = 0

        def query(self, **kwargs: object) -> dict:
            self.pages += 1
            return self.real.query(**kwargs, Limit=2)

    client = SmallPages()
    uris = [item["uri"] for item in ledger(table, client).by_status("failed")]
    assert uris == ["f4.jpg", "f3.jpg", "f2.jpg", "f1.jpg", "f0.jpg"]
    assert client.pages >= 3


def test_count_uses_a_count_query_per_status(table: str) -> None:
    for index in range(3):
        put_item(table, uri=f"f{index}.jpg", status="failed", updated_at=now_iso())
    put_item(table, uri="ok.jpg", status="succeeded", updated_at=now_iso())
    assert ledger(table).count("failed") == 3


def test_by_task_finds_the_keys_a_task_holds(table: str) -> None:
    book = ledger(table)
    for uri in ("a.jpg", "b.jpg", "c.jpg"):
        book.claim(uri, etag=ETAG, size=1, recipe="r1")
    book.set_task("a.jpg", "arn:task/1")
    book.set_task("b.jpg", "arn:task/1")
    book.set_task("c.jpg", "arn:task/2")
    assert [item["uri"] for item in book.by_task("arn:task/1")] == ["a.jpg", "b.jpg"]


def test_transition_is_refused_once_the_item_moved_on(table: str) -> None:
    book = ledger(table)
    book.claim("a.jpg", etag=ETAG, size=1, recipe="r1")
    book.set_task("a.jpg", "arn:task/2")
    assert book.mark_queued("a.jpg", "x", expect_status="started", expect_task="arn:task/1") is None
    assert item_of(table, "a.jpg")["status"] == "started"  # type: ignore[index]


def test_a_conditional_failure_is_not_retried_as_throttling(table: str) -> None:
    client = ThrottledFirst("none", failures=0)
    book = ledger(table, client)
    book.claim("a.jpg", etag=ETAG, size=1, recipe="r1")
    with pytest.raises(ClientError):
        book._call(
            "put_item",
            TableName=table,
            Item={"uri": {"S": "a.jpg"}},
            ConditionExpression="attribute_not_exists(uri)",
        )
    assert client.calls.count("put_item") == 1


# -- the public writes of backfill and the trigger's input outcomes (issue #10) ----------------


def test_queue_if_unchanged_marks_an_item_still_as_read(table: str) -> None:
    put_item(table, uri="a.jpg", status="failed", etag="old", retryable=True, updated_at="t1")
    seen = ledger(table).get("a.jpg")
    written = ledger(table).queue_if_unchanged(
        "a.jpg", seen=seen, etag=ETAG, size=5, recipe="r1", reason="why", stamp="t2"
    )
    item = item_of(table, "a.jpg")
    assert written is True
    assert item == {
        "uri": "a.jpg",
        "status": "queued",
        "etag": ETAG,
        "size": 5,
        "recipe": "r1",
        "reason": "why",
        "attempts": 0,
        "updated_at": "t2",
        "created_at": "t2",
    }


def test_queue_if_unchanged_leaves_an_item_changed_since_read(table: str) -> None:
    seen = ledger(table).get("a.jpg")  # no item yet
    ledger(table).claim("a.jpg", etag=ETAG, size=5, recipe="r1")
    written = ledger(table).queue_if_unchanged(
        "a.jpg", seen=seen, etag=ETAG, size=5, recipe="r1", reason="why", stamp="t2"
    )
    assert written is False
    assert item_of(table, "a.jpg")["status"] == "started"  # type: ignore[index]


@pytest.mark.parametrize("status", ["started", "succeeded"])
def test_record_outcome_keeps_a_protected_item(table: str, status: str) -> None:
    put_item(table, uri="a.jpg", status=status, updated_at="t1")
    assert ledger(table).record_outcome("a.jpg", "skipped", "zero-byte object") is False
    assert item_of(table, "a.jpg")["status"] == status  # type: ignore[index]


def test_delete_if_deletes_only_an_item_that_still_matches(table: str) -> None:
    put_item(table, uri="a.jpg", status="queued", updated_at="t1")
    put_item(table, uri="b.jpg", status="started", updated_at="t2")
    book = ledger(table)
    assert book.delete_if("a.jpg", expect={"status": "queued", "updated_at": "t1"}) is True
    assert book.delete_if("b.jpg", expect={"status": "queued", "updated_at": "t2"}) is False
    assert (item_of(table, "a.jpg"), item_of(table, "b.jpg")["status"]) == (None, "started")  # type: ignore[index]


def test_updated_since_queries_one_status_from_a_time_on(table: str) -> None:
    put_item(table, uri="old.jpg", status="succeeded", updated_at="2026-01-01T00:00:00.000000Z")
    put_item(table, uri="new.jpg", status="succeeded", updated_at="2026-02-01T00:00:00.000000Z")
    put_item(table, uri="bad.jpg", status="failed", updated_at="2026-02-01T00:00:00.000000Z")
    found = ledger(table).updated_since("succeeded", "2026-01-15T00:00:00.000000Z")
    assert [item["uri"] for item in found] == ["new.jpg"]


def test_a_single_item_runs_in_the_calling_thread_whatever_the_workers() -> None:
    ran_on = concurrently(lambda _: threading.current_thread(), ["only"], workers=4)
    assert ran_on == [threading.current_thread()]
