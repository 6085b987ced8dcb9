"""Runs the real code of a Lambda function when moto invokes it.

moto 5.2.5 runs a function's code only inside Docker; without Docker an invocation only echoes its
payload. This module replaces `moto.awslambda.models.LambdaFunction._invoke_lambda` so that every
invocation moto makes (the Invoke API, S3 event notifications, CloudFormation custom resources)
unzips the function's deployment package, as uploaded by `cdk deploy`, and runs its handler in a
child Python process with the function's environment, pointed at the emulator.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from moto import settings as moto_settings
from moto.awslambda.models import LambdaFunction

from local_aws.server import EmbeddedAws

_BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
# What the child keeps from this process's environment: enough to run Python, nothing of AWS.
_INHERITED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")

#: Called after each invocation with (function name, event, result JSON, errored, seconds).
InvocationListener = Callable[[str, Any, str, bool, float], None]


class UnsupportedRuntimeError(RuntimeError):
    """The function's runtime is not one this runner can execute locally."""


def _function_env(fn: LambdaFunction, aws: EmbeddedAws) -> dict[str, str]:
    env = {k: os.environ[k] for k in _INHERITED_VARIABLES if k in os.environ}
    env.update(
        {
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
            "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(fn.timeout),
            "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
            "LOCAL_AWS_FUNCTION_ARN": fn.function_arn,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    env.update({str(k): str(v) for k, v in (fn.environment_vars or {}).items()})
    # Last, so that nothing in the function's configuration can point it at a real account.
    env.update(aws.aws_env())
    return env


def _as_cloudformation_sends(value: Any) -> Any:
    """Scalars as CloudFormation hands them to a custom resource: strings (`true`, `42`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return {k: _as_cloudformation_sends(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_cloudformation_sends(v) for v in value]
    return value


def custom_resource_event_as_aws_sends(event: Any, aws: EmbeddedAws) -> Any:
    """Make moto's CloudFormation custom resource request look like CloudFormation's.

    Two differences matter to real handlers (CDK's S3 notifications handler among them):
    moto's ResponseURL names the host a handler in Docker would reach it at, while the handler
    here runs on this machine; and moto passes the template's
    booleans and numbers as they are, while CloudFormation passes every scalar property as a
    string (CDK's handler calls `.lower()` on its `Managed` property).
    """
    if not (isinstance(event, dict) and "RequestType" in event and "ResponseURL" in event):
        return event
    event = dict(event)
    parts = urlsplit(str(event["ResponseURL"]))
    if parts.path.startswith("/cloudformation_"):
        emulator = urlsplit(aws.endpoint_url)
        event["ResponseURL"] = urlunsplit(parts._replace(netloc=emulator.netloc))
    for key in ("ResourceProperties", "OldResourceProperties"):
        if isinstance(event.get(key), dict):
            event[key] = _as_cloudformation_sends(event[key])
    return event


def _unpack(fn: LambdaFunction, into: Path) -> None:
    if not fn.code_bytes:
        raise UnsupportedRuntimeError(
            f"function {fn.function_name} has no deployment package in the emulator "
            "(was its code asset uploaded?)"
        )
    with zipfile.ZipFile(io.BytesIO(fn.code_bytes)) as archive:
        archive.extractall(into)


def run_handler(fn: LambdaFunction, event: Any, aws: EmbeddedAws) -> tuple[str, bool, str]:
    """Invoke `fn` with `event` in a child process; return (result JSON, errored, log text)."""
    if not str(fn.run_time or "").startswith("python"):
        raise UnsupportedRuntimeError(
            f"function {fn.function_name} uses runtime {fn.run_time}; "
            "the local Lambda runner runs Python handlers only"
        )
    timeout = float(fn.timeout or 3)
    with tempfile.TemporaryDirectory(prefix=f"lambda-{fn.function_name[:40]}-") as tmp:
        code_dir = Path(tmp, "task")
        result_file = Path(tmp, "result.json")
        _unpack(fn, code_dir)
        started = time.monotonic()
        try:
            completed = subprocess.run(
                # -E -s: the handler sees neither PYTHONPATH nor user site-packages.
                [
                    sys.executable,
                    "-E",
                    "-s",
                    str(_BOOTSTRAP),
                    str(code_dir),
                    fn.handler,
                    str(result_file),
                ],
                input=json.dumps(event),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=_function_env(fn, aws),
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            output = expired.output or ""
            logs = output if isinstance(output, str) else output.decode("utf-8", "replace")
            message = f"Task timed out after {timeout:.2f} seconds"
            error = {"errorMessage": message, "errorType": "Sandbox.Timedout"}
            return json.dumps(error), True, f"{logs}{message}\n"
        # The bootstrap writes the result file in every case but a crash of the interpreter.
        if result_file.exists():
            result = result_file.read_text(encoding="utf-8")
        else:
            result = json.dumps(
                {
                    "errorMessage": f"Runtime exited with status {completed.returncode}",
                    "errorType": "Runtime.ExitError",
                }
            )
        elapsed_ms = (time.monotonic() - started) * 1000
        logs = f"{completed.stdout}REPORT Duration: {elapsed_ms:.0f} ms\n"
        return result, completed.returncode != 0, logs


@contextmanager
def real_lambda_handlers(
    aws: EmbeddedAws, on_invocation: InvocationListener | None = None
) -> Iterator[None]:
    """While active, every Lambda invocation in this process's moto runs the function's code."""
    original = LambdaFunction._invoke_lambda
    original_host = moto_settings.moto_server_host

    def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        # moto hands over the parsed JSON body, or the string "{}" for an empty one.
        if event is None or isinstance(event, str | bytes):
            event = json.loads(event or "{}")
        event = custom_resource_event_as_aws_sends(event, aws)
        started = time.monotonic()
        self.logs_backend.ensure_log_group(self.logs_group_name)
        try:
            result, errored, logs = run_handler(self, event, aws)
        except UnsupportedRuntimeError as error:
            result = json.dumps({"errorMessage": str(error), "errorType": "Runtime.Unsupported"})
            errored, logs = True, f"{error}\n"
        self.save_logs(logs)
        if on_invocation is not None:
            on_invocation(self.function_name, event, result, errored, time.monotonic() - started)
        return result, errored, logs

    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]
    # moto asks Docker for its own address when it thinks it runs in a container (printing a
    # warning when there is no Docker); the handlers here reach it on localhost.
    moto_settings.moto_server_host = lambda: "http://localhost"
    try:
        yield
    finally:
        LambdaFunction._invoke_lambda = original  # type: ignore[method-assign]
        moto_settings.moto_server_host = original_host
