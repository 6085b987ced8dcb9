"""`iiif-process-ecs`: start iiif-process tasks from the command line (the seed's tool).

Modes: ``task`` (RunTask from here), ``invoke`` (invoke the deployed Lambda), ``lambda`` (run
the Lambda's logic here on an event read from ``-event``, default stdin), ``status`` and
``retry`` (the ledger: see status.py), ``backfill`` (see backfill.py). Exit status: 0 when
every URI was launched or skipped (and, with -wait, every task exited 0); 1 when a URI failed
or a task failed, vanished or outlived -wait-timeout; 2 for a wrong command line or setting.

This module turns the command line and the environment into flags; modes.py runs the mode.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

from botocore.exceptions import BotoCoreError, ClientError

from . import logs
from .backfill import BackfillUsageError
from .cost import PriceError
from .dsn import DsnError
from .events import InvalidEvent
from .flags import Flag, FlagError, HelpRequested, parse_flags, usage
from .ledger import LedgerError
from .modes import PROGRAM, Runtime, UsageError, run
from .settings import (
    DEFAULT_CONFIG,
    DEFAULT_INSTRUCTIONS,
    DEFAULT_MAX_SOURCE_BYTES,
    DEFAULT_MAX_URIS_PER_TASK,
    DEFAULT_REPORT_NAME,
    SettingsError,
    read_environment,
)
from .stack import StackError
from .status import LedgerUsageError
from .status_cost import DEFAULT_SINCE, SinceError
from .status_html import HtmlTargetError
from .waiting import DEFAULT_WAIT_INTERVAL, DEFAULT_WAIT_TIMEOUT

__all__ = ["FLAGS", "Runtime", "main"]

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
        DEFAULT_SINCE,
        "-mode status: cost of the images finished since this time (ISO 8601, or 90m, 24h, 7d).",
    ),
    Flag(
        "prices",
        "string",
        "",
        "Override list prices, e.g. 'fargate_vcpu_hour=0.05,s3_put_per_1000=0.0054' (see cost.py).",
    ),
)


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
        return run(flags, rt)
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


def console() -> None:  # pragma: no cover - the installed script's entry
    """Entry for `python -m iiif_process_ecs.cli`."""
    raise SystemExit(main())


if __name__ == "__main__":  # pragma: no cover
    console()
