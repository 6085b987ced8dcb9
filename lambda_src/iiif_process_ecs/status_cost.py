"""The cost part of ``-mode status``: what the images finished since ``-since`` used (#10).

Images: ledger items ``succeeded`` or ``failed`` with ``updated_at`` (a Query on ``by-status``,
never a Scan) and ``finished_at`` at or after the time. Their tasks (``task_arn``) are billed
from ECS DescribeTasks: pull start (else start, else creation) to stop, with Fargate's one-minute
minimum. ECS forgets stopped tasks after about an hour; for those the ledger's own times stand in:
the earliest ``started_at`` (the trigger's claim, just before RunTask) to the latest
``finished_at`` of the task's items. The report says how many tasks each source timed.

S3 PUTs: each item's ``derivatives``, plus one process report per succeeded image whose task ran
with ``-report`` (for tasks ECS has forgotten, counted as if it had: an upper bound), plus, when
the task definition publishes tiles, cost.tile_puts_per_image per succeeded image (an estimate:
the ledger does not count tiles).
Lambda and SQS are estimates: one trigger invocation per task (exact when uploads trickle in; an
upper bound in bulk, when one invocation starts several tasks) and one reconcile invocation per
stopped task; SQS: one message per image (S3's notification), a receive and a delete per trigger
invocation, and a send, a receive and a delete per reconcile event. Idle polling is not counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .cost import TaskSize, Usage, cost_of, prices_for, tile_puts_per_image, usage_dict
from .ledger import Ledger, now_iso

DEFAULT_SINCE = "24h"
DESCRIBE_TASKS_LIMIT = 100
FINISHED = ("succeeded", "failed")
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class SinceError(ValueError):
    """``-since`` is neither ISO 8601 nor a relative time; the message says which forms work."""


def parse_since(text: str, now: datetime) -> datetime:
    """``24h``, ``90m``, ``7d`` (before ``now``) or ISO 8601 (UTC unless it has an offset)."""
    match = _RELATIVE.match(text)
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SinceError(
            f"-since {text!r}: want ISO 8601 (2026-01-31T12:00:00Z) or a time back from now "
            "such as 90m, 24h, 7d"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def finished_since(ledger: Ledger, since: datetime) -> list[dict[str, Any]]:
    """Items ``succeeded`` or ``failed`` whose ``finished_at`` is at or after ``since``: those
    updated since (a Query on by-status per status), then ``finished_at`` checked (a later
    ``-mode retry`` or reconcile touch moves ``updated_at``, not ``finished_at``)."""
    stamp = now_iso(since)
    items: list[dict[str, Any]] = []
    for status in FINISHED:
        for item in ledger.updated_since(status, stamp):
            finished = _parse_iso(item.get("finished_at"))
            if finished is not None and finished >= since:
                items.append(item)
    return items


@dataclass(frozen=True)
class TaskTime:
    """A task's billed span and where it came from: "ecs" or "ledger"."""

    seconds: float
    source: str
    report: bool = True


def ecs_task_times(ecs: Any, cluster: str, arns: Sequence[str], now: datetime) -> dict[str, Any]:
    """DescribeTasks (100 a call) → arn → TaskTime for the tasks ECS still knows."""
    times: dict[str, Any] = {}
    for start in range(0, len(arns), DESCRIBE_TASKS_LIMIT):
        response = ecs.describe_tasks(cluster=cluster, tasks=list(arns[start : start + 100]))
        for task in response.get("tasks", []):
            began = task.get("pullStartedAt") or task.get("startedAt") or task.get("createdAt")
            if began is None:
                continue
            ended = task.get("stoppedAt") or now
            command = [
                arg
                for override in (task.get("overrides") or {}).get("containerOverrides", [])
                for arg in override.get("command") or []
            ]
            times[task["taskArn"]] = TaskTime(
                (ended - began).total_seconds(), "ecs", report="-report" in command
            )
    return times


def ledger_task_time(items: Iterable[Mapping[str, Any]]) -> TaskTime | None:
    """Earliest ``started_at`` to latest ``finished_at`` of a task's items."""
    starts = [t for t in (_parse_iso(i.get("started_at")) for i in items) if t]
    ends = [t for t in (_parse_iso(i.get("finished_at")) for i in items) if t]
    if not starts or not ends:
        return None
    return TaskTime((max(ends) - min(starts)).total_seconds(), "ledger")


def usage_since(
    items: Sequence[Mapping[str, Any]], ecs_times: Mapping[str, TaskTime], size: TaskSize
) -> tuple[Usage, dict[str, int]]:
    """The usage of ``items`` (finished since), their tasks timed by ECS or else the ledger.
    Returns the usage and how many tasks each source timed."""
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        if item.get("task_arn"):
            by_task.setdefault(str(item["task_arn"]), []).append(item)
    usage = Usage(images=len(items))
    sources = {"ecs": 0, "ledger": 0, "untimed": 0}
    for arn, task_items in by_task.items():
        timed = ecs_times.get(arn) or ledger_task_time(task_items)
        if timed is None:
            # Neither source has a time: the one-minute minimum is the least it cost.
            sources["untimed"] += 1
            timed = TaskTime(0.0, "untimed")
        else:
            sources[timed.source] += 1
        usage.add_task(timed.seconds, size)
        succeeded = sum(1 for i in task_items if i.get("status") == "succeeded")
        usage.s3_puts += succeeded if timed.report else 0
    usage.s3_puts += sum(int(i.get("derivatives", 0) or 0) for i in items)
    # The ledger counts the instruction derivatives only; tiles (when the task definition has
    # them on) are estimated per succeeded image from make bench's 24 MP count.
    usage.s3_puts += tile_puts_per_image(size) * sum(
        1 for i in items if i.get("status") == "succeeded"
    )
    usage.add_lambda(2 * usage.tasks)
    usage.sqs_requests = usage.images + 2 * usage.tasks + 3 * usage.tasks
    return usage, sources


def cost_report(
    ledger: Ledger,
    ecs: Any,
    *,
    cluster: str,
    size: TaskSize,
    since: datetime,
    now: datetime,
    region: str,
    prices: str = "",
) -> dict[str, Any]:
    """The ``cost`` member of ``-mode status -json``."""
    items = finished_since(ledger, since)
    arns = sorted({str(i["task_arn"]) for i in items if i.get("task_arn")})
    ecs_times = ecs_task_times(ecs, cluster, arns, now) if arns else {}
    usage, sources = usage_since(items, ecs_times, size)
    table, note = prices_for(region, size.architecture, prices)
    dollars = cost_of(usage, table)
    return {
        "since": now_iso(since),
        "images": usage.images,
        "succeeded": sum(1 for i in items if i.get("status") == "succeeded"),
        "failed": sum(1 for i in items if i.get("status") == "failed"),
        "task_times_from": sources,
        "task_size": {
            "vcpu": size.vcpu,
            "memory_gb": size.memory_gb,
            "architecture": size.architecture,
        },
        "tile_puts_per_image": tile_puts_per_image(size),
        "usage": usage_dict(usage),
        "cost_usd": {name: round(value, 6) for name, value in dollars.items()},
        "prices": note,
    }


def format_cost(cost: Mapping[str, Any]) -> str:
    """The cost lines of the human-readable status."""
    if "error" in cost:
        return f"Cost: {cost['error']}\n"
    u, d, s = cost["usage"], cost["cost_usd"], cost["task_size"]
    timed = cost["task_times_from"]
    return (
        "\n".join(
            [
                f"Since {cost['since']}: {cost['images']} images ({cost['succeeded']} succeeded, "
                f"{cost['failed']} failed) in {u['tasks']} tasks (times from ECS {timed['ecs']}, "
                f"from the ledger {timed['ledger']}, untimed {timed['untimed']})",
                f"  Fargate: {u['vcpu_seconds']:g} vCPU-s, {u['gb_seconds']:g} GB-s billed "
                f"({s['vcpu']:g} vCPU / {s['memory_gb']:g} GB {s['architecture']}, one-minute "
                f"minimum)  ${d['fargate_vcpu'] + d['fargate_memory']:.4f}",
                f"  S3 PUTs: {u['s3_puts']}"
                + (
                    f" (tiles estimated at {cost['tile_puts_per_image']} an image)"
                    if cost.get("tile_puts_per_image")
                    else ""
                )
                + f"  ${d['s3_put']:.4f}",
                f"  Lambda requests (estimate): {u['lambda_requests']}  ${d['lambda']:.4f}",
                f"  SQS requests (estimate): {u['sqs_requests']}  ${d['sqs']:.4f}",
                f"  Estimated cost: ${d['total']:.4f} ({cost['prices']})",
            ]
        )
        + "\n"
    )
