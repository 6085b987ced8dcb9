"""The handler's logic, shared by `handler.handler` and `iiif-process-ecs -mode lambda`."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from . import metrics
from .clients import LazyClient
from .dsn import session_from_dsn
from .events import ParsedEvent, parse_event
from .launcher import Backoff
from .ledger import Ledger, open_ledger
from .logs import MAX_LINE_BYTES, bounded_json, log, sample
from .settings import Settings, load_settings
from .trigger import Outcome, start_tasks

# Without a Lambda context (local runs), retries may use this much time.
DEFAULT_TIME_BUDGET = 60.0
# Lambda fails an invocation whose response is over 6 MB (and SQS then retries the whole batch).
RESPONSE_LIMIT_BYTES = 5 * 1024 * 1024


class TasksNotStarted(RuntimeError):
    """AWS did not start some URIs; raised after logging so that Lambda retries the event."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        uris = [entry["uri"] for entry in outcome.aws_failed]
        # Lambda logs this message as one line: bounded like every log line.
        super().__init__(
            f"{len(uris)} URI(s) not started because of AWS errors: "
            + bounded_json(outcome.response(), MAX_LINE_BYTES - 200)
        )


def remaining_seconds_of(
    context: Any,
    budget: float = DEFAULT_TIME_BUDGET,
    monotonic: Callable[[], float] = time.monotonic,
) -> Callable[[], float]:
    """Remaining time from a Lambda context, or a fixed ``budget`` from now (on ``monotonic``)
    when there is none, as for the CLI's local runs."""
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        return lambda: context.get_remaining_time_in_millis() / 1000.0
    deadline = monotonic() + budget
    return lambda: deadline - monotonic()


def run_event(
    event: Any,
    *,
    settings: Settings,
    ecs: Any,
    remaining_seconds: Callable[[], float],
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    backoff: Backoff | None = None,
    ledger: Ledger | None = None,
    s3: Any = None,
    force: bool = False,
) -> Outcome:
    """Parse ``event`` and start tasks for its objects (raises InvalidEvent for a bad event).

    With a ``ledger`` keys are claimed first (see trigger.start_tasks); ``force`` (or a direct
    invocation's ``"force": true``) launches keys the ledger has as unchanged.

    The keys of all messages of an SQS batch are pooled and packed together; the outcome then
    names, in ``batch_item_failures``, the messages holding a URI that AWS did not start.
    """
    parsed = parse_event(event, source_bucket=settings.source_bucket)
    log(
        "event received",
        shape=parsed.shape,
        # Counts and a bounded sample: a batch of 10,000 keys must not make a 9 MB line.
        uri_count=len(parsed.objects),
        uris_sample=sample(record.key for record in parsed.objects),
        rejected=len(parsed.rejected),
        **({"messages": len(parsed.message_ids)} if parsed.is_sqs_batch else {}),
    )
    outcome = start_tasks(
        parsed.objects,
        parsed.rejected,
        settings=settings,
        ecs=ecs,
        remaining_seconds=remaining_seconds,
        sleep=sleep,
        rand=rand,
        backoff=backoff,
        ledger=ledger,
        s3=s3,
        force=force or parsed.force,
    )
    if parsed.is_sqs_batch:
        outcome.batch_item_failures = messages_to_retry(parsed, outcome)
    return outcome


def messages_to_retry(parsed: ParsedEvent, outcome: Outcome) -> list[str]:
    """The SQS messages, in event order, with at least one URI that AWS did not start.

    Input problems (bad body, unsafe key) are not among them: no retry can fix those.
    """
    not_started = {entry["uri"] for entry in outcome.aws_failed}
    failed = {record.message_id for record in parsed.objects if record.key in not_started}
    return [message_id for message_id in parsed.message_ids if message_id in failed]


def handle_event(
    event: Any,
    context: Any,
    *,
    environ: Mapping[str, str] | None = None,
    ecs: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    dynamodb: Any = None,
    s3: Any = None,
) -> dict[str, Any]:
    """Settings from the environment, an ECS client from the DSN, then run_event.

    With ``IIIF_PROCESS_LEDGER_TABLE`` set, the ledger (``dynamodb``) and S3 (``s3``, for
    HeadObject) clients are created from the same DSN on first use unless passed in.

    Returns the response dict. When AWS left URIs unstarted it raises TasksNotStarted, except for
    an SQS batch: that returns ``batchItemFailures`` naming the messages to deliver again.
    """
    settings = load_settings(environ)
    session = None
    if ecs is None or (settings.ledger_table and (dynamodb is None or s3 is None)):
        session = session_from_dsn(settings.ecs_dsn)
    if ecs is None:
        ecs = session.client("ecs")
    ledger = open_ledger(settings, dynamodb, session=session)
    if ledger is not None and s3 is None:
        s3 = LazyClient("s3", session)
    outcome = run_event(
        event,
        settings=settings,
        ecs=ecs,
        remaining_seconds=remaining_seconds_of(context),
        sleep=sleep,
        rand=rand,
        ledger=ledger,
        s3=s3,
    )
    log_metrics(outcome, metrics.stack_name(environ))
    if outcome.aws_failed and outcome.batch_item_failures is not None:
        log(
            "batch partly failed: messages returned to the queue",
            level="ERROR",
            not_started=outcome.aws_failed,
            batch_item_failures=outcome.batch_item_failures,
        )
        return fit_response(outcome.response())
    if outcome.aws_failed:
        log(
            "invocation failed: URIs not started",
            level="ERROR",
            not_started=outcome.aws_failed,
            response=outcome.response(),
        )
        raise TasksNotStarted(outcome)
    return fit_response(outcome.response())


def log_metrics(outcome: Outcome, stack: str) -> None:
    """The invocation's EMF lines (docs/contracts.md "Metrics"): tasks started, and the URIs
    not launched for a reason no retry fixes (skipped, or failed as input) by reason class."""
    log("metrics", **metrics.document({"TasksStarted": len(outcome.tasks)}, stack=stack))
    # Not started by AWS: delivered again, not skipped (the same entries sit in ``failed``).
    not_started = {id(entry) for entry in outcome.aws_failed}
    counts: dict[str, int] = {}
    for entry in [*outcome.skipped, *outcome.failed]:
        if id(entry) in not_started:
            continue
        name = metrics.reason_class(entry["reason"])
        counts[name] = counts.get(name, 0) + 1
    for name, count in sorted(counts.items()):
        log("metrics", **metrics.document({"UrisSkipped": count}, reason=name, stack=stack))


def fit_response(response: dict[str, Any], limit: int = RESPONSE_LIMIT_BYTES) -> dict[str, Any]:
    """``response``, or if its JSON is over ``limit`` bytes, counts and samples of its lists.

    ``batchItemFailures`` and ``tasks`` stay whole: SQS needs every failed message, and the CLI's
    -wait every task. The full lists are in the logs' "task started" lines.
    """
    if len(json.dumps(response, ensure_ascii=False).encode("utf-8", "surrogatepass")) <= limit:
        return response
    fitted = dict(response)
    fitted["counts"] = {name: len(response[name]) for name in ("launched", "skipped", "failed")}
    for name in ("launched", "skipped", "failed"):
        fitted[name] = sample(response[name])
    fitted["truncated"] = True
    return fitted
