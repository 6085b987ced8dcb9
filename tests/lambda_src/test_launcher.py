"""RunTask's retry loop, pinned where a mutation run found it loose: which failures are retried,
the backoff's numbers, the attempt limit and the deadline's boundary."""

from __future__ import annotations

import pytest
from botocore.exceptions import EndpointConnectionError
from iiif_process_ecs.launcher import LAUNCH_MARGIN_SECONDS, Backoff, is_retryable_failure_reason
from iiif_process_ecs.service import TasksNotStarted

from tests.lambda_src.conftest import Infra
from tests.lambda_src.test_ecs_trigger_handler import CAPACITY, FakeClock, FlakyEcs, run


@pytest.mark.parametrize(
    ("reason", "retryable"),
    [
        ("AGENT", True),
        ("RESOURCE:MEMORY", True),
        ("Capacity is unavailable at this time", True),
        ("MISSING", False),
        ("AGENTS", False),
    ],
)
def test_which_failures_reasons_mean_no_capacity_now(reason: str, retryable: bool) -> None:
    assert is_retryable_failure_reason(reason) is retryable


def test_the_backoff_doubles_from_half_a_second_up_to_eight() -> None:
    delays = [Backoff().delay(attempt, lambda: 1.0) for attempt in range(1, 6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_capacity_failures_are_tried_eight_times_at_most(infra: Infra) -> None:
    ecs, clock = FlakyEcs([CAPACITY] * 20), FakeClock(remaining=900.0)
    with pytest.raises(TasksNotStarted, match="Capacity is unavailable"):
        run(infra, {"uris": ["a.jpg"]}, ecs=ecs, clock=clock)
    assert len(ecs.calls) == 8


def test_a_retry_may_sleep_down_to_the_margin_exactly(infra: Infra) -> None:
    # The first retry's delay is 1.0 s (rand = 1): from margin + 1.0 s it leaves the margin
    # exactly, which is allowed; the second (2.0 s) would not be.
    ecs, clock = FlakyEcs([CAPACITY] * 5), FakeClock(remaining=LAUNCH_MARGIN_SECONDS + 1.0)
    with pytest.raises(TasksNotStarted):
        run(infra, {"uris": ["a.jpg"]}, ecs=ecs, clock=clock)
    assert (len(ecs.calls), clock.sleeps) == (2, [1.0])


def test_a_connection_error_botocore_gave_up_on_is_not_retried_again(infra: Infra) -> None:
    error = EndpointConnectionError(endpoint_url="https://ecs.eu-west-1.amazonaws.com")
    ecs, clock = FlakyEcs([error]), FakeClock()
    with pytest.raises(TasksNotStarted, match="EndpointConnectionError"):
        run(infra, {"uris": ["a.jpg"]}, ecs=ecs, clock=clock)
    assert (len(ecs.calls), clock.sleeps) == (1, [])


def test_an_answer_with_neither_tasks_nor_failures_is_tried_again(infra: Infra) -> None:
    ecs = FlakyEcs([{"tasks": [], "failures": []}])
    response = run(infra, {"uris": ["a.jpg"]}, ecs=ecs)
    assert (len(response["launched"]), len(ecs.calls)) == (1, 2)
