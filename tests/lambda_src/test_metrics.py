"""The Lambda functions' metrics (issue #15): EMF lines in their logs, one set per invocation.

The trigger writes TasksStarted and UrisSkipped by reason class; reconcile writes Redrives by
reason class, TasksKilledOutOfMemory and TasksStarted (images re-run alone). The format and the
reason classes are held to the same expectations as the tool's copy of the module
(tests/container/test_iiif_metrics.py).
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from iiif_process_ecs import metrics
from iiif_process_ecs.ledger import now_iso
from iiif_process_ecs.service import TasksNotStarted

from tests.lambda_src.conftest import REGION, Infra, s3_record
from tests.lambda_src.ledger_support import create_ledger_table, put_item
from tests.lambda_src.test_ecs_trigger_handler import FlakyEcs, run
from tests.lambda_src.test_ecs_trigger_sqs import batch, s3_message
from tests.lambda_src.test_ledger_trigger import EVENT_ETAG, RECIPE
from tests.lambda_src.test_ledger_trigger import run as trigger_with_ledger
from tests.lambda_src.test_reconcile import (
    launch,
    reconcile,
    stopped,
    tool_finished,
    tool_processing,
)
from tests.metrics_contract import CONTRACT_UNITS, REASONS, check_emf

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def table(aws: None) -> str:
    return create_ledger_table()


@pytest.fixture
def queue(aws: None) -> str:
    sqs = boto3.client("sqs", region_name=REGION)
    return sqs.create_queue(QueueName=f"events-{uuid.uuid4().hex[:8]}")["QueueUrl"]


def emf(logs: io.StringIO) -> list[dict[str, Any]]:
    """The EMF objects among the captured log lines, each checked against the contract."""
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    return [check_emf(doc) for doc in lines if "_aws" in doc]


def totals(docs: list[dict[str, Any]], name: str) -> int:
    return sum(doc.get(name, 0) for doc in docs)


def by_class(docs: list[dict[str, Any]], name: str) -> dict[str, int]:
    return {doc["ReasonClass"]: doc[name] for doc in docs if name in doc}


# -- the module: the same as the tool's --------------------------------------------------------


def test_the_module_is_the_tools_text() -> None:
    ours = (ROOT / "lambda_src" / "iiif_process_ecs" / "metrics.py").read_text()
    assert ours == (ROOT / "container" / "iiif_process" / "metrics.py").read_text()


def test_units_are_the_contracts() -> None:
    assert metrics.UNITS == CONTRACT_UNITS


def test_a_document_is_emf_of_the_namespace() -> None:
    doc = check_emf(metrics.document({"UrisSkipped": 3}, reason="unchanged", stack="s"))
    assert (doc["Stack"], doc["ReasonClass"], doc["UrisSkipped"]) == ("s", "unchanged", 3)


def test_a_reason_metric_without_its_reason_class_is_refused() -> None:
    with pytest.raises(ValueError, match="ReasonClass goes with"):
        metrics.document({"UrisSkipped": 3}, stack="s")


def test_a_reason_class_beside_a_metric_that_takes_none_is_refused() -> None:
    with pytest.raises(ValueError, match="ReasonClass goes with"):
        metrics.document({"UrisSkipped": 3, "TasksStarted": 1}, reason="unchanged", stack="s")


def test_a_line_goes_to_the_stream_given(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    metrics.emit({"TasksStarted": 2}, stack="s", stream=stream)

    assert json.loads(stream.getvalue())["TasksStarted"] == 2
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(("error", "retryable", "expected"), REASONS)
def test_reason_class(error: str, retryable: bool, expected: str) -> None:
    assert metrics.reason_class(error, retryable) == expected


# -- the trigger -------------------------------------------------------------------------------


def test_trigger_counts_the_tasks_it_started(infra: Infra, quiet_logs: io.StringIO) -> None:
    run(infra, {"uris": ["a.jpg", "b.jpg"]}, IIIF_PROCESS_MAX_URIS_PER_TASK="1")
    assert totals(emf(quiet_logs), "TasksStarted") == 2


def test_trigger_names_its_stack(infra: Infra, quiet_logs: io.StringIO) -> None:
    run(infra, {"uris": ["a.jpg"]}, IIIF_PROCESS_STACK_NAME="Prod")
    assert {doc["Stack"] for doc in emf(quiet_logs)} == {"Prod"}


def test_trigger_counts_skipped_uris_by_class(infra: Infra, quiet_logs: io.StringIO) -> None:
    records = [
        s3_record("good.jpg"),
        s3_record("..%2Fsecret.jpg"),
        s3_record("folder/", size=0),
        s3_record("empty.jpg", size=0),
        s3_record("notes.txt"),
        s3_record("x.jpg", bucket="elsewhere"),
    ]
    run(infra, {"Records": records}, IIIF_PROCESS_SOURCE_BUCKET="iiif-source")
    assert by_class(emf(quiet_logs), "UrisSkipped") == {
        "unsafe-key": 1,
        "unsupported-type": 2,
        "not-an-image": 1,
        "other": 1,
    }


def test_trigger_does_not_count_uris_aws_did_not_start_as_skipped(
    infra: Infra, quiet_logs: io.StringIO
) -> None:
    with pytest.raises(TasksNotStarted):
        run(infra, {"uris": ["a.jpg"]}, ecs=FlakyEcs(), IIIF_PROCESS_CLUSTER="no-such-cluster")
    docs = emf(quiet_logs)
    assert (totals(docs, "TasksStarted"), by_class(docs, "UrisSkipped")) == (0, {})


def test_trigger_counts_already_started_keys(
    infra: Infra, table: str, quiet_logs: io.StringIO
) -> None:
    trigger_with_ledger(infra, table, batch(s3_message("m1", "a.jpg")))
    quiet_logs.truncate(0)
    quiet_logs.seek(0)
    trigger_with_ledger(infra, table, batch(s3_message("m1", "a.jpg")))
    assert by_class(emf(quiet_logs), "UrisSkipped") == {"already-started": 1}


def test_trigger_counts_unchanged_keys(infra: Infra, table: str, quiet_logs: io.StringIO) -> None:

    put_item(
        table,
        uri="a.jpg",
        status="succeeded",
        etag=EVENT_ETAG,
        recipe=RECIPE,
        attempts=1,
        updated_at=now_iso(),
    )
    trigger_with_ledger(infra, table, batch(s3_message("m1", "a.jpg")))
    assert by_class(emf(quiet_logs), "UrisSkipped") == {"unchanged": 1}


# -- reconcile ---------------------------------------------------------------------------------


def _poison_run(infra: Infra, table: str, queue: str, logs: io.StringIO, **event: Any) -> Any:
    task = launch(infra, table, "a.jpg", "poison.jpg", "c.jpg")
    tool_finished(table, "a.jpg")
    tool_processing(table, "poison.jpg")
    logs.truncate(0)
    logs.seek(0)
    reconcile(infra, table, queue, stopped(infra, task, **event))
    return emf(logs)


def test_reconcile_counts_a_task_killed_for_memory(
    infra: Infra, table: str, queue: str, quiet_logs: io.StringIO
) -> None:
    docs = _poison_run(infra, table, queue, quiet_logs)
    assert totals(docs, "TasksKilledOutOfMemory") == 1


def test_reconcile_counts_the_rerun_alone_as_a_started_task(
    infra: Infra, table: str, queue: str, quiet_logs: io.StringIO
) -> None:
    docs = _poison_run(infra, table, queue, quiet_logs)
    assert totals(docs, "TasksStarted") == 1


def test_reconcile_counts_redrives_by_the_cause(
    infra: Infra, table: str, queue: str, quiet_logs: io.StringIO
) -> None:
    docs = _poison_run(infra, table, queue, quiet_logs)
    assert by_class(docs, "Redrives") == {"out-of-memory": 2}  # poison re-run, c.jpg re-queued


def test_reconcile_does_not_count_a_stop_task_as_out_of_memory(
    infra: Infra, table: str, queue: str, quiet_logs: io.StringIO
) -> None:
    docs = _poison_run(
        infra, table, queue, quiet_logs, reason="", stop_code="UserInitiated", stopped_reason="x"
    )
    assert (totals(docs, "TasksKilledOutOfMemory"), by_class(docs, "Redrives")) == (
        0,
        {"stopped": 2},
    )


def test_reconcile_counts_a_requeued_retryable_failure_as_transient(
    infra: Infra, table: str, queue: str, quiet_logs: io.StringIO
) -> None:
    task = launch(infra, table, "flaky.jpg")
    tool_finished(table, "flaky.jpg", status="failed", reason="S3 SlowDown", retryable=True)
    reconcile(infra, table, queue, stopped(infra, task, exit_code=1, reason=""))
    assert by_class(emf(quiet_logs), "Redrives") == {"transient": 1}


def test_reconcile_names_its_stack(
    infra: Infra, table: str, queue: str, quiet_logs: io.StringIO
) -> None:
    task = launch(infra, table, "a.jpg")
    quiet_logs.truncate(0)
    quiet_logs.seek(0)
    reconcile(infra, table, queue, stopped(infra, task), IIIF_PROCESS_STACK_NAME="Prod")
    assert {doc["Stack"] for doc in emf(quiet_logs)} == {"Prod"}


def test_reconcile_counts_an_unexplained_stop_as_other(
    infra: Infra, table: str, queue: str, quiet_logs: io.StringIO
) -> None:
    task = launch(infra, table, "a.jpg")
    reconcile(infra, table, queue, stopped(infra, task, exit_code=0, reason=""))
    assert by_class(emf(quiet_logs), "Redrives") == {"other": 1}
