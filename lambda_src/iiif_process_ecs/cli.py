"""`iiif-process-ecs`: start iiif-process tasks from the command line (the seed's tool).

Modes: ``task`` (RunTask from here), ``invoke`` (invoke the deployed Lambda), ``lambda`` (run
the Lambda's logic here on an event read from ``-event``, default stdin), ``status`` and
``retry`` (the ledger: see status.py), ``backfill`` (see backfill.py). Exit status: 0 when
every URI was launched or skipped (and, with -wait, every task exited 0); 1 when a URI failed
or a task failed, vanished or outlived -wait-timeout; 2 for a wrong command line or setting.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from . import logs
from .backfill import BackfillUsageError
from .backfill_mode import run_backfill_mode
from .claims import recipe_of_task_definition
from .clients import LazyClient, new_session
from .cost import PriceError
from .dsn import DsnError, session_from_dsn
from .events import InvalidEvent, ObjectRecord
from .flags import Flag, FlagError, HelpRequested, ParsedFlags, parse_flags, usage
from .keys import strip_path, strip_path_collisions
from .ledger import LedgerError, now_iso, open_ledger
from .service import DEFAULT_TIME_BUDGET, run_event
from .settings import (
    DEFAULT_CONFIG,
    DEFAULT_INSTRUCTIONS,
    DEFAULT_MAX_SOURCE_BYTES,
    DEFAULT_MAX_URIS_PER_TASK,
    DEFAULT_REPORT_NAME,
    Settings,
    SettingsError,
    read_environment,
)
from .stack import StackError, stack_outputs
from .status import LedgerUsageError, run_ledger_mode
from .status_cost import SinceError
from .status_html import HtmlTargetError, check_html_target, run_status_html
from .trigger import start_tasks
from .waiting import (
    DEFAULT_WAIT_INTERVAL,
    DEFAULT_WAIT_TIMEOUT,
    LogLocation,
    WaitContext,
    describe_results,
    wait_for_tasks,
)

PROGRAM = "iiif-process-ecs"
MODES = ("task", "invoke", "lambda", "status", "retry", "backfill")
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
DEFAULT_LOG_STREAM_PREFIX = "iiif-process"

FLAGS: tuple[Flag, ...] = (
    Flag(
        "mode",
        "string",
        "task",
        "Valid modes are: lambda (run the Lambda function's logic here on -event), invoke "
        "(invoke the Lambda function), task (run the ECS task), status (the ledger's counts, "
        "failures, running tasks and cost since -since), retry (re-queue failed images), "
        "backfill (queue what the source bucket already holds).",
    ),
    Flag("cluster", "string", "", "The name of your AWS ECS cluster."),
    Flag("container", "string", "", "The name of your AWS ECS container."),
    Flag(
        "task",
        "string",
        "",
        "The name of your AWS ECS task (inclusive of its version number), or its ARN.",
    ),
    Flag("config", "string", DEFAULT_CONFIG, "The path your IIIF config (on/in your container)."),
    Flag(
        "instructions",
        "string",
        DEFAULT_INSTRUCTIONS,
        "The path your IIIF processing instructions (on/in your container).",
    ),
    Flag(
        "ecs-dsn",
        "string",
        "",
        "A valid (go-whosonfirst-aws) ECS DSN: 'region=R credentials=C'. Default: the AWS "
        "SDK's usual region and credentials.",
    ),
    Flag(
        "lambda-dsn",
        "string",
        "",
        "A valid (go-whosonfirst-aws) Lambda DSN. Default: -ecs-dsn, else the SDK's defaults.",
    ),
    Flag(
        "lambda-func",
        "string",
        "",
        'A valid Lambda function name. Required if -mode is "invoke" (or use -stack).',
    ),
    Flag(
        "lambda-type",
        "string",
        "RequestResponse",
        "The Lambda invocation type: RequestResponse, Event or DryRun.",
    ),
    Flag("report", "bool", False, "Store a process report (JSON) for each URI in the cache tree."),
    Flag(
        "report-name",
        "string",
        DEFAULT_REPORT_NAME,
        "The filename for process reports, as in '${URI}/process.json'.",
    ),
    Flag(
        "uri",
        "list",
        [],
        "One or more valid IIIF URIs (S3 keys of the source bucket).",
        split_commas=False,
    ),
    Flag("subnet", "list", [], "One or more AWS subnets in which your task will run."),
    Flag("security-group", "list", [], "One of more AWS security groups your task will assume."),
    Flag("assign-public-ip", "string", "ENABLED", "ENABLED or DISABLED."),
    Flag(
        "strip-paths",
        "bool",
        False,
        "Strip directory tree from URIs. Two URIs with the same file name are then an error.",
    ),
    Flag("max-uris-per-task", "int", DEFAULT_MAX_URIS_PER_TASK, "At most this many URIs per task."),
    Flag(
        "max-source-bytes",
        "int",
        DEFAULT_MAX_SOURCE_BYTES,
        "-mode lambda / backfill: skip objects larger than this (0 = no limit).",
    ),
    Flag(
        "wait",
        "bool",
        False,
        "Wait for the tasks to complete, then show exit codes, logs and reports.",
    ),
    Flag("wait-timeout", "float", DEFAULT_WAIT_TIMEOUT, "Give up waiting after this many seconds."),
    Flag("wait-interval", "float", DEFAULT_WAIT_INTERVAL, "Seconds between task status checks."),
    Flag(
        "stack",
        "string",
        "",
        "Fill cluster, task, container, subnets, security groups, function, log group and "
        "derivatives bucket from this CloudFormation stack's outputs.",
    ),
    Flag(
        "derivatives-bucket",
        "string",
        "",
        "The bucket the reports are in (for -wait); default: the stack's.",
    ),
    Flag(
        "log-group",
        "string",
        "",
        "The task's CloudWatch log group (for -wait); default: the stack's, else the task "
        "definition's.",
    ),
    Flag(
        "log-stream-prefix",
        "string",
        DEFAULT_LOG_STREAM_PREFIX,
        "The awslogs stream prefix of the task (with -log-group).",
    ),
    Flag(
        "source-bucket",
        "string",
        "",
        "-mode lambda: refuse records for other buckets (default: the stack's, else any).",
    ),
    Flag(
        "event",
        "string",
        "-",
        "-mode lambda: path of the JSON event to handle ('-' = standard input).",
    ),
    Flag(
        "ledger-table",
        "string",
        "",
        "The ledger's DynamoDB table (default: the stack's); unset = no ledger.",
    ),
    Flag(
        "event-queue-url",
        "string",
        "",
        "-mode retry: the queue re-queued keys are sent to (default: the stack's).",
    ),
    Flag(
        "alarm-topic",
        "string",
        "",
        "-mode status: show the state of the alarms notifying this SNS topic (default: the "
        "stack's AlarmTopicArn).",
    ),
    Flag(
        "recipe",
        "string",
        "",
        "The recipe recorded in the ledger (default: the task definition's IIIF_PROCESS_RECIPE).",
    ),
    Flag(
        "force",
        "bool",
        False,
        "-mode task / lambda: launch even keys the ledger has as unchanged (same ETag, recipe); "
        "-mode backfill: queue them (and queued or failed ones) again.",
    ),
    Flag("json", "bool", False, "-mode status / backfill: print JSON."),
    Flag(
        "html",
        "string",
        "",
        "-mode status: also write a one-page HTML report (counts, failures by reason with "
        "thumbnails, running tasks, cost) to this file.",
    ),
    Flag(
        "reason",
        "string",
        "",
        "-mode retry: only the failed images whose reason contains this text.",
    ),
    Flag("prefix", "string", "", "-mode backfill: only keys under this prefix."),
    Flag(
        "start-after",
        "string",
        "",
        "-mode backfill: list from the key after this one (printed when a run is stopped).",
        split_commas=False,
    ),
    Flag(
        "dry-run",
        "bool",
        False,
        "-mode backfill: change nothing; print what would be queued, the tasks and the cost.",
    ),
    Flag(
        "since",
        "string",
        "24h",
        "-mode status: cost of the images finished since this time (ISO 8601, or 90m, 24h, 7d).",
    ),
    Flag(
        "prices",
        "string",
        "",
        "Override list prices, e.g. 'fargate_vcpu_hour=0.05,s3_put_per_1000=0.0054' (see cost.py).",
    ),
)

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
    sleep: Callable[[float], None] | None = None
    monotonic: Callable[[], float] | None = None
    rand: Callable[[], float] | None = None
    nonce: Callable[[], str] = field(default_factory=lambda: lambda: uuid.uuid4().hex)
    # -mode backfill: called after each finished page (tests stop a run with KeyboardInterrupt).
    backfill_page: Callable[[Any], None] | None = None


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    runtime: Runtime | None = None,
) -> int:
    """Run the command; returns the exit status (the console script exits with it)."""
    rt = runtime or Runtime()
    env = read_environment() if environ is None else environ
    args = sys.argv[1:] if argv is None else list(argv)
    logs.configure(rt.stderr)
    try:
        flags = parse_flags(FLAGS, args, environ=env)
    except HelpRequested:
        rt.stderr.write(usage(PROGRAM, FLAGS))
        return 0
    except FlagError as error:
        rt.stderr.write(f"{PROGRAM}: {error}\n{usage(PROGRAM, FLAGS)}")
        return 2
    try:
        return _run(flags, rt)
    except (
        UsageError,
        SettingsError,
        DsnError,
        StackError,
        InvalidEvent,
        LedgerUsageError,
        BackfillUsageError,
        SinceError,
        PriceError,
        HtmlTargetError,
    ) as error:
        rt.stderr.write(f"{PROGRAM}: {error}\n")
        return 2
    except (ClientError, BotoCoreError, LedgerError) as error:
        rt.stderr.write(f"{PROGRAM}: AWS error: {error}\n")
        return 1


def _session(dsn: str) -> boto3.Session:
    return session_from_dsn(dsn) if dsn else new_session()


def _run(flags: ParsedFlags, rt: Runtime) -> int:
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
            remaining_seconds=_budget(rt),
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
            remaining_seconds=_budget(rt),
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
        flag = next(f for f in FLAGS if f.name == name)
        flags.values[name] = (
            [p.strip() for p in value.split(",") if p.strip()] if (flag.kind == "list") else value
        )
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


def _budget(rt: Runtime) -> Callable[[], float]:
    import time

    clock = rt.monotonic or time.monotonic
    deadline = clock() + DEFAULT_TIME_BUDGET
    return lambda: deadline - clock()


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
    kwargs: dict[str, Any] = {"timeout": v["wait-timeout"], "interval": v["wait-interval"]}
    if rt.sleep is not None:
        kwargs["sleep"] = rt.sleep
    if rt.monotonic is not None:
        kwargs["monotonic"] = rt.monotonic
    results = wait_for_tasks(ecs, tasks, cluster=v["cluster"] or None, **kwargs)
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


def console() -> None:  # pragma: no cover - the installed script's entry
    """Entry for `python -m iiif_process_ecs.cli`."""
    raise SystemExit(main())


if __name__ == "__main__":  # pragma: no cover
    console()
