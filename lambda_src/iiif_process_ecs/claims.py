"""The trigger's side of the ledger: claim keys before RunTask, record the task after it.

Only used when ``IIIF_PROCESS_LEDGER_TABLE`` is set (docs/contracts.md, "The ledger"). A key's
ETag and size come from its event record; keys given without one (``-uri``, ``{"uris": [...]}``,
the seed's invoke payload) are asked for with HeadObject on the source bucket.

Every per-key call (HeadObject, the conditional claim, the task record, input outcomes) runs on
a bounded thread pool (ledger.concurrently, CLAIM_WORKERS threads), so an invocation of 1000
messages of 10 keys claims its 10,000 keys in about 10,000 / 16 round trips, not 10,000.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .events import ObjectRecord
from .launcher import LAUNCH_MARGIN_SECONDS
from .ledger import (
    ALREADY_STARTED,
    DEFAULT_WORKERS,
    ClaimResult,
    Ledger,
    LedgerError,
    concurrently,
)
from .logs import log
from .settings import Settings

NO_SUCH_OBJECT = "no such object"
CLAIM_IN_FLIGHT = "claimed by another invocation, no task recorded yet: delivered again later"
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
# DynamoDB's limit on a partition key value; longer (unsafe) keys cannot have an item.
MAX_LEDGER_KEY_BYTES = 2048
# Recording input outcomes stops when the invocation has less than this left (they are logged).
OUTCOME_MARGIN_SECONDS = 5.0
# No claim starts with less than claim_margin() left: the launches after the claims need the
# RunTask margin (launcher.LAUNCH_MARGIN_SECONDS) and some time to run, and a claim made too late
# for its RunTask would only be undone. Keys not claimed go back to the queue (batchItemFailures).
CLAIM_HEADROOM_SECONDS = 10.0
# Threads for the per-key calls (one request each).
CLAIM_WORKERS = DEFAULT_WORKERS


@dataclass
class ClaimPlan:
    """Keys claimed (to launch), skipped (unchanged, already started), failed (input problems)
    and aws_failed (an AWS call failed: worth another try)."""

    claimed: dict[str, ClaimResult] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    aws_failed: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class InputOutcome:
    """A key the trigger will not launch for an input reason: ``status`` "skipped" (nothing to
    do) or "failed" (bad input), with the reason and what the event said of the object."""

    uri: str
    status: str
    reason: str
    etag: str = ""
    size: int | None = None


def storable_key(uri: str) -> bool:
    """True when ``uri`` can be a ledger item's key (not empty, valid UTF-8, within 2048 bytes)."""
    try:
        return 0 < len(uri.encode("utf-8")) <= MAX_LEDGER_KEY_BYTES
    except UnicodeEncodeError:
        return False


def record_input_outcomes(
    ledger: Ledger,
    outcomes: Sequence[InputOutcome],
    *,
    recipe: str = "",
    remaining_seconds: Callable[[], float] | None = None,
) -> dict[str, int]:
    """Write ``skipped`` / ``failed`` with the reason for keys the trigger did not launch.

    One conditional UpdateItem per key (Ledger.record_outcome; BatchWriteItem cannot carry a
    condition), CLAIM_WORKERS at once: the write never overwrites an item that is ``started``
    (a task holds the key) or ``succeeded`` (its derivatives exist, whatever the ETag; a later
    event or a backfill compares ETags again).
    Keys that cannot be an item (empty, lone surrogates, over 2048 bytes) are only logged, as
    are writes that fail or that the invocation has no time left for: the response accounts for
    every key either way. Returns counts: recorded, kept (protected), unstorable, not_recorded.
    """
    counts = {"recorded": 0, "kept": 0, "unstorable": 0, "not_recorded": 0}
    unique = list({outcome.uri: outcome for outcome in reversed(outcomes)}.values())[::-1]
    storable = [outcome for outcome in unique if storable_key(outcome.uri)]
    counts["unstorable"] = len(unique) - len(storable)

    def record(outcome: InputOutcome) -> str:
        try:
            written = ledger.record_outcome(
                outcome.uri,
                outcome.status,
                outcome.reason,
                etag=outcome.etag,
                size=outcome.size,
                recipe=recipe,
            )
        except LedgerError as error:
            log(
                "ledger: input outcome not recorded",
                level="ERROR",
                uri=outcome.uri,
                error=str(error),
            )
            return "not_recorded"
        return "recorded" if written else "kept"

    def time_left() -> bool:
        return remaining_seconds is None or remaining_seconds() >= OUTCOME_MARGIN_SECONDS

    for result in concurrently(record, storable, workers=CLAIM_WORKERS, proceed=time_left):
        counts[result or "not_recorded"] += 1
    log("input outcomes recorded", **counts)
    return counts


def head_object(s3: Any, bucket: str | None, key: str) -> tuple[str, int | None, str, bool]:
    """(etag, size, "", _) of ``key``, or ("", None, reason, aws_failure)."""
    if not bucket:
        return (
            "",
            None,
            "cannot read the object's ETag: no source bucket "
            "(set IIIF_PROCESS_SOURCE_BUCKET or -source-bucket)",
            False,
        )
    try:
        response = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _MISSING_CODES:
            return "", None, NO_SUCH_OBJECT, False
        message = error.response.get("Error", {}).get("Message", "")
        return "", None, f"HeadObject failed: {code}: {message}".rstrip(": "), True
    except BotoCoreError as error:
        return "", None, f"HeadObject failed: {type(error).__name__}: {error}", True
    etag = str(response.get("ETag", "")).strip('"')
    size = response.get("ContentLength")
    return etag, size if isinstance(size, int) else None, "", False


def claim_margin(seconds_at_start: float) -> float:
    """Seconds that must be left to start a claim: the RunTask margin plus headroom for the
    launches, CLAIM_HEADROOM_SECONDS or half of what the invocation had above the RunTask
    margin when claims began, whichever is less (20 s with the stack's 60 s timeout; a short
    timeout that could launch can still claim)."""
    spare = max(seconds_at_start - LAUNCH_MARGIN_SECONDS, 0.0)
    return LAUNCH_MARGIN_SECONDS + min(CLAIM_HEADROOM_SECONDS, spare / 2)


def claim_keys(
    records: Sequence[ObjectRecord],
    *,
    ledger: Ledger,
    settings: Settings,
    s3: Any,
    force: bool = False,
    remaining_seconds: Callable[[], float] | None = None,
) -> ClaimPlan:
    """Claim each record's key (one record per key) by the contract's rule, CLAIM_WORKERS
    claims at once. Once ``remaining_seconds`` falls under claim_margin() no further claim
    starts: those keys go to ``aws_failed`` (back to the queue), named with the reason."""
    plan = ClaimPlan()

    def head(record: ObjectRecord) -> tuple[str, int | None, str, bool]:
        if record.etag:
            return record.etag, record.size, "", False
        return head_object(s3, record.bucket or settings.source_bucket, record.key)

    objects: list[tuple[str, str, int | None]] = []
    heads = concurrently(head, records, workers=CLAIM_WORKERS)
    for record, answer in zip(records, heads, strict=True):
        assert answer is not None
        etag, size, reason, aws = answer
        if reason:
            entry = {"uri": record.key, "reason": reason}
            (plan.aws_failed if aws else plan.failed).append(entry)
            continue
        objects.append((record.key, etag, size))
    if not objects:
        return plan
    try:
        seen = ledger.get_many((key for key, _, _ in objects), workers=CLAIM_WORKERS)
    except LedgerError as error:
        plan.aws_failed.extend({"uri": key, "reason": str(error)} for key, _, _ in objects)
        return plan

    def claim(entry: tuple[str, str, int | None]) -> ClaimResult | str:
        key, etag, size = entry
        try:
            return ledger.claim(
                key,
                etag=etag,
                size=size,
                recipe=settings.recipe,
                force=force,
                seen=seen.get(key),
                read=False,
            )
        except LedgerError as error:
            return str(error)

    left: list[float] = []
    margin = claim_margin(remaining_seconds()) if remaining_seconds is not None else 0.0

    def time_left() -> bool:
        if remaining_seconds is None:
            return True
        seconds = remaining_seconds()
        if seconds < margin:
            left.append(seconds)
            return False
        return True

    results = concurrently(claim, objects, workers=CLAIM_WORKERS, proceed=time_left)
    for (key, _, _), result in zip(objects, results, strict=True):
        if result is None:
            plan.aws_failed.append(
                {
                    "uri": key,
                    "reason": f"not claimed: {min(left, default=0.0):.1f} s left in this "
                    f"invocation, under the {margin:g} s margin for claims and RunTask",
                }
            )
        elif isinstance(result, str):
            plan.aws_failed.append({"uri": key, "reason": result})
        elif result.claimed:
            plan.claimed[key] = result
        elif result.reason == ALREADY_STARTED and not (result.item or {}).get("task_arn"):
            # Claimed, but no task recorded yet: the claimer may still die before RunTask (its
            # own message then comes back here). Skipping would lose the key, so it goes back to
            # the queue until a task is recorded or the claim turns stale and can be taken.
            plan.aws_failed.append({"uri": key, "reason": CLAIM_IN_FLIGHT})
        else:
            plan.skipped.append({"uri": key, "reason": result.reason})
    if left:
        log(
            "deadline near: keys not claimed",
            level="WARNING",
            seconds_left=round(min(left), 3),
            margin=margin,
            keys_not_claimed=sum(1 for result in results if result is None),
        )
    log(
        "keys claimed",
        claimed=len(plan.claimed),
        skipped=plan.skipped,
        failed=plan.failed,
        not_claimed_by_aws=plan.aws_failed,
    )
    return plan


def record_launches(
    ledger: Ledger,
    claims: dict[str, ClaimResult],
    launched: Iterable[tuple[str, str]],
    not_started: Iterable[tuple[str, str]],
    *,
    refused: Iterable[tuple[str, str]] = (),
) -> None:
    """After RunTask: ``task_arn`` for launched keys; claims of keys not started are undone;
    keys no task can take (``refused``) end ``failed`` with their reason.

    A ledger write that fails here is logged, not raised: the task has started (or not)
    whatever the ledger says, and the response still accounts for every key.
    """

    def set_task(entry: tuple[str, str]) -> None:
        uri, task_arn = entry
        try:
            ledger.set_task(uri, task_arn)
        except (LedgerError, ClientError) as error:
            log(
                "ledger: task not recorded",
                level="ERROR",
                uri=uri,
                task_arn=task_arn,
                error=str(error),
            )

    def unclaim(entry: tuple[str, str]) -> None:
        uri, reason = entry
        try:
            ledger.unclaim(uri, reason, attempts=max(claims[uri].attempts - 1, 0))
        except (LedgerError, ClientError) as error:
            log("ledger: claim not undone", level="ERROR", uri=uri, error=str(error))

    def fail(entry: tuple[str, str]) -> None:
        uri, reason = entry
        try:
            ledger.mark_failed(uri, reason, expect_status="started")
        except (LedgerError, ClientError) as error:
            log("ledger: failure not recorded", level="ERROR", uri=uri, error=str(error))

    for work, entries in (
        (set_task, launched),
        (unclaim, not_started),
        (fail, refused),
    ):
        mine = [entry for entry in entries if entry[0] in claims]
        concurrently(work, mine, workers=CLAIM_WORKERS)


def recipe_of_task_definition(ecs: Any, settings: Settings) -> str:
    """``IIIF_PROCESS_RECIPE`` of the task definition's container (what the stack computed), or
    "" when it has none; the CLI records the same recipe as the Lambda without being told."""
    definition = ecs.describe_task_definition(taskDefinition=settings.task_definition)
    for container in definition["taskDefinition"].get("containerDefinitions", []):
        if container.get("name") != settings.container:
            continue
        for variable in container.get("environment", []):
            if variable.get("name") == "IIIF_PROCESS_RECIPE":
                return str(variable.get("value", ""))
    return ""
