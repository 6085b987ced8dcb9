"""The trigger's claims on a bounded thread pool (claims.py, ledger.concurrently), and the
deadline rule that returns the keys it had no time for (issue #10)."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest
from iiif_process_ecs.claims import CLAIM_WORKERS, claim_keys, claim_margin
from iiif_process_ecs.events import ObjectRecord
from iiif_process_ecs.launcher import LAUNCH_MARGIN_SECONDS
from iiif_process_ecs.ledger import Ledger, concurrently
from iiif_process_ecs.service import handle_event
from iiif_process_ecs.settings import Settings

from tests.lambda_src.conftest import Infra
from tests.lambda_src.ledger_support import create_ledger_table, dynamodb, item_of
from tests.lambda_src.test_ecs_trigger_handler import FakeClock, FlakyEcs
from tests.lambda_src.test_ecs_trigger_sqs import batch, s3_message
from tests.lambda_src.test_ledger_trigger import run


@pytest.fixture
def table(aws: None) -> str:
    return create_ledger_table()


def records(count: int) -> list[ObjectRecord]:
    return [
        ObjectRecord(key=f"k/{i:05d}.jpg", source="sqs", size=10, etag="e") for i in range(count)
    ]


def settings() -> Settings:
    return Settings(
        cluster="c", task_definition="t", container="x", subnets=("s",), security_groups=("g",)
    )


class InFlight:
    """The moto DynamoDB client; UpdateItem takes ``delay`` seconds and the most calls in
    flight at once are counted."""

    def __init__(self, delay: float = 0.02) -> None:
        self.real = dynamodb()
        self.delay = delay
        self.now = 0
        self.most = 0
        self.lock = threading.Lock()

    def update_item(self, **kwargs: Any) -> Any:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(self.delay)
            return self.real.update_item(**kwargs)
        finally:
            with self.lock:
                self.now -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_every_key_of_a_large_batch_is_claimed_and_launched(infra: Infra, table: str) -> None:
    """100 messages of 10 keys in one invocation: all 1000 claimed, started and recorded."""
    event = batch(
        *(s3_message(f"m{m}", *(f"big/{m:03d}-{k}.jpg" for k in range(10))) for m in range(100))
    )
    response = run(infra, table, event)
    assert response["batchItemFailures"] == []
    assert len(response["launched"]) == 1000
    recorded = dynamodb().scan(
        TableName=table, Select="COUNT", FilterExpression="attribute_exists(task_arn)"
    )
    assert recorded["Count"] == 1000


def test_claims_run_concurrently_at_most_claim_workers_at_once(table: str) -> None:
    client = InFlight()
    plan = claim_keys(records(64), ledger=Ledger(table, client), settings=settings(), s3=None)
    assert len(plan.claimed) == 64
    assert 1 < client.most <= CLAIM_WORKERS


def test_two_workers_run_two_items_at_once() -> None:
    both_in_flight = threading.Barrier(2, timeout=10)

    def work(item: int) -> int:
        both_in_flight.wait()  # breaks (and raises) unless the other item runs meanwhile
        return item * 10

    assert concurrently(work, [1, 2], workers=2) == [10, 20]


def test_claims_stop_at_the_deadline_and_return_the_rest(table: str) -> None:
    """With 100 s left at first the margin is 20 s; it is reached after 30 claims: those 30 are
    claimed, the other 70 go back to the queue (aws_failed) with the reason, and have no item."""
    asked = itertools.count()

    def remaining() -> float:
        # The first answer is claim_keys' start, then one per claim.
        return 100.0 if next(asked) <= 30 else 19.9

    plan = claim_keys(
        records(100),
        ledger=Ledger(table, dynamodb()),
        settings=settings(),
        s3=None,
        remaining_seconds=remaining,
    )
    assert (len(plan.claimed), len(plan.aws_failed)) == (30, 70)
    assert all(
        e["reason"].startswith("not claimed: 19.9 s left in this invocation, under the 20 s")
        for e in plan.aws_failed
    )
    assert [item_of(table, e["uri"]) for e in plan.aws_failed] == [None] * 70


def test_an_invocation_without_time_to_claim_returns_every_message(
    infra: Infra, table: str
) -> None:
    event = batch(s3_message("m1", "a.jpg"), s3_message("m2", "b.jpg", "c.jpg"))
    clock = FakeClock(remaining=LAUNCH_MARGIN_SECONDS - 0.5)
    response = handle_event(
        event,
        clock,
        environ=infra.environ(
            IIIF_PROCESS_LEDGER_TABLE=table, IIIF_PROCESS_SOURCE_BUCKET=infra.source_bucket
        ),
        ecs=FlakyEcs(),
        sleep=clock.sleep,
        rand=lambda: 0.0,
        dynamodb=dynamodb(),
    )
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == ["m1", "m2"]
    assert response["launched"] == []
    assert item_of(table, "a.jpg") is None


@pytest.mark.parametrize(
    ("at_start", "margin"), [(59.0, 20.0), (100.0, 20.0), (15.0, 12.5), (11.0, 10.5), (9.0, 10.0)]
)
def test_the_claim_margin_leaves_short_timeouts_time_to_claim(
    at_start: float, margin: float
) -> None:
    assert claim_margin(at_start) == margin


# -- concurrently -------------------------------------------------------------------------------


def test_concurrently_keeps_the_order_of_the_items() -> None:
    assert concurrently(lambda n: n * n, list(range(50)), workers=8) == [n * n for n in range(50)]


def test_concurrently_starts_nothing_once_proceed_says_no() -> None:
    started: list[int] = []
    asked = itertools.count()

    def work(n: int) -> int:
        started.append(n)
        return n

    results = concurrently(work, list(range(20)), workers=4, proceed=lambda: next(asked) < 5)
    assert len(started) == 5
    assert sum(r is not None for r in results) == 5


def test_concurrently_raises_the_first_error_after_the_calls_in_flight() -> None:
    def work(n: int) -> int:
        if n == 3:
            raise ValueError("item 3")
        return n

    with pytest.raises(ValueError, match="item 3"):
        concurrently(work, list(range(10)), workers=4)


def test_a_claim_still_starts_with_exactly_the_margin_left(table: str) -> None:
    asked = itertools.count()

    def remaining() -> float:
        # 100 s at claim_keys' start makes the margin 20 s; every claim then sees exactly 20 s.
        return 100.0 if next(asked) == 0 else 20.0

    plan = claim_keys(
        records(3),
        ledger=Ledger(table, dynamodb()),
        settings=settings(),
        s3=None,
        remaining_seconds=remaining,
    )
    assert (len(plan.claimed), plan.aws_failed) == (3, [])


@pytest.mark.parametrize("workers", [1, 4])
def test_an_exception_in_the_work_is_raised_to_the_caller(workers: int) -> None:
    def work(item: int) -> int:
        if item == 2:
            raise ValueError("item 2 failed")
        return item

    with pytest.raises(ValueError, match="item 2 failed"):
        concurrently(work, [1, 2, 3], workers=workers)
