"""The text of ``-mode status``: counts, failures grouped by reason, recent failures, alarms."""

from __future__ import annotations

from typing import Any

import boto3
from iiif_process_ecs.ledger import STATUSES, Ledger, now_iso
from iiif_process_ecs.status import (
    format_alarms,
    format_report,
    format_status,
    group_by_reason,
    status_report,
)

from tests.lambda_src.conftest import REGION, Infra
from tests.lambda_src.ledger_support import create_ledger_table, dynamodb, put_item


def failure(uri: str, reason: str = "decode error", attempts: int = 1) -> dict[str, Any]:
    return {"uri": uri, "reason": reason, "attempts": attempts}


def report(failed: list[dict[str, Any]]) -> dict[str, Any]:
    return {"counts": dict.fromkeys(STATUSES, 0), "failed": failed, "running_tasks": 2}


def test_a_reason_shows_three_example_keys() -> None:
    groups = group_by_reason([failure(f"{i}.jpg") for i in range(5)])
    assert groups == [("decode error", 5, ["0.jpg", "1.jpg", "2.jpg"])]


def test_reasons_are_listed_most_frequent_first_then_by_text() -> None:
    failed = [failure("a", "b-reason"), failure("b", "a-reason"), failure("c", "c-reason")]
    failed += [failure("d", "c-reason")]
    assert [reason for reason, _, _ in group_by_reason(failed)] == [
        "c-reason",
        "a-reason",
        "b-reason",
    ]


def test_the_ten_most_recent_failures_are_listed() -> None:
    text = format_status(report([failure(f"k{i:02d}.jpg") for i in range(11)]), "t")
    recent = text.split("Most recent failures:\n")[1].splitlines()
    assert recent == [f"  k{i:02d}.jpg (1 attempts): decode error" for i in range(10)]


def test_a_ledger_without_failures_says_so() -> None:
    assert format_status(report([]), "t").endswith("Tasks still running: 2\nNo failures.\n")


def test_alarms_in_alarm_come_first() -> None:
    alarms = [
        {"name": "a-ok", "state": "OK", "reason": ""},
        {"name": "z-firing", "state": "ALARM", "reason": ""},
    ]
    assert (
        format_alarms(alarms)
        == "Alarms:\n  ALARM              z-firing\n  OK                 a-ok\n"
    )


def test_no_alarms_for_the_topic_is_said() -> None:
    assert format_alarms([]) == "Alarms: none found for the topic.\n"


def with_cost(value: dict[str, Any]) -> dict[str, Any]:
    return {**value, "cost": {"since": "2026-11-30T00:00:00Z", "error": "needs -task"}}


def test_the_report_ends_with_the_alarms_when_asked_for() -> None:
    full = with_cost(report([]))
    full["alarms"] = [{"name": "dlq", "state": "OK", "reason": ""}]
    assert format_report(full, "t").endswith("Alarms:\n  OK                 dlq\n")


def test_the_report_has_no_alarms_section_unless_asked_for() -> None:
    assert "Alarms" not in format_report(with_cost(report([])), "t")


def test_a_failure_recorded_without_attempts_counts_zero(infra: Infra) -> None:
    table = create_ledger_table()
    put_item(table, uri="a.jpg", status="failed", reason="r", updated_at=now_iso())
    report = status_report(
        Ledger(table, dynamodb()), boto3.client("ecs", region_name=REGION), infra.cluster
    )
    assert report["failed"] == [{"uri": "a.jpg", "reason": "r", "attempts": 0}]
