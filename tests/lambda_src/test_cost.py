"""Cost per run (issue #10): Fargate billed seconds, S3 PUTs, Lambda and SQS at list prices."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from iiif_process_ecs.cost import (
    PriceError,
    TaskSize,
    Usage,
    billed_seconds,
    cost_of,
    estimate_backfill,
    parse_price_overrides,
    prices_for,
    seconds_per_image,
    task_size_of,
    tile_puts_per_image,
)
from iiif_process_ecs.ledger import Ledger, now_iso
from iiif_process_ecs.status_cost import (
    SinceError,
    TaskTime,
    cost_report,
    parse_since,
    usage_since,
)

from tests.lambda_src.conftest import REGION, Infra
from tests.lambda_src.ledger_support import create_ledger_table, dynamodb, put_item
from tests.lambda_src.test_ecs_trigger_cli import cli
from tests.lambda_src.test_status_retry import start_task

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ONE_VCPU = TaskSize(vcpu=1.0, memory_gb=2.0, architecture="X86_64")


def test_the_cost_of_a_run_matches_the_hand_worked_example() -> None:
    """Three 1 vCPU / 2 GB x86_64 tasks in us-east-1, 150 images:

    - billed seconds: A ran 30 s → 60 (one-minute minimum); B ran 125.2 s → 126 (whole
      seconds, rounded up); C ran 600 s → 600. Total 786 s: 786 vCPU-s, 1572 GB-s.
    - Fargate: 786 / 3600 * $0.04048 = $0.0088381333; 1572 / 3600 * $0.004445 = $0.0019409833
    - S3: 150 images * (9 derivatives + 1 report) = 1500 PUTs * $0.005 / 1000 = $0.0075
    - Lambda: 2 requests a task = 6 * $0.0000002 = $0.0000012, and 6 * 1 s * 0.25 GB = 1.5 GB-s
      * $0.0000166667 = $0.000025; together $0.0000262
    - SQS: 150 notifications + 5 a task (15) = 165 * $0.40 / 1,000,000 = $0.000066
    - total: $0.0183713166
    """
    usage = Usage(images=150)
    for seconds in (30, 125.2, 600):
        usage.add_task(seconds, ONE_VCPU)
    usage.s3_puts = 1500
    usage.add_lambda(6)
    usage.sqs_requests = 165
    prices, _ = prices_for("us-east-1", "X86_64")
    cost = cost_of(usage, prices)
    assert (usage.billed_task_seconds, usage.vcpu_seconds, usage.gb_seconds) == (786, 786, 1572)
    assert cost["fargate_vcpu"] == pytest.approx(0.0088381333, abs=1e-10)
    assert cost["fargate_memory"] == pytest.approx(0.0019409833, abs=1e-10)
    assert cost["s3_put"] == pytest.approx(0.0075, abs=1e-12)
    assert cost["lambda"] == pytest.approx(0.0000262, abs=1e-10)
    assert cost["sqs"] == pytest.approx(0.000066, abs=1e-12)
    assert cost["total"] == pytest.approx(0.0183713166, abs=1e-9)


def test_the_ledger_items_of_the_example_make_the_same_usage() -> None:
    """The example's 150 images as ledger items: 50 a task, 9 derivatives each; A and B timed
    by ECS (run with -report), C only by the ledger (600 s from first claim to last finish)."""
    start = NOW - timedelta(hours=1)
    items: list[dict[str, Any]] = []
    for task in ("A", "B", "C"):
        for index in range(50):
            items.append(
                {
                    "uri": f"{task}{index}.jpg",
                    "status": "succeeded",
                    "task_arn": task,
                    "derivatives": 9,
                    "started_at": now_iso(start),
                    "finished_at": now_iso(start + timedelta(seconds=600 if index == 49 else 1)),
                }
            )
    ecs_times = {"A": TaskTime(30, "ecs"), "B": TaskTime(125.2, "ecs")}
    usage, sources = usage_since(items, ecs_times, ONE_VCPU)
    assert sources == {"ecs": 2, "ledger": 1, "untimed": 0}
    assert (usage.billed_task_seconds, usage.s3_puts) == (786, 1500)
    assert (usage.lambda_requests, usage.sqs_requests) == (6, 165)


def test_a_task_run_without_report_writes_no_reports() -> None:
    items = [{"uri": "a.jpg", "status": "succeeded", "task_arn": "A", "derivatives": 9}]
    usage, _ = usage_since(items, {"A": TaskTime(70, "ecs", report=False)}, ONE_VCPU)
    assert usage.s3_puts == 9


@pytest.mark.parametrize(("ran", "billed"), [(0, 60), (59.9, 60), (60, 60), (60.01, 61), (61, 61)])
def test_billed_seconds_round_up_with_a_one_minute_minimum(ran: float, billed: int) -> None:
    assert billed_seconds(ran) == billed


def test_arm64_is_priced_from_its_own_table() -> None:
    arm, _ = prices_for("us-east-1", "ARM64")
    assert (arm.fargate_vcpu_hour, arm.fargate_gb_hour, arm.lambda_gb_second) == (
        0.03238,
        0.00356,
        0.0000133334,
    )


def test_a_region_without_a_table_says_so() -> None:
    _, note = prices_for("eu-west-1", "X86_64")
    assert note == "no price table for eu-west-1; us-east-1 list prices used"


def test_prices_can_be_overridden() -> None:
    prices, note = prices_for("us-east-1", "X86_64", "fargate_vcpu_hour=0.05, sqs_per_million=0")
    assert (prices.fargate_vcpu_hour, prices.sqs_per_million, prices.fargate_gb_hour) == (
        0.05,
        0.0,
        0.004445,
    )
    assert note.endswith("overridden: fargate_vcpu_hour, sqs_per_million")


@pytest.mark.parametrize("text", ["cpu=1", "fargate_vcpu_hour=x", "s3_put_per_1000=-1"])
def test_a_bad_price_override_is_named(text: str) -> None:
    with pytest.raises(PriceError, match=text.split("=")[0]):
        parse_price_overrides(text)


def test_task_size_comes_from_the_task_definition() -> None:
    size = task_size_of(
        {"cpu": "2048", "memory": "4096", "runtimePlatform": {"cpuArchitecture": "ARM64"}}
    )
    assert size == TaskSize(vcpu=2.0, memory_gb=4.0, architecture="ARM64")


def test_the_backfill_estimate_matches_the_hand_worked_example() -> None:
    """120 images, 50 a task, 1 vCPU / 2 GB: 1 / 2.71 = 0.369 s an image (make bench), so the
    tasks run 30 + 50 * 0.369 = 48.5 s, 48.5 s and 30 + 20 * 0.369 = 37.4 s, each billed the
    one-minute minimum: 180 s, 180 vCPU-s, 360 GB-s; 1200 PUTs; 12 messages → 1 trigger
    invocation + 3 reconcile ones = 4 Lambda requests; SQS 2 sends + 2 * 4 = 10."""
    usage = estimate_backfill(120, 50, ONE_VCPU, messages=12, sqs_send_requests=2)
    assert (usage.tasks, usage.billed_task_seconds, usage.gb_seconds) == (3, 180, 360)
    assert (usage.s3_puts, usage.lambda_requests, usage.sqs_requests) == (1200, 4, 10)


def test_with_tiles_on_the_estimate_counts_the_tile_puts() -> None:
    """The same 120 images with tiles on at 512 px: 10 + 131 tiles and sizes + info.json and
    manifest.json = 143 PUTs an image, 17,160 in all."""
    tiled = TaskSize(vcpu=1.0, memory_gb=2.0, tiles=True, tile_size=512)
    usage = estimate_backfill(120, 50, tiled, messages=12, sqs_send_requests=2)
    assert usage.s3_puts == 120 * 143


def test_tile_puts_scale_with_the_tile_size() -> None:
    # 131 * (512 / 1024)^2 = 32.75 → 33 tiles, + info.json and manifest.json.
    assert tile_puts_per_image(TaskSize(1.0, 2.0, tiles=True, tile_size=1024)) == 35
    assert tile_puts_per_image(TaskSize(1.0, 2.0, tiles=False, tile_size=1024)) == 0


def test_task_size_reads_the_tile_settings_of_the_container() -> None:
    definition = {
        "cpu": "1024",
        "memory": "2048",
        "containerDefinitions": [
            {
                "name": "iiif-process",
                "environment": [
                    {"name": "IIIF_PROCESS_TILES", "value": "true"},
                    {"name": "IIIF_PROCESS_TILE_SIZE", "value": "256"},
                ],
            }
        ],
    }
    assert task_size_of(definition) == TaskSize(1.0, 2.0, "X86_64", tiles=True, tile_size=256)


def test_status_counts_estimated_tile_puts_for_succeeded_images() -> None:
    tiled = TaskSize(vcpu=1.0, memory_gb=2.0, tiles=True, tile_size=512)
    items = [
        {"uri": "a.jpg", "status": "succeeded", "task_arn": "A", "derivatives": 9},
        {"uri": "b.jpg", "status": "failed", "task_arn": "A"},
    ]
    usage, _ = usage_since(items, {"A": TaskTime(70, "ecs", report=True)}, tiled)
    assert usage.s3_puts == 9 + 1 + 133


def test_seconds_per_image_scale_with_the_task_size() -> None:
    assert seconds_per_image(ONE_VCPU) == pytest.approx(1 / 2.71)
    assert seconds_per_image(TaskSize(2.0, 4.0)) == pytest.approx(1 / 2.71 / 1.61)
    assert seconds_per_image(TaskSize(0.5, 1.0)) == pytest.approx(2 / 2.71)


# -- -since --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", NOW - timedelta(hours=24)),
        ("90m", NOW - timedelta(minutes=90)),
        ("7d", NOW - timedelta(days=7)),
        ("2026-11-29T08:00:00Z", datetime(2026, 11, 29, 8, tzinfo=UTC)),
        ("2026-11-29T08:00:00", datetime(2026, 11, 29, 8, tzinfo=UTC)),
    ],
)
def test_since_takes_relative_and_iso_times(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


def test_a_bad_since_is_refused_with_the_forms_that_work() -> None:
    with pytest.raises(SinceError, match="24h"):
        parse_since("yesterday", NOW)


# -- -mode status ------------------------------------------------------------------------------


class StoppedTasks:
    """moto's ECS, whose DescribeTasks has no pullStartedAt/stoppedAt (a moto gap): these are
    added, as AWS reports them for a stopped task, for the tasks given."""

    def __init__(self, spans: dict[str, tuple[datetime, datetime]]) -> None:
        self.real = boto3.client("ecs", region_name=REGION)
        self.spans = spans

    def describe_tasks(self, **kwargs: Any) -> dict[str, Any]:
        response = self.real.describe_tasks(**kwargs)
        for task in response["tasks"]:
            began, ended = self.spans[task["taskArn"]]
            task.update(pullStartedAt=began, stoppedAt=ended)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_status_cost_times_known_tasks_by_ecs_and_vanished_ones_by_the_ledger(
    infra: Infra,
) -> None:
    table = create_ledger_table()
    known = start_task(infra)
    vanished = known.rsplit("/", 1)[0] + "/0123456789abcdef0123456789abcdef"
    claimed, done = NOW - timedelta(minutes=30), NOW - timedelta(minutes=20)
    for uri, arn in (("a.jpg", known), ("b.jpg", vanished)):
        put_item(
            table,
            uri=uri,
            status="succeeded",
            task_arn=arn,
            derivatives=9,
            started_at=now_iso(claimed),
            finished_at=now_iso(done),
            updated_at=now_iso(done),
        )
    put_item(
        table,
        uri="old.jpg",
        status="succeeded",
        task_arn=known,
        derivatives=9,
        finished_at=now_iso(NOW - timedelta(days=2)),
        updated_at=now_iso(NOW - timedelta(days=2)),
    )
    # Finished two days ago, touched since (updated_at is recent): not finished since.
    put_item(
        table,
        uri="touched.jpg",
        status="failed",
        task_arn=known,
        finished_at=now_iso(NOW - timedelta(days=2)),
        updated_at=now_iso(done),
    )
    ecs = StoppedTasks({known: (claimed, claimed + timedelta(seconds=90))})
    report = cost_report(
        Ledger(table, dynamodb()),
        ecs,
        cluster=infra.cluster,
        size=ONE_VCPU,
        since=NOW - timedelta(hours=1),
        now=NOW,
        region="us-east-1",
    )
    assert report["task_times_from"] == {"ecs": 1, "ledger": 1, "untimed": 0}
    assert report["images"] == 2
    # ECS: 90 s; the ledger: 600 s from claim to finish.
    assert report["usage"]["billed_task_seconds"] == 690
    # The known task ran without -report; the vanished one counts a report (an upper bound).
    assert report["usage"]["s3_puts"] == 2 * 9 + 1


def _status_json(infra: Infra, *extra: str) -> tuple[int, str]:
    """``-mode status -json`` on a new ledger table: the exit status and stdout."""
    table = create_ledger_table()
    argv = ["-mode", "status", "-json", "-ledger-table", table, "-cluster", infra.cluster]
    status, out, _ = cli([*argv, "-task", infra.task_definition, *extra])
    return status, out


def test_status_json_has_the_cost_since_the_given_time(infra: Infra) -> None:
    status, out = _status_json(infra, "-since", "2026-11-01T00:00:00Z")
    cost = json.loads(out)["cost"]
    assert status == 0
    assert cost["since"] == "2026-11-01T00:00:00.000000Z"
    assert cost["task_size"] == {"vcpu": 1.0, "memory_gb": 2.0, "architecture": "X86_64"}


def test_status_prices_the_cost_for_the_region_of_the_session(infra: Infra) -> None:
    _, out = _status_json(infra)
    # The session's region is us-east-1 (conftest); without it the note would say that no
    # region had a price table (the figures are us-east-1's either way).
    assert json.loads(out)["cost"]["prices"] == "us-east-1 list prices (March 2026)"


def test_status_with_a_bad_since_exits_2(infra: Infra) -> None:
    table = create_ledger_table()
    status, _, err = cli(
        ["-mode", "status", "-ledger-table", table, "-cluster", infra.cluster, "-since", "soon"]
    )
    assert status == 2
    assert "-since 'soon'" in err


@pytest.mark.parametrize("architecture", ["X86_64", "ARM64"])
def test_a_million_lambda_requests_cost_twenty_cents_at_list_price(architecture: str) -> None:
    prices, _ = prices_for("us-east-1", architecture)
    assert cost_of(Usage(lambda_requests=1_000_000), prices)["lambda"] == pytest.approx(0.20)
