"""claims.py's own rules: the claim margin, HeadObject's answers, the task definition's recipe."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from iiif_process_ecs.claims import (
    NO_SUCH_OBJECT,
    InputOutcome,
    claim_keys,
    claim_margin,
    head_object,
    recipe_of_task_definition,
    record_input_outcomes,
    storable_key,
)
from iiif_process_ecs.events import ObjectRecord
from iiif_process_ecs.ledger import Ledger, is_stale_claim, now_iso
from iiif_process_ecs.settings import Settings

from tests.lambda_src.conftest import REGION, Infra, logged_messages
from tests.lambda_src.ledger_support import create_ledger_table, dynamodb, item_of, put_item


def test_a_one_byte_key_is_storable() -> None:
    assert storable_key("a") is True


def test_with_the_stacks_sixty_seconds_claims_stop_twenty_seconds_before_the_end() -> None:
    assert claim_margin(60.0) == 20.0


def test_a_short_invocation_keeps_half_its_spare_time_for_launches() -> None:
    assert claim_margin(20.0) == 15.0


def test_an_invocation_under_the_runtask_margin_needs_just_that_margin() -> None:
    assert claim_margin(5.0) == 10.0


def test_without_a_bucket_the_etag_cannot_be_read() -> None:
    etag, size, reason, aws = head_object(None, "", "a.jpg")
    assert (etag, size, aws) == ("", None, False)
    assert reason.startswith("cannot read the object's ETag: no source bucket")


@pytest.fixture
def s3(network: dict[str, str]) -> Any:
    return boto3.client("s3", region_name=REGION)


def test_head_object_gives_the_etag_without_quotes_and_the_size(s3: Any) -> None:
    etag = s3.put_object(Bucket="iiif-source", Key="head/a.jpg", Body=b"12345")["ETag"]
    assert head_object(s3, "iiif-source", "head/a.jpg") == (etag.strip('"'), 5, "", False)


def test_a_missing_object_is_an_input_failure(s3: Any) -> None:
    assert head_object(s3, "iiif-source", "head/missing.jpg") == ("", None, NO_SUCH_OBJECT, False)


def test_a_refused_head_object_is_an_aws_failure_worth_another_try(s3: Any) -> None:
    with Stubber(s3) as stub:
        stub.add_client_error("head_object", "AccessDenied", "Access Denied", 403)
        answer = head_object(s3, "iiif-source", "a.jpg")
    assert answer == ("", None, "HeadObject failed: AccessDenied: Access Denied", True)


def test_an_unreachable_s3_is_an_aws_failure_worth_another_try() -> None:
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=1)
    s3 = boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url="http://127.0.0.1:9",
        config=config,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    etag, size, reason, aws = head_object(s3, "iiif-source", "a.jpg")
    assert (etag, size, aws) == ("", None, True)
    assert reason.startswith("HeadObject failed: EndpointConnectionError")


def register(ecs: Any, containers: list[dict[str, Any]]) -> str:
    return ecs.register_task_definition(
        family="recipe-test",
        containerDefinitions=[
            {"image": "example/x", "memory": 512, **container} for container in containers
        ],
    )["taskDefinition"]["taskDefinitionArn"]


def test_the_recipe_is_the_configured_containers_variable(infra: Infra) -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    arn = register(
        ecs,
        [
            {"name": "sidecar", "environment": [{"name": "IIIF_PROCESS_RECIPE", "value": "x"}]},
            {
                "name": "iiif-process",
                "environment": [
                    {"name": "OTHER", "value": "y"},
                    {"name": "IIIF_PROCESS_RECIPE", "value": "r1"},
                ],
            },
        ],
    )
    assert recipe_of_task_definition(ecs, infra.settings(task_definition=arn)) == "r1"


def test_a_container_without_the_variable_has_no_recipe(infra: Infra) -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    arn = register(ecs, [{"name": "iiif-process", "environment": [{"name": "A", "value": "b"}]}])
    assert recipe_of_task_definition(ecs, infra.settings(task_definition=arn)) == ""


@pytest.fixture
def table(aws: None) -> str:
    return create_ledger_table()


def test_input_outcomes_are_counted_by_what_became_of_them(table: str) -> None:
    put_item(table, uri="busy.jpg", status="started", updated_at=now_iso())
    outcomes = [
        InputOutcome("a.txt", "skipped", "unsupported"),
        InputOutcome("b.txt", "skipped", "unsupported"),
        InputOutcome("busy.jpg", "failed", "no such object"),
        InputOutcome("", "failed", "unsafe key"),
        InputOutcome("c.txt", "skipped", "unsupported"),
    ]
    counts = record_input_outcomes(Ledger(table, dynamodb()), outcomes)
    assert counts == {"recorded": 3, "kept": 1, "unstorable": 1, "not_recorded": 0}


def test_a_keys_first_outcome_in_the_event_is_the_one_recorded(table: str) -> None:
    outcomes = [InputOutcome("a.txt", "skipped", "first"), InputOutcome("a.txt", "failed", "2nd")]
    counts = record_input_outcomes(Ledger(table, dynamodb()), outcomes)
    assert (counts["recorded"], (item_of(table, "a.txt") or {}).get("reason")) == (1, "first")


def test_outcomes_are_written_with_exactly_five_seconds_left(table: str) -> None:
    counts = record_input_outcomes(
        Ledger(table, dynamodb()),
        [InputOutcome("x.txt", "skipped", "r")],
        remaining_seconds=lambda: 5.0,
    )
    assert counts["recorded"] == 1


def test_an_old_claim_with_a_task_is_not_stale() -> None:
    long_ago = now_iso(datetime(2020, 1, 1, tzinfo=UTC))
    item = {"uri": "a.jpg", "status": "started", "task_arn": "arn:t", "started_at": long_ago}
    assert is_stale_claim(item, datetime.now(UTC)) is False


def test_an_old_claim_without_a_task_is_stale() -> None:
    long_ago = now_iso(datetime(2020, 1, 1, tzinfo=UTC))
    assert is_stale_claim({"uri": "a.jpg", "started_at": long_ago}, datetime.now(UTC)) is True


def test_when_no_key_is_left_to_claim_no_claims_are_logged(
    table: str, quiet_logs: io.StringIO
) -> None:
    """Every record failed before its claim (no bucket to read its ETag from): claim_keys
    returns at once, without a "keys claimed" line."""
    settings = Settings(
        cluster="c", task_definition="t", container="x", subnets=("s",), security_groups=("g",)
    )
    plan = claim_keys(
        [ObjectRecord(key="a.jpg", source="uris")],
        ledger=Ledger(table, dynamodb()),
        settings=settings,
        s3=None,
    )
    assert [entry["uri"] for entry in plan.failed] == ["a.jpg"]
    assert "keys claimed" not in logged_messages(quiet_logs)
