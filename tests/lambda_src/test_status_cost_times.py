"""status_cost: a task's time from ECS and whether it wrote process reports (ecs_task_times),
what ``-since`` means, and the counts of the cost report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from iiif_process_ecs.ledger import Ledger, now_iso
from iiif_process_ecs.status_cost import cost_report, ecs_task_times, parse_since

from tests.lambda_src.conftest import REGION, Infra
from tests.lambda_src.ledger_support import create_ledger_table, dynamodb, put_item
from tests.lambda_src.test_cost import NOW, ONE_VCPU, StoppedTasks


def started(infra: Infra, command: list[str]) -> str:
    ecs = boto3.client("ecs", region_name=REGION)
    return ecs.run_task(
        cluster=infra.cluster,
        taskDefinition=infra.task_definition,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [infra.subnet],
                "securityGroups": [infra.security_group],
            }
        },
        overrides={"containerOverrides": [{"name": infra.container, "command": command}]},
    )["tasks"][0]["taskArn"]


@pytest.mark.parametrize(
    ("command", "report"), [(["-report", "-uri", "a.jpg"], True), (["-uri", "a.jpg"], False)]
)
def test_a_task_wrote_reports_when_started_with_report(
    infra: Infra, command: list[str], report: bool
) -> None:
    arn = started(infra, ["/bin/iiif-process", *command])
    now = datetime.now(UTC)
    ecs = StoppedTasks({arn: (now - timedelta(seconds=90), now)})
    times = ecs_task_times(ecs, infra.cluster, [arn], now)
    assert times[arn].report is report


def test_since_a_week_means_seven_days_back() -> None:
    assert parse_since("1w", NOW) == NOW - timedelta(days=7)


def test_the_cost_report_counts_succeeded_and_failed_images_apart(infra: Infra) -> None:
    table = create_ledger_table()
    done = now_iso(NOW - timedelta(minutes=10))
    for uri, status in (("a.jpg", "succeeded"), ("b.jpg", "succeeded"), ("c.jpg", "failed")):
        put_item(table, uri=uri, status=status, finished_at=done, updated_at=done)
    report = cost_report(
        Ledger(table, dynamodb()),
        boto3.client("ecs", region_name=REGION),
        cluster=infra.cluster,
        size=ONE_VCPU,
        since=NOW - timedelta(hours=1),
        now=NOW,
        region=REGION,
    )
    assert (report["images"], report["succeeded"], report["failed"]) == (3, 2, 1)
