"""waiting.py's own rules: which container's logs are read, how a report is shown, which
cluster a task is in, and how a task ECS does not return is told."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from iiif_process_ecs.waiting import (
    LogLocation,
    TaskResult,
    WaitContext,
    cluster_of,
    describe_results,
    log_lines,
    log_location_from_task_definition,
    wait_for_tasks,
)

from tests.lambda_src.conftest import REGION, Infra


def register(ecs: Any, *containers: dict[str, Any]) -> str:
    return ecs.register_task_definition(
        family="waiting-rules",
        containerDefinitions=[{"image": "example/x", "memory": 512, **c} for c in containers],
    )["taskDefinition"]["taskDefinitionArn"]


def logging(driver: str, **options: str) -> dict[str, Any]:
    return {"logConfiguration": {"logDriver": driver, "options": options}}


def test_the_logs_are_those_of_the_awslogs_container_with_a_group(infra: Infra) -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    arn = register(
        ecs,
        {"name": "other-driver", **logging("splunk", **{"awslogs-group": "/not/this"})},
        {"name": "no-group", **logging("awslogs", **{"awslogs-stream-prefix": "x"})},
        {
            "name": "main",
            **logging("awslogs", **{"awslogs-group": "/g", "awslogs-stream-prefix": "p"}),
        },
    )
    assert log_location_from_task_definition(ecs, arn) == LogLocation("/g", "p")


@pytest.fixture
def s3(network: dict[str, str]) -> Any:
    return boto3.client("s3", region_name=REGION)


def test_a_report_is_shown_as_indented_utf_8_json(s3: Any) -> None:
    s3.put_object(
        Bucket="iiif-derivatives", Key="café.jpg/process.json", Body=json.dumps({"uri": "café.jpg"})
    )
    result = TaskResult(
        arn="arn:aws:ecs:us-east-1:123456789012:task/c/t1",
        cluster="c",
        state="STOPPED",
        containers=[{"name": "iiif-process", "exitCode": 0}],
        command=["/bin/iiif-process", "-report", "-uri", "café.jpg"],
    )
    out = io.StringIO()
    context = WaitContext(ecs=None, s3=s3, derivatives_bucket="iiif-derivatives")
    assert describe_results([result], context, out) is True
    shown = out.getvalue().split("  report s3://iiif-derivatives/café.jpg/process.json:\n")[1]
    assert shown == '    {\n      "uri": "café.jpg"\n    }\n'


@pytest.mark.parametrize(("default", "cluster"), [("c", "c"), ("", "default"), (None, "default")])
def test_a_task_arn_without_a_cluster_is_in_the_default_cluster(
    default: str | None, cluster: str
) -> None:
    old_format = "arn:aws:ecs:us-east-1:123456789012:task/0123456789abcdef0123456789abcdef"
    assert cluster_of(old_format, default) == cluster


class FailingDescribe:
    """moto's ECS, whose DescribeTasks also reports a failure with ``reason`` for each task it
    does not return (moto reports none)."""

    def __init__(self, reason: str) -> None:
        self.real = boto3.client("ecs", region_name=REGION)
        self.reason = reason

    def describe_tasks(self, **kwargs: Any) -> dict[str, Any]:
        response = self.real.describe_tasks(**kwargs)
        returned = {task["taskArn"] for task in response["tasks"]}
        response["failures"] = [
            {"arn": arn, "reason": self.reason} for arn in kwargs["tasks"] if arn not in returned
        ]
        return response


def test_a_failure_for_another_reason_is_not_told_as_reported_missing(infra: Infra) -> None:
    arn = f"arn:aws:ecs:{REGION}:123456789012:task/{infra.cluster}/0123456789abcdef"
    [result] = wait_for_tasks(
        FailingDescribe("ACCESS_DENIED"), [arn], cluster=infra.cluster, timeout=0
    )
    assert result.stopped_reason == "ECS no longer returns the task"


class ScriptedLogs:
    """A CloudWatch Logs client whose GetLogEvents returns ``pages`` in turn (events' messages),
    each with a new nextForwardToken; past them, one more line per call."""

    def __init__(self, *pages: list[str]) -> None:
        self.pages = pages
        self.calls: list[dict[str, Any]] = []

    def get_log_events(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        n = len(self.calls)
        messages = self.pages[n - 1] if n <= len(self.pages) else [f"past the script {n}"]
        return {
            "events": [{"message": message} for message in messages],
            "nextForwardToken": f"f/{n}",
        }


def test_log_paging_stops_at_the_first_empty_page_despite_a_new_token() -> None:
    logs = ScriptedLogs(["one", "two"], [], ["three"])
    lines = log_lines(logs, "/g", "p/c/t")
    assert (lines, len(logs.calls)) == (["one", "two"], 2)
