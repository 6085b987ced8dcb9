"""`iiif-process-ecs -mode backfill` (issue #10): list the source bucket, apply the trigger's
rules, skip what the ledger has as unchanged, queue the rest as S3 notifications."""

from __future__ import annotations

import io
import json
import os
import signal
from typing import Any

import boto3
import pytest
from iiif_process_ecs.backfill import (
    ALREADY_QUEUED,
    CHANGED_WHILE_QUEUEING,
    FAILED_BEFORE,
    Backfill,
    BackfillOptions,
    BackfillResult,
    reason_class,
    resume_hint,
)
from iiif_process_ecs.cli import Runtime, main
from iiif_process_ecs.ledger import Ledger, now_iso
from iiif_process_ecs.requeue import (
    MAX_CALL_BYTES,
    RequeueKey,
    Requeuer,
    message_bodies,
)

from tests.lambda_src.backfill_support import (
    ETAG,
    Place,
    Recording,
    new_place,
    put_ledger_items,
    put_objects,
    queued_keys,
)
from tests.lambda_src.conftest import REGION, Infra
from tests.lambda_src.ledger_support import dynamodb, item_of, put_item

SQS_LIMIT = 256 * 1024


@pytest.fixture
def place(infra: Infra) -> Place:
    return new_place(infra)


def keys(count: int, prefix: str = "img/") -> list[str]:
    return [f"{prefix}{index:05d}.jpg" for index in range(count)]


def backfill(
    place: Place,
    *,
    ledger_client: Any = None,
    sqs: Any = None,
    on_page: Any = None,
    **options: Any,
) -> Backfill:
    ledger = Ledger(place.table, ledger_client or dynamodb(), sleep=lambda _: None)
    requeuer = Requeuer(
        sqs or boto3.client("sqs", region_name=REGION),
        place.queue,
        place.bucket,
        sleep=lambda _: None,
        rand=lambda: 0.0,
    )
    return Backfill(
        boto3.client("s3", region_name=REGION),
        ledger,
        requeuer,
        BackfillOptions(bucket=place.bucket, **options),
        on_page=on_page,
    )


def cli(
    argv: list[str], *, on_page: Any = None, environ: dict[str, str] | None = None
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    runtime = Runtime(
        stdout=out,
        stderr=err,
        sleep=lambda _: None,
        rand=lambda: 0.0,
        nonce=lambda: "run1",
        backfill_page=on_page,
    )
    status = main(["-mode", "backfill", *argv], environ=environ or {}, runtime=runtime)
    return status, out.getvalue(), err.getvalue()


# -- listing --------------------------------------------------------------------------------


def test_listing_follows_every_page(place: Place) -> None:
    put_objects(place.bucket, keys(250))
    result = backfill(place, page_size=100).run()
    assert (result.listed, result.pages) == (250, 3)


def test_every_listed_image_reaches_the_queue_once(place: Place) -> None:
    put_objects(place.bucket, keys(250))
    result = backfill(place, page_size=100).run()
    assert result.queued == 250
    assert sorted(queued_keys(place.queue)) == keys(250)


def test_prefix_limits_the_listing(place: Place) -> None:
    put_objects(place.bucket, keys(5, "a/") + keys(7, "b/"))
    result = backfill(place, prefix="b/").run()
    assert result.listed == 7
    assert sorted(queued_keys(place.queue)) == keys(7, "b/")


def test_start_after_lists_only_the_keys_after_it(place: Place) -> None:
    put_objects(place.bucket, keys(30))
    result = backfill(place, start_after="img/00019.jpg").run()
    assert sorted(queued_keys(place.queue)) == keys(30)[20:]
    assert result.listed == 10


# -- the trigger's rules ----------------------------------------------------------------------


def test_keys_the_trigger_would_not_take_are_skipped_by_reason(place: Place) -> None:
    put_objects(place.bucket, ["notes.txt", "a//b.jpg", "ok.jpg"])
    put_objects(place.bucket, ["empty.jpg"], b"")
    put_objects(place.bucket, ["folder/"], b"")
    put_objects(place.bucket, ["big.tif"], b"x" * 101)
    result = backfill(place, max_source_bytes=100).run()
    assert dict(result.skipped) == {
        "unsupported file type": 1,
        "unsafe key": 1,
        "zero-byte object": 1,
        "folder placeholder": 1,
        "too large": 1,
    }
    assert queued_keys(place.queue) == ["ok.jpg"]


def test_reason_class_shortens_reasons_with_details() -> None:
    assert reason_class("too large: 5 bytes > limit 4 bytes") == "too large"
    assert reason_class("unsupported file type ('.txt'); supported: gif") == (
        "unsupported file type"
    )
    assert reason_class(ALREADY_QUEUED) == ALREADY_QUEUED


# -- the ledger -------------------------------------------------------------------------------


def test_unchanged_keys_are_skipped_at_scale_with_batched_reads(place: Place) -> None:
    """10,000 keys all succeeded for their ETag: nothing queued, 100 BatchGetItem calls."""
    names = keys(10_000)
    put_objects(place.bucket, names)
    put_ledger_items(
        place.table,
        [{"uri": k, "status": "succeeded", "etag": ETAG, "updated_at": now_iso()} for k in names],
    )
    client = Recording("dynamodb")
    result = backfill(place, ledger_client=client).run()
    assert (result.queued, dict(result.skipped)) == (0, {"unchanged": 10_000})
    assert client.count("batch_get_item") == 100
    assert client.count("get_item") == 0


def test_a_key_whose_etag_changed_is_queued(place: Place) -> None:
    put_objects(place.bucket, ["new.jpg"])
    put_item(place.table, uri="new.jpg", status="succeeded", etag="old", updated_at=now_iso())
    result = backfill(place).run()
    assert result.queued == 1


def test_force_queues_unchanged_keys(place: Place) -> None:
    put_objects(place.bucket, ["same.jpg"])
    put_item(place.table, uri="same.jpg", status="succeeded", etag=ETAG, updated_at=now_iso())
    assert backfill(place, force=True).run().queued == 1


def test_a_key_failed_for_the_same_etag_is_left_to_retry(place: Place) -> None:
    put_objects(place.bucket, ["bad.jpg"])
    put_item(place.table, uri="bad.jpg", status="failed", etag=ETAG, updated_at=now_iso())
    assert dict(backfill(place).run().skipped) == {FAILED_BEFORE: 1}


def test_queued_keys_are_marked_in_the_ledger(place: Place) -> None:
    put_objects(place.bucket, ["a.jpg"])
    put_item(
        place.table,
        uri="a.jpg",
        status="failed",
        etag="old",
        attempts=3,
        retryable=True,
        updated_at=now_iso(),
    )
    backfill(place).run()
    item = item_of(place.table, "a.jpg")
    assert item is not None
    assert (item["status"], item["etag"], item["size"], item["attempts"]) == (
        "queued",
        ETAG,
        10,
        0,
    )
    assert "retryable" not in item


def test_a_second_run_skips_what_the_first_queued(place: Place) -> None:
    put_objects(place.bucket, keys(3))
    backfill(place).run()
    result = backfill(place).run()
    assert (result.queued, dict(result.skipped)) == (0, {ALREADY_QUEUED: 3})


def test_keys_whose_message_could_not_be_sent_are_put_back(place: Place) -> None:
    put_objects(place.bucket, ["a.jpg", "b.jpg"])
    put_item(place.table, uri="b.jpg", status="succeeded", etag="old", updated_at="2026-01-01")

    def refuse(**kwargs: Any) -> Any:
        return {
            "Failed": [
                {"Id": e["Id"], "Code": "InternalError", "SenderFault": False}
                for e in kwargs["Entries"]
            ]
        }

    result = backfill(place, sqs=Recording("sqs", fail={"send_message_batch": refuse})).run()
    assert (result.queued, len(result.failed)) == (0, 2)
    assert item_of(place.table, "a.jpg") is None
    assert item_of(place.table, "b.jpg")["status"] == "succeeded"  # type: ignore[index]


# -- a mark never overwrites a newer state ---------------------------------------------------


class ChangedAfterRead:
    """The moto DynamoDB client, except that right after a BatchGetItem answers, another part
    writes (``change``): what a trigger claim or a task does between backfill's read and its
    mark. ``times`` limits how often (None: after every read)."""

    def __init__(self, change: Any, times: int | None = 1) -> None:
        self.real = dynamodb()
        self.change = change
        self.times = times

    def batch_get_item(self, **kwargs: Any) -> Any:
        response = self.real.batch_get_item(**kwargs)
        if self.times is None or self.times > 0:
            if self.times is not None:
                self.times -= 1
            self.change()
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_claim_between_read_and_mark_is_kept(place: Place) -> None:
    put_objects(place.bucket, ["a.jpg"])
    trigger = Ledger(place.table, dynamodb())
    client = ChangedAfterRead(lambda: trigger.claim("a.jpg", etag=ETAG, size=10, recipe=""))
    result = backfill(place, ledger_client=client).run()
    assert item_of(place.table, "a.jpg")["status"] == "started"  # type: ignore[index]
    assert (result.queued, dict(result.skipped)) == (0, {"already started": 1})
    assert queued_keys(place.queue) == []


def test_a_success_between_read_and_mark_is_kept(place: Place) -> None:
    put_objects(place.bucket, ["a.jpg"])
    put_item(place.table, uri="a.jpg", status="failed", etag="old", updated_at="2026-01-01")

    def task_finishes() -> None:
        put_item(place.table, uri="a.jpg", status="succeeded", etag=ETAG, updated_at=now_iso())

    result = backfill(place, ledger_client=ChangedAfterRead(task_finishes)).run()
    assert item_of(place.table, "a.jpg")["status"] == "succeeded"  # type: ignore[index]
    assert (result.queued, dict(result.skipped)) == (0, {"unchanged": 1})
    assert queued_keys(place.queue) == []


def test_a_change_that_still_needs_the_key_is_read_again_and_queued(place: Place) -> None:
    put_objects(place.bucket, ["a.jpg"])

    def old_run_fails() -> None:
        put_item(place.table, uri="a.jpg", status="failed", etag="old", updated_at=now_iso())

    result = backfill(place, ledger_client=ChangedAfterRead(old_run_fails)).run()
    assert result.queued == 1
    assert item_of(place.table, "a.jpg")["status"] == "queued"  # type: ignore[index]
    assert queued_keys(place.queue) == ["a.jpg"]


def test_a_key_that_keeps_changing_is_left_to_the_part_changing_it(place: Place) -> None:
    put_objects(place.bucket, ["a.jpg"])

    def keeps_failing() -> None:
        put_item(place.table, uri="a.jpg", status="failed", etag="old", updated_at=now_iso())

    result = backfill(place, ledger_client=ChangedAfterRead(keeps_failing, times=None)).run()
    assert dict(result.skipped) == {CHANGED_WHILE_QUEUEING: 1}
    assert item_of(place.table, "a.jpg")["status"] == "failed"  # type: ignore[index]
    assert queued_keys(place.queue) == []


# -- message packing --------------------------------------------------------------------------


def test_messages_hold_several_keys_and_calls_ten_messages(place: Place) -> None:
    put_objects(place.bucket, keys(250))
    sqs = Recording("sqs")
    backfill(place, sqs=sqs).run()
    sizes = [len(kwargs["Entries"]) for name, kwargs in sqs.calls if name == "send_message_batch"]
    assert sizes == [10, 10, 5]
    records = [
        len(json.loads(entry["MessageBody"])["Records"])
        for _, kwargs in sqs.calls
        for entry in kwargs["Entries"]
    ]
    assert records == [10] * 25


def long_key(index: int) -> str:
    """900 UTF-8 bytes (the key rule's maximum), each 'é' 6 bytes once URL-encoded."""
    stem = f"{index:04d}/"
    return stem + "é" * ((900 - len(stem) - 4) // 2) + ".jpg"


def test_no_message_or_call_is_over_256_kb_with_the_longest_keys(place: Place) -> None:
    names = sorted(long_key(i) for i in range(120))
    assert all(len(k.encode()) <= 900 for k in names)
    put_objects(place.bucket, names)
    sqs = Recording("sqs")
    result = backfill(place, sqs=sqs).run()
    assert result.queued == 120
    calls = [kwargs["Entries"] for name, kwargs in sqs.calls if name == "send_message_batch"]
    bodies = [entry["MessageBody"].encode() for entries in calls for entry in entries]
    assert max(len(body) for body in bodies) <= SQS_LIMIT
    assert max(sum(len(e["MessageBody"].encode()) for e in entries) for entries in calls) <= (
        SQS_LIMIT
    )
    assert sorted(queued_keys(place.queue)) == names


def test_a_packed_body_is_exactly_the_json_of_its_records() -> None:
    messages = message_bodies("b", [RequeueKey(f"k{i}.jpg", "e", 3) for i in range(25)])
    for _, body in messages:
        assert body == json.dumps({"Records": json.loads(body)["Records"]}, ensure_ascii=False)
    assert [len(uris) for uris, _ in messages] == [10, 10, 5]


def test_a_body_closes_before_it_passes_the_byte_limit() -> None:
    many = [RequeueKey(long_key(i)) for i in range(10)]
    limit = len(message_bodies("b", many[:3])[0][1].encode())
    messages = message_bodies("b", many, max_bytes=limit)
    assert [len(uris) for uris, _ in messages] == [3, 3, 3, 1]
    assert MAX_CALL_BYTES == SQS_LIMIT


def test_a_body_one_byte_over_the_limit_is_split() -> None:
    many = [RequeueKey(long_key(i)) for i in range(6)]
    limit = len(message_bodies("b", many[:3])[0][1].encode()) - 1
    messages = message_bodies("b", many, max_bytes=limit)
    assert [len(uris) for uris, _ in messages] == [2, 2, 2]
    assert max(len(body.encode()) for _, body in messages) <= limit


# -- Ctrl-C and resume ------------------------------------------------------------------------


def stop_after(pages: int) -> Any:
    def hook(result: BackfillResult) -> None:
        if result.pages >= pages:
            raise KeyboardInterrupt

    return hook


def two_pages() -> tuple[list[str], list[str]]:
    """Objects filling two listing pages cheaply: page one holds 10 images and 990 text files
    (skipped by the key rule, no ledger work), page two 10 text files and 5 images."""
    first = keys(10) + [f"notes/{i:05d}.txt" for i in range(1000)]
    second = [f"zz/{i}.jpg" for i in range(5)]
    return first, second


def test_ctrl_c_stops_after_the_page_and_prints_where_to_resume(place: Place) -> None:
    first, second = two_pages()
    put_objects(place.bucket, first + second)
    status, _, err = cli(["-stack", place.stack], on_page=stop_after(1))
    assert status == 130
    assert "-start-after notes/00989.txt" in err
    assert sorted(queued_keys(place.queue)) == keys(10)


def test_resuming_with_start_after_queues_the_rest_once(place: Place) -> None:
    first, second = two_pages()
    put_objects(place.bucket, first + second)
    cli(["-stack", place.stack], on_page=stop_after(1))
    status, _, _ = cli(["-stack", place.stack, "-start-after", "notes/00989.txt"])
    assert status == 0
    assert sorted(queued_keys(place.queue)) == keys(10) + second


def test_a_real_sigint_stops_after_the_page_in_hand(place: Place) -> None:
    """The CLI's SIGINT handler (not an exception from a hook): the first Ctrl-C lets the page
    finish, then the run stops with status 130 and the key to resume from."""
    first, second = two_pages()
    put_objects(place.bucket, first + second)

    def ctrl_c(result: BackfillResult) -> None:
        if result.pages == 1:
            os.kill(os.getpid(), signal.SIGINT)

    status, _, err = cli(["-stack", place.stack], on_page=ctrl_c)
    assert status == 130
    assert "stopping after this page" in err
    assert "-start-after notes/00989.txt" in err
    assert sorted(queued_keys(place.queue)) == keys(10)


def test_json_of_a_stopped_run_keeps_exactly_the_summary_keys(place: Place) -> None:
    first, second = two_pages()
    put_objects(place.bucket, first + second)
    status, out, err = cli(["-stack", place.stack, "-json"], on_page=stop_after(1))
    assert status == 130
    assert set(json.loads(out)) == {"listed", "queued", "skipped", "tasks", "estimated_cost_usd"}
    assert "-start-after notes/00989.txt" in err


def test_an_interrupt_inside_a_page_puts_its_items_back(place: Place) -> None:
    put_objects(place.bucket, keys(3))

    def interrupted(**kwargs: Any) -> Any:
        raise KeyboardInterrupt

    result = backfill(place, sqs=Recording("sqs", fail={"send_message_batch": interrupted})).run()
    assert (result.stopped, result.last_key, result.queued) == (True, "", 0)
    assert item_of(place.table, "img/00000.jpg") is None


# -- the command ------------------------------------------------------------------------------


def test_dry_run_changes_nothing(place: Place) -> None:
    put_objects(place.bucket, keys(30))
    status, out, _ = cli(["-stack", place.stack, "-dry-run"])
    assert status == 0
    assert out.splitlines()[:30] == keys(30)
    assert dynamodb().scan(TableName=place.table)["Count"] == 0
    assert queued_keys(place.queue) == []


def test_dry_run_prints_the_tasks_and_the_estimated_cost(place: Place) -> None:
    put_objects(place.bucket, keys(120))
    _, out, _ = cli(["-stack", place.stack, "-dry-run", "-max-uris-per-task", "50"])
    summary_lines = out.splitlines()[120:]
    assert summary_lines[0].startswith("listed 120; would be queued 120 (3 task(s)")
    assert summary_lines[-1].startswith("estimated cost of processing them: $")
    assert "an estimate from make bench's 24 MP figures" in summary_lines[-1]


def test_dry_run_counts_tasks_from_max_uris_per_task(place: Place) -> None:
    put_objects(place.bucket, keys(120))
    _, out, _ = cli(["-stack", place.stack, "-dry-run", "-json", "-max-uris-per-task", "50"])
    assert json.loads(out)["tasks"] == 3


def test_json_prints_the_counts_tasks_and_cost(place: Place) -> None:
    put_objects(place.bucket, [*keys(4), "notes.txt"])
    status, out, _ = cli(["-stack", place.stack, "-json"])
    report = json.loads(out)
    assert status == 0
    assert set(report) == {"listed", "queued", "skipped", "tasks", "estimated_cost_usd"}
    assert (report["listed"], report["queued"], report["tasks"]) == (5, 4, 1)
    assert report["skipped"] == {"unsupported file type": 1}
    assert report["estimated_cost_usd"] > 0


FREE = ",".join(
    f"{name}=0"
    for name in (
        "fargate_vcpu_hour",
        "fargate_gb_hour",
        "s3_put_per_1000",
        "lambda_per_request",
        "lambda_gb_second",
        "sqs_per_million",
    )
)


def test_prices_are_a_setting_from_the_environment(place: Place) -> None:
    put_objects(place.bucket, keys(4))
    _, out, _ = cli(
        ["-stack", place.stack, "-dry-run", "-json"], environ={"IIIF_PROCESS_PRICES": FREE}
    )
    assert json.loads(out)["estimated_cost_usd"] == 0


def test_a_price_flag_changes_the_estimate(place: Place) -> None:
    put_objects(place.bucket, keys(4))
    _, listed, _ = cli(["-stack", place.stack, "-dry-run", "-json"])
    _, dearer, _ = cli(
        ["-stack", place.stack, "-dry-run", "-json", "-prices", "s3_put_per_1000=5.005"]
    )
    before, after = (json.loads(out)["estimated_cost_usd"] for out in (listed, dearer))
    # 4 images x 10 PUTs (tiles off) at $5 more per 1000 PUTs.
    assert after - before == pytest.approx(4 * 10 * 5 / 1000, abs=1e-4)


def test_backfill_without_an_event_queue_exits_2(place: Place) -> None:
    status, _, err = cli(["-source-bucket", place.bucket, "-ledger-table", place.table])
    assert status == 2
    assert "-event-queue-url" in err


def test_progress_goes_to_stderr_one_line_per_thousand_keys(place: Place) -> None:
    put_objects(place.bucket, keys(2500))
    _, _, err = cli(["-stack", place.stack, "-dry-run", "-json"])
    lines = [line for line in err.splitlines() if line.startswith("backfill: ")]
    assert [line.split(" listed")[0].split("/")[0] for line in lines] == [
        "backfill: 1,000",
        "backfill: 2,000",
        "backfill: 2,500",
    ]


def test_time_left_is_shown_when_the_bucket_s_object_count_is_known(place: Place) -> None:
    """S3's daily NumberOfObjects metric (which the embedded AWS reports) gives the total."""
    put_objects(place.bucket, keys(1200))
    _, _, err = cli(["-stack", place.stack, "-dry-run", "-json"])
    first = next(line for line in err.splitlines() if line.startswith("backfill: "))
    assert first.startswith("backfill: 1,000/1,200 listed")
    assert first.endswith(" left")


def test_with_a_prefix_the_total_and_time_left_are_unknown(place: Place) -> None:
    put_objects(place.bucket, keys(1200))
    _, _, err = cli(["-stack", place.stack, "-dry-run", "-json", "-prefix", "img/"])
    first = next(line for line in err.splitlines() if line.startswith("backfill: "))
    assert first.startswith("backfill: 1,000 listed")
    assert " left" not in first


def test_a_run_stopped_before_any_page_finished_says_to_run_the_same_command_again() -> None:
    assert resume_hint(BackfillResult(stopped=True)) == (
        "stopped before the first page finished; run the same command again\n"
    )


def test_a_new_backfill_result_has_made_no_send_requests() -> None:
    assert BackfillResult().sqs_send_requests == 0
