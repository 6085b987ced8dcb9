"""Start one ECS task per batch with RunTask; retry capacity failures within a time budget."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .batching import STARTED_BY, Batch, network_configuration
from .logs import log
from .settings import Settings

# Throttling, 5xx and connection errors are retried by botocore itself (standard retry mode,
# clients.CLIENT_CONFIG) before an exception reaches us; a loop of ours around them would multiply
# the attempts. What botocore cannot see is a RunTask that answers 200 with ``failures[]`` (no
# capacity right now): only that is retried here, within the Lambda's time.


# No RunTask starts with less time left than this: a call that outlives the Lambda's deadline
# leaves its batch unreported (killed mid-batch), so stop and report the rest as not started.
LAUNCH_MARGIN_SECONDS = 10.0
# ... nor with less than this many times the slowest RunTask seen in this invocation.
SLOW_CALL_FACTOR = 3.0


def is_retryable_failure_reason(reason: str) -> bool:
    """RunTask ``failures[].reason`` values that mean "no capacity right now"."""
    return reason.startswith("RESOURCE:") or "capacity" in reason.lower() or reason == "AGENT"


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter (no sleep ever leaves less than the launch margin)."""

    base: float = 0.5
    cap: float = 8.0
    max_attempts: int = 8

    def delay(self, attempt: int, rand: Callable[[], float]) -> float:
        return rand() * min(self.cap, self.base * (2**attempt))


@dataclass
class LaunchReport:
    """What happened to the batches: URIs launched with their task, and URIs that failed."""

    launched: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)


class Launcher:
    """Runs batches as Fargate tasks.

    ``remaining_seconds`` says how much time is left (the Lambda context's remaining time, or a
    CLI budget); ``sleep`` and ``rand`` are injectable so tests do not wait. No RunTask starts
    with less than ``margin()`` seconds left; the duration of each call is measured on that
    same clock.
    """

    def __init__(
        self,
        ecs: Any,
        settings: Settings,
        *,
        remaining_seconds: Callable[[], float],
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        backoff: Backoff | None = None,
    ) -> None:
        self.ecs = ecs
        self.settings = settings
        self.remaining_seconds = remaining_seconds
        self.sleep = sleep
        self.rand = rand
        self.backoff = backoff or Backoff()
        self.slowest_call = 0.0

    def margin(self) -> float:
        """Seconds that must be left to start a RunTask: the floor, or 3x the slowest call."""
        return max(LAUNCH_MARGIN_SECONDS, SLOW_CALL_FACTOR * self.slowest_call)

    def launch_all(self, batches: Sequence[Batch]) -> LaunchReport:
        """Start every batch; each stands alone, so one failing batch does not stop the others.

        Near the deadline the batches not yet started are reported failed ("not started"), so
        that the caller returns them (batchItemFailures, or TasksNotStarted) while it can.
        """
        report = LaunchReport()
        for index, batch in enumerate(batches):
            left, margin = self.remaining_seconds(), self.margin()
            if left < margin:
                reason = (
                    f"not started: {left:.1f} s left in this invocation, under the "
                    f"{margin:.1f} s margin for a RunTask"
                )
                rest = batches[index:]
                log(
                    "deadline near: batches not started",
                    level="WARNING",
                    seconds_left=round(left, 3),
                    margin=round(margin, 3),
                    batches_not_started=len(rest),
                    uris_not_started=sum(len(b.uris) for b in rest),
                )
                for skipped in rest:
                    report.failed.extend((uri, reason) for uri in skipped.uris)
                break
            task_arn, error = self.launch(batch)
            if task_arn is not None:
                report.tasks.append(task_arn)
                report.launched.extend((uri, task_arn) for uri in batch.uris)
            else:
                report.failed.extend((uri, error) for uri in batch.uris)
        return report

    def launch(self, batch: Batch) -> tuple[str | None, str]:
        """Start one task for ``batch``: return (task ARN, "") or (None, reason)."""
        attempt = 0
        while True:
            task_arn, error, retryable = self._call(batch)
            if task_arn is not None:
                log(
                    "task started",
                    task_arn=task_arn,
                    uris=list(batch.uris),
                    client_token=batch.client_token,
                    attempts=attempt + 1,
                )
                return task_arn, ""
            attempt += 1
            if not retryable:
                log("task not started", reason=error, uris=list(batch.uris), retryable=False)
                return None, f"RunTask failed: {error}"
            delay = self.backoff.delay(attempt, self.rand)
            if (
                attempt >= self.backoff.max_attempts
                or self.remaining_seconds() - delay < self.margin()
            ):
                log(
                    "task not started",
                    reason=error,
                    uris=list(batch.uris),
                    retryable=True,
                    attempts=attempt,
                )
                return None, f"RunTask failed after {attempt} attempt(s): {error}"
            log("retrying RunTask", reason=error, attempt=attempt, delay=round(delay, 3))
            self.sleep(delay)

    def _call(self, batch: Batch) -> tuple[str | None, str, bool]:
        """One RunTask call, timed: (task ARN, "", _) or (None, reason, retryable)."""
        before = self.remaining_seconds()
        try:
            return self._run_task(batch)
        finally:
            self.slowest_call = max(self.slowest_call, before - self.remaining_seconds())

    def _run_task(self, batch: Batch) -> tuple[str | None, str, bool]:
        """One RunTask call: (task ARN, "", _) or (None, reason, retryable)."""
        try:
            response = self.ecs.run_task(
                cluster=self.settings.cluster,
                taskDefinition=self.settings.task_definition,
                count=1,
                launchType="FARGATE",
                networkConfiguration=network_configuration(self.settings),
                overrides=batch.overrides,
                startedBy=STARTED_BY,
                clientToken=batch.client_token,
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", "")
            if code == "ConflictException":
                # The token was used before: the batch already has its task(s).
                existing = error.response.get("resourceIds") or []
                if existing:
                    return str(existing[0]), "", False
            return None, f"{code}: {message}".strip(": "), False
        except BotoCoreError as error:
            return None, f"{type(error).__name__}: {error}", False

        # Partial success raises nothing: read failures[] every time.
        failures = response.get("failures") or []
        tasks = response.get("tasks") or []
        if tasks:
            return tasks[0]["taskArn"], "", False
        if failures:
            reasons = "; ".join(
                f"{failure.get('reason', '?')}"
                + (f" ({failure['detail']})" if failure.get("detail") else "")
                for failure in failures
            )
            retryable = all(is_retryable_failure_reason(f.get("reason", "")) for f in failures)
            return None, f"RunTask failures: {reasons}", retryable
        return None, "RunTask returned neither tasks nor failures", True
