"""From object records to started tasks: the one plain function behind handler and CLI."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .batching import pack
from .claims import (
    NO_SUCH_OBJECT,
    InputOutcome,
    claim_keys,
    record_input_outcomes,
    record_launches,
)
from .events import ObjectRecord, RejectedRecord
from .keys import check_key, strip_path, strip_path_collisions
from .launcher import Backoff, Launcher
from .ledger import Ledger
from .logs import log
from .settings import Settings


@dataclass
class Outcome:
    """Where every URI ended: launched (with its task), skipped or failed (with a reason).

    ``aws_failed`` holds the URIs that AWS did not start (these make the Lambda raise, or for an
    SQS batch, name their messages in ``batch_item_failures``); ``failed`` also holds the input
    problems that no retry can fix. ``batch_item_failures`` is None unless the event was an SQS
    batch.
    """

    launched: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    aws_failed: list[dict[str, str]] = field(default_factory=list)
    batch_item_failures: list[str] | None = None

    def response(self) -> dict[str, Any]:
        """The handler's JSON-serialisable response (with ``batchItemFailures`` for SQS)."""
        response: dict[str, Any] = {
            "launched": list(self.launched),
            "skipped": list(self.skipped),
            "failed": list(self.failed),
            "tasks": list(self.tasks),
        }
        if self.batch_item_failures is not None:
            response["batchItemFailures"] = [
                {"itemIdentifier": message_id} for message_id in self.batch_item_failures
            ]
        return response


def start_tasks(
    objects: Iterable[ObjectRecord],
    rejected: Iterable[RejectedRecord] = (),
    *,
    settings: Settings,
    ecs: Any,
    remaining_seconds: Callable[[], float],
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    backoff: Backoff | None = None,
    nonce: str = "",
    ledger: Ledger | None = None,
    s3: Any = None,
    force: bool = False,
) -> Outcome:
    """Check keys, apply -strip-paths, pack batches, start them; account for every URI.

    With a ``ledger``, keys are claimed before RunTask (unchanged and already started keys are
    skipped, unless ``force`` launches unchanged ones), and the task is recorded after it;
    ``s3`` answers HeadObject for keys whose record has no ETag.
    """
    outcome = Outcome()
    for record in rejected:
        bucket = outcome.skipped if record.outcome == "skipped" else outcome.failed
        bucket.append({"uri": record.uri, "reason": record.reason})

    # Duplicates within one event collapse into one URI; order becomes sorted, so the same
    # set of keys always packs into the same batches (and the same clientTokens).
    identities: dict[str, set[str]] = {}
    first_records: dict[str, ObjectRecord] = {}
    # Keys not launched for input reasons; with a ledger they are recorded after the launches.
    input_outcomes: list[InputOutcome] = []
    for record in objects:
        verdict = check_key(record.key, record.size, settings.max_source_bytes)
        if verdict is not None:
            target = outcome.skipped if verdict.outcome == "skipped" else outcome.failed
            target.append({"uri": record.key, "reason": verdict.reason})
            input_outcomes.append(
                InputOutcome(record.key, verdict.outcome, verdict.reason, record.etag, record.size)
            )
            continue
        identities.setdefault(record.key, set())
        if record.key not in first_records or (record.etag and not first_records[record.key].etag):
            first_records[record.key] = record
        if record.identity:
            identities[record.key].add(record.identity)

    keys = sorted(identities)
    if settings.strip_paths:
        collisions = strip_path_collisions(keys)
        for key in keys:
            if key in collisions:
                outcome.failed.append({"uri": key, "reason": collisions[key]})
        keys = [key for key in keys if key not in collisions]

    claims = None
    if ledger is not None:
        plan = claim_keys(
            [first_records[key] for key in keys],
            ledger=ledger,
            settings=settings,
            s3=s3,
            force=force,
            remaining_seconds=remaining_seconds,
        )
        claims = plan.claimed
        outcome.skipped.extend(plan.skipped)
        outcome.failed.extend(plan.failed + plan.aws_failed)
        input_outcomes.extend(
            InputOutcome(entry["uri"], "failed", entry["reason"])
            for entry in plan.failed
            if entry["reason"] == NO_SUCH_OBJECT
        )
        outcome.aws_failed.extend(plan.aws_failed)
        keys = [key for key in keys if key in claims]

    items = [
        (
            key,
            strip_path(key) if settings.strip_paths else key,
            ",".join(sorted(identities[key])),
        )
        for key in keys
    ]
    batches, too_large = pack(settings, items, nonce=nonce)
    for uri, reason in too_large:
        outcome.failed.append({"uri": uri, "reason": reason})
    if claims is not None and too_large:
        record_launches(ledger, claims, (), (), refused=too_large)  # type: ignore[arg-type]
    log(
        "batches planned",
        batches=[{"uris": list(b.uris), "client_token": b.client_token} for b in batches],
        skipped=outcome.skipped,
        failed=outcome.failed,
    )

    launcher = Launcher(
        ecs, settings, remaining_seconds=remaining_seconds, backoff=backoff, sleep=sleep, rand=rand
    )
    report = launcher.launch_all(batches)
    if claims is not None:
        record_launches(ledger, claims, report.launched, report.failed)  # type: ignore[arg-type]
    outcome.tasks.extend(report.tasks)
    if ledger is not None and input_outcomes:
        # After the launches: these writes are a record, and must not delay a task.
        record_input_outcomes(
            ledger, input_outcomes, recipe=settings.recipe, remaining_seconds=remaining_seconds
        )
    outcome.launched.extend({"uri": uri, "task_arn": arn} for uri, arn in report.launched)
    for uri, reason in report.failed:
        entry = {"uri": uri, "reason": reason}
        outcome.failed.append(entry)
        outcome.aws_failed.append(entry)
    log(
        "launch finished",
        tasks=outcome.tasks,
        launched=len(outcome.launched),
        skipped=len(outcome.skipped),
        failed=len(outcome.failed),
        not_started_by_aws=[entry["uri"] for entry in outcome.aws_failed],
    )
    return outcome
