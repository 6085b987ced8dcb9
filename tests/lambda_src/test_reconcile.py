"""The reconcile function under moto: stopped tasks → re-run alone, re-queue, fail (issue #9).

A task is started by the real trigger (with the ledger), the tool's part is played by writing the
ledger items it would write, and the stopped-task event is shaped as EventBridge sends it.
"""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from iiif_process_ecs.ledger import now_iso
from iiif_process_ecs.reconcile import ContainerExit, StoppedTask, cause_of, handle_reconcile_event
from iiif_process_ecs.requeue import RequeueKey, Requeuer

from tests.lambda_src.conftest import REGION, Infra, command_of, logged_messages, uris_of
from tests.lambda_src.ledger_support import create_ledger_table, dynamodb, item_of
from tests.lambda_src.test_ecs_trigger_handler import FakeClock, FlakyEcs, ecs_client
from tests.lambda_src.test_ecs_trigger_sqs import batch, s3_message, sqs_message
from tests.lambda_src.test_ledger_trigger import RECIPE
from tests.lambda_src.test_ledger_trigger import run as trigger

RECONCILE_HANDLER = Path(__file__).resolve().parents[2] / "lambda_src" / "reconcile_handler.py"
OOM = "OutOfMemoryError: Container killed due to memory usage"


@pytest.fixture
def table(aws: None) -> str:
    return create_ledger_table()


@pytest.fixture
def queue(aws: None) -> str:
    import uuid

    return boto3.client("sqs", region_name=REGION).create_queue(
        QueueName=f"events-{uuid.uuid4().hex[:8]}"
    )["QueueUrl"]


def cluster_arn(infra: Infra) -> str:
    return ecs_client().describe_clusters(clusters=[infra.cluster])["clusters"][0]["clusterArn"]


def stopped(
    infra: Infra,
    task_arn: str,
    *,
    exit_code: int | None = 137,
    reason: str = OOM,
    stop_code: str = "EssentialContainerExited",
    stopped_reason: str = "Essential container in task exited",
    cluster: str | None = None,
) -> dict[str, Any]:
    """An "ECS Task State Change" event for a STOPPED task, as EventBridge delivers it."""
    container: dict[str, Any] = {"name": infra.container, "lastStatus": "STOPPED"}
    if exit_code is not None:
        container["exitCode"] = exit_code
    if reason:
        container["reason"] = reason
    return {
        "version": "0",
        "id": "3317b2af-7005-947d-b652-f55e762e571a",
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": REGION,
        "resources": [task_arn],
        "detail": {
            "clusterArn": cluster or cluster_arn(infra),
            "taskArn": task_arn,
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            "stopCode": stop_code,
            "stoppedReason": stopped_reason,
            "startedBy": "iiif-process-ecs",
            "containers": [container],
        },
    }


def reconcile(
    infra: Infra,
    table: str,
    queue: str,
    *events: Any,
    ecs: Any = None,
    sqs: Any = None,
    client: Any = None,
    **env: str,
) -> dict[str, Any]:
    records = [
        sqs_message(f"r{index}", event if isinstance(event, str) else json.dumps(event))
        for index, event in enumerate(events)
    ]
    clock = FakeClock()
    return handle_reconcile_event(
        {"Records": records},
        clock,
        environ=infra.environ(
            **{
                "IIIF_PROCESS_LEDGER_TABLE": table,
                "IIIF_PROCESS_EVENT_QUEUE_URL": queue,
                "IIIF_PROCESS_SOURCE_BUCKET": infra.source_bucket,
                "IIIF_PROCESS_RECIPE": RECIPE,
                **env,
            }
        ),
        ecs=ecs or FlakyEcs(),
        dynamodb=client or dynamodb(),
        sqs=sqs or boto3.client("sqs", region_name=REGION),
        sleep=clock.sleep,
        rand=lambda: 0.0,
    )


def launch(infra: Infra, table: str, *keys: str) -> str:
    """Start one task for ``keys`` through the trigger; returns its ARN."""
    response = trigger(infra, table, batch(s3_message("m1", *keys)))
    (task,) = response["tasks"]
    return task


def tool_processing(table: str, uri: str) -> None:
    """What iiif-process writes when it starts decoding an image."""
    dynamodb().update_item(
        TableName=table,
        Key={"uri": {"S": uri}},
        UpdateExpression="SET processing_at = :now, updated_at = :now",
        ExpressionAttributeValues={":now": {"S": now_iso()}},
    )


def tool_finished(table: str, uri: str, status: str = "succeeded", **extra: Any) -> None:
    """What iiif-process writes when an image finishes."""
    from iiif_process_ecs.ledger import to_dynamodb

    values = {"status": status, "finished_at": now_iso(), "updated_at": now_iso(), **extra}
    names = {f"#a{i}": name for i, name in enumerate(values)}
    dynamodb().update_item(
        TableName=table,
        Key={"uri": {"S": uri}},
        UpdateExpression="SET "
        + ", ".join(f"#a{i} = :a{i}" for i in range(len(values)))
        + " REMOVE processing_at",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={f":a{i}": to_dynamodb(v) for i, v in enumerate(values.values())},
    )


def received(queue: str) -> list[dict[str, Any]]:
    """Every message body now in the queue (the S3 records of re-queued keys)."""
    sqs = boto3.client("sqs", region_name=REGION)
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def keys_of(bodies: list[dict[str, Any]]) -> list[str]:
    from urllib.parse import unquote_plus

    return sorted(unquote_plus(r["s3"]["object"]["key"]) for b in bodies for r in b["Records"])


# -- the poison image and its batch mates ------------------------------------------------------


def test_the_image_being_processed_is_rerun_alone(infra: Infra, table: str, queue: str) -> None:
    task = launch(infra, table, "a.jpg", "poison.jpg", "c.jpg")
    tool_finished(table, "a.jpg")
    tool_processing(table, "poison.jpg")
    ecs = FlakyEcs()
    response = reconcile(infra, table, queue, stopped(infra, task), ecs=ecs)
    (call,) = ecs.calls
    assert uris_of(call["overrides"]["containerOverrides"][0]["command"]) == ["poison.jpg"]
    (rerun,) = response["tasks"][0]["rerun"]
    item = item_of(table, "poison.jpg")
    assert item is not None
    assert (item["status"], item["task_arn"], item["attempts"]) == (
        "started",
        rerun["task_arn"],
        2,
    )
    assert "processing_at" not in item


def test_batch_mates_of_the_poison_image_are_requeued(infra: Infra, table: str, queue: str) -> None:
    task = launch(infra, table, "a.jpg", "poison.jpg", "c.jpg", "d e.jpg")
    tool_finished(table, "a.jpg")
    tool_processing(table, "poison.jpg")
    reconcile(infra, table, queue, stopped(infra, task))
    assert keys_of(received(queue)) == ["c.jpg", "d e.jpg"]
    item = item_of(table, "c.jpg")
    assert item is not None
    assert item["status"] == "queued"
    assert "out of memory" in item["reason"]


def test_requeued_keys_share_messages(infra: Infra, table: str, queue: str) -> None:
    task = launch(infra, table, *(f"k{index}.jpg" for index in range(12)))
    reconcile(infra, table, queue, stopped(infra, task))
    bodies = received(queue)
    assert len(keys_of(bodies)) == 12
    assert len(bodies) == 2  # 10 records, then 2


def test_a_requeued_key_is_launched_again_by_the_trigger(
    infra: Infra, table: str, queue: str
) -> None:
    task = launch(infra, table, "mate.jpg")
    reconcile(infra, table, queue, stopped(infra, task))
    (body,) = received(queue)
    response = trigger(infra, table, batch(sqs_message("again", body)))
    (new_task,) = response["tasks"]
    assert uris_of(command_of(ecs_client(), infra.cluster, new_task)) == ["mate.jpg"]
    item = item_of(table, "mate.jpg")
    assert (item["status"], item["attempts"], item["task_arn"]) == (  # type: ignore[index]
        "started",
        2,
        new_task,
    )


def test_a_retryable_failure_is_requeued(infra: Infra, table: str, queue: str) -> None:
    task = launch(infra, table, "flaky.jpg")
    tool_finished(table, "flaky.jpg", status="failed", reason="S3 SlowDown", retryable=True)
    reconcile(infra, table, queue, stopped(infra, task, exit_code=1, reason=""))
    assert keys_of(received(queue)) == ["flaky.jpg"]
    assert item_of(table, "flaky.jpg")["reason"] == "re-queued: S3 SlowDown"  # type: ignore[index]


def test_a_permanent_failure_is_left_failed(infra: Infra, table: str, queue: str) -> None:
    task = launch(infra, table, "notimage.jpg")
    tool_finished(table, "notimage.jpg", status="failed", reason="not an image", retryable=False)
    reconcile(infra, table, queue, stopped(infra, task, exit_code=1, reason=""))
    assert received(queue) == []
    assert item_of(table, "notimage.jpg")["status"] == "failed"  # type: ignore[index]


def test_a_task_whose_every_key_finished_does_nothing(infra: Infra, table: str, queue: str) -> None:
    task = launch(infra, table, "a.jpg", "b.jpg")
    tool_finished(table, "a.jpg")
    tool_finished(table, "b.jpg")
    ecs = FlakyEcs()
    response = reconcile(infra, table, queue, stopped(infra, task, exit_code=0, reason=""), ecs=ecs)
    assert ecs.calls == []
    assert received(queue) == []
    assert response["batchItemFailures"] == []


# -- max attempts --------------------------------------------------------------------------


def test_at_max_attempts_the_poison_image_fails_with_the_cause(
    infra: Infra, table: str, queue: str
) -> None:
    task = launch(infra, table, "poison.jpg")
    dynamodb().update_item(
        TableName=table,
        Key={"uri": {"S": "poison.jpg"}},
        UpdateExpression="SET attempts = :three",
        ExpressionAttributeValues={":three": {"N": "3"}},
    )
    tool_processing(table, "poison.jpg")
    ecs = FlakyEcs()
    reconcile(infra, table, queue, stopped(infra, task), ecs=ecs)
    assert ecs.calls == []
    item = item_of(table, "poison.jpg")
    assert item is not None
    assert item["status"] == "failed"
    assert item["reason"] == "task killed: out of memory (exit 137), 3 attempts"
    assert item["retryable"] is False


def test_below_max_attempts_the_poison_image_is_rerun(infra: Infra, table: str, queue: str) -> None:
    task = launch(infra, table, "poison.jpg")
    tool_processing(table, "poison.jpg")  # attempts is 1
    ecs = FlakyEcs()
    reconcile(infra, table, queue, stopped(infra, task), ecs=ecs, IIIF_PROCESS_MAX_ATTEMPTS="2")
    assert len(ecs.calls) == 1


def test_max_attempts_setting_is_honoured(infra: Infra, table: str, queue: str) -> None:
    task = launch(infra, table, "poison.jpg")
    tool_processing(table, "poison.jpg")  # attempts is 1
    reconcile(infra, table, queue, stopped(infra, task), IIIF_PROCESS_MAX_ATTEMPTS="1")
    assert item_of(table, "poison.jpg")["reason"] == (  # type: ignore[index]
        "task killed: out of memory (exit 137), 1 attempts"
    )


# -- at-least-once events ----------------------------------------------------------------------


def test_the_same_stopped_task_event_twice_changes_nothing_the_second_time(
    infra: Infra, table: str, queue: str
) -> None:
    task = launch(infra, table, "a.jpg", "poison.jpg", "c.jpg")
    tool_finished(table, "a.jpg")
    tool_processing(table, "poison.jpg")
    event = stopped(infra, task)
    reconcile(infra, table, queue, event)
    first_messages = received(queue)
    items = {uri: item_of(table, uri) for uri in ("a.jpg", "poison.jpg", "c.jpg")}
    ecs = FlakyEcs()
    second = reconcile(infra, table, queue, event, ecs=ecs)
    assert first_messages and received(queue) == []
    assert ecs.calls == []
    assert {uri: item_of(table, uri) for uri in items} == items
    assert second["batchItemFailures"] == []


# -- what is not acted on ----------------------------------------------------------------------


def test_events_of_other_clusters_are_ignored(infra: Infra, table: str, queue: str) -> None:
    task = launch(infra, table, "a.jpg")
    other = f"arn:aws:ecs:{REGION}:123456789012:cluster/someone-else"
    response = reconcile(infra, table, queue, stopped(infra, task, cluster=other))
    assert response == {"batchItemFailures": [], "tasks": []}
    assert item_of(table, "a.jpg")["status"] == "started"  # type: ignore[index]


def test_an_unparseable_body_is_dropped_and_its_batch_mates_handled(
    infra: Infra, table: str, queue: str
) -> None:
    task = launch(infra, table, "a.jpg")
    response = reconcile(infra, table, queue, "not json {", stopped(infra, task))
    assert response["batchItemFailures"] == []
    assert keys_of(received(queue)) == ["a.jpg"]


def test_a_ledger_failure_returns_the_message(infra: Infra, table: str, queue: str) -> None:
    task = launch(infra, table, "a.jpg")
    response = reconcile(
        infra, table, queue, stopped(infra, task), IIIF_PROCESS_LEDGER_TABLE="no-such-table"
    )
    assert response["batchItemFailures"] == [{"itemIdentifier": "r0"}]


def test_a_requeue_that_cannot_be_sent_puts_the_key_back(
    infra: Infra, table: str, queue: str
) -> None:
    task = launch(infra, table, "a.jpg")
    before = item_of(table, "a.jpg")

    class Refusing:
        def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
            return {
                "Successful": [],
                "Failed": [
                    {"Id": e["Id"], "Code": "ServiceUnavailable", "SenderFault": False}
                    for e in kwargs["Entries"]
                ],
            }

    response = reconcile(infra, table, queue, stopped(infra, task), sqs=Refusing())
    assert response["batchItemFailures"] == [{"itemIdentifier": "r0"}]
    assert item_of(table, "a.jpg") == before


def test_a_rerun_that_runtask_refuses_leaves_the_key_for_the_redelivered_event(
    infra: Infra, table: str, queue: str
) -> None:
    from botocore.exceptions import ClientError

    task = launch(infra, table, "poison.jpg")
    tool_processing(table, "poison.jpg")
    before = item_of(table, "poison.jpg")
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "RunTask")
    response = reconcile(infra, table, queue, stopped(infra, task), ecs=FlakyEcs([denied]))
    assert response["batchItemFailures"] == [{"itemIdentifier": "r0"}]
    assert item_of(table, "poison.jpg") == before


def test_reconcile_needs_the_event_queue(infra: Infra, table: str) -> None:
    from iiif_process_ecs.settings import SettingsError

    with pytest.raises(SettingsError, match="IIIF_PROCESS_EVENT_QUEUE_URL"):
        reconcile(infra, table, "", stopped(infra, "arn:task"))


def test_the_deployed_entry_point_reconciles(
    infra: Infra, table: str, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = launch(infra, table, "a.jpg")
    env = infra.environ(
        IIIF_PROCESS_LEDGER_TABLE=table,
        IIIF_PROCESS_EVENT_QUEUE_URL=queue,
        IIIF_PROCESS_SOURCE_BUCKET=infra.source_bucket,
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("reconcile_handler", RECONCILE_HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    response = module.handler({"Records": [sqs_message("x", stopped(infra, task))]}, FakeClock())
    assert response["tasks"][0]["requeued"] == ["a.jpg"]


# -- causes --------------------------------------------------------------------------------


def task_with(
    exit_code: int | None, reason: str = "", stop_code: str = "", stopped_reason: str = ""
) -> StoppedTask:
    return StoppedTask(
        "arn:cluster/c",
        "arn:task/t",
        stop_code,
        stopped_reason,
        (ContainerExit("iiif-process", exit_code, reason),),
    )


def test_cause_exit_137_is_out_of_memory() -> None:
    assert cause_of(task_with(137), "iiif-process") == "task killed: out of memory (exit 137)"


def test_cause_spot_interruption() -> None:
    cause = cause_of(task_with(143, stop_code="SpotInterruption"), "iiif-process")
    assert "SpotInterruption" in cause


def test_cause_image_pull_failure() -> None:
    task = task_with(
        None,
        stop_code="TaskFailedToStart",
        stopped_reason="CannotPullContainerError: pull image manifest has been retried 5 times",
    )
    assert cause_of(task, "iiif-process").startswith("task failed to start: image pull failed")


def test_cause_stop_task_is_not_out_of_memory() -> None:
    cause = cause_of(task_with(137, stop_code="UserInitiated", stopped_reason="by hand"), "x")
    assert cause == "task stopped by a user: by hand"


def test_cause_other_exit_code() -> None:
    assert (
        cause_of(task_with(2, reason="boom"), "iiif-process") == "task exited with status 2: boom"
    )


# -- the sender ----------------------------------------------------------------------------


def test_requeue_sends_ten_messages_per_call(queue: str) -> None:
    class Counting:
        def __init__(self) -> None:
            self.real = boto3.client("sqs", region_name=REGION)
            self.calls = 0

        def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
            self.calls += 1
            assert len(kwargs["Entries"]) <= 10
            return self.real.send_message_batch(**kwargs)

    sqs = Counting()
    keys = [RequeueKey(f"k{index}.jpg", etag="e", size=1) for index in range(120)]
    report = Requeuer(sqs, queue, "iiif-source", sleep=lambda _: None).send(keys)
    assert len(report.sent) == 120 and report.failed == []
    assert sqs.calls == 2  # 12 messages of 10 records


def test_a_key_the_index_still_lists_under_the_task_but_that_moved_on_is_left_alone(
    infra: Infra, table: str, queue: str
) -> None:
    old_task = launch(infra, table, "poison.jpg")
    tool_processing(table, "poison.jpg")
    # Re-run elsewhere meanwhile; the by-task index (eventually consistent) has not caught up.
    dynamodb().update_item(
        TableName=table,
        Key={"uri": {"S": "poison.jpg"}},
        UpdateExpression="SET task_arn = :new",
        ExpressionAttributeValues={":new": {"S": "arn:aws:ecs:task/newer"}},
    )

    class LaggingIndex:
        def __init__(self) -> None:
            self.real = dynamodb()

        def query(self, **kwargs: Any) -> dict[str, Any]:
            if kwargs.get("IndexName") == "by-task":
                return {"Items": [{"uri": {"S": "poison.jpg"}, "task_arn": {"S": old_task}}]}
            return self.real.query(**kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

    ecs = FlakyEcs()
    reconcile(infra, table, queue, stopped(infra, old_task), ecs=ecs, client=LaggingIndex())
    assert ecs.calls == []
    assert item_of(table, "poison.jpg")["task_arn"] == "arn:aws:ecs:task/newer"  # type: ignore[index]


def test_a_running_task_event_is_dropped(infra: Infra, table: str, queue: str) -> None:
    task = launch(infra, table, "a.jpg")
    event = stopped(infra, task)
    event["detail"]["lastStatus"] = "RUNNING"
    response = reconcile(infra, table, queue, event)
    assert response == {"batchItemFailures": [], "tasks": []}
    assert item_of(table, "a.jpg")["status"] == "started"  # type: ignore[index]


def test_requeued_records_parse_back_to_the_same_keys_etags_and_sizes() -> None:
    from iiif_process_ecs.events import parse_event
    from iiif_process_ecs.requeue import message_bodies

    keys = [RequeueKey("a+b %2B c.jpg", etag="e1", size=7), RequeueKey("dir/ü.png", etag="e2")]
    ((uris, body),) = message_bodies("iiif-source", keys)
    parsed = parse_event(json.loads(body), source_bucket="iiif-source")
    assert [(o.key, o.etag, o.size) for o in parsed.objects] == [
        ("a+b %2B c.jpg", "e1", 7),
        ("dir/ü.png", "e2", None),
    ]
    assert uris == ["a+b %2B c.jpg", "dir/ü.png"]


def test_requeue_sends_again_the_entries_sqs_failed(queue: str) -> None:
    class FailsOnceEach:
        def __init__(self) -> None:
            self.real = boto3.client("sqs", region_name=REGION)
            self.calls = 0

        def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
            self.calls += 1
            if self.calls == 1:
                return {
                    "Successful": [],
                    "Failed": [
                        {"Id": e["Id"], "Code": "InternalError", "SenderFault": False}
                        for e in kwargs["Entries"]
                    ],
                }
            return self.real.send_message_batch(**kwargs)

    sqs = FailsOnceEach()
    report = Requeuer(sqs, queue, "iiif-source", sleep=lambda _: None).send([RequeueKey("a.jpg")])
    assert (report.sent, report.failed, sqs.calls) == (["a.jpg"], [], 2)


def test_cause_exit_1_is_an_exit_status() -> None:
    assert cause_of(task_with(1), "iiif-process") == "task exited with status 1"


def test_cause_exit_0_without_a_record_says_so() -> None:
    assert cause_of(task_with(0), "iiif-process") == "task exited 0 without recording this image"


def test_a_task_the_ledger_has_no_keys_for_is_not_reconciled(
    infra: Infra, table: str, queue: str, quiet_logs: io.StringIO
) -> None:
    task = f"arn:aws:ecs:{REGION}:123456789012:task/{infra.cluster}/0123456789abcdef"
    response = reconcile(infra, table, queue, stopped(infra, task))
    assert response["tasks"] == [
        {"task_arn": task, "rerun": [], "requeued": [], "failed": [], "errors": []}
    ]
    assert "task reconciled" not in logged_messages(quiet_logs)
