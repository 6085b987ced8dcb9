"""The trigger with IIIF_PROCESS_LEDGER_TABLE set: claims before RunTask, task after (issue #9)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from iiif_process_ecs.ledger import now_iso
from iiif_process_ecs.service import handle_event

from tests.lambda_src.conftest import REGION, Infra, command_of, uris_of
from tests.lambda_src.ledger_support import (
    ThrottledFirst,
    create_ledger_table,
    dynamodb,
    item_of,
    put_item,
)
from tests.lambda_src.test_ecs_trigger_handler import FakeClock, FlakyEcs, ecs_client
from tests.lambda_src.test_ecs_trigger_sqs import batch, s3_message

EVENT_ETAG = "0123456789abcdef"  # what conftest.s3_record puts in every record
RECIPE = "a1b2c3d4e5f60718"


@pytest.fixture
def table(aws: None) -> str:
    return create_ledger_table()


def run(
    infra: Infra,
    table: str,
    event: Any,
    *,
    ecs: Any = None,
    client: Any = None,
    s3: Any = None,
    **env: str,
) -> dict[str, Any]:
    clock = FakeClock()
    environ = infra.environ(
        IIIF_PROCESS_LEDGER_TABLE=table,
        IIIF_PROCESS_RECIPE=RECIPE,
        IIIF_PROCESS_SOURCE_BUCKET=infra.source_bucket,
        **env,
    )
    return handle_event(
        event,
        clock,
        environ=environ,
        ecs=ecs or FlakyEcs(),
        sleep=clock.sleep,
        rand=lambda: 0.0,
        dynamodb=client or dynamodb(),
        s3=s3,
    )


def upload(infra: Infra, key: str, body: bytes = b"image bytes") -> str:
    """Put an object in the source bucket; returns its ETag without quotes."""
    response = boto3.client("s3", region_name=REGION).put_object(
        Bucket=infra.source_bucket, Key=key, Body=body
    )
    return response["ETag"].strip('"')


def test_launched_keys_are_started_with_their_task_etag_and_size(infra: Infra, table: str) -> None:
    response = run(infra, table, batch(s3_message("m1", "a.jpg")))
    (task,) = response["tasks"]
    item = item_of(table, "a.jpg")
    assert item is not None
    assert (item["status"], item["task_arn"], item["etag"], item["size"], item["recipe"]) == (
        "started",
        task,
        EVENT_ETAG,
        1234,
        RECIPE,
    )
    assert item["attempts"] == 1


def test_a_redelivered_batch_regrouped_with_others_skips_keys_already_started(
    infra: Infra, table: str
) -> None:
    first = run(infra, table, batch(s3_message("m1", "a.jpg"), s3_message("m2", "b.jpg")))
    assert len(first["tasks"]) == 1
    # The same messages again, grouped with a new one: other batches, other clientTokens.
    ecs = FlakyEcs()
    again = run(
        infra,
        table,
        batch(s3_message("m2", "b.jpg"), s3_message("m3", "c.jpg"), s3_message("m1", "a.jpg")),
        ecs=ecs,
    )
    assert sorted(again["skipped"], key=lambda e: e["uri"]) == [
        {"uri": "a.jpg", "reason": "already started"},
        {"uri": "b.jpg", "reason": "already started"},
    ]
    (call,) = ecs.calls
    assert uris_of(call["overrides"]["containerOverrides"][0]["command"]) == ["c.jpg"]
    assert again["batchItemFailures"] == []


def test_a_succeeded_key_with_the_same_etag_and_recipe_is_skipped_unchanged(
    infra: Infra, table: str
) -> None:
    put_item(
        table,
        uri="a.jpg",
        status="succeeded",
        etag=EVENT_ETAG,
        recipe=RECIPE,
        attempts=1,
        updated_at=now_iso(),
    )
    response = run(infra, table, batch(s3_message("m1", "a.jpg")))
    assert response["skipped"] == [{"uri": "a.jpg", "reason": "unchanged"}]
    assert response["tasks"] == []
    assert item_of(table, "a.jpg")["status"] == "succeeded"  # type: ignore[index]


def test_a_new_recipe_processes_a_succeeded_key_again(infra: Infra, table: str) -> None:
    put_item(
        table,
        uri="a.jpg",
        status="succeeded",
        etag=EVENT_ETAG,
        recipe="0ld0ld0ld0ld0ld0",
        attempts=1,
        updated_at=now_iso(),
    )
    response = run(infra, table, batch(s3_message("m1", "a.jpg")))
    assert [entry["uri"] for entry in response["launched"]] == ["a.jpg"]


def test_direct_uris_take_etag_and_size_from_head_object(infra: Infra, table: str) -> None:
    etag = upload(infra, "direct/x.jpg", b"12345")
    run(infra, table, {"uris": ["direct/x.jpg"]})
    item = item_of(table, "direct/x.jpg")
    assert item is not None
    assert (item["etag"], item["size"]) == (etag, 5)


def test_direct_uris_of_an_unchanged_object_are_skipped(infra: Infra, table: str) -> None:
    etag = upload(infra, "direct/u.jpg")
    put_item(
        table,
        uri="direct/u.jpg",
        status="succeeded",
        etag=etag,
        recipe=RECIPE,
        attempts=1,
        updated_at=now_iso(),
    )
    response = run(infra, table, {"uris": ["direct/u.jpg"]})
    assert response["skipped"] == [{"uri": "direct/u.jpg", "reason": "unchanged"}]


def test_force_in_a_direct_invocation_launches_an_unchanged_object(
    infra: Infra, table: str
) -> None:
    etag = upload(infra, "direct/f.jpg")
    put_item(
        table,
        uri="direct/f.jpg",
        status="succeeded",
        etag=etag,
        recipe=RECIPE,
        attempts=1,
        updated_at=now_iso(),
    )
    response = run(infra, table, {"uris": ["direct/f.jpg"], "force": True})
    assert [entry["uri"] for entry in response["launched"]] == ["direct/f.jpg"]
    item = item_of(table, "direct/f.jpg")
    assert (item["status"], item["attempts"]) == ("started", 2)  # type: ignore[index]


def test_a_direct_uri_of_a_missing_object_fails_no_such_object(infra: Infra, table: str) -> None:
    response = run(infra, table, {"uris": ["direct/missing.jpg"]})
    assert response["failed"] == [{"uri": "direct/missing.jpg", "reason": "no such object"}]
    assert response["tasks"] == []
    item = item_of(table, "direct/missing.jpg")
    assert (item["status"], item["reason"]) == ("failed", "no such object")  # type: ignore[index]


# A -config path so long that no task command fits in RunTask's overrides beside it.
LONG_CONFIG = "/etc/go-iiif/" + "c" * 8000 + ".json"


def test_a_key_too_large_for_any_task_ends_failed_in_the_ledger_with_its_reason(
    infra: Infra, table: str
) -> None:
    response = run(infra, table, batch(s3_message("m1", "a.jpg")), IIIF_PROCESS_CONFIG=LONG_CONFIG)
    (entry,) = response["failed"]
    assert entry["reason"].startswith("the task command for this URI alone measures")
    item = item_of(table, "a.jpg")
    assert item is not None
    assert (item["status"], item.get("reason")) == ("failed", entry["reason"])


class Untouchable:
    """A DynamoDB or S3 client that fails the test when anything of it is used."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} called on a client without a ledger")


def run_without_ledger(infra: Infra, **environ: str) -> dict[str, Any]:
    """One S3 message for a.jpg through the handler with no ledger table, nothing of DynamoDB
    or S3 to be touched."""
    clock = FakeClock()
    return handle_event(
        batch(s3_message("m1", "a.jpg")),
        clock,
        environ=infra.environ(**environ),
        ecs=FlakyEcs(),
        sleep=clock.sleep,
        dynamodb=Untouchable(),
        s3=Untouchable(),
    )


def test_without_a_ledger_a_key_too_large_for_any_task_fails_in_the_response_only(
    infra: Infra,
) -> None:
    response = run_without_ledger(infra, IIIF_PROCESS_CONFIG=LONG_CONFIG)
    assert ([entry["uri"] for entry in response["failed"]], response["tasks"]) == (["a.jpg"], [])


def test_a_claim_whose_runtask_failed_is_queued_with_the_aws_reason(
    infra: Infra, table: str
) -> None:
    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "RunTask"
    )
    response = run(infra, table, batch(s3_message("m1", "a.jpg")), ecs=FlakyEcs([denied]))
    assert response["batchItemFailures"] == [{"itemIdentifier": "m1"}]
    item = item_of(table, "a.jpg")
    assert item is not None
    assert item["status"] == "queued"
    assert "AccessDeniedException" in item["reason"]
    assert item["attempts"] == 0  # a launch that did not happen is no attempt


def test_a_key_queued_after_a_failed_runtask_is_claimed_on_redelivery(
    infra: Infra, table: str
) -> None:
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "RunTask")
    run(infra, table, batch(s3_message("m1", "a.jpg")), ecs=FlakyEcs([denied]))
    response = run(infra, table, batch(s3_message("m1", "a.jpg")))
    assert [entry["uri"] for entry in response["launched"]] == ["a.jpg"]
    assert item_of(table, "a.jpg")["attempts"] == 1  # type: ignore[index]


def test_a_throttled_claim_is_retried_and_the_key_launched(infra: Infra, table: str) -> None:
    client = ThrottledFirst("update_item", failures=1)
    response = run(infra, table, batch(s3_message("m1", "a.jpg")), client=client)
    assert [entry["uri"] for entry in response["launched"]] == ["a.jpg"]
    assert client.calls.count("update_item") == 3  # claim (throttled), claim, task_arn


def test_a_ledger_that_cannot_be_read_returns_the_messages_to_the_queue(infra: Infra) -> None:
    response = run(infra, "no-such-ledger", batch(s3_message("m1", "a.jpg")))
    assert response["batchItemFailures"] == [{"itemIdentifier": "m1"}]
    assert response["tasks"] == []
    assert "no-such-ledger" in response["failed"][0]["reason"]


def test_without_a_ledger_table_dynamodb_is_never_called(infra: Infra) -> None:
    response = run_without_ledger(infra)
    (task,) = response["tasks"]
    assert uris_of(command_of(ecs_client(), infra.cluster, task)) == ["a.jpg"]


def test_a_key_claimed_without_a_task_yet_goes_back_to_the_queue_not_skipped(
    infra: Infra, table: str
) -> None:
    """The claimer may die before RunTask; its own redelivered message must not drop the key."""
    put_item(
        table,
        uri="a.jpg",
        status="started",
        etag=EVENT_ETAG,
        recipe=RECIPE,
        attempts=1,
        started_at=now_iso(),
        updated_at=now_iso(),
    )
    ecs = FlakyEcs()
    response = run(infra, table, batch(s3_message("m1", "a.jpg")), ecs=ecs)
    assert (response["batchItemFailures"], response["skipped"], ecs.calls) == (
        [{"itemIdentifier": "m1"}],
        [],
        [],
    )
