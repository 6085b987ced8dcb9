"""backfill_mode.py: the flags ``-mode backfill`` checks, what it passes on, and Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import signal
import threading

import boto3
import pytest
from iiif_process_ecs.backfill import StopRequest
from iiif_process_ecs.backfill_mode import stop_on_ctrl_c
from iiif_process_ecs.progress import Progress

from tests.lambda_src.backfill_support import Place, new_place, put_objects, queued_keys
from tests.lambda_src.conftest import REGION, Infra
from tests.lambda_src.ledger_support import item_of
from tests.lambda_src.test_backfill import cli, keys


@pytest.fixture
def place(infra: Infra) -> Place:
    return new_place(infra)


def test_one_uri_per_task_is_allowed(place: Place) -> None:
    put_objects(place.bucket, keys(3))
    status, out, _ = cli(["-stack", place.stack, "-dry-run", "-json", "-max-uris-per-task", "1"])
    assert (status, json.loads(out)["tasks"]) == (0, 3)


def test_zero_uris_per_task_is_a_usage_error(place: Place) -> None:
    status, _, err = cli(["-stack", place.stack, "-dry-run", "-max-uris-per-task", "0"])
    assert (status, "-max-uris-per-task must be at least 1" in err) == (2, True)


def test_no_source_size_limit_is_allowed(place: Place) -> None:
    put_objects(place.bucket, keys(2))
    status, out, _ = cli(["-stack", place.stack, "-dry-run", "-json", "-max-source-bytes", "0"])
    assert (status, json.loads(out)["queued"]) == (0, 2)


def test_a_negative_source_size_limit_is_a_usage_error(place: Place) -> None:
    status, _, err = cli(["-stack", place.stack, "-dry-run", "-max-source-bytes", "-1"])
    assert (status, "-max-source-bytes must be 0 (no limit) or more" in err) == (2, True)


def test_a_dry_run_needs_no_event_queue(place: Place) -> None:
    put_objects(place.bucket, keys(2))
    status, out, _ = cli(
        [
            "-dry-run",
            "-json",
            "-source-bucket",
            place.bucket,
            "-ledger-table",
            place.table,
            "-task",
            task_of(place),
            "-container",
            "iiif-process",
        ]
    )
    assert (status, json.loads(out)["queued"]) == (0, 2)


def task_of(place: Place) -> str:
    """The task definition the place's stack names."""
    outputs = boto3.client("cloudformation", region_name=REGION).describe_stacks(
        StackName=place.stack
    )["Stacks"][0]["Outputs"]
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == "TaskDefinitionArn")


def test_with_start_after_the_total_and_time_left_are_unknown(place: Place) -> None:
    put_objects(place.bucket, keys(1200))
    _, _, err = cli(["-stack", place.stack, "-dry-run", "-json", "-start-after", "img/"])
    first = next(line for line in err.splitlines() if line.startswith("backfill: "))
    assert first.startswith("backfill: 1,000 listed")


def test_queued_records_name_the_sessions_region(place: Place) -> None:
    put_objects(place.bucket, keys(1))
    cli(["-stack", place.stack], environ={"AWS_REGION": REGION})
    sqs = boto3.client("sqs", region_name=REGION)
    (message,) = sqs.receive_message(QueueUrl=place.queue)["Messages"]
    assert json.loads(message["Body"])["Records"][0]["awsRegion"] == REGION


def test_queued_keys_carry_the_task_definitions_recipe(place: Place) -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    arn = ecs.register_task_definition(
        family="backfill-recipe",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="1024",
        memory="2048",
        containerDefinitions=[
            {
                "name": "iiif-process",
                "image": "example/x",
                "memory": 512,
                "environment": [{"name": "IIIF_PROCESS_RECIPE", "value": "recipe-7"}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    put_objects(place.bucket, keys(1))
    cli(["-stack", place.stack, "-task", arn])
    assert (item_of(place.table, "img/00000.jpg") or {}).get("recipe") == "recipe-7"


def test_a_key_that_could_not_be_queued_exits_1(place: Place) -> None:
    put_objects(place.bucket, keys(1))
    # The CLI makes its own clients: the queue is gone, so SendMessageBatch fails.
    boto3.client("sqs", region_name=REGION).delete_queue(QueueUrl=place.queue)
    status, _, err = cli(["-stack", place.stack])
    assert (status, "failed: img/00000.jpg: not queued: SendMessageBatch failed" in err) == (
        1,
        True,
    )


def test_a_run_with_nothing_to_queue_exits_0(place: Place) -> None:
    status, _, _ = cli(["-stack", place.stack])
    assert (status, queued_keys(place.queue)) == (0, [])


def test_the_first_ctrl_c_asks_to_stop_and_the_second_stops_at_once() -> None:
    stop = StopRequest()
    with stop_on_ctrl_c(stop, Progress(io.StringIO(), tty=False)):
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested is True
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)


def test_the_previous_sigint_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    with stop_on_ctrl_c(StopRequest(), Progress(io.StringIO(), tty=False)):
        pass
    assert signal.getsignal(signal.SIGINT) is before


def test_outside_the_main_thread_ctrl_c_is_left_alone() -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with stop_on_ctrl_c(StopRequest(), Progress(io.StringIO(), tty=False)):
                pass
        except BaseException as error:
            errors.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert errors == []
