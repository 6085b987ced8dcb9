"""The whole embedded AWS: moto's server plus the pieces it lacks, started and stopped together."""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from local_aws.cfn_alarms import template_alarms
from local_aws.cfn_task_definition import full_task_definitions
from local_aws.distribution import LocalDistribution, local_distribution
from local_aws.ecs_client_token import run_task_client_tokens
from local_aws.lambda_runner import real_lambda_handlers
from local_aws.server import DEFAULT_REGION, EmbeddedAws, moto_server
from local_aws.sqs_batches import BatchListener, LambdaPollers, lambda_pollers
from local_aws.task_runner import (
    FARGATE_STOP_GRACE_SECONDS,
    LocalTaskRunner,
    TaskListener,
    TaskRun,
    local_task_runner,
)

#: What each piece stands in for; the demo prints it and the README repeats it.
PIECES = {
    "moto server (local_aws/server.py)": "S3, Lambda, ECS, CloudFormation, CloudWatch Logs, "
    "IAM, EC2, ECR, SQS, SSM, DynamoDB, EventBridge: the AWS APIs, in this process on a free "
    "localhost port (EventBridge delivers matched events to SQS targets)",
    "Lambda runner (local_aws/lambda_runner.py)": "the Lambda Python runtime: runs the deployed "
    "zip's handler in a child process with the function's environment",
    "RunTask clientToken (local_aws/ecs_client_token.py)": "ECS's idempotent RunTask: "
    "a repeated clientToken starts no second task",
    "task definitions (local_aws/cfn_task_definition.py)": "CloudFormation's whole "
    "AWS::ECS::TaskDefinition (moto's drops cpu, roles, runtime platform)",
    "SQS pollers (local_aws/sqs_batches.py)": "Lambda's pollers for every SQS event source "
    "mapping of the stack (moto invokes once per message): gather a batch, invoke once, delete "
    "what the function did not report in batchItemFailures",
    "task runner (local_aws/task_runner.py)": "Fargate and the awslogs driver: runs each started "
    "task's container command with the project's iiif-process under the task's memory limit, "
    "logs to CloudWatch, honours StopTask (SIGTERM, then SIGKILL), stops the task",
    "task state events (local_aws/ecs_events.py)": "ECS's 'ECS Task State Change' events "
    "(RUNNING, STOPPED with stopCode and exit codes), put on the default event bus",
    "CloudFront stand-in (local_aws/distribution.py)": "the stack's CloudFront distribution "
    "(which moto cannot create): serves the derivatives bucket on http://localhost with "
    "Content-Type and CORS headers; deployed as publicBaseUrl, so tasks write it into "
    "info.json and manifests",
}


@dataclass(frozen=True)
class Invocation:
    """One Lambda invocation the emulator ran."""

    function_name: str
    event: Any
    result: str
    errored: bool
    seconds: float


@dataclass
class LocalAws:
    """A running embedded AWS."""

    aws: EmbeddedAws
    tasks: LocalTaskRunner
    pollers: LambdaPollers
    invocations: list[Invocation] = field(default_factory=list)
    skipped_resource_types: set[str] = field(default_factory=set)
    #: The stand-in for the stack's CloudFront distribution; deploy with its `url` as the
    #: `publicBaseUrl` setting (`local_aws.deploy.deploy(..., public_base_url=...)`).
    distribution: LocalDistribution | None = None

    def busy(self) -> bool:
        """Whether a task runs or is about to, or a mapped queue holds or delivers messages."""
        return self.tasks.busy() or self.pollers.busy()

    def wait_until_idle(self, timeout: float = 180.0, settle: float = 0.5) -> list[TaskRun]:
        """Wait until tasks, queues and invocations have been quiet for `settle` seconds (so
        whatever a stopped task's event re-queues has run too); return every task run."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            now = time.monotonic()
            if self.busy():
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= settle:
                return list(self.tasks.runs)
            time.sleep(0.05)
        raise TimeoutError(f"the embedded AWS is still busy after {timeout:.0f} s")

    def reset(self) -> None:
        """Forget every AWS resource, task and invocation (a clean account)."""
        self.wait_until_idle()
        self.aws.reset()
        self.tasks.forget()
        self.pollers.batches.clear()
        self.invocations.clear()


class _SkippedResourceTypes(logging.Filter):
    """Collects (and keeps off the console) moto's "No Moto CloudFormation support for X"."""

    def __init__(self, into: set[str]) -> None:
        super().__init__()
        self._into = into

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "No Moto CloudFormation support for %s" and record.args:
            self._into.add(str(record.args[0]))  # type: ignore[index]
            return False
        return True


@contextmanager
def local_aws(
    region: str = DEFAULT_REGION,
    on_task: TaskListener | None = None,
    max_parallel_tasks: int = 4,
    memory: str = "auto",
    stop_grace_seconds: float = FARGATE_STOP_GRACE_SECONDS,
    batch_window_cap: float | None = None,
    on_batch: BatchListener | None = None,
    port: int | None = None,
    distribution_port: int | None = None,
) -> Iterator[LocalAws]:
    """Start moto's server with the Lambda runner, RunTask tokens, the SQS pollers, the task
    runner and the CloudFront stand-in. `memory`, `stop_grace_seconds`: see `LocalTaskRunner`;
    `batch_window_cap`: see `LambdaPollers`; `port`: the server's, `distribution_port`: the
    stand-in's (default: free ones)."""
    invocations: list[Invocation] = []
    lock = threading.Lock()

    def record(name: str, event: Any, result: str, errored: bool, seconds: float) -> None:
        with lock:
            invocations.append(Invocation(name, event, result, errored, seconds))

    skipped: set[str] = set()
    moto_log = logging.getLogger("moto")
    skipped_filter = _SkippedResourceTypes(skipped)
    with ExitStack() as stack, warnings.catch_warnings():
        # moto warns once per unsupported resource type; the demo reports them in one line.
        warnings.filterwarnings("ignore", message="Tried to parse", category=UserWarning)
        moto_log.addFilter(skipped_filter)
        stack.callback(moto_log.removeFilter, skipped_filter)
        aws = stack.enter_context(moto_server(region, port))
        stack.enter_context(real_lambda_handlers(aws, on_invocation=record))
        stack.enter_context(run_task_client_tokens())
        stack.enter_context(full_task_definitions())
        stack.enter_context(template_alarms())
        pollers = stack.enter_context(
            lambda_pollers(aws, batch_window_cap=batch_window_cap, on_batch=on_batch)
        )
        runner = stack.enter_context(
            local_task_runner(
                aws,
                on_event=on_task,
                max_parallel=max_parallel_tasks,
                memory=memory,
                stop_grace_seconds=stop_grace_seconds,
            )
        )
        distribution = stack.enter_context(local_distribution(aws=aws, port=distribution_port))
        yield LocalAws(
            aws=aws,
            tasks=runner,
            pollers=pollers,
            invocations=invocations,
            skipped_resource_types=skipped,
            distribution=distribution,
        )
