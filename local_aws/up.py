"""`make up`: the stack deployed on an embedded AWS, kept running until Ctrl-C.

Starts moto's server with the local stand-ins (the Lambda runner, Lambda's SQS pollers for every
event source mapping, the local task runner with the task's memory limit and StopTask, the ECS
task state events on the default bus, the stand-in for the CloudFront distribution), deploys the
app with `cdk bootstrap` and `cdk deploy` as `make demo` does (the stand-in's URL as
`publicBaseUrl`, unless `-c publicBaseUrl=...` names another), prints the `export` lines that
point a shell's aws-cli and `iiif-process-ecs` at it and the stack's outputs, then logs what
happens (batches delivered, tasks started and stopped) until Ctrl-C or SIGTERM.

    python -m local_aws.up [--port N] [--stack NAME] [-c key=value ...] [--stop-grace S]
                           [--batch-window-cap S] [--memory auto|cgroup|rss] [--env-file PATH]
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from local_aws.deploy import (
    DEFAULT_STACK,
    EMULATOR_ONLY_MESSAGE,
    IMAGE_SKIPPED_MESSAGE,
    DeployedStack,
    DeployError,
    local_context,
)
from local_aws.deploy import bootstrap as cdk_bootstrap
from local_aws.deploy import deploy as cdk_deploy
from local_aws.emulator import PIECES, LocalAws, local_aws
from local_aws.server import EmbeddedAws
from local_aws.sqs_batches import PolledBatch
from local_aws.task_runner import FARGATE_STOP_GRACE_SECONDS, TaskRun

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Printed once the stack is deployed and the export lines are out.
READY_LINE = "READY: the stack is up; Ctrl-C to stop."
_print_lock = threading.Lock()


def say(text: str = "") -> None:
    """Print a line whole, also from the pollers' and the task runner's threads."""
    with _print_lock:
        print(text, flush=True)


def log(text: str) -> None:
    say(f"[{time.strftime('%H:%M:%S')}] {text}")


def export_lines(aws: EmbeddedAws) -> list[str]:
    """The `export` lines that point a shell's AWS SDKs, aws-cli and iiif-process-ecs here."""
    env = aws.aws_env()
    venv_bin = Path(sys.executable).parent
    return [
        f"export AWS_ENDPOINT_URL={shlex.quote(env['AWS_ENDPOINT_URL'])}",
        f"export AWS_REGION={env['AWS_REGION']} AWS_DEFAULT_REGION={env['AWS_DEFAULT_REGION']}",
        f"export AWS_ACCESS_KEY_ID={env['AWS_ACCESS_KEY_ID']} "
        f"AWS_SECRET_ACCESS_KEY={env['AWS_SECRET_ACCESS_KEY']} "
        f"AWS_SESSION_TOKEN={env['AWS_SESSION_TOKEN']}",
        "unset AWS_PROFILE AWS_DEFAULT_PROFILE",
        f'export PATH={shlex.quote(str(venv_bin))}:"$PATH"  # aws, iiif-process-ecs',
    ]


def output_lines(stack: DeployedStack) -> list[str]:
    width = max((len(k) for k in stack.outputs), default=0)
    return [f"  {key:{width}}  {value}" for key, value in sorted(stack.outputs.items())]


def example_lines(stack: DeployedStack) -> list[str]:
    source = stack.outputs.get("SourceBucketName", "SOURCE_BUCKET")
    cluster = stack.outputs.get("ClusterName", "CLUSTER")
    return [
        f"aws s3 cp samples/coffee.jpg s3://{source}/",
        f"aws ecs list-tasks --cluster {cluster} --desired-status STOPPED",
        f"iiif-process-ecs -stack {stack.name} -mode invoke -uri coffee.jpg -wait",
        f"iiif-process-ecs -stack {stack.name} -mode status",
        f"aws s3 ls s3://{stack.outputs.get('DerivativesBucketName', 'DERIVATIVES')}/ --recursive",
    ]


def on_task(event: str, run: TaskRun) -> None:
    uris = [run.command[i + 1] for i, a in enumerate(run.command[:-1]) if a == "-uri"]
    if event == "started":
        log(f"[fargate stand-in] task {run.task_id[:8]} started: {', '.join(uris)}")
        return
    reason = f"{run.stop_code}: {run.stopped_reason}"
    if run.container_reason:
        reason += f"; container: {run.container_reason}"
    log(
        f"[fargate stand-in] task {run.task_id[:8]} stopped: exit {run.exit_code} after "
        f"{run.seconds:.1f} s ({reason})"
    )


def on_batch(batch: PolledBatch) -> None:
    delivered = batch.delivered
    summary = ""
    response = delivered.response
    if isinstance(response, dict):
        counts = {k: len(v) for k, v in response.items() if isinstance(v, list)}
        summary = ", ".join(f"{k} {n}" for k, n in counts.items() if n)
    outcome = "errored" if delivered.errored else f"{delivered.deleted} deleted"
    log(
        f"[sqs poller] {delivered.messages} message(s) -> {batch.function_name} "
        f"({batch.seconds:.1f} s, {outcome}{'; ' + summary if summary else ''})"
    )
    if delivered.errored:
        log(f"[sqs poller]   error: {json.dumps(response)[:300]}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make up", description="Deploy the stack on an embedded AWS and keep it running."
    )
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--stack", default=DEFAULT_STACK, help=f"default {DEFAULT_STACK}")
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a CDK context setting for the deployment, as `cdk deploy -c` (repeatable)",
    )
    parser.add_argument(
        "--stop-grace",
        type=float,
        default=FARGATE_STOP_GRACE_SECONDS,
        help="seconds from a StopTask's SIGTERM to SIGKILL (default 30, as Fargate)",
    )
    parser.add_argument(
        "--batch-window-cap",
        type=float,
        default=None,
        help="shorten every event source mapping's batching window to at most this many "
        "seconds (default: as deployed)",
    )
    parser.add_argument(
        "--memory",
        choices=("auto", "cgroup", "rss"),
        default="auto",
        help="how the task memory limit is enforced (default auto: cgroup v1 if possible)",
    )
    parser.add_argument("--env-file", type=Path, help="also write the export lines to this file")
    args = parser.parse_args(argv)
    for item in args.context:
        if "=" not in item:
            parser.error(f"-c {item}: expected KEY=VALUE")
    return args


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM unwind the `with` block, so the emulator and its children stop."""

    def handle(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    # Explicit: a shell that starts us in the background hands SIGINT over ignored.
    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def announce(env: LocalAws, stack: DeployedStack, env_file: Path | None) -> None:
    """What a user needs to drive the running stack."""
    exports = export_lines(env.aws)
    say()
    say("== Paste into another shell (bash/zsh) to drive the stack as on AWS ==")
    for line in exports:
        say(line)
    if env_file is not None:
        env_file.write_text("\n".join(exports) + "\n", encoding="utf-8")
        say(f"# (also written to {env_file}: source {shlex.quote(str(env_file))})")
    say()
    say(f"== Stack {stack.name} outputs ==")
    for line in output_lines(stack):
        say(line)
    say()
    say("== For example ==")
    for line in example_lines(stack):
        say(f"$ {line}")
    say()
    if env.distribution is not None:
        say(f"CloudFront stand-in: {env.distribution.url} serves the derivatives bucket (CORS)")
    say(f"Task memory limit: {env.tasks.memory.description}")
    say(f"StopTask: SIGTERM, SIGKILL {env.tasks.stop_grace_seconds:g} s later")
    say("Ctrl-C stops it and forgets everything (the emulator keeps nothing on disk).")
    say(READY_LINE)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _interrupt_on_signals()
    context = dict(item.split("=", 1) for item in args.context)
    try:
        with local_aws(
            on_task=on_task,
            on_batch=on_batch,
            memory=args.memory,
            stop_grace_seconds=args.stop_grace,
            batch_window_cap=args.batch_window_cap,
            port=args.port or None,
        ) as env:
            say(f"moto server: {env.aws.endpoint_url} (region {env.aws.region}, test credentials)")
            for piece, stands_in_for in PIECES.items():
                say(f"  - {piece}: {stands_in_for}")
            started = time.monotonic()
            say(f"$ cdk bootstrap aws://{env.aws.account_id}/{env.aws.region}")
            cdk_bootstrap(env.aws)
            assert env.distribution is not None
            shown = " ".join(
                f"-c {k}={v}" for k, v in local_context(env.distribution.url, context).items()
            )
            say(f"$ cdk synth --output cdk.out.local {shown}")
            say(f"$ cdk deploy {args.stack} --app cdk.out.local --require-approval never")
            say(f"  NOTE: {IMAGE_SKIPPED_MESSAGE}")
            say(f"  NOTE: {EMULATOR_ONLY_MESSAGE}")
            stack = cdk_deploy(
                env.aws, args.stack, extra_context=context, public_base_url=env.distribution.url
            )
            say(f"  deployed in {time.monotonic() - started:.0f} s")
            announce(env, stack, args.env_file)
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                say("\nstopping: running tasks get SIGTERM, then the emulator stops")
                raise
    except DeployError as error:
        say(f"\nmake up failed: {error}")
        return 1
    except KeyboardInterrupt:
        say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
