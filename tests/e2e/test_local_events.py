"""What the embedded AWS adds to moto for events: the "ECS Task State Change" events the local
task runner puts on the default bus (delivered by moto's EventBridge to a rule's SQS target), and
Lambda's pollers for SQS event source mappings (batches, ReportBatchItemFailures).

No deployment: rules, queues, functions and mappings made with the AWS APIs, as a user would.
"""

from __future__ import annotations

import io
import json
import sys
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from local_aws.emulator import LocalAws, local_aws
from local_aws.memory_limit import OOM_REASON

from .python_tasks import ALLOCATE_20_MIB, ALLOCATE_400_MIB, describe, run_python

STOPPED_PATTERN = {
    "source": ["aws.ecs"],
    "detail-type": ["ECS Task State Change"],
    "detail": {"lastStatus": ["STOPPED"]},
}


@pytest.fixture(scope="module")
def module_env() -> Iterator[LocalAws]:
    with local_aws(stop_grace_seconds=1.0, batch_window_cap=0.3) as running:
        yield running


@pytest.fixture
def env(module_env: LocalAws) -> LocalAws:
    module_env.reset()
    return module_env


def _queue(env: LocalAws, name: str) -> tuple[str, str]:
    sqs = env.aws.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, arn["QueueArn"]


def _rule_to_queue(env: LocalAws, pattern: dict[str, Any], queue_name: str) -> str:
    url, arn = _queue(env, queue_name)
    events = env.aws.client("events")
    events.put_rule(Name=queue_name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=queue_name, Targets=[{"Id": "q", "Arn": arn}])
    return url


def _received_events(env: LocalAws, url: str) -> list[dict[str, Any]]:
    messages = env.aws.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_a_stopped_task_puts_ecs_task_state_change_on_the_bus(env: LocalAws) -> None:
    url = _rule_to_queue(env, STOPPED_PATTERN, "stopped")
    task_arn = run_python(env.aws, ALLOCATE_20_MIB)
    env.wait_until_idle(timeout=60)

    (event,) = _received_events(env, url)

    task = describe(env.aws, task_arn)
    assert (event["source"], event["detail-type"]) == ("aws.ecs", "ECS Task State Change")
    assert event["resources"] == [task_arn]
    detail = event["detail"]
    assert detail["clusterArn"] == task["clusterArn"]
    assert (detail["taskArn"], detail["lastStatus"]) == (task_arn, "STOPPED")
    assert (detail["stopCode"], detail["stoppedReason"]) == (
        "EssentialContainerExited",
        "Essential container in task exited",
    )
    assert [(c["name"], c["exitCode"]) for c in detail["containers"]] == [("x", 0)]
    assert (detail["group"], detail["startedBy"]) == (task["group"], "tests")
    assert detail["createdAt"] <= detail["startedAt"] <= detail["stoppedAt"]
    assert detail["stoppedAt"].endswith("Z")


def test_an_out_of_memory_stop_names_the_cause_in_the_event(env: LocalAws) -> None:
    url = _rule_to_queue(env, STOPPED_PATTERN, "stopped")
    run_python(env.aws, ALLOCATE_400_MIB)
    env.wait_until_idle(timeout=60)

    (event,) = _received_events(env, url)

    (container,) = event["detail"]["containers"]
    assert (container["exitCode"], container["reason"]) == (137, OOM_REASON)
    assert event["detail"]["stopCode"] == "EssentialContainerExited"


def test_a_user_stop_is_user_initiated_in_the_event(env: LocalAws) -> None:
    url = _rule_to_queue(env, STOPPED_PATTERN, "stopped")
    task_arn = run_python(env.aws, "import time\ntime.sleep(60)\n")
    while not env.tasks.holds(task_arn):
        time.sleep(0.05)

    env.aws.client("ecs").stop_task(cluster="c", task=task_arn, reason="operator")
    env.wait_until_idle(timeout=30)

    (event,) = _received_events(env, url)
    assert (event["detail"]["stopCode"], event["detail"]["stoppedReason"]) == (
        "UserInitiated",
        "operator",
    )


def test_a_running_task_puts_its_running_state_on_the_bus(env: LocalAws) -> None:
    pattern = {**STOPPED_PATTERN, "detail": {"lastStatus": ["RUNNING"]}}
    url = _rule_to_queue(env, pattern, "running")
    task_arn = run_python(env.aws, ALLOCATE_20_MIB)
    env.wait_until_idle(timeout=60)

    (event,) = _received_events(env, url)

    assert (event["detail"]["taskArn"], event["detail"]["lastStatus"]) == (task_arn, "RUNNING")
    assert "stopCode" not in event["detail"]
    assert "exitCode" not in event["detail"]["containers"][0]


# --- Lambda's pollers -------------------------------------------------------------------------

# Records what it got; reports the messages whose body is "fail" as batch item failures.
HANDLER = """
import json
def handler(event, context):
    records = event["Records"]
    return {
        "bodies": [r["body"] for r in records],
        "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records
                              if r["body"] == "fail"],
    }
"""


def _function_on_queue(
    env: LocalAws, name: str, queue_arn: str, report_failures: bool, window: int = 1
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", HANDLER)
    role = env.aws.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")
    client = env.aws.client("lambda")
    client.create_function(
        FunctionName=name,
        Runtime=f"python3.{sys.version_info.minor}",
        Role=role["Role"]["Arn"],
        Handler="app.handler",
        Code={"ZipFile": buffer.getvalue()},
        Timeout=30,
    )
    client.create_event_source_mapping(
        FunctionName=name,
        EventSourceArn=queue_arn,
        BatchSize=100,
        MaximumBatchingWindowInSeconds=window,
        FunctionResponseTypes=["ReportBatchItemFailures"] if report_failures else [],
    )


def _invocations(env: LocalAws, name: str) -> list[dict[str, Any]]:
    return [json.loads(i.result) for i in env.invocations if i.function_name == name]


def _send(env: LocalAws, url: str, bodies: list[str]) -> None:
    """In one call, so that they are queued together whatever the batching window."""
    entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies)]
    env.aws.client("sqs").send_message_batch(QueueUrl=url, Entries=entries)


def test_queued_messages_reach_each_mapped_function_in_one_batch(env: LocalAws) -> None:
    first_url, first_arn = _queue(env, "first")
    second_url, second_arn = _queue(env, "second")
    _function_on_queue(env, "one", first_arn, report_failures=True, window=5)
    _function_on_queue(env, "two", second_arn, report_failures=True, window=5)
    time.sleep(1.0)  # the pollers find new mappings every 0.5 s

    _send(env, first_url, ["a", "b", "c"])
    _send(env, second_url, ["d", "e"])
    env.wait_until_idle(timeout=60)

    assert [sorted(i["bodies"]) for i in _invocations(env, "one")] == [["a", "b", "c"]]
    assert [sorted(i["bodies"]) for i in _invocations(env, "two")] == [["d", "e"]]


def _left_in_queue(env: LocalAws, url: str) -> int:
    attributes = env.aws.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def test_batch_item_failures_stay_in_the_queue_and_the_rest_is_deleted(env: LocalAws) -> None:
    url, arn = _queue(env, "q")
    _function_on_queue(env, "f", arn, report_failures=True)
    time.sleep(1.0)

    _send(env, url, ["ok", "fail", "ok"])
    env.wait_until_idle(timeout=60)

    assert _left_in_queue(env, url) == 1


def test_without_report_batch_item_failures_a_returned_batch_is_all_deleted(
    env: LocalAws,
) -> None:
    url, arn = _queue(env, "q")
    _function_on_queue(env, "f", arn, report_failures=False)
    time.sleep(1.0)

    _send(env, url, ["ok", "fail"])
    env.wait_until_idle(timeout=60)

    assert _left_in_queue(env, url) == 0


def test_a_stopped_tasks_event_reaches_a_function_through_rule_queue_and_mapping(
    env: LocalAws,
) -> None:
    url = _rule_to_queue(env, STOPPED_PATTERN, "reconcile")
    arn = env.aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    _function_on_queue(env, "reconcile", arn["Attributes"]["QueueArn"], report_failures=True)
    time.sleep(1.0)

    task_arn = run_python(env.aws, ALLOCATE_20_MIB)
    env.wait_until_idle(timeout=60)

    (invocation,) = _invocations(env, "reconcile")
    (body,) = invocation["bodies"]
    assert json.loads(body)["detail"]["taskArn"] == task_arn
