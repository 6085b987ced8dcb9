"""The modes of `iiif-process-ecs`: from parsed flags to what each ``-mode`` does (issue #13).

`cli.py` turns the command line and environment into flags and calls :func:`run`; this module
checks the combination, fills flags from ``-stack`` and runs ``task``, ``invoke``, ``lambda``,
``status``, ``retry`` or ``backfill``. Exit statuses are as `cli.py` documents.
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TextIO

import boto3

from .backfill_mode import run_backfill_mode
from .claims import recipe_of_task_definition
from .clients import LazyClient, new_session
from .dsn import session_from_dsn
from .events import ObjectRecord
from .flags import ParsedFlags
from .keys import strip_path, strip_path_collisions
from .ledger import now_iso, open_ledger
from .service import remaining_seconds_of, run_event
from .settings import Settings, split_list
from .stack import stack_outputs
from .status import run_ledger_mode
from .status_html import check_html_target, run_status_html
from .trigger import start_tasks
from .waiting import LogLocation, WaitContext, describe_results, wait_for_tasks

PROGRAM = "iiif-process-ecs"
MODES = ("task", "invoke", "lambda", "status", "retry", "backfill")
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")

# -stack output → flag it fills (unless the flag was given on the command line).
STACK_FILLS = {
    "ClusterName": "cluster",
    "TaskDefinitionArn": "task",
    "ContainerName": "container",
    "SubnetIds": "subnet",
    "SecurityGroupIds": "security-group",
    "AssignPublicIp": "assign-public-ip",
    "FunctionName": "lambda-func",
    "DerivativesBucketName": "derivatives-bucket",
    "LogGroupName": "log-group",
    "LogStreamPrefix": "log-stream-prefix",
    "SourceBucketName": "source-bucket",
    "LedgerTableName": "ledger-table",
    "EventQueueUrl": "event-queue-url",
    "AlarmTopicArn": "alarm-topic",
}


class UsageError(ValueError):
    """A flag combination or value cannot work (exit status 2)."""


@dataclass
class Runtime:
    """What the CLI talks to; tests replace sleep/clock and the standard streams."""

    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    rand: Callable[[], float] = random.random
    nonce: Callable[[], str] = field(default_factory=lambda: lambda: uuid.uuid4().hex)
    # -mode backfill: called after each finished page (tests stop a run with KeyboardInterrupt).
    backfill_page: Callable[[Any], None] | None = None


def _session(dsn: str) -> boto3.Session:
    return session_from_dsn(dsn) if dsn else new_session()


def run(flags: ParsedFlags, rt: Runtime) -> int:
    """Check the flag combination, fill from -stack, and run ``-mode``; returns the exit status.

    Raises UsageError (and the other errors `cli.main` maps to exit status 2) for a command
    line that cannot work."""
    v = flags.values
    mode = v["mode"]
    if mode not in MODES:
        raise UsageError(f"-mode must be one of {', '.join(MODES)}, not {mode!r}")
    if v["lambda-type"] not in INVOCATION_TYPES:
        raise UsageError(
            f"-lambda-type must be one of {', '.join(INVOCATION_TYPES)}, not {v['lambda-type']!r}"
        )
    if v["wait-timeout"] <= 0 or v["wait-interval"] <= 0:
        raise UsageError("-wait-timeout and -wait-interval must be positive")

    if v["html"] and mode != "status":
        raise UsageError("-html works with -mode status")
    if v["html"]:
        check_html_target(v["html"])
    ecs_session = _session(v["ecs-dsn"])
    lambda_session = _session(v["lambda-dsn"]) if v["lambda-dsn"] else ecs_session
    if v["stack"]:
        cfn_session = lambda_session if mode == "invoke" else ecs_session
        _apply_stack(flags, stack_outputs(cfn_session.client("cloudformation"), v["stack"]))

    if mode == "backfill":
        return run_backfill_mode(
            v,
            ecs_session,
            rt.stdout,
            rt.stderr,
            nonce=rt.nonce(),
            on_page=rt.backfill_page,
            sleep=rt.sleep,
            rand=rt.rand,
        )
    if mode == "status" and v["html"]:
        return run_status_html(
            v, ecs_session, rt.stdout, rt.stderr, generated_at=now_iso(datetime.now(UTC))
        )
    if mode in ("status", "retry"):
        return run_ledger_mode(mode, v, ecs_session, rt.stdout, nonce=rt.nonce())
    if mode == "invoke":
        if v["force"]:
            raise UsageError("-force works with -mode task and -mode lambda")
        return _invoke(flags, lambda_session, ecs_session if v["ecs-dsn"] else lambda_session, rt)
    settings = _settings(flags)
    ecs = ecs_session.client("ecs")
    ledger = open_ledger(settings, session=ecs_session)
    if ledger is not None and not settings.recipe:
        settings = replace(settings, recipe=recipe_of_task_definition(ecs, settings))
    s3 = LazyClient("s3", ecs_session) if ledger is not None else None
    if mode == "task":
        uris = _uris(flags)
        objects = [ObjectRecord(key=uri, source="cli") for uri in uris]
        outcome = start_tasks(
            objects,
            settings=settings,
            ecs=ecs,
            remaining_seconds=remaining_seconds_of(None, monotonic=rt.monotonic),
            sleep=rt.sleep,
            rand=rt.rand,
            nonce=rt.nonce(),
            ledger=ledger,
            s3=s3,
            force=v["force"],
        )
    else:
        outcome = run_event(
            _read_event(v["event"], rt),
            settings=settings,
            ecs=ecs,
            remaining_seconds=remaining_seconds_of(None, monotonic=rt.monotonic),
            sleep=rt.sleep,
            rand=rt.rand,
            ledger=ledger,
            s3=s3,
            force=v["force"],
        )
    return _finish(outcome.response(), bool(outcome.failed), flags, ecs_session, rt)


def _apply_stack(flags: ParsedFlags, outputs: Mapping[str, str]) -> None:
    """Stack outputs fill every flag that was not given on the command line."""
    for output, name in STACK_FILLS.items():
        if output not in outputs or flags.origin.get(name) == "command line":
            continue
        value = outputs[output]
        # A list flag's value is a list already (its default is []); outputs list with commas.
        is_list = isinstance(flags.values.get(name), list)
        flags.values[name] = list(split_list(value)) if is_list else value
        flags.origin[name] = "stack"


def _settings(flags: ParsedFlags) -> Settings:
    v = flags.values
    missing = [
        f"-{name}"
        for name in ("cluster", "task", "container", "subnet", "security-group")
        if not v[name]
    ]
    if missing:
        raise UsageError(
            f"missing {', '.join(missing)} (give the flags, IIIF_PROCESS_* variables or -stack)"
        )
    return Settings(
        cluster=v["cluster"],
        task_definition=v["task"],
        container=v["container"],
        subnets=tuple(v["subnet"]),
        security_groups=tuple(v["security-group"]),
        assign_public_ip=v["assign-public-ip"].upper(),
        config_path=v["config"],
        instructions_path=v["instructions"],
        report=v["report"],
        report_name=v["report-name"],
        source_bucket=v["source-bucket"] or None,
        max_uris_per_task=v["max-uris-per-task"],
        strip_paths=v["strip-paths"],
        ecs_dsn=v["ecs-dsn"],
        ledger_table=v["ledger-table"] or None,
        recipe=v["recipe"],
        event_queue_url=v["event-queue-url"] or None,
        max_source_bytes=v["max-source-bytes"],
    )


def _uris(flags: ParsedFlags) -> list[str]:
    uris: list[str] = flags.values["uri"]
    if not uris:
        raise UsageError("no -uri given")
    if flags.values["strip-paths"]:
        collisions = strip_path_collisions(uris)
        if collisions:
            raise UsageError("; ".join(f"{uri}: {reason}" for uri, reason in collisions.items()))
    return uris


def _read_event(source: str, rt: Runtime) -> Any:
    try:
        if source == "-":
            text = rt.stdin.read()
        else:
            with open(source, encoding="utf-8") as handle:
                text = handle.read()
    except OSError as error:
        raise UsageError(f"-event {source}: {error.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise UsageError(f"-event {source}: not JSON: {error}") from None


def _invoke(
    flags: ParsedFlags, lambda_session: boto3.Session, wait_session: boto3.Session, rt: Runtime
) -> int:
    v = flags.values
    if not v["lambda-func"]:
        raise UsageError("-mode invoke needs -lambda-func (or -stack)")
    if v["wait"] and v["lambda-type"] != "RequestResponse":
        raise UsageError("-wait needs -lambda-type RequestResponse (only it returns the tasks)")
    uris = _uris(flags)
    if v["strip-paths"]:
        uris = [strip_path(uri) for uri in uris]
    nonce = rt.nonce()
    # The seed's payload: S3-style records with only the (unencoded) key. The per-run sequencer
    # makes this run's tasks new, while a Lambda retry of this same payload starts nothing twice.
    payload = {"Records": [{"s3": {"object": {"key": uri, "sequencer": nonce}}} for uri in uris]}
    response = lambda_session.client("lambda").invoke(
        FunctionName=v["lambda-func"],
        InvocationType=v["lambda-type"],
        Payload=json.dumps(payload).encode("utf-8"),
    )
    status = response.get("StatusCode")
    if v["lambda-type"] != "RequestResponse":
        rt.stdout.write(
            json.dumps({"function": v["lambda-func"], "type": v["lambda-type"], "status": status})
            + "\n"
        )
        return 0
    body = response["Payload"].read().decode("utf-8")
    if response.get("FunctionError"):
        rt.stderr.write(f"{PROGRAM}: the function failed ({response['FunctionError']}): {body}\n")
        return 1
    try:
        result = json.loads(body)
    except ValueError:
        result = None
    if not isinstance(result, dict) or not {"launched", "skipped", "failed", "tasks"} <= set(
        result
    ):
        rt.stderr.write(f"{PROGRAM}: unexpected response from {v['lambda-func']}: {body}\n")
        return 1
    return _finish(result, bool(result["failed"]), flags, wait_session, rt)


def _finish(
    result: Mapping[str, Any], failed: bool, flags: ParsedFlags, session: boto3.Session, rt: Runtime
) -> int:
    rt.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    for entry in result.get("failed", []):
        rt.stderr.write(f"failed: {entry['uri']}: {entry['reason']}\n")
    for entry in result.get("skipped", []):
        rt.stderr.write(f"skipped: {entry['uri']}: {entry['reason']}\n")
    ok = not failed
    if flags.values["wait"] and result.get("tasks"):
        ok &= _wait(list(result["tasks"]), flags, session, rt)
    return 0 if ok else 1


def _wait(tasks: list[str], flags: ParsedFlags, session: boto3.Session, rt: Runtime) -> bool:
    v = flags.values
    ecs = session.client("ecs")
    results = wait_for_tasks(
        ecs,
        tasks,
        cluster=v["cluster"] or None,
        timeout=v["wait-timeout"],
        interval=v["wait-interval"],
        sleep=rt.sleep,
        monotonic=rt.monotonic,
    )
    location = LogLocation(v["log-group"], v["log-stream-prefix"]) if v["log-group"] else None
    context = WaitContext(
        ecs=ecs,
        logs=session.client("logs"),
        s3=session.client("s3"),
        log_location=location,
        derivatives_bucket=v["derivatives-bucket"] or None,
    )
    rt.stdout.write("\n")
    return describe_results(results, context, rt.stdout)
