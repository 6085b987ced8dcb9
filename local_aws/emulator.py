"""The whole embedded AWS: moto's server plus the pieces it lacks, started and stopped together."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from local_aws.ecs_client_token import run_task_client_tokens
from local_aws.lambda_runner import real_lambda_handlers
from local_aws.server import DEFAULT_REGION, EmbeddedAws, moto_server
from local_aws.task_runner import LocalTaskRunner, TaskListener, local_task_runner

#: What each piece stands in for; the demo prints it and the README repeats it.
PIECES = {
    "moto server (local_aws/server.py)": "S3, Lambda, ECS, CloudFormation, CloudWatch Logs, "
    "IAM, EC2, ECR, SQS, SSM: the AWS APIs, in this process on a free localhost port",
    "Lambda runner (local_aws/lambda_runner.py)": "the Lambda Python runtime: runs the deployed "
    "zip's handler in a child process with the function's environment",
    "RunTask clientToken (local_aws/ecs_client_token.py)": "ECS's idempotent RunTask: "
    "a repeated clientToken starts no second task",
    "SQS batch delivery (local_aws/sqs_batches.py)": "the batching of Lambda's SQS event source "
    "mapping (moto invokes once per message): receives the queued messages, invokes once, deletes "
    "what the function did not report in batchItemFailures",
    "task runner (local_aws/task_runner.py)": "Fargate and the awslogs driver: runs each started "
    "task's container command with the project's iiif-process, logs to CloudWatch, stops the task",
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
    invocations: list[Invocation] = field(default_factory=list)
    skipped_resource_types: set[str] = field(default_factory=set)

    def reset(self) -> None:
        """Forget every AWS resource, task and invocation (a clean account)."""
        self.tasks.wait_until_idle()
        self.aws.reset()
        self.tasks.forget()
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
) -> Iterator[LocalAws]:
    """Start moto's server with the Lambda runner, RunTask tokens and the task runner."""
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
        aws = stack.enter_context(moto_server(region))
        stack.enter_context(real_lambda_handlers(aws, on_invocation=record))
        stack.enter_context(run_task_client_tokens())
        runner = stack.enter_context(
            local_task_runner(aws, on_event=on_task, max_parallel=max_parallel_tasks)
        )
        yield LocalAws(
            aws=aws, tasks=runner, invocations=invocations, skipped_resource_types=skipped
        )
