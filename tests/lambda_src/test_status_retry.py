"""`iiif-process-ecs -mode status` and `-mode retry`, and -force, over the ledger (issue #9)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from iiif_process_ecs.ledger import Ledger, now_iso
from iiif_process_ecs.status import format_status, status_report

from tests.lambda_src.conftest import REGION, Infra
from tests.lambda_src.ledger_support import create_ledger_table, dynamodb, item_of, put_item
from tests.lambda_src.test_ecs_trigger_cli import cli, result_of, task_flags
from tests.lambda_src.test_ecs_trigger_sqs import batch, sqs_message
from tests.lambda_src.test_ledger_trigger import run as trigger

BASE = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def table(aws: None) -> str:
    return create_ledger_table()


@pytest.fixture
def queue(aws: None) -> str:
    return boto3.client("sqs", region_name=REGION).create_queue(
        QueueName=f"events-{uuid.uuid4().hex[:8]}"
    )["QueueUrl"]


def at(minutes: int) -> str:
    return now_iso(BASE + timedelta(minutes=minutes))


def fill(table: str) -> None:
    """Two succeeded, one started, one queued, three failed (two share a reason)."""
    put_item(table, uri="ok1.jpg", status="succeeded", etag="e", attempts=1, updated_at=at(1))
    put_item(table, uri="ok2.jpg", status="succeeded", etag="e", attempts=1, updated_at=at(2))
    put_item(table, uri="run.jpg", status="started", etag="e", attempts=1, updated_at=at(3))
    put_item(table, uri="q.jpg", status="queued", etag="e", attempts=1, updated_at=at(4))
    oom = "task killed: out of memory (exit 137), 3 attempts"
    put_item(
        table,
        uri="big1.jpg",
        status="failed",
        etag="e1",
        size=10,
        attempts=3,
        reason=oom,
        updated_at=at(5),
    )
    put_item(
        table,
        uri="big2.jpg",
        status="failed",
        etag="e2",
        size=20,
        attempts=3,
        reason=oom,
        updated_at=at(6),
    )
    put_item(
        table,
        uri="bad.jpg",
        status="failed",
        etag="e3",
        size=30,
        attempts=1,
        reason="not an image: unknown format",
        updated_at=at(7),
    )


def start_task(infra: Infra, started_by: str = "iiif-process-ecs") -> str:
    return boto3.client("ecs", region_name=REGION).run_task(
        cluster=infra.cluster,
        taskDefinition=infra.task_definition,
        launchType="FARGATE",
        startedBy=started_by,
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [infra.subnet],
                "securityGroups": [infra.security_group],
            }
        },
    )["tasks"][0]["taskArn"]


def deploy_stack(infra: Infra, table: str, queue: str, **more_outputs: str) -> str:
    name = f"stack-{uuid.uuid4().hex[:8]}"
    outputs = {
        **more_outputs,
        "ClusterName": infra.cluster,
        "TaskDefinitionArn": infra.task_definition,
        "ContainerName": infra.container,
        "SubnetIds": infra.subnet,
        "SecurityGroupIds": infra.security_group,
        "SourceBucketName": infra.source_bucket,
        "LedgerTableName": table,
        "EventQueueUrl": queue,
    }
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=name, TemplateBody=json.dumps(template)
    )
    return name


def received(queue: str) -> list[str]:
    """The keys of every record now in the queue (and empties it)."""
    sqs = boto3.client("sqs", region_name=REGION)
    keys: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return sorted(keys)
        for message in messages:
            body = json.loads(message["Body"])
            keys.extend(unquote_plus(r["s3"]["object"]["key"]) for r in body["Records"])
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


# -- status ----------------------------------------------------------------------------------


def test_status_json_has_counts_failures_and_running_tasks(
    infra: Infra, table: str, queue: str
) -> None:
    fill(table)
    start_task(infra)
    start_task(infra, started_by="someone-else")
    status, out, _ = cli(["-stack", deploy_stack(infra, table, queue), "-mode", "status", "-json"])
    assert status == 0
    report = json.loads(out)
    assert report.pop("cost")["images"] == 0  # nothing finished in the last 24 hours (#10)
    assert report == {
        "counts": {"queued": 1, "started": 1, "succeeded": 2, "failed": 3, "skipped": 0},
        "failed": [
            {"uri": "bad.jpg", "reason": "not an image: unknown format", "attempts": 1},
            {
                "uri": "big2.jpg",
                "reason": "task killed: out of memory (exit 137), 3 attempts",
                "attempts": 3,
            },
            {
                "uri": "big1.jpg",
                "reason": "task killed: out of memory (exit 137), 3 attempts",
                "attempts": 3,
            },
        ],
        "running_tasks": 1,
    }


def new_topic() -> str:
    name = f"alarms-{uuid.uuid4().hex[:8]}"
    return boto3.client("sns", region_name=REGION).create_topic(Name=name)["TopicArn"]


def alarm(name: str, topic: str | None) -> None:
    boto3.client("cloudwatch", region_name=REGION).put_metric_alarm(
        AlarmName=name,
        Namespace="IiifProcess",
        MetricName="TasksKilledOutOfMemory",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=[topic] if topic else [],
    )


def test_status_shows_the_state_of_the_stacks_alarms(infra: Infra, table: str, queue: str) -> None:
    topic = new_topic()
    alarm("oom", topic)
    alarm("dlq", topic)
    alarm("someone-elses", None)
    boto3.client("cloudwatch", region_name=REGION).set_alarm_state(
        AlarmName="oom", StateValue="ALARM", StateReason="a task was killed"
    )
    stack = deploy_stack(infra, table, queue, AlarmTopicArn=topic)
    status, out, _ = cli(["-stack", stack, "-mode", "status", "-json"])
    states = {a["name"]: a["state"] for a in json.loads(out)["alarms"]}
    assert (status, states) == (0, {"dlq": "OK", "oom": "ALARM"})


def test_status_text_lists_alarms_in_alarm_first(infra: Infra, table: str, queue: str) -> None:
    topic = new_topic()
    alarm("a-dlq", topic)
    alarm("z-oom", topic)
    boto3.client("cloudwatch", region_name=REGION).set_alarm_state(
        AlarmName="z-oom", StateValue="ALARM", StateReason="a task was killed"
    )
    _, out, _ = cli(
        ["-stack", deploy_stack(infra, table, queue, AlarmTopicArn=topic), "-mode", "status"]
    )
    lines = out.splitlines()
    first = lines.index("Alarms:") + 1
    assert lines[first].split() == ["ALARM", "z-oom"]


def test_status_with_html_prints_the_alarms_too(
    infra: Infra, table: str, queue: str, tmp_path: Any
) -> None:
    topic = new_topic()
    alarm("dlq-html", topic)
    stack = deploy_stack(infra, table, queue, AlarmTopicArn=topic)
    _, out, _ = cli(["-stack", stack, "-mode", "status", "-html", str(tmp_path / "s.html")])
    lines = out.splitlines()
    assert lines[lines.index("Alarms:") + 1].split() == ["OK", "dlq-html"]


def test_status_text_groups_failures_by_reason_with_examples(infra: Infra, table: str) -> None:
    fill(table)
    status, out, _ = cli(["-mode", "status", "-ledger-table", table, "-cluster", infra.cluster])
    assert status == 0
    lines = out.splitlines()
    oom = lines.index("Failures by reason:") + 1
    assert lines[oom].split()[0] == "2"
    assert lines[oom].endswith("task killed: out of memory (exit 137), 3 attempts")
    assert lines[oom + 1].strip() == "e.g. big2.jpg, big1.jpg"
    assert "  succeeded  2" in lines


def test_status_counts_with_count_queries_across_pages_never_a_scan(table: str) -> None:
    fill(table)

    class Recording:
        def __init__(self) -> None:
            self.real = dynamodb()
            self.calls: list[tuple[str, dict[str, Any]]] = []

        def __getattr__(self, name: str) -> Any:
            def call(**kwargs: Any) -> Any:
                self.calls.append((name, kwargs))
                if name == "query":
                    kwargs["Limit"] = 1  # one item a page: counting must follow the pages
                return getattr(self.real, name)(**kwargs)

            return call

    client = Recording()
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName="empty")
    report = status_report(Ledger(table, client), ecs, "empty")
    assert report["counts"]["failed"] == 3
    assert report["counts"]["succeeded"] == 2
    assert all(name == "query" for name, _ in client.calls)
    counts = [kwargs for _, kwargs in client.calls if kwargs.get("Select") == "COUNT"]
    assert {kwargs["IndexName"] for kwargs in counts} == {"by-status"}


def test_format_status_says_when_nothing_failed() -> None:
    report = {
        "counts": {"queued": 0, "started": 0, "succeeded": 4, "failed": 0, "skipped": 0},
        "failed": [],
        "running_tasks": 0,
    }
    assert "No failures." in format_status(report, "t")


def test_status_without_a_ledger_table_exits_2(infra: Infra) -> None:
    status, _, err = cli(["-mode", "status", "-cluster", infra.cluster])
    assert status == 2
    assert "-ledger-table" in err


# -- retry -----------------------------------------------------------------------------------


def test_retry_requeues_every_failed_image(infra: Infra, table: str, queue: str) -> None:
    fill(table)
    status, out, _ = cli(["-stack", deploy_stack(infra, table, queue), "-mode", "retry"])
    assert status == 0
    assert sorted(result_of(out)["requeued"]) == ["bad.jpg", "big1.jpg", "big2.jpg"]
    assert received(queue) == ["bad.jpg", "big1.jpg", "big2.jpg"]


def test_retry_exits_1_when_keys_could_not_be_requeued(
    infra: Infra, table: str, queue: str
) -> None:
    fill(table)
    stack = deploy_stack(infra, table, queue)
    boto3.client("sqs", region_name=REGION).delete_queue(QueueUrl=queue)
    status, out, _ = cli(["-stack", stack, "-mode", "retry", "-uri", "bad.jpg"])
    assert (status, [f["uri"] for f in result_of(out)["failed"]]) == (1, ["bad.jpg"])


def test_retry_resets_attempts_and_sets_queued_with_a_reason(
    infra: Infra, table: str, queue: str
) -> None:
    fill(table)
    cli(["-stack", deploy_stack(infra, table, queue), "-mode", "retry"])
    item = item_of(table, "big1.jpg")
    assert item is not None
    assert (item["status"], item["attempts"]) == ("queued", 0)
    assert "-mode retry" in item["reason"] and "out of memory" in item["reason"]
    assert item_of(table, "ok1.jpg")["status"] == "succeeded"  # type: ignore[index]


def test_retry_uri_requeues_only_those_and_says_why_others_are_not(
    infra: Infra, table: str, queue: str
) -> None:
    fill(table)
    stack = deploy_stack(infra, table, queue)
    status, out, _ = cli(["-stack", stack, "-mode", "retry", "-uri", "bad.jpg", "-uri", "ok1.jpg"])
    assert status == 0
    result = result_of(out)
    assert result["requeued"] == ["bad.jpg"]
    assert result["skipped"] == [{"uri": "ok1.jpg", "reason": "not failed (succeeded)"}]
    assert received(queue) == ["bad.jpg"]


def test_retry_reason_requeues_the_failures_whose_reason_matches(
    infra: Infra, table: str, queue: str
) -> None:
    fill(table)
    stack = deploy_stack(infra, table, queue)
    status, _, _ = cli(["-stack", stack, "-mode", "retry", "-reason", "out of memory"])
    assert status == 0
    assert received(queue) == ["big1.jpg", "big2.jpg"]
    assert item_of(table, "bad.jpg")["status"] == "failed"  # type: ignore[index]


def test_a_retried_image_is_launched_by_the_trigger_as_attempt_one(
    infra: Infra, table: str, queue: str
) -> None:
    fill(table)
    cli(["-stack", deploy_stack(infra, table, queue), "-mode", "retry", "-uri", "big1.jpg"])
    message = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=queue)["Messages"][0]
    response = trigger(infra, table, batch(sqs_message("m1", message["Body"])))
    assert [entry["uri"] for entry in response["launched"]] == ["big1.jpg"]
    item = item_of(table, "big1.jpg")
    assert (item["status"], item["attempts"], item["etag"]) == (  # type: ignore[index]
        "started",
        1,
        "e1",
    )


def test_retry_without_an_event_queue_exits_2(infra: Infra, table: str) -> None:
    status, _, err = cli(["-mode", "retry", "-ledger-table", table, "-source-bucket", "b"])
    assert status == 2
    assert "-event-queue-url" in err


# -- -force and the recipe in the launching modes ----------------------------------------------


def upload(infra: Infra, key: str) -> str:
    return (
        boto3.client("s3", region_name=REGION)
        .put_object(Bucket=infra.source_bucket, Key=key, Body=b"x")["ETag"]
        .strip('"')
    )


def ledger_task_flags(infra: Infra, table: str) -> list[str]:
    return [
        *task_flags(infra),
        "-ledger-table",
        table,
        "-source-bucket",
        infra.source_bucket,
        "-recipe",
        "r1",
    ]


def test_mode_task_skips_an_unchanged_image(infra: Infra, table: str) -> None:
    etag = upload(infra, "same.jpg")
    put_item(
        table,
        uri="same.jpg",
        status="succeeded",
        etag=etag,
        recipe="r1",
        attempts=1,
        updated_at=now_iso(),
    )
    status, out, _ = cli([*ledger_task_flags(infra, table), "-uri", "same.jpg"])
    assert status == 0
    assert result_of(out)["skipped"] == [{"uri": "same.jpg", "reason": "unchanged"}]


def test_mode_task_force_launches_an_unchanged_image(infra: Infra, table: str) -> None:
    etag = upload(infra, "same.jpg")
    put_item(
        table,
        uri="same.jpg",
        status="succeeded",
        etag=etag,
        recipe="r1",
        attempts=1,
        updated_at=now_iso(),
    )
    status, out, _ = cli([*ledger_task_flags(infra, table), "-uri", "same.jpg", "-force"])
    assert status == 0
    assert [e["uri"] for e in result_of(out)["launched"]] == ["same.jpg"]
    assert item_of(table, "same.jpg")["status"] == "started"  # type: ignore[index]


def test_mode_task_records_the_task_definitions_recipe(infra: Infra, table: str) -> None:
    upload(infra, "r.jpg")
    definition = boto3.client("ecs", region_name=REGION).register_task_definition(
        family="iiif-process-recipe",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="1024",
        memory="2048",
        containerDefinitions=[
            {
                "name": infra.container,
                "image": "example/iiif-process:latest",
                "memory": 2048,
                "environment": [{"name": "IIIF_PROCESS_RECIPE", "value": "0123456789abcdef"}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    flags = [*task_flags(infra), "-task", definition, "-ledger-table", table]
    status, _, _ = cli([*flags, "-source-bucket", infra.source_bucket, "-uri", "r.jpg"])
    assert status == 0
    assert item_of(table, "r.jpg")["recipe"] == "0123456789abcdef"  # type: ignore[index]


def test_force_with_mode_invoke_exits_2(infra: Infra) -> None:
    status, _, err = cli(["-mode", "invoke", "-lambda-func", "f", "-uri", "a.jpg", "-force"])
    assert status == 2
    assert "-force" in err


def test_retry_uri_with_reason_requeues_only_the_named_failures_that_match(
    infra: Infra, table: str, queue: str
) -> None:
    fill(table)
    stack = deploy_stack(infra, table, queue)
    argv = ["-stack", stack, "-mode", "retry", "-reason", "out of memory"]
    status, out, _ = cli([*argv, "-uri", "big1.jpg", "-uri", "bad.jpg"])
    result = result_of(out)
    assert (status, result["requeued"], result["skipped"]) == (
        0,
        ["big1.jpg"],
        [{"uri": "bad.jpg", "reason": "reason does not match -reason"}],
    )
