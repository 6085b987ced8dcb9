"""ECS RunTask's `clientToken` idempotency, which moto 5.2.5 ignores.

On AWS a RunTask call that repeats a `clientToken` (per cluster, kept 24 hours) starts nothing and
returns the tasks of the first call; the same token with different parameters fails with
`ConflictException`. The trigger Lambda relies on that so that a duplicated S3 event starts no
second task; without this patch the emulator would start one.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.core.responses import ActionResult
from moto.ecs.exceptions import ECSException
from moto.ecs.responses import EC2ContainerServiceResponse


class ConflictException(ECSException):
    """The token was used before with other parameters."""

    def __init__(self, token: str) -> None:
        super().__init__(
            "ConflictException",
            f"The clientToken {token!r} was already used with different parameters.",
        )


@contextmanager
def run_task_client_tokens() -> Iterator[None]:
    """While active, RunTask honours `clientToken` as ECS does."""
    original = EC2ContainerServiceResponse.run_task
    # Per ECS backend (one per account and region; a moto reset makes new ones, and so forgets
    # the tokens as a new account would): (cluster, token) -> (request fingerprint, task ARNs).
    seen: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], tuple[str, list[str]]]] = (
        weakref.WeakKeyDictionary()
    )
    lock = threading.Lock()

    def run_task(self: EC2ContainerServiceResponse) -> ActionResult:
        token = self._get_param("clientToken")
        if not token:
            return original(self)
        params = {k: v for k, v in json.loads(self.body or "{}").items() if k != "clientToken"}
        cluster = str(self._get_param("cluster", "default")).rsplit("/", 1)[-1]
        key = (cluster, str(token))
        fingerprint = json.dumps(params, sort_keys=True)
        with lock:
            tokens = seen.setdefault(self.ecs_backend, {})
            if key in tokens:
                first_fingerprint, task_arns = tokens[key]
                if first_fingerprint != fingerprint:
                    raise ConflictException(str(token))
                tasks = self.ecs_backend.describe_tasks(cluster, task_arns)
                return ActionResult({"tasks": tasks, "failures": []})
            result = original(self)
            task_arns = [task.task_arn for task in _result_tasks(result)]
            tokens[key] = (fingerprint, task_arns)
            return result

    EC2ContainerServiceResponse.run_task = run_task  # type: ignore[method-assign]
    try:
        yield
    finally:
        EC2ContainerServiceResponse.run_task = original  # type: ignore[method-assign]


def _result_tasks(result: ActionResult) -> list[Any]:
    value = result.result
    return list(value.get("tasks", [])) if isinstance(value, dict) else []
