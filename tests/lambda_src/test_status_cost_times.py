"""status_cost.ecs_task_times: a task's time from ECS, and whether it wrote process reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from iiif_process_ecs.status_cost import ecs_task_times

from tests.lambda_src.conftest import REGION, Infra
from tests.lambda_src.test_cost import StoppedTasks


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
