"""``iiif-process-ecs -mode status`` and ``-mode retry``: the ledger seen and re-driven (#9).

Status counts items by status with COUNT queries on the ``by-status`` index (never a Scan),
lists failures grouped by reason, and counts the tasks still running. Retry puts failed keys back
through the event queue, as uploads arrive: attempts reset to 0, status ``queued``, then the
S3-notification-shaped messages (see requeue.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from .batching import STARTED_BY
from .cost import task_size
from .ledger import STATUSES, Ledger, now_iso
from .requeue import RequeueKey, Requeuer, run_sequencer
from .status_cost import cost_report, format_cost, parse_since

EXAMPLES_PER_REASON = 3
RECENT_FAILURES = 10


class LedgerUsageError(ValueError):
    """A ledger mode lacks something it needs (exit status 2); the message names the flag."""


def running_tasks(ecs: Any, cluster: str) -> int:
    """Tasks this tool started that ECS still runs (ListTasks, startedBy, paginated)."""
    count = 0
    paginator = ecs.get_paginator("list_tasks")
    for page in paginator.paginate(cluster=cluster, startedBy=STARTED_BY, desiredStatus="RUNNING"):
        count += len(page.get("taskArns", []))
    return count


def status_report(ledger: Ledger, ecs: Any, cluster: str) -> dict[str, Any]:
    """``{"counts": {...}, "failed": [{"uri", "reason", "attempts"}], "running_tasks": N}``;
    failures newest first."""
    counts = {status: ledger.count(status) for status in STATUSES}
    failed = [
        {
            "uri": item["uri"],
            "reason": str(item.get("reason", "")),
            "attempts": int(item.get("attempts", 0)),
        }
        for item in ledger.by_status("failed")
    ]
    return {"counts": counts, "failed": failed, "running_tasks": running_tasks(ecs, cluster)}


def alarm_states(cloudwatch: Any, topic_arn: str) -> list[dict[str, str]]:
    """``[{"name", "state", "reason"}]`` of the metric alarms that notify ``topic_arn`` (the
    stack's alarms), by name; paginated DescribeAlarms, no other call."""
    alarms = [
        {
            "name": str(alarm["AlarmName"]),
            "state": str(alarm.get("StateValue", "")),
            "reason": str(alarm.get("StateReason", "")),
        }
        for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"])
        for alarm in page.get("MetricAlarms", [])
        if topic_arn in alarm.get("AlarmActions", [])
    ]
    return sorted(alarms, key=lambda alarm: alarm["name"])


def format_alarms(alarms: Iterable[Mapping[str, str]]) -> str:
    """One line per alarm, those in ALARM first."""
    ordered = sorted(alarms, key=lambda alarm: (alarm["state"] != "ALARM", alarm["name"]))
    if not ordered:
        return "Alarms: none found for the topic.\n"
    lines = ["Alarms:"] + [f"  {alarm['state']:<17}  {alarm['name']}" for alarm in ordered]
    return "\n".join(lines) + "\n"


def format_report(report: Mapping[str, Any], table: str) -> str:
    """The whole human-readable status: counts and failures, cost, and alarms when asked for."""
    text = format_status(report, table) + format_cost(report["cost"])
    if "alarms" in report:
        text += format_alarms(report["alarms"])
    return text


def group_by_reason(failed: Iterable[Mapping[str, Any]]) -> list[tuple[str, int, list[str]]]:
    """(reason, count, up to EXAMPLES_PER_REASON example URIs), most frequent first."""
    groups: dict[str, list[str]] = {}
    for entry in failed:
        groups.setdefault(str(entry["reason"]), []).append(str(entry["uri"]))
    ordered = sorted(groups.items(), key=lambda pair: (-len(pair[1]), pair[0]))
    return [(reason, len(uris), uris[:EXAMPLES_PER_REASON]) for reason, uris in ordered]


def format_status(report: Mapping[str, Any], table: str) -> str:
    """The human-readable status: counts, running tasks, failures by reason, recent failures."""
    lines = [f"Ledger {table}:"]
    width = max(len(status) for status in STATUSES)
    for status in STATUSES:
        lines.append(f"  {status:<{width}}  {report['counts'][status]}")
    lines.append(f"Tasks still running: {report['running_tasks']}")
    failed = report["failed"]
    if failed:
        lines.append("Failures by reason:")
        for reason, count, examples in group_by_reason(failed):
            lines.append(f"  {count:>6}  {reason}")
            lines.append(f"          e.g. {', '.join(examples)}")
        lines.append("Most recent failures:")
        for entry in failed[:RECENT_FAILURES]:
            lines.append(f"  {entry['uri']} ({entry['attempts']} attempts): {entry['reason']}")
    else:
        lines.append("No failures.")
    return "\n".join(lines) + "\n"


@dataclass
class RetryReport:
    """Keys re-queued, skipped (not failed) and failed (could not be re-queued)."""

    requeued: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"requeued": self.requeued, "skipped": self.skipped, "failed": self.failed}


def retry_sequencer(run: str, uri: str) -> str:
    """A new identity per retry run, so the trigger's clientToken is not that of the last try."""
    return run_sequencer("retry", run, uri)


def retry_failed(
    ledger: Ledger,
    requeuer: Requeuer,
    *,
    uris: Sequence[str] = (),
    reason_contains: str = "",
    run: str = "",
) -> RetryReport:
    """Re-queue failed keys: all, those in ``uris``, or those whose reason holds the text."""
    report = RetryReport()
    if uris:
        found = ledger.get_many(uris)
        candidates = []
        for uri in dict.fromkeys(uris):
            item = found.get(uri)
            if item is None:
                report.skipped.append({"uri": uri, "reason": "not in the ledger"})
            elif item.get("status") != "failed":
                report.skipped.append({"uri": uri, "reason": f"not failed ({item.get('status')})"})
            elif reason_contains and reason_contains not in str(item.get("reason", "")):
                report.skipped.append({"uri": uri, "reason": "reason does not match -reason"})
            else:
                candidates.append(item)
    else:
        candidates = list(ledger.by_status("failed", reason_contains=reason_contains or None))
    queued: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for item in candidates:
        was = str(item.get("reason", ""))
        new = ledger.mark_queued(
            item["uri"],
            f"re-queued by iiif-process-ecs -mode retry (was: {was})",
            expect_status="failed",
            reset_attempts=True,
        )
        if new is None:
            report.skipped.append({"uri": item["uri"], "reason": "no longer failed"})
        else:
            queued[item["uri"]] = (item, new)
    sent = requeuer.send(
        [
            RequeueKey(
                uri=uri,
                etag=str(before.get("etag", "")),
                size=before.get("size") if isinstance(before.get("size"), int) else None,
                sequencer=retry_sequencer(run, uri),
            )
            for uri, (before, _) in queued.items()
        ]
    )
    report.requeued.extend(sent.sent)
    for uri, reason in sent.failed:
        before, new = queued[uri]
        ledger.put_back(before, expect={"status": "queued", "updated_at": new["updated_at"]})
        report.failed.append({"uri": uri, "reason": reason})
    return report


def _require(values: Mapping[str, Any], mode: str, *names: str) -> None:
    missing = [f"-{name}" for name in names if not values.get(name)]
    if missing:
        raise LedgerUsageError(f"-mode {mode} needs {', '.join(missing)} (or -stack)")


def status_cost(
    ledger: Ledger, ecs: Any, values: Mapping[str, Any], region: str, now: datetime
) -> dict[str, Any]:
    """The ``cost`` member of the status: images finished since ``-since`` (status_cost.py)."""
    since = parse_since(values["since"], now)
    if not values.get("task"):
        return {"since": now_iso(since), "error": "needs -task (or -stack) for the task's size"}
    return cost_report(
        ledger,
        ecs,
        cluster=values["cluster"],
        size=task_size(ecs, values["task"]),
        since=since,
        now=now,
        region=region,
        prices=values["prices"],
    )


def run_ledger_mode(
    mode: str,
    values: Mapping[str, Any],
    session: Any,
    stdout: TextIO,
    *,
    nonce: str = "",
    now: datetime | None = None,
) -> int:
    """Run ``-mode status`` or ``-mode retry`` with the CLI's flag ``values``; returns the exit
    status (0, or 1 when some key could not be re-queued)."""
    ledger = Ledger(values["ledger-table"] or "-", session=session)
    if mode == "status":
        _require(values, mode, "ledger-table", "cluster")
        ecs = session.client("ecs")
        report = status_report(ledger, ecs, values["cluster"])
        region = getattr(session, "region_name", "") or ""
        report["cost"] = status_cost(ledger, ecs, values, region, now or datetime.now(UTC))
        if values.get("alarm-topic"):
            report["alarms"] = alarm_states(session.client("cloudwatch"), values["alarm-topic"])
        if values["json"]:
            stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        else:
            stdout.write(format_report(report, values["ledger-table"]))
        return 0
    _require(values, mode, "ledger-table", "event-queue-url", "source-bucket")
    requeuer = Requeuer(
        session.client("sqs"),
        values["event-queue-url"],
        values["source-bucket"],
        region=getattr(session, "region_name", "") or "",
    )
    result = retry_failed(
        ledger, requeuer, uris=values["uri"], reason_contains=values["reason"], run=nonce
    )
    stdout.write(json.dumps(result.as_dict(), indent=2, ensure_ascii=False) + "\n")
    return 1 if result.failed else 0
