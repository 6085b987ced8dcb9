"""Reconcile stopped tasks with the ledger (docs/contracts.md, "The ledger"; issue #9).

EventBridge sends "ECS Task State Change" events with ``lastStatus`` ``STOPPED`` for the cluster
to the reconcile queue; this function gets them in SQS batches. For each stopped task it reads
the task's keys (GSI ``by-task``, then consistent reads) and acts on those the task left behind:

* ``started`` with ``processing_at``: the image that was being processed when the task died. It
  is re-run **alone**, in a task of its own, so that a poison image can only take itself down.
* ``started`` without ``processing_at``: batch mates the task never reached. Re-queued.
* ``failed`` with ``retryable``: a transient failure inside the tool. Re-queued.

Each re-queue first sets ``queued`` with a reason, then sends the keys to the event queue. Once a
key has been launched ``IIIF_PROCESS_MAX_ATTEMPTS`` times it ends ``failed`` with the cause
instead ("task killed: out of memory (exit 137), 3 attempts"). Every write is conditional on the
item still being held by the stopped task in the status read, so processing the same event twice
changes nothing the second time. Bodies that are not such events are logged and dropped;
``batchItemFailures`` names only the messages whose handling hit an AWS failure.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from . import metrics
from .batching import pack
from .clients import LazyClient
from .dsn import session_from_dsn
from .keys import strip_path
from .launcher import Backoff, Launcher
from .ledger import Ledger, LedgerError, now_iso
from .logs import log
from .requeue import RequeueKey, Requeuer
from .settings import Settings, SettingsError, load_settings

DETAIL_TYPE = "ECS Task State Change"
OUT_OF_MEMORY_EXIT = 137


class NotAStoppedTask(ValueError):
    """A message body that is not a STOPPED "ECS Task State Change" event (dropped, logged)."""


@dataclass(frozen=True)
class ContainerExit:
    """One container of the stopped task, as the event reports it."""

    name: str
    exit_code: int | None
    reason: str


@dataclass(frozen=True)
class StoppedTask:
    """The parts of a STOPPED "ECS Task State Change" event that reconcile uses."""

    cluster_arn: str
    task_arn: str
    stop_code: str
    stopped_reason: str
    containers: tuple[ContainerExit, ...] = ()


def parse_stopped_task(body: Any) -> StoppedTask:
    """Parse one reconcile-queue message body (an EventBridge event as JSON text or a dict).

    Raises NotAStoppedTask naming what is wrong.
    """
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            raise NotAStoppedTask("body is not JSON") from None
    if not isinstance(body, Mapping):
        raise NotAStoppedTask("body is not a JSON object")
    if body.get("source") != "aws.ecs" or body.get("detail-type") != DETAIL_TYPE:
        raise NotAStoppedTask(
            f"not an ECS task state change (source {body.get('source')!r}, "
            f"detail-type {body.get('detail-type')!r})"
        )
    detail = body.get("detail")
    if not isinstance(detail, Mapping):
        raise NotAStoppedTask("event without a detail object")
    if detail.get("lastStatus") != "STOPPED":
        raise NotAStoppedTask(f"task is {detail.get('lastStatus')!r}, not STOPPED")
    task_arn = detail.get("taskArn")
    cluster_arn = detail.get("clusterArn")
    if not isinstance(task_arn, str) or not task_arn:
        raise NotAStoppedTask("detail.taskArn missing")
    if not isinstance(cluster_arn, str) or not cluster_arn:
        raise NotAStoppedTask("detail.clusterArn missing")
    containers = []
    for container in detail.get("containers") or []:
        if not isinstance(container, Mapping):
            continue
        code = container.get("exitCode")
        containers.append(
            ContainerExit(
                name=str(container.get("name", "")),
                exit_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
                reason=str(container.get("reason", "") or ""),
            )
        )
    return StoppedTask(
        cluster_arn=cluster_arn,
        task_arn=task_arn,
        stop_code=str(detail.get("stopCode", "") or ""),
        stopped_reason=str(detail.get("stoppedReason", "") or ""),
        containers=tuple(containers),
    )


def is_cluster(cluster_arn: str, cluster: str) -> bool:
    """True when ``cluster_arn`` is the configured cluster (a name or an ARN)."""
    return cluster_arn == cluster or cluster_arn.rsplit("/", 1)[-1] == cluster.rsplit("/", 1)[-1]


def cause_of(task: StoppedTask, container_name: str = "") -> str:
    """Why the task stopped, in words, e.g. ``task killed: out of memory (exit 137)``."""
    container = next((c for c in task.containers if c.name == container_name), None)
    if container is None and task.containers:
        container = task.containers[0]
    exit_code = container.exit_code if container else None
    container_reason = container.reason if container else ""
    texts = f"{task.stopped_reason} {container_reason}"
    if task.stop_code == "SpotInterruption":
        return "task stopped: Fargate Spot capacity reclaimed (SpotInterruption)"
    if "CannotPullContainerError" in texts:
        detail = container_reason or task.stopped_reason
        return f"task failed to start: image pull failed ({detail})"
    if "OutOfMemory" in texts:
        return f"task killed: out of memory (exit {exit_code if exit_code is not None else '?'})"
    if task.stop_code == "UserInitiated":
        return f"task stopped by a user: {task.stopped_reason or 'StopTask'}"
    if task.stop_code == "TaskFailedToStart":
        return f"task failed to start: {task.stopped_reason or container_reason or 'no reason'}"
    if exit_code == OUT_OF_MEMORY_EXIT:
        return f"task killed: out of memory (exit {OUT_OF_MEMORY_EXIT})"
    if exit_code is not None and exit_code != 0:
        extra = f": {container_reason}" if container_reason else ""
        return f"task exited with status {exit_code}{extra}"
    if exit_code == 0:
        return "task exited 0 without recording this image"
    return f"task stopped: {task.stopped_reason or task.stop_code or 'no reason given'}"


@dataclass
class TaskReport:
    """What reconcile did for one stopped task."""

    task_arn: str
    rerun: list[dict[str, str]] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    # uri → ReasonClass of its re-drive (for the metrics; not part of the response)
    classes: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_arn": self.task_arn,
            "rerun": self.rerun,
            "requeued": self.requeued,
            "failed": self.failed,
            "errors": self.errors,
        }


def requeue_sequencer(task_arn: str, uri: str) -> str:
    """A stable, new identity for the re-queued record: the same stopped task gives the same
    value, so a duplicated event cannot make two different RunTask clientTokens."""
    return hashlib.sha256(f"{task_arn}\0{uri}".encode()).hexdigest()[:16].upper()


@dataclass
class Reconciler:
    """Reconciles stopped tasks; clients are boto3 clients (moto in tests)."""

    settings: Settings
    ledger: Ledger
    ecs: Any
    requeuer: Requeuer
    remaining_seconds: Callable[[], float]
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = random.random
    backoff: Backoff | None = None
    stack: str = metrics.DEFAULT_STACK  # the metrics' Stack dimension

    def reconcile(self, task: StoppedTask) -> TaskReport:
        """Act on the keys ``task`` left behind (see the module docstring)."""
        report = TaskReport(task.task_arn)
        listed = self.ledger.by_task(task.task_arn)
        if not listed:
            return report
        # The index is eventually consistent: act only on what a consistent read confirms.
        current = self.ledger.get_many(item["uri"] for item in listed)
        cause = cause_of(task, self.settings.container)
        rerun: list[dict[str, Any]] = []
        requeue: list[tuple[dict[str, Any], str]] = []
        for uri in sorted(current):
            item = current[uri]
            if item.get("task_arn") != task.task_arn:
                continue
            status = item.get("status")
            if status == "started":
                retry_reason = f"{cause}; re-run alone" if item.get("processing_at") else f"{cause}"
            elif status == "failed" and item.get("retryable") is True:
                retry_reason = str(item.get("reason", "failed (retryable)"))
            else:
                continue  # finished for good, or already moved on
            attempts = int(item.get("attempts", 0))
            if attempts >= self.settings.max_attempts:
                reason = (
                    f"{cause}, {attempts} attempts"
                    if status == "started"
                    else f"{retry_reason}, {attempts} attempts"
                )
                if self.ledger.mark_failed(
                    uri, reason, expect_status=status, expect_task=task.task_arn
                ):
                    report.failed.append({"uri": uri, "reason": reason})
                continue
            report.classes[uri] = metrics.reason_class(
                cause if status == "started" else retry_reason, status != "started"
            )
            if status == "started" and item.get("processing_at"):
                rerun.append(item)
            elif status == "started":
                requeue.append((item, f"re-queued: {cause}; the task stopped before this image"))
            else:
                requeue.append((item, f"re-queued: {retry_reason}"))
        for item in rerun:
            self._rerun_alone(task, item, report)
        if requeue:
            self._requeue(task, requeue, report)
        log("task reconciled", cause=cause, **report.as_dict())
        return report

    def _rerun_alone(self, task: StoppedTask, item: Mapping[str, Any], report: TaskReport) -> None:
        uri = item["uri"]
        task_uri = strip_path(uri) if self.settings.strip_paths else uri
        batches, too_large = pack(
            self.settings,
            [(uri, task_uri, str(item.get("etag", "")))],
            nonce=f"rerun:{task.task_arn}",
        )
        if too_large:
            report.errors.append({"uri": uri, "reason": too_large[0][1]})
            return
        launcher = Launcher(
            self.ecs,
            self.settings,
            remaining_seconds=self.remaining_seconds,
            backoff=self.backoff,
            sleep=self.sleep,
            rand=self.rand,
        )
        new_task, error = launcher.launch(batches[0])
        if new_task is None:
            # The item stays as it is, so the redelivered event tries again.
            report.errors.append({"uri": uri, "reason": error})
            return
        stamp = now_iso()
        moved = self.ledger.transition(
            uri,
            expect_status="started",
            expect_task=task.task_arn,
            set_values={
                "task_arn": new_task,
                "attempts": int(item.get("attempts", 0)) + 1,
                "started_at": stamp,
            },
            remove=("processing_at", "reason", "retryable"),
        )
        if moved is not None:
            report.rerun.append({"uri": uri, "task_arn": new_task})

    def _requeue(
        self,
        task: StoppedTask,
        entries: Sequence[tuple[dict[str, Any], str]],
        report: TaskReport,
    ) -> None:
        queued: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for item, reason in entries:
            new = self.ledger.mark_queued(
                item["uri"], reason, expect_status=item["status"], expect_task=task.task_arn
            )
            if new is not None:
                queued[item["uri"]] = (item, new)
        keys = [
            RequeueKey(
                uri=uri,
                etag=str(before.get("etag", "")),
                size=before.get("size") if isinstance(before.get("size"), int) else None,
                sequencer=requeue_sequencer(task.task_arn, uri),
            )
            for uri, (before, _) in queued.items()
        ]
        sent = self.requeuer.send(keys)
        report.requeued.extend(sent.sent)
        for uri, reason in sent.failed:
            before, new = queued[uri]
            # Put the item back as the task left it, so that the redelivered event finds it.
            self.ledger.put_back(
                before, expect={"status": "queued", "updated_at": new["updated_at"]}
            )
            report.errors.append({"uri": uri, "reason": reason})


def reconcile_batch(event: Any, reconciler: Reconciler) -> dict[str, Any]:
    """Handle an SQS batch from the reconcile queue; returns ``batchItemFailures`` and reports."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise ValueError("reconcile: expected an SQS batch with 'Records'")
    failures: list[dict[str, str]] = []
    reports: list[dict[str, Any]] = []
    counts = {"TasksStarted": 0, "TasksKilledOutOfMemory": 0}
    redrives: dict[str, int] = {}
    for record in records:
        message_id = record.get("messageId", "") if isinstance(record, Mapping) else ""
        try:
            task = parse_stopped_task(record.get("body") if isinstance(record, Mapping) else None)
        except NotAStoppedTask as error:
            log(
                "reconcile: message dropped",
                level="WARNING",
                message_id=message_id,
                reason=str(error),
            )
            continue
        if not is_cluster(task.cluster_arn, reconciler.settings.cluster):
            log("reconcile: other cluster ignored", message_id=message_id, cluster=task.cluster_arn)
            continue
        try:
            report = reconciler.reconcile(task)
        except (LedgerError, ClientError, BotoCoreError) as error:
            log(
                "reconcile failed",
                level="ERROR",
                message_id=message_id,
                task_arn=task.task_arn,
                error=str(error),
            )
            if message_id:
                failures.append({"itemIdentifier": message_id})
            continue
        reports.append(report.as_dict())
        if report.errors and message_id:
            failures.append({"itemIdentifier": message_id})
        cause = cause_of(task, reconciler.settings.container)
        counts["TasksKilledOutOfMemory"] += int(metrics.reason_class(cause) == "out-of-memory")
        counts["TasksStarted"] += len(report.rerun)
        for uri in [entry["uri"] for entry in report.rerun] + report.requeued:
            name = report.classes.get(uri, "other")
            redrives[name] = redrives.get(name, 0) + 1
    log("metrics", **metrics.document(counts, stack=reconciler.stack))
    for name, count in sorted(redrives.items()):
        log("metrics", **metrics.document({"Redrives": count}, reason=name, stack=reconciler.stack))
    return {"batchItemFailures": failures, "tasks": reports}


def handle_reconcile_event(
    event: Any,
    context: Any,
    *,
    environ: Mapping[str, str] | None = None,
    ecs: Any = None,
    dynamodb: Any = None,
    sqs: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
) -> dict[str, Any]:
    """Settings from the environment, clients from the DSN (unless passed in), then
    reconcile_batch. The ledger table, event queue and source bucket are required."""
    from .service import remaining_seconds_of

    settings = load_settings(environ)
    for value, variable in (
        (settings.ledger_table, "IIIF_PROCESS_LEDGER_TABLE"),
        (settings.event_queue_url, "IIIF_PROCESS_EVENT_QUEUE_URL"),
        (settings.source_bucket, "IIIF_PROCESS_SOURCE_BUCKET"),
    ):
        if not value:
            raise SettingsError(f"reconcile needs {variable}")
    session = None
    if ecs is None or dynamodb is None or sqs is None:
        session = session_from_dsn(settings.ecs_dsn)
    region = getattr(session, "region_name", "") or ""
    reconciler = Reconciler(
        settings=settings,
        ledger=Ledger(settings.ledger_table, dynamodb, session=session, sleep=sleep, rand=rand),  # type: ignore[arg-type]
        ecs=ecs if ecs is not None else LazyClient("ecs", session),
        requeuer=Requeuer(
            sqs if sqs is not None else LazyClient("sqs", session),
            settings.event_queue_url,  # type: ignore[arg-type]
            settings.source_bucket,  # type: ignore[arg-type]
            region=region,
            sleep=sleep,
            rand=rand,
        ),
        remaining_seconds=remaining_seconds_of(context),
        sleep=sleep,
        rand=rand,
        stack=metrics.stack_name(environ),
    )
    return reconcile_batch(event, reconciler)
