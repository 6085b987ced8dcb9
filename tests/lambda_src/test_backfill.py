"""`iiif-process-ecs -mode backfill` (issue #10): list the source bucket, apply the trigger's
rules, skip what the ledger has as unchanged, queue the rest as S3 notifications."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from iiif_process_ecs.backfill import (
    ALREADY_QUEUED,
    FAILED_BEFORE,
    Backfill,
    BackfillOptions,
    BackfillResult,
    reason_class,
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
        sleep=lambda _: None,
        rand=lambda: 0.0,
    )


def cli(argv: list[str], *, on_page: Any = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    runtime = Runtime(
        stdout=out,
        stderr=err,
        sleep=lambda _: None,
        rand=lambda: 0.0,
        nonce=lambda: "run1",
        backfill_page=on_page,
    )
    status = main(["-mode", "backfill", *argv], environ={}, runtime=runtime)
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


def test_ctrl_c_stops_after_the_page_and_prints_where_to_resume(place: Place) -> None:
    put_objects(place.bucket, keys(1500))
    status, _, err = cli(["-stack", place.stack], on_page=stop_after(1))
    assert status == 130
    assert "-start-after img/00999.jpg" in err
    assert len(queued_keys(place.queue)) == 1000


def test_resuming_with_start_after_queues_the_rest_once(place: Place) -> None:
    put_objects(place.bucket, keys(1500))
    cli(["-stack", place.stack], on_page=stop_after(1))
    status, _, _ = cli(["-stack", place.stack, "-start-after", "img/00999.jpg"])
    assert status == 0
    assert sorted(queued_keys(place.queue)) == keys(1500)


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
