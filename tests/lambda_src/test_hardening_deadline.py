"""Issue #8 item 8: no RunTask starts near the Lambda's deadline; the rest is reported."""

from __future__ import annotations

from typing import Any

import pytest
from iiif_process_ecs.launcher import LAUNCH_MARGIN_SECONDS, SLOW_CALL_FACTOR
from iiif_process_ecs.service import TasksNotStarted

from tests.lambda_src.conftest import Infra
from tests.lambda_src.test_ecs_trigger_handler import FakeClock, FlakyEcs, ecs_client, run
from tests.lambda_src.test_ecs_trigger_sqs import batch, s3_message

KEYS = [f"k{index}.jpg" for index in range(10)]


class SlowEcs(FlakyEcs):
    """The moto ECS client, but every RunTask takes ``seconds`` of the fake Lambda clock."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        super().__init__()
        self.clock = clock
        self.seconds = seconds
        self.left_at_call: list[float] = []

    def run_task(self, **kwargs: Any) -> dict[str, Any]:
        self.left_at_call.append(self.clock.remaining)
        self.clock.remaining -= self.seconds
        return super().run_task(**kwargs)


def test_margin_is_ten_seconds_or_three_slowest_calls() -> None:
    assert (LAUNCH_MARGIN_SECONDS, SLOW_CALL_FACTOR) == (10.0, 3.0)


def test_slow_run_task_stops_an_sqs_batch_before_the_deadline(infra: Infra) -> None:
    clock = FakeClock(remaining=30.0)
    ecs = SlowEcs(clock, seconds=4.0)
    event = batch(*(s3_message(f"m{index}", key) for index, key in enumerate(KEYS)))
    response = run(infra, event, ecs=ecs, clock=clock, IIIF_PROCESS_MAX_URIS_PER_TASK="1")
    # Started at 30 s left (floor 10 s), then 26, 22, 18, 14 >= 3 x 4 s; at 10 s left it stops.
    assert ecs.left_at_call == [30.0, 26.0, 22.0, 18.0, 14.0]
    assert clock.remaining >= 0
    launched = sorted(entry["uri"] for entry in response["launched"])
    assert launched == sorted(KEYS)[:5]
    not_started = [entry for entry in response["failed"] if entry["uri"] not in launched]
    assert len(not_started) == 5
    assert all(entry["reason"].startswith("not started: 10.0 s left") for entry in not_started)
    # The keys not started go back to the queue: their messages, and only theirs.
    expected = {f"m{KEYS.index(entry['uri'])}" for entry in not_started}
    assert {item["itemIdentifier"] for item in response["batchItemFailures"]} == expected
    assert len(ecs_client().list_tasks(cluster=infra.cluster)["taskArns"]) == 5


def test_slow_run_task_near_the_deadline_raises_tasks_not_started(infra: Infra) -> None:
    clock = FakeClock(remaining=30.0)
    ecs = SlowEcs(clock, seconds=4.0)
    with pytest.raises(TasksNotStarted) as raised:
        run(infra, {"uris": KEYS}, ecs=ecs, clock=clock, IIIF_PROCESS_MAX_URIS_PER_TASK="1")
    outcome = raised.value.outcome
    assert len(outcome.launched) == 5
    assert len(outcome.aws_failed) == 5
    assert len(ecs.calls) == 5


def test_no_run_task_starts_with_less_than_the_margin_left(infra: Infra) -> None:
    clock = FakeClock(remaining=LAUNCH_MARGIN_SECONDS + 0.5)
    ecs = SlowEcs(clock, seconds=0.25)
    with pytest.raises(TasksNotStarted):
        run(infra, {"uris": KEYS}, ecs=ecs, clock=clock, IIIF_PROCESS_MAX_URIS_PER_TASK="1")
    # 10.5, 10.25 and 10.0 s left: started; 9.75 s is under the 10 s floor.
    assert ecs.left_at_call == [10.5, 10.25, 10.0]
