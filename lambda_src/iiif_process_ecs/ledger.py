"""The ledger: one DynamoDB item per source key (docs/contracts.md, "The ledger", issue #9).

A small typed API over the low-level DynamoDB client, used by the trigger (claims), the reconcile
function, ``-mode backfill`` and the CLI's ``-mode status`` / ``-mode retry``. Every write is a
conditional UpdateItem (or a conditional PutItem/DeleteItem that puts back what was read), so that
the parts that share the table (the trigger, the tool inside the task, reconcile, backfill) never
overwrite each other blindly. Throttled calls are retried with exponential backoff and full jitter.

Public surface beyond the reads: ``claim`` / ``set_task`` / ``unclaim`` (the trigger),
``record_outcome`` (the trigger's input outcomes), ``queue_if_unchanged`` / ``put_back`` /
``delete_if`` (backfill and re-queueing), ``transition`` / ``mark_queued`` / ``mark_failed``
(reconcile, retry), ``updated_since`` (status cost), ``now`` (the contract's timestamp), and
``concurrently`` (a bounded thread pool for many one-key calls; boto3 clients are thread-safe).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from .clients import NO_BOTOCORE_RETRIES, new_session
from .logs import log

STATUSES = ("queued", "started", "succeeded", "failed", "skipped")
BY_STATUS = "by-status"
BY_TASK = "by-task"
BATCH_GET_LIMIT = 100  # BatchGetItem's maximum keys per call

UNCHANGED = "unchanged"
ALREADY_STARTED = "already started"

# A claim whose RunTask never recorded a task (the trigger died between the two) is taken over
# after this long: the Lambda's maximum run time, so a claim still in flight is never stolen.
STALE_CLAIM_SECONDS = 900
# Statuses an input outcome (skipped/failed) never overwrites: a task holds the key, or its
# derivatives exist.
PROTECTED_STATUSES = ("started", "succeeded")
# Threads for many one-key calls (claims, task records, backfill marks): enough to hide a
# round trip of a few milliseconds, few enough to stay far under DynamoDB's per-partition limits.
DEFAULT_WORKERS = 16

_T = TypeVar("_T")
_R = TypeVar("_R")

THROTTLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class LedgerError(RuntimeError):
    """A ledger call failed (after retries for throttling); the message names the AWS error."""


def concurrently(
    work: Callable[[_T], _R],
    items: Sequence[_T],
    *,
    workers: int = DEFAULT_WORKERS,
    proceed: Callable[[], bool] | None = None,
) -> list[_R | None]:
    """``work(item)`` for each item on at most ``workers`` threads; results in item order.

    ``proceed`` is asked before each item starts; once it says False, no further item starts
    and those items' results are None (the deadline rule of the trigger). An exception in
    ``work`` (or a KeyboardInterrupt while waiting) stops new items from starting, lets the
    calls in flight finish (each is one request, so nothing is left half-written unknown to
    the caller), then is raised. With one worker or one item it runs in the calling thread.

    Each thread takes the next item itself (no queue of futures), so the calling thread does
    not compete for the interpreter once per item.
    """
    results: list[_R | None] = [None] * len(items)
    stopped = threading.Event()
    errors: list[BaseException] = []
    indices = itertools.count()  # next() on a count is atomic under the GIL

    def drain() -> None:
        while not stopped.is_set():
            index = next(indices)
            if index >= len(items):
                return
            if proceed is not None and not proceed():
                stopped.set()
                return
            try:
                results[index] = work(items[index])
            except BaseException as error:  # raised again in the calling thread
                errors.append(error)
                stopped.set()
                return

    if workers <= 1 or len(items) <= 1:
        drain()
    else:
        threads = [
            threading.Thread(target=drain, name=f"ledger-worker-{n}", daemon=True)
            for n in range(min(workers, len(items)))
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        except BaseException:
            stopped.set()
            for thread in threads:
                thread.join()
            raise
    if errors:
        raise errors[0]
    return results


def now_iso(moment: datetime | None = None) -> str:
    """ISO 8601 UTC as the contract writes it: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_plain(v) for v in value]
    return value


def from_dynamodb(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (typed attribute values) as plain Python values (N → int or float)."""
    return {name: _plain(_deserializer.deserialize(value)) for name, value in item.items()}


def to_dynamodb(value: Any) -> dict[str, Any]:
    """One Python value as a DynamoDB attribute value (floats go through Decimal)."""
    if isinstance(value, float):
        value = Decimal(str(value))
    return _serializer.serialize(value)


@dataclass(frozen=True)
class Decision:
    """What the trigger's claim does with a key: ``claim`` it (as launch number ``attempts``),
    or ``skip`` it with ``reason``."""

    action: str
    reason: str = ""
    attempts: int = 0


def same_object(item: Mapping[str, Any] | None, etag: str, recipe: str) -> bool:
    """True when ``item`` describes this ETag processed with this recipe."""
    return item is not None and item.get("etag", "") == etag and item.get("recipe", "") == recipe


def is_stale_claim(item: Mapping[str, Any], now: datetime) -> bool:
    """A ``started`` item without a task whose claim is older than STALE_CLAIM_SECONDS."""
    if "task_arn" in item:
        return False
    started = item.get("started_at") or item.get("updated_at")
    if not isinstance(started, str):
        return True
    try:
        when = datetime.strptime(started, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return True
    return now - when > timedelta(seconds=STALE_CLAIM_SECONDS)


def decide_claim(
    item: Mapping[str, Any] | None, etag: str, recipe: str, *, force: bool, now: datetime
) -> Decision:
    """The contract's claim rule, given the item as read (None: no item yet)."""
    same = same_object(item, etag, recipe)
    if item is not None and same:
        status = item.get("status")
        if status == "started" and not is_stale_claim(item, now):
            return Decision("skip", ALREADY_STARTED)
        if status == "succeeded" and not force:
            return Decision("skip", UNCHANGED)
        return Decision("claim", attempts=int(item.get("attempts", 0)) + 1)
    return Decision("claim", attempts=1)


@dataclass(frozen=True)
class ClaimResult:
    """One claim: ``claimed`` (as launch number ``attempts``), or skipped with ``reason``."""

    uri: str
    claimed: bool
    reason: str = ""
    attempts: int = 0
    item: Mapping[str, Any] | None = None


def condition_failed(error: ClientError) -> bool:
    """Whether a conditional write was refused because its condition did not hold."""
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class Ledger:
    """The ledger table. ``client`` is a boto3 DynamoDB client, created lazily when None.

    ``sleep``/``rand`` are injectable so that tests of the throttling backoff do not wait.
    """

    def __init__(
        self,
        table: str,
        client: Any = None,
        *,
        session: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retries: int = 6,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
    ) -> None:
        if not table:
            raise ValueError("the ledger needs a table name")
        self.table = table
        self._client = client
        self._session = session
        self.sleep = sleep
        self.rand = rand
        self.clock = clock
        self.retries = retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._client_lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The DynamoDB client (made on first use; one client shared by all threads), with
        botocore's retries off: :meth:`_call` is the one retry loop of a ledger call."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    # This class retries throttling itself (its budget and jitter, logged):
                    # botocore must not retry the same call again underneath.
                    session = self._session if self._session is not None else new_session()
                    self._client = session.client("dynamodb", config=NO_BOTOCORE_RETRIES)
        return self._client

    # -- calls ---------------------------------------------------------------------------------

    def _call(self, operation: str, **kwargs: Any) -> Any:
        """One DynamoDB call, retried with backoff while it is throttled.

        ConditionalCheckFailedException is raised as is (the caller decides); any other error,
        and throttling that outlasts the retries, raises LedgerError naming it.
        """
        attempt = 0
        while True:
            try:
                return getattr(self.client, operation)(**kwargs)
            except ClientError as error:
                if condition_failed(error):
                    raise
                code = error.response.get("Error", {}).get("Code", "")
                if code not in THROTTLE_CODES or attempt >= self.retries:
                    message = error.response.get("Error", {}).get("Message", "")
                    raise LedgerError(
                        f"ledger {self.table}: {operation} failed: {code}: {message}".rstrip(": ")
                    ) from error
            except BotoCoreError as error:
                if attempt >= self.retries:
                    raise LedgerError(
                        f"ledger {self.table}: {operation} failed: {type(error).__name__}: {error}"
                    ) from error
            attempt += 1
            delay = self.rand() * min(self.max_delay, self.base_delay * 2**attempt)
            log("ledger call retried", operation=operation, attempt=attempt, delay=round(delay, 3))
            self.sleep(delay)

    def now(self) -> str:
        """The ledger clock's time as the contract writes it."""
        return now_iso(self.clock())

    # -- reads ---------------------------------------------------------------------------------

    def get(self, uri: str) -> dict[str, Any] | None:
        """The item of ``uri`` (strongly consistent), or None."""
        response = self._call(
            "get_item", TableName=self.table, Key={"uri": {"S": uri}}, ConsistentRead=True
        )
        item = response.get("Item")
        return from_dynamodb(item) if item else None

    def get_many(self, uris: Iterable[str], *, workers: int = 1) -> dict[str, dict[str, Any]]:
        """The items of ``uris`` that exist, by URI: BatchGetItem, 100 keys a call (``workers``
        calls at once), consistent reads; unprocessed keys are asked again with backoff."""
        wanted = list(dict.fromkeys(uris))
        chunks = [
            wanted[start : start + BATCH_GET_LIMIT]
            for start in range(0, len(wanted), BATCH_GET_LIMIT)
        ]
        found: dict[str, dict[str, Any]] = {}
        for part in concurrently(self._get_batch, chunks, workers=workers):
            found.update(part or {})
        return found

    def _get_batch(self, uris: Sequence[str]) -> dict[str, dict[str, Any]]:
        """One BatchGetItem of at most 100 keys, unprocessed keys asked again."""
        found: dict[str, dict[str, Any]] = {}
        request: dict[str, Any] = {
            self.table: {"Keys": [{"uri": {"S": uri}} for uri in uris], "ConsistentRead": True}
        }
        rounds = 0
        while request:
            response = self._call("batch_get_item", RequestItems=request)
            for item in response.get("Responses", {}).get(self.table, []):
                plain = from_dynamodb(item)
                found[plain["uri"]] = plain
            request = response.get("UnprocessedKeys") or {}
            if request:
                rounds += 1
                if rounds > self.retries:
                    left = len(request.get(self.table, {}).get("Keys", []))
                    raise LedgerError(
                        f"ledger {self.table}: BatchGetItem left {left} key(s) unprocessed "
                        f"after {rounds} rounds"
                    )
                self.sleep(self.rand() * min(self.max_delay, self.base_delay * 2**rounds))
        return found

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        request = {"TableName": self.table, **kwargs}
        while True:
            response = self._call("query", **request)
            for item in response.get("Items", []):
                yield from_dynamodb(item)
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def by_status(
        self, status: str, *, newest_first: bool = True, reason_contains: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Items with ``status`` (GSI by-status, paginated), newest ``updated_at`` first."""
        kwargs: dict[str, Any] = {
            "IndexName": BY_STATUS,
            "KeyConditionExpression": "#status = :status",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":status": {"S": status}},
            "ScanIndexForward": not newest_first,
        }
        if reason_contains:
            kwargs["FilterExpression"] = "contains(#reason, :text)"
            kwargs["ExpressionAttributeNames"]["#reason"] = "reason"
            kwargs["ExpressionAttributeValues"][":text"] = {"S": reason_contains}
        return self._query(**kwargs)

    def count(self, status: str) -> int:
        """How many items have ``status``: Query with Select=COUNT on by-status, paginated."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": BY_STATUS,
            "KeyConditionExpression": "#status = :status",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":status": {"S": status}},
            "Select": "COUNT",
        }
        total = 0
        while True:
            response = self._call("query", **request)
            total += int(response.get("Count", 0))
            last = response.get("LastEvaluatedKey")
            if not last:
                return total
            request["ExclusiveStartKey"] = last

    def by_task(self, task_arn: str) -> list[dict[str, Any]]:
        """The items whose ``task_arn`` is ``task_arn`` (GSI by-task, paginated)."""
        return list(
            self._query(
                IndexName=BY_TASK,
                KeyConditionExpression="task_arn = :task",
                ExpressionAttributeValues={":task": {"S": task_arn}},
            )
        )

    def updated_since(self, status: str, stamp: str) -> Iterator[dict[str, Any]]:
        """Items with ``status`` whose ``updated_at`` is at or after ``stamp`` (an ISO string as
        ``now`` writes it): a Query on by-status with a range condition, paginated."""
        return self._query(
            IndexName=BY_STATUS,
            KeyConditionExpression="#status = :status AND #updated >= :since",
            ExpressionAttributeNames={"#status": "status", "#updated": "updated_at"},
            ExpressionAttributeValues={":status": {"S": status}, ":since": {"S": stamp}},
        )

    # -- writes --------------------------------------------------------------------------------

    def _update(
        self,
        uri: str,
        *,
        set_values: Mapping[str, Any],
        remove: Sequence[str] = (),
        condition: str | None = None,
        condition_values: Mapping[str, Any] | None = None,
        condition_names: Mapping[str, str] | None = None,
        set_if_missing: Mapping[str, Any] | None = None,
        return_item: bool = True,
    ) -> dict[str, Any]:
        """UpdateItem SET/REMOVE with names and values escaped; returns the new item (or {}
        without ``return_item``)."""
        names: dict[str, str] = dict(condition_names or {})
        values: dict[str, Any] = {k: to_dynamodb(v) for k, v in (condition_values or {}).items()}
        sets: list[str] = []
        for index, (name, value) in enumerate(set_values.items()):
            names[f"#s{index}"] = name
            values[f":s{index}"] = to_dynamodb(value)
            sets.append(f"#s{index} = :s{index}")
        for index, (name, value) in enumerate((set_if_missing or {}).items()):
            names[f"#m{index}"] = name
            values[f":m{index}"] = to_dynamodb(value)
            sets.append(f"#m{index} = if_not_exists(#m{index}, :m{index})")
        expression = "SET " + ", ".join(sets)
        removed = [name for name in remove if name not in set_values]
        if removed:
            for index, name in enumerate(removed):
                names[f"#r{index}"] = name
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removed)))
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"uri": {"S": uri}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW" if return_item else "NONE",
        }
        if condition:
            kwargs["ConditionExpression"] = condition
        response = self._call("update_item", **kwargs)
        return from_dynamodb(response.get("Attributes", {}))

    def claim(
        self,
        uri: str,
        *,
        etag: str,
        size: int | None,
        recipe: str,
        force: bool = False,
        seen: Mapping[str, Any] | None = None,
        read: bool = True,
    ) -> ClaimResult:
        """Claim ``uri`` for a launch (status ``started``) unless the contract's rule skips it.

        ``seen`` is the item as read before (from get_many); with ``read`` and no ``seen`` the
        item is read here. The write is conditional on the item being still as read, so of two
        triggers claiming at once one wins and the other skips the key ``already started``.
        """
        if seen is None and read:
            seen = self.get(uri)
        now = self.clock()
        decision = decide_claim(seen, etag, recipe, force=force, now=now)
        if decision.action == "skip":
            return ClaimResult(uri, False, decision.reason, item=seen)
        stamp = now_iso(now)
        values: dict[str, Any] = {
            "status": "started",
            "etag": etag,
            "attempts": decision.attempts,
            "started_at": stamp,
            "updated_at": stamp,
        }
        remove = ["task_arn", "processing_at", "reason", "retryable", "finished_at"]
        if recipe:
            values["recipe"] = recipe
        else:
            remove.append("recipe")
        if size is not None:
            values["size"] = size
        condition, condition_names, condition_values = still_as_read(seen)
        try:
            item = self._update(
                uri,
                set_values=values,
                remove=remove,
                set_if_missing={"created_at": stamp},
                condition=condition,
                condition_values=condition_values,
                condition_names=condition_names,
            )
        except ClientError as error:
            if condition_failed(error):
                # The item changed since it was read: another claim won. What it holds now is
                # unknown (item None), so the caller cannot take it as a task already running.
                return ClaimResult(uri, False, ALREADY_STARTED, item=None)
            raise
        return ClaimResult(uri, True, attempts=decision.attempts, item=item)

    def queue_if_unchanged(
        self,
        uri: str,
        *,
        seen: Mapping[str, Any] | None,
        etag: str,
        size: int | None,
        recipe: str,
        reason: str,
        stamp: str,
    ) -> bool:
        """Set ``queued`` (a fresh start: ``attempts`` 0, ``reason``, this ETag, size and
        recipe, ``updated_at`` = ``stamp``; ``retryable``, ``processing_at`` and
        ``finished_at`` dropped) only if the item is still ``seen`` (its ``updated_at``
        unchanged, or still absent). Returns False when another part changed the item since it
        was read (a claim, the tool): that state is kept.

        One conditional PutItem of the item as read with these changes: since the condition
        holds only while the stored item is the one read, this is the same as an UpdateItem,
        and it costs the same write units as a BatchWriteItem put (one per KB of item), in one
        request per key instead of one per 25.
        """
        item = {
            name: value
            for name, value in (seen or {}).items()
            if name not in ("retryable", "processing_at", "finished_at", "recipe", "size")
        }
        item.update(
            {
                "uri": uri,
                "status": "queued",
                "reason": reason,
                "etag": etag,
                "attempts": 0,
                "updated_at": stamp,
                "created_at": item.get("created_at", stamp),
            }
        )
        if size is not None:
            item["size"] = size
        if recipe:
            item["recipe"] = recipe
        condition, names, values = still_as_read(seen)
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Item": {name: to_dynamodb(value) for name, value in item.items()},
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = {k: to_dynamodb(v) for k, v in values.items()}
        try:
            self._call("put_item", **kwargs)
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def record_outcome(
        self,
        uri: str,
        status: str,
        reason: str,
        *,
        etag: str = "",
        size: int | None = None,
        recipe: str = "",
    ) -> bool:
        """Write ``status`` (``skipped`` or ``failed``) with ``reason`` for a key no task will
        take, unless the item is ``started`` or ``succeeded`` (PROTECTED_STATUSES), which it
        keeps. Returns True when written, False when kept."""
        stamp = self.now()
        values: dict[str, Any] = {
            "status": status,
            "reason": reason,
            "updated_at": stamp,
            "finished_at": stamp,
        }
        if etag:
            values["etag"] = etag
        if size is not None:
            values["size"] = size
        if recipe:
            values["recipe"] = recipe
        try:
            self._update(
                uri,
                set_values=values,
                remove=("retryable", "processing_at"),
                set_if_missing={"created_at": stamp},
                condition="attribute_not_exists(#uri) OR NOT (#status IN (:p0, :p1))",
                condition_names={"#uri": "uri", "#status": "status"},
                condition_values={":p0": PROTECTED_STATUSES[0], ":p1": PROTECTED_STATUSES[1]},
                return_item=False,
            )
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def set_task(self, uri: str, task_arn: str) -> None:
        """Record the task that holds ``uri`` (after RunTask started it)."""
        self._update(
            uri,
            set_values={"task_arn": task_arn, "updated_at": self.now()},
            condition="attribute_exists(#uri)",
            condition_names={"#uri": "uri"},
            return_item=False,
        )

    def unclaim(self, uri: str, reason: str, *, attempts: int | None = None) -> bool:
        """Undo a claim whose RunTask did not start the key: ``queued`` with ``reason``, and
        ``attempts`` back to what it was (a launch that did not happen is no attempt).

        Conditional on the item still being ``started`` without a task; False if it was not.
        """
        values: dict[str, Any] = {"status": "queued", "reason": reason, "updated_at": self.now()}
        if attempts is not None:
            values["attempts"] = attempts
        try:
            self._update(
                uri,
                set_values=values,
                condition="#status = :started AND attribute_not_exists(task_arn)",
                condition_names={"#status": "status"},
                condition_values={":started": "started"},
                return_item=False,
            )
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def transition(
        self,
        uri: str,
        *,
        expect_status: str,
        expect_task: str | None = None,
        set_values: Mapping[str, Any],
        remove: Sequence[str] = (),
    ) -> dict[str, Any] | None:
        """Change an item only if it is still ``expect_status`` (and held by ``expect_task``
        when given); returns the new item, or None when the item had moved on."""
        condition = "#status = :expect"
        names = {"#status": "status"}
        values: dict[str, Any] = {":expect": expect_status}
        if expect_task is not None:
            condition += " AND #task = :task"
            names["#task"] = "task_arn"
            values[":task"] = expect_task
        try:
            return self._update(
                uri,
                set_values={**set_values, "updated_at": self.now()},
                remove=remove,
                condition=condition,
                condition_names=names,
                condition_values=values,
            )
        except ClientError as error:
            if condition_failed(error):
                return None
            raise

    def mark_queued(
        self,
        uri: str,
        reason: str,
        *,
        expect_status: str,
        expect_task: str | None = None,
        reset_attempts: bool = False,
    ) -> dict[str, Any] | None:
        """Set ``queued`` with ``reason`` (attempts 0 with ``reset_attempts``), if the item is
        still ``expect_status`` (and ``expect_task``); None when it had moved on."""
        values: dict[str, Any] = {"status": "queued", "reason": reason}
        if reset_attempts:
            values["attempts"] = 0
        return self.transition(
            uri,
            expect_status=expect_status,
            expect_task=expect_task,
            set_values=values,
            remove=("retryable", "processing_at"),
        )

    def mark_failed(
        self,
        uri: str,
        reason: str,
        *,
        expect_status: str,
        expect_task: str | None = None,
        retryable: bool = False,
    ) -> dict[str, Any] | None:
        """Set ``failed`` with ``reason`` and ``retryable``, if still ``expect_status``."""
        return self.transition(
            uri,
            expect_status=expect_status,
            expect_task=expect_task,
            set_values={
                "status": "failed",
                "reason": reason,
                "retryable": retryable,
                "finished_at": self.now(),
            },
            remove=("processing_at",),
        )

    def put_back(self, item: Mapping[str, Any], *, expect: Mapping[str, Any]) -> bool:
        """Put ``item`` back as it was (PutItem) if the stored item still matches ``expect``
        (attribute → value); used to undo a re-queue whose message could not be sent."""
        names = {f"#e{i}": name for i, name in enumerate(expect)}
        values = {f":e{i}": to_dynamodb(value) for i, value in enumerate(expect.values())}
        condition = " AND ".join(f"#e{i} = :e{i}" for i in range(len(expect)))
        try:
            self._call(
                "put_item",
                TableName=self.table,
                Item={name: to_dynamodb(value) for name, value in item.items()},
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def delete_if(self, uri: str, *, expect: Mapping[str, Any]) -> bool:
        """Delete the item of ``uri`` if it still matches ``expect`` (attribute → value); used
        to undo a backfill mark of a key that had no item. False when it had moved on."""
        names = {f"#e{i}": name for i, name in enumerate(expect)}
        values = {f":e{i}": to_dynamodb(value) for i, value in enumerate(expect.values())}
        try:
            self._call(
                "delete_item",
                TableName=self.table,
                Key={"uri": {"S": uri}},
                ConditionExpression=" AND ".join(f"#e{i} = :e{i}" for i in range(len(expect))),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True


def still_as_read(
    seen: Mapping[str, Any] | None,
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The condition (expression, names, values) that an item is still as read: absent when
    ``seen`` is None, else with the same ``updated_at`` (every writer sets it)."""
    if seen is None:
        return "attribute_not_exists(#uri)", {"#uri": "uri"}, {}
    if "updated_at" in seen:
        return "#updated = :seen", {"#updated": "updated_at"}, {":seen": seen["updated_at"]}
    return (
        "attribute_exists(#uri) AND attribute_not_exists(#updated)",
        {"#uri": "uri", "#updated": "updated_at"},
        {},
    )


def open_ledger(settings: Any, client: Any = None, *, session: Any = None) -> Ledger | None:
    """The ledger named by ``settings.ledger_table``, or None when no table is set."""
    table = getattr(settings, "ledger_table", None)
    if not table:
        return None
    return Ledger(table, client, session=session)
