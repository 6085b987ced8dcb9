"""Runs one Lambda invocation in this (child) process, as the Lambda Python runtime would.

Usage: python lambda_bootstrap.py CODE_DIR HANDLER RESULT_FILE < event.json

The handler's module is imported from CODE_DIR (the unzipped deployment package), called with the
event and a context object, and its result (or the error, in Lambda's error shape) is written to
RESULT_FILE as JSON. Whatever the handler prints goes to stdout/stderr, which the parent keeps as
the invocation's log. Exit status: 0 when the handler returned, 1 when it raised.

This file is run by path, never imported by the project: it must not depend on anything but the
standard library, so that the handler sees only its own package plus the runtime's boto3.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import uuid
from typing import Any


class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers commonly read."""

    def __init__(self, timeout_seconds: float) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.invoked_function_arn = os.environ.get("LOCAL_AWS_FUNCTION_ARN", "")
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main(argv: list[str]) -> int:
    code_dir, handler_name, result_file = argv
    module_name, _, function_name = handler_name.rpartition(".")
    # The deployment package comes first, as /var/task does on Lambda.
    sys.path[0] = code_dir
    os.chdir(code_dir)
    event = json.load(sys.stdin)
    context = LambdaContext(float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3")))
    try:
        handler = getattr(importlib.import_module(module_name.replace("/", ".")), function_name)
        result: Any = handler(event, context)
        status = 0
    except Exception as error:
        traceback.print_exc()
        result = {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "stackTrace": traceback.format_tb(error.__traceback__),
        }
        status = 1
    with open(result_file, "w", encoding="utf-8") as out:
        json.dump(result, out, default=str)
    sys.stdout.flush()
    sys.stderr.flush()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
