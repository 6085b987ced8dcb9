"""The CLI's bounded -wait: poll tasks until they stop or vanish, then show what they did."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_WAIT_TIMEOUT = 900.0
DEFAULT_WAIT_INTERVAL = 6.0
DESCRIBE_LIMIT = 100
MAX_LOG_LINES = 1000


@dataclass
class TaskResult:
    """What -wait learned about one task.

    ``state`` is "STOPPED", "MISSING" (ECS no longer knows it) or "TIMEOUT" (still running when
    the wait ended).
    """

    arn: str
    cluster: str
    state: str = "TIMEOUT"
    last_status: str = ""
    stop_code: str = ""
    stopped_reason: str = ""
    containers: list[dict[str, Any]] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    task_definition_arn: str = ""

    @property
    def succeeded(self) -> bool:
        return (
            self.state == "STOPPED"
            and bool(self.containers)
            and all(container.get("exitCode") == 0 for container in self.containers)
        )

    @property
    def task_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    def uris(self) -> list[str]:
        return [self.command[i + 1] for i, arg in enumerate(self.command[:-1]) if arg == "-uri"]

    def report_name(self) -> str | None:
        """The report file name if the task was started with -report, else None."""
        if "-report" not in self.command:
            return None
        if "-report-name" in self.command[:-1]:
            return self.command[self.command.index("-report-name") + 1]
        return "process.json"


def cluster_of(task_arn: str, default: str | None) -> str:
    """The cluster of a task: from a long-format ARN (``task/CLUSTER/ID``) or the default."""
    resource = task_arn.split(":", 5)[-1]
    parts = resource.split("/")
    if len(parts) == 3 and parts[0] == "task":
        return parts[1]
    return default or "default"


def wait_for_tasks(
    ecs: Any,
    task_arns: Sequence[str],
    *,
    cluster: str | None,
    timeout: float = DEFAULT_WAIT_TIMEOUT,
    interval: float = DEFAULT_WAIT_INTERVAL,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> list[TaskResult]:
    """Poll DescribeTasks until every task is STOPPED or MISSING, or ``timeout`` passes."""
    results = {arn: TaskResult(arn=arn, cluster=cluster_of(arn, cluster)) for arn in task_arns}
    deadline = monotonic() + timeout
    while True:
        pending = [result for result in results.values() if result.state == "TIMEOUT"]
        by_cluster: dict[str, list[TaskResult]] = {}
        for result in pending:
            by_cluster.setdefault(result.cluster, []).append(result)
        for name, group in by_cluster.items():
            for start in range(0, len(group), DESCRIBE_LIMIT):
                _describe(ecs, name, group[start : start + DESCRIBE_LIMIT])
        if all(result.state != "TIMEOUT" for result in results.values()):
            break
        if monotonic() + interval > deadline:
            break
        sleep(interval)
    return [results[arn] for arn in task_arns]


def _describe(ecs: Any, cluster: str, group: list[TaskResult]) -> None:
    response = ecs.describe_tasks(cluster=cluster, tasks=[result.arn for result in group])
    by_arn = {task["taskArn"]: task for task in response.get("tasks", [])}
    missing = {f.get("arn") for f in response.get("failures", []) if f.get("reason") == "MISSING"}
    for result in group:
        task = by_arn.get(result.arn)
        if task is None:
            # Reported MISSING, or simply absent: either way the task is gone and waiting longer
            # cannot bring it back (the seed's waiter never ended here).
            result.state = "MISSING"
            result.stopped_reason = (
                "ECS reports the task MISSING"
                if result.arn in missing
                else "ECS no longer returns the task"
            )
            continue
        result.last_status = task.get("lastStatus", "")
        result.task_definition_arn = task.get("taskDefinitionArn", "")
        result.stop_code = task.get("stopCode", "")
        result.stopped_reason = task.get("stoppedReason", "")
        result.containers = task.get("containers", [])
        for override in (task.get("overrides") or {}).get("containerOverrides", []):
            if override.get("command"):
                result.command = list(override["command"])
        if result.last_status == "STOPPED":
            result.state = "STOPPED"


@dataclass(frozen=True)
class LogLocation:
    """Where a task's container logs are: ``{prefix}/{container}/{task_id}`` in ``group``."""

    group: str
    prefix: str


def log_location_from_task_definition(ecs: Any, task_definition_arn: str) -> LogLocation | None:
    """Read the awslogs group and stream prefix of a task definition, if it has them."""
    try:
        definition = ecs.describe_task_definition(taskDefinition=task_definition_arn)
    except (ClientError, BotoCoreError):
        return None
    for container in definition["taskDefinition"].get("containerDefinitions", []):
        config = container.get("logConfiguration") or {}
        options = config.get("options") or {}
        if config.get("logDriver") == "awslogs" and options.get("awslogs-group"):
            return LogLocation(options["awslogs-group"], options.get("awslogs-stream-prefix", ""))
    return None


def log_lines(logs: Any, group: str, stream: str, limit: int = MAX_LOG_LINES) -> list[str]:
    """All messages of one log stream, oldest first (at most ``limit``)."""
    lines: list[str] = []
    kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
    while len(lines) < limit:
        response = logs.get_log_events(**kwargs)
        lines.extend(event["message"] for event in response.get("events", []))
        token = response.get("nextForwardToken")
        if not response.get("events") or token is None or token == kwargs.get("nextToken"):
            break
        kwargs["nextToken"] = token
    return lines[:limit]


@dataclass
class WaitContext:
    """Clients and names -wait needs to show logs and reports; None means unknown."""

    ecs: Any
    logs: Any | None = None
    s3: Any | None = None
    log_location: LogLocation | None = None
    derivatives_bucket: str | None = None
    derivatives_unknown_reason: str = (
        "the derivatives bucket is unknown (give -derivatives-bucket or -stack)"
    )


def describe_results(results: Sequence[TaskResult], context: WaitContext, out: TextIO) -> bool:
    """Print exit code, stop reason, log lines and reports of each task; True if all succeeded."""
    all_ok = True
    for result in results:
        all_ok &= result.succeeded
        _describe_one(result, context, out)
    return all_ok


def _describe_one(result: TaskResult, context: WaitContext, out: TextIO) -> None:
    verdict = "succeeded" if result.succeeded else "FAILED"
    out.write(f"task {result.arn}: {verdict}\n")
    if result.state == "MISSING":
        out.write(f"  state: vanished ({result.stopped_reason}); its outcome is unknown\n")
        return
    if result.state == "TIMEOUT":
        out.write(f"  state: still {result.last_status or 'unknown'} when -wait-timeout ended\n")
    else:
        out.write("  state: STOPPED\n")
    for container in result.containers:
        code = container.get("exitCode")
        extra = f" ({container['reason']})" if container.get("reason") else ""
        hint = " (137: killed, usually out of memory)" if code == 137 else ""
        out.write(f"  container {container.get('name')}: exit code {code}{hint}{extra}\n")
    if result.stop_code or result.stopped_reason:
        out.write(f"  stop: {result.stop_code or '-'}: {result.stopped_reason or '-'}\n")
    uris = result.uris()
    if uris:
        out.write(f"  uris: {', '.join(uris)}\n")
    _write_logs(result, context, out)
    _write_reports(result, uris, context, out)


def _write_logs(result: TaskResult, context: WaitContext, out: TextIO) -> None:
    location = context.log_location
    if location is None and result.task_definition_arn:
        location = log_location_from_task_definition(context.ecs, result.task_definition_arn)
    if context.logs is None or location is None:
        out.write("  logs: cannot show: the log group is unknown (give -log-group or -stack)\n")
        return
    names = [c.get("name") for c in result.containers if c.get("name")] or ["?"]
    for name in names:
        stream = "/".join(part for part in (location.prefix, name, result.task_id) if part)
        try:
            lines = log_lines(context.logs, location.group, stream)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            out.write(f"  logs {location.group} {stream}: none ({code})\n")
            continue
        out.write(f"  logs {location.group} {stream}: {len(lines)} line(s)\n")
        for line in lines:
            out.write(f"    {line.rstrip()}\n")


def _write_reports(result: TaskResult, uris: list[str], context: WaitContext, out: TextIO) -> None:
    report_name = result.report_name()
    if report_name is None:
        out.write("  reports: none (the task was started without -report)\n")
        return
    if context.s3 is None or not context.derivatives_bucket:
        out.write(f"  reports: cannot show: {context.derivatives_unknown_reason}\n")
        return
    for uri in uris:
        key = f"{uri}/{report_name}"
        try:
            body = context.s3.get_object(Bucket=context.derivatives_bucket, Key=key)["Body"].read()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            out.write(f"  report s3://{context.derivatives_bucket}/{key}: not found ({code})\n")
            continue
        try:
            text = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except ValueError:
            text = body.decode("utf-8", errors="replace")
        out.write(f"  report s3://{context.derivatives_bucket}/{key}:\n")
        for line in text.splitlines():
            out.write(f"    {line}\n")
