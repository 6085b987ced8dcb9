"""The Lambda handler under moto: event shapes to tasks, retries, partial success, duplicates.

moto cannot produce throttling or capacity failures, nor does it honour clientToken: throttling is
answered at botocore's HTTP hook (so botocore's own retries run), capacity failures by wrapping
the moto client (FlakyEcs), and idempotency is checked on the token sent.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff
from iiif_process_ecs.clients import MAX_ATTEMPTS, new_session
from iiif_process_ecs.launcher import LAUNCH_MARGIN_SECONDS
from iiif_process_ecs.service import TasksNotStarted, handle_event
from iiif_process_ecs.settings import SettingsError

from tests.lambda_src.conftest import (
    REGION,
    Infra,
    command_of,
    load_handler_module,
    s3_record,
    uris_of,
)


class FakeClock:
    """Lambda time that passes only when the code sleeps."""

    def __init__(self, remaining: float = 300.0) -> None:
        self.remaining = remaining
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.remaining -= seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining * 1000)


class FlakyEcs:
    """The moto ECS client, except that the first run_task calls follow a script.

    A script step is an exception to raise, a response dict to return, or None (use moto).
    """

    def __init__(self, script: list[Any] | None = None) -> None:
        self.real = boto3.client("ecs", region_name=REGION)
        self.script = list(script or [])
        self.calls: list[dict[str, Any]] = []

    def run_task(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, Exception):
                raise step
            if step is not None:
                return step
        return self.real.run_task(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


CAPACITY = {
    "tasks": [],
    "failures": [
        {
            "arn": "",
            "reason": "Capacity is unavailable at this time. Please try again later or in a "
            "different availability zone",
        }
    ],
}


def run(
    infra: Infra, event: Any, ecs: Any = None, clock: FakeClock | None = None, **env: str
) -> dict[str, Any]:
    clock = clock or FakeClock()
    return handle_event(
        event,
        clock,
        environ=infra.environ(**env),
        ecs=ecs or FlakyEcs(),
        sleep=clock.sleep,
        rand=lambda: 1.0,
    )


def ecs_client() -> Any:
    return boto3.client("ecs", region_name=REGION)


def test_real_handler_entry_point_starts_a_task(
    infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in infra.environ().items():
        monkeypatch.setenv(name, value)
    module = load_handler_module()
    response = module.handler({"Records": [s3_record("red+flower.jpg")]}, FakeClock())
    assert json.loads(json.dumps(response)) == response
    assert response["launched"][0]["uri"] == "red flower.jpg"
    assert response["tasks"] == [response["launched"][0]["task_arn"]]


def test_encoded_s3_keys_reach_the_container_decoded(infra: Infra) -> None:
    event = {"Records": [s3_record(k) for k in ("red+flower.jpg", "caf%C3%A9.jpg", "a%2Bb.jpg")]}
    response = run(infra, event)
    assert {e["uri"] for e in response["launched"]} == {"red flower.jpg", "café.jpg", "a+b.jpg"}
    command = command_of(ecs_client(), infra.cluster, response["tasks"][0])
    assert sorted(uris_of(command)) == ["a+b.jpg", "café.jpg", "red flower.jpg"]
    assert command[:5] == [
        "/bin/iiif-process",
        "-config",
        "/etc/go-iiif/config.json",
        "-instructions",
        "/etc/go-iiif/instructions.json",
    ]


def test_task_is_started_as_the_contract_says(infra: Infra) -> None:
    ecs = FlakyEcs()
    run(
        infra,
        {"uris": ["a.jpg"]},
        ecs=ecs,
        IIIF_PROCESS_REPORT="true",
        IIIF_PROCESS_REPORT_NAME="r.json",
    )
    call = ecs.calls[0]
    assert call["count"] == 1
    assert call["startedBy"] == "iiif-process-ecs"
    assert call["launchType"] == "FARGATE"
    assert call["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": [infra.subnet],
        "securityGroups": [infra.security_group],
        "assignPublicIp": "ENABLED",
    }
    assert call["overrides"]["containerOverrides"][0]["command"][5:] == [
        "-report",
        "-report-name",
        "r.json",
        "-uri",
        "a.jpg",
    ]
    assert len(call["clientToken"]) <= 64


def test_seed_invoke_payload_starts_a_task(infra: Infra) -> None:
    response = run(infra, {"Records": [{"s3": {"object": {"key": "a+b.jpg"}}}]})
    assert [e["uri"] for e in response["launched"]] == ["a+b.jpg"]


def test_direct_uris_start_a_task(infra: Infra) -> None:
    response = run(infra, {"uris": ["a.jpg", "dir/b.tif"]})
    assert len(response["tasks"]) == 1
    assert uris_of(command_of(ecs_client(), infra.cluster, response["tasks"][0])) == [
        "a.jpg",
        "dir/b.tif",
    ]


def test_eventbridge_event_starts_a_task(infra: Infra) -> None:
    event = {
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {
            "bucket": {"name": "iiif-source"},
            "object": {"key": "red flower.jpg", "size": 9},
        },
    }
    response = run(infra, event, IIIF_PROCESS_SOURCE_BUCKET="iiif-source")
    assert [e["uri"] for e in response["launched"]] == ["red flower.jpg"]


def test_s3_test_event_starts_nothing(infra: Infra) -> None:
    ecs = FlakyEcs()
    response = run(
        infra, {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "iiif-source"}, ecs=ecs
    )
    assert response == {"launched": [], "skipped": [], "failed": [], "tasks": []}
    assert ecs.calls == []


def test_bad_records_end_skipped_or_failed_and_the_good_one_starts(infra: Infra) -> None:
    event = {
        "Records": [
            s3_record("good.jpg"),
            s3_record("..%2Fsecret.jpg"),
            s3_record("folder/", size=0),
            s3_record("empty.jpg", size=0),
            s3_record("notes.txt"),
            s3_record("x.jpg", bucket="elsewhere"),
        ]
    }
    response = run(infra, event, IIIF_PROCESS_SOURCE_BUCKET="iiif-source")
    assert [e["uri"] for e in response["launched"]] == ["good.jpg"]
    assert sorted(e["uri"] for e in response["skipped"]) == ["empty.jpg", "folder/", "notes.txt"]
    assert sorted(e["uri"] for e in response["failed"]) == ["../secret.jpg", "x.jpg"]
    assert all(e["reason"] for e in response["skipped"] + response["failed"])


def test_duplicate_records_in_one_event_start_one_task(infra: Infra) -> None:
    record = s3_record("a.jpg")
    response = run(infra, {"Records": [record, record]})
    assert [e["uri"] for e in response["launched"]] == ["a.jpg"]
    listed = ecs_client().list_tasks(cluster=infra.cluster, startedBy="iiif-process-ecs")[
        "taskArns"
    ]
    assert listed == response["tasks"]


def test_same_event_twice_sends_the_same_client_token(infra: Infra) -> None:
    # AWS returns the first call's task for a repeated token; moto ignores the token, so the
    # test checks what is sent.
    event = {"Records": [s3_record("b.jpg"), s3_record("a.jpg")]}
    reordered = {"Records": list(reversed(event["Records"]))}
    first, second = FlakyEcs(), FlakyEcs()
    run(infra, event, ecs=first)
    run(infra, reordered, ecs=second)
    assert [c["clientToken"] for c in first.calls] == [c["clientToken"] for c in second.calls]


def test_a_new_upload_of_the_same_key_gets_a_new_token(infra: Infra) -> None:
    first, second = FlakyEcs(), FlakyEcs()
    run(infra, {"Records": [s3_record("a.jpg", sequencer="01")]}, ecs=first)
    run(infra, {"Records": [s3_record("a.jpg", sequencer="02")]}, ecs=second)
    assert first.calls[0]["clientToken"] != second.calls[0]["clientToken"]


class _Body:
    """The raw body of a canned HTTP response."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data

    def read(self, *_: Any, **__: Any) -> bytes:
        return self.data


def throttling_ecs(monkeypatch: pytest.MonkeyPatch, throttles: int) -> tuple[Any, list[int]]:
    """A real ECS client of :func:`new_session` (against moto) whose first ``throttles`` RunTask
    HTTP requests are answered 400 ThrottlingException, so botocore's own retry logic runs;
    returns the client and the list of request numbers sent."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    ecs = new_session(region_name=REGION).client("ecs")
    sent: list[int] = []

    def answer(**_: Any) -> AWSResponse | None:
        sent.append(len(sent) + 1)
        if len(sent) > throttles:
            return None
        body = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
        headers = {"Content-Type": "application/x-amz-json-1.1"}
        return AWSResponse("https://ecs", 400, headers, _Body(body))

    ecs.meta.events.register("before-send.ecs.RunTask", answer)
    return ecs, sent


def test_throttling_is_retried_by_botocore_without_our_loop(
    infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    (ecs, sent), clock = throttling_ecs(monkeypatch, throttles=2), FakeClock()
    response = run(infra, {"uris": ["a.jpg"]}, ecs=ecs, clock=clock)
    assert len(response["launched"]) == 1
    assert (len(sent), clock.sleeps) == (3, [])


def test_throttling_beyond_botocores_attempts_is_not_retried_again(
    infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    (ecs, sent), clock = throttling_ecs(monkeypatch, throttles=100), FakeClock()
    with pytest.raises(TasksNotStarted, match="ThrottlingException"):
        run(infra, {"uris": ["a.jpg"]}, ecs=ecs, clock=clock)
    assert (len(sent), clock.sleeps) == (MAX_ATTEMPTS, [])


def test_capacity_failures_are_retried_with_backoff(infra: Infra) -> None:
    ecs, clock = FlakyEcs([CAPACITY, CAPACITY]), FakeClock()
    run(infra, {"uris": ["a.jpg"]}, ecs=ecs, clock=clock)
    assert clock.sleeps == [1.0, 2.0]
    assert len({c["clientToken"] for c in ecs.calls}) == 1


def test_capacity_failure_is_retried(infra: Infra) -> None:
    ecs = FlakyEcs([CAPACITY, CAPACITY])
    response = run(infra, {"uris": ["a.jpg"]}, ecs=ecs)
    assert len(response["launched"]) == 1
    assert len(ecs.calls) == 3


def test_configuration_error_is_not_retried_and_fails_the_invocation(infra: Infra) -> None:
    ecs, clock = FlakyEcs(), FakeClock()
    with pytest.raises(TasksNotStarted, match="ClusterNotFoundException") as raised:
        run(
            infra, {"uris": ["a.jpg"]}, ecs=ecs, clock=clock, IIIF_PROCESS_CLUSTER="no-such-cluster"
        )
    assert len(ecs.calls) == 1
    assert clock.sleeps == []
    assert raised.value.outcome.failed[0]["uri"] == "a.jpg"


def test_retries_stop_inside_the_lambda_time(infra: Infra) -> None:
    ecs, clock = FlakyEcs([CAPACITY] * 50), FakeClock(remaining=12.0)
    with pytest.raises(TasksNotStarted, match="Capacity is unavailable"):
        run(infra, {"uris": ["a.jpg"]}, ecs=ecs, clock=clock)
    assert clock.remaining >= LAUNCH_MARGIN_SECONDS  # the margin is never slept away
    assert len(ecs.calls) < 50


def test_partial_success_raises_and_a_retry_repeats_the_started_batch_token(infra: Infra) -> None:
    event = {"uris": ["a.jpg", "b.jpg"]}
    first = FlakyEcs([None] + [CAPACITY] * 20)
    with pytest.raises(TasksNotStarted) as raised:
        run(infra, event, ecs=first, IIIF_PROCESS_MAX_URIS_PER_TASK="1")
    outcome = raised.value.outcome
    assert [e["uri"] for e in outcome.launched] == ["a.jpg"]
    assert [e["uri"] for e in outcome.failed] == ["b.jpg"]
    assert len(ecs_client().list_tasks(cluster=infra.cluster)["taskArns"]) == 1

    retry = FlakyEcs()
    response = run(infra, event, ecs=retry, IIIF_PROCESS_MAX_URIS_PER_TASK="1")
    assert len(response["launched"]) == 2
    # Same token for a.jpg's batch: AWS answers with the task it already started.
    assert retry.calls[0]["clientToken"] == first.calls[0]["clientToken"]


def test_conflict_with_resource_ids_counts_as_launched(infra: Infra) -> None:
    arn = f"arn:aws:ecs:{REGION}:123456789012:task/iiif/0123456789abcdef"
    conflict = ClientError(
        {"Error": {"Code": "ConflictException", "Message": "token in use"}, "resourceIds": [arn]},
        "RunTask",
    )
    response = run(infra, {"uris": ["a.jpg"]}, ecs=FlakyEcs([conflict]))
    assert response["launched"] == [{"uri": "a.jpg", "task_arn": arn}]


def test_strip_paths_passes_file_names_and_refuses_collisions(infra: Infra) -> None:
    response = run(
        infra, {"uris": ["a/x.jpg", "b/x.jpg", "c/y.jpg"]}, IIIF_PROCESS_STRIP_PATHS="true"
    )
    assert [e["uri"] for e in response["launched"]] == ["c/y.jpg"]
    assert sorted(e["uri"] for e in response["failed"]) == ["a/x.jpg", "b/x.jpg"]
    assert uris_of(command_of(ecs_client(), infra.cluster, response["tasks"][0])) == ["y.jpg"]


def test_missing_variable_is_named(infra: Infra) -> None:
    environ = infra.environ()
    del environ["IIIF_PROCESS_SECURITY_GROUP"]
    with pytest.raises(SettingsError, match="IIIF_PROCESS_SECURITY_GROUP"):
        handle_event({"uris": ["a.jpg"]}, None, environ=environ, ecs=FlakyEcs())


def test_logs_are_json_lines_with_uris_and_tasks(infra: Infra, quiet_logs: Any) -> None:
    response = run(infra, {"uris": ["a.jpg"]})
    records = [json.loads(line) for line in quiet_logs.getvalue().splitlines()]
    started = [r for r in records if r["message"] == "task started"]
    assert started[0]["task_arn"] == response["tasks"][0]
    assert started[0]["uris"] == ["a.jpg"]
