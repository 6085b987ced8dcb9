"""service.py's own rules: the time budget, the response bound and the TasksNotStarted message."""

from __future__ import annotations

import json
from typing import Any

import boto3
from iiif_process_ecs.service import (
    TasksNotStarted,
    fit_response,
    handle_event,
    remaining_seconds_of,
)
from iiif_process_ecs.trigger import Outcome

from tests.lambda_src.conftest import REGION, Infra
from tests.lambda_src.test_ecs_trigger_handler import FlakyEcs

RESPONSE_LIMIT = 5 * 1024 * 1024  # the documented bound, written out
LINE_LIMIT = 64 * 1024


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Context:
    """A Lambda context with this much time left."""

    def __init__(self, millis: int) -> None:
        self.millis = millis

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


def test_without_a_context_a_run_has_sixty_seconds() -> None:
    assert remaining_seconds_of(None, monotonic=Clock())() == 60.0


def test_the_budget_runs_down_with_the_clock() -> None:
    clock = Clock()
    remaining = remaining_seconds_of(None, monotonic=clock)
    clock.now += 10.0
    assert remaining() == 50.0


def test_a_lambda_context_gives_its_own_remaining_time() -> None:
    assert remaining_seconds_of(Context(1500))() == 1.5


def test_an_object_without_remaining_time_is_not_a_context() -> None:
    assert remaining_seconds_of(object(), monotonic=Clock())() == 60.0


def response_of(size: int, char: str = "x") -> dict[str, Any]:
    """A response whose JSON measures ``size`` UTF-8 bytes (``char`` of one or two bytes)."""
    empty = {"launched": [{"uri": ""}], "skipped": [], "failed": [], "tasks": []}
    room = size - len(json.dumps(empty).encode())
    width = len(char.encode())
    assert room % width == 0
    empty["launched"][0]["uri"] = char * (room // width)
    return empty


def test_a_response_of_exactly_5_mib_is_returned_whole() -> None:
    response = response_of(RESPONSE_LIMIT)
    assert fit_response(response) is response


def test_a_response_one_byte_over_5_mib_is_cut_to_samples_and_counts() -> None:
    fitted = fit_response(response_of(RESPONSE_LIMIT + 1))
    assert (fitted["truncated"], fitted["counts"]) == (
        True,
        {"launched": 1, "skipped": 0, "failed": 0},
    )


def test_a_response_is_measured_in_utf_8_bytes() -> None:
    response = response_of(1001, char="é")
    assert fit_response(response, limit=1001) is response


def outcome_with_response_of(size: int) -> Outcome:
    """An outcome with one URI not started, whose response measures ``size`` bytes."""
    entry = {"uri": "", "reason": "ClusterNotFoundException"}
    outcome = Outcome(failed=[entry], aws_failed=[entry])
    entry["uri"] = "x" * (size - len(json.dumps(outcome.response()).encode()))
    return outcome


def test_tasks_not_started_names_the_whole_response_up_to_64_kib_less_200_bytes() -> None:
    outcome = outcome_with_response_of(LINE_LIMIT - 200)
    message = str(TasksNotStarted(outcome))
    assert message.endswith(json.dumps(outcome.response(), ensure_ascii=False))


def test_tasks_not_started_shrinks_a_larger_response_to_stay_one_log_line() -> None:
    outcome = outcome_with_response_of(LINE_LIMIT - 199)
    message = str(TasksNotStarted(outcome))
    assert message.startswith("1 URI(s) not started because of AWS errors: ")
    assert len(message.encode()) <= LINE_LIMIT - 150


def test_the_ledger_is_reached_through_the_dsns_region(infra: Infra) -> None:
    # Only ECS and S3 are handed in: the ledger's client must come from the DSN (eu-west-3),
    # not from the process's default region (us-east-1), where no such table exists.
    dynamodb = boto3.client("dynamodb", region_name="eu-west-3")
    dynamodb.create_table(
        TableName="ledger-in-paris",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "uri", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "uri", "KeyType": "HASH"}],
    )
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=infra.source_bucket, Key="paris.jpg", Body=b"\xff\xd8\xff")
    environ = infra.environ(
        IIIF_PROCESS_LEDGER_TABLE="ledger-in-paris",
        IIIF_PROCESS_SOURCE_BUCKET=infra.source_bucket,
        IIIF_PROCESS_ECS_DSN="region=eu-west-3 credentials=iam:",
    )
    response = handle_event({"uris": ["paris.jpg"]}, None, environ=environ, ecs=FlakyEcs(), s3=s3)
    assert [e["uri"] for e in response["launched"]] == ["paris.jpg"]
    assert "Item" in dynamodb.get_item(TableName="ledger-in-paris", Key={"uri": {"S": "paris.jpg"}})
