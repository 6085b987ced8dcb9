"""The ledger (DynamoDB, docs/contracts.md "The ledger"): each image's outcome, written as it
happens, with UpdateItem only (the task role may do nothing else on the table).

``processing_at`` when an image starts decoding, then ``succeeded`` (derivatives, seconds, etag
and size of the object read, recipe, finished_at) or ``failed`` (reason, retryable). Writes go
through one background thread, in order, so a slow or throttled write never holds up the images
(except the in-progress mark, written before the decode starts: see ``started``);
a write that fails is retried with backoff, then logged: it never fails the image.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

# Error codes worth another try (throttling, DynamoDB's own transient failures).
TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
    }
)
ATTEMPTS = 5
FIRST_DELAY = 0.1  # seconds; doubled after each failed attempt
MAX_DELAY = 2.0


def now_iso() -> str:
    """The contract's timestamp: ISO 8601 UTC with microseconds, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _number(value: float) -> str:
    """A DynamoDB number (N) as text: integers plain, seconds to the millisecond."""
    return str(value) if isinstance(value, int) else f"{value:.3f}"


class Ledger:
    """Writes one table's items for the images of this run.

    ``client`` is a DynamoDB client (made lazily with boto3's default chain when None, so
    ``AWS_ENDPOINT_URL`` and the region come from the environment as for S3).
    """

    def __init__(
        self,
        table: str,
        recipe: str | None = None,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table
        self.recipe = recipe or None
        self._client = client
        self._client_lock = threading.Lock()
        self._sleep = sleep
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                import boto3
                from botocore.config import Config as BotoConfig

                self._client = boto3.session.Session().client(
                    "dynamodb", config=BotoConfig(retries={"mode": "standard"})
                )
            return self._client

    # --- what the run records ------------------------------------------------------------

    def started(self, uri: str) -> None:
        """The image is about to be decoded: marks it in progress should the task die.

        Written in the caller's thread before it returns, not queued: if the decode kills the
        whole task, reconcile must find this mark to re-run the image alone rather than re-queue
        it with its batch mates (a queued write could still be pending at the kill).
        """
        stamp = now_iso()
        self.write(uri, {"set": {"processing_at": stamp, "updated_at": stamp}, "created": stamp})

    def succeeded(
        self,
        uri: str,
        derivatives: int,
        seconds: float,
        etag: str | None = None,
        size: int | None = None,
    ) -> None:
        """The image's derivatives are all published."""
        stamp = now_iso()
        values: dict[str, Any] = {
            "status": "succeeded",
            "derivatives": int(derivatives),
            "seconds": float(seconds),
            "finished_at": stamp,
            "updated_at": stamp,
        }
        if etag:
            values["etag"] = etag
        if size is not None:
            values["size"] = int(size)
        if self.recipe:
            values["recipe"] = self.recipe
        self._submit(
            uri,
            {"set": values, "created": stamp, "remove": ["processing_at", "reason", "retryable"]},
        )

    def failed(
        self,
        uri: str,
        reason: str,
        retryable: bool,
        seconds: float | None = None,
        etag: str | None = None,
        size: int | None = None,
    ) -> None:
        """The image ended without its derivatives; ``retryable`` says whether a re-run may fix
        it (throttling, network, a killed worker) or not (not an image, over a limit)."""
        stamp = now_iso()
        values: dict[str, Any] = {
            "status": "failed",
            "reason": reason,
            "retryable": bool(retryable),
            "finished_at": stamp,
            "updated_at": stamp,
        }
        if seconds is not None:
            values["seconds"] = float(seconds)
        if etag:
            values["etag"] = etag
        if size is not None:
            values["size"] = int(size)
        if self.recipe:
            values["recipe"] = self.recipe
        self._submit(uri, {"set": values, "created": stamp, "remove": ["processing_at"]})

    def close(self, timeout: float | None = None) -> bool:
        """Wait (at most ``timeout`` seconds) for the writes submitted so far; True when all
        were done."""
        with self._thread_lock:
            thread = self._thread
            if thread is None:
                return True
            self._queue.put(None)
            self._thread = None
        thread.join(timeout)
        if thread.is_alive():
            log.error(
                "ledger writes still pending at exit",
                extra={"table": self.table, "pending": self._queue.qsize()},
            )
            return False
        return True

    # --- the writes ----------------------------------------------------------------------

    def _submit(self, uri: str, update: dict[str, Any]) -> None:
        with self._thread_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._drain, name="iiif-ledger", daemon=True)
                self._thread.start()
            self._queue.put((uri, update))

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self.write(*item)

    def write(self, uri: str, update: dict[str, Any]) -> bool:
        """One UpdateItem, retried with backoff on throttling and network errors; a failure is
        logged, never raised. Returns whether it was written."""
        from botocore.exceptions import BotoCoreError, ClientError

        request = self._request(uri, update)
        delay = FIRST_DELAY
        for attempt in range(1, ATTEMPTS + 1):
            try:
                self.client.update_item(**request)
                return True
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                transient = code in TRANSIENT_CODES or code.startswith("5")
                error = code or str(exc)
            except BotoCoreError as exc:  # connection and timeout errors
                transient, error = True, str(exc)
            if not transient or attempt == ATTEMPTS:
                log.error(
                    "ledger write failed",
                    extra={"uri": uri, "table": self.table, "error": error, "attempts": attempt},
                )
                return False
            log.warning(
                "ledger write failed, retrying",
                extra={"uri": uri, "table": self.table, "error": error, "attempt": attempt},
            )
            self._sleep(delay)
            delay = min(MAX_DELAY, delay * 2)
        return False  # pragma: no cover - the loop always returns

    def _request(self, uri: str, update: dict[str, Any]) -> dict[str, Any]:
        """The UpdateItem parameters: SET the values (``created_at`` only if absent), REMOVE the
        attributes that no longer hold."""
        names: dict[str, str] = {"#created_at": "created_at"}
        values: dict[str, Any] = {":created_at": {"S": update["created"]}}
        assignments = ["#created_at = if_not_exists(#created_at, :created_at)"]
        for name, value in update["set"].items():
            names[f"#{name}"] = name
            values[f":{name}"] = _attribute(value)
            assignments.append(f"#{name} = :{name}")
        expression = "SET " + ", ".join(assignments)
        removed = [name for name in update.get("remove", ()) if name not in update["set"]]
        if removed:
            names.update({f"#{name}": name for name in removed})
            expression += " REMOVE " + ", ".join(f"#{name}" for name in removed)
        return {
            "TableName": self.table,
            "Key": {"uri": {"S": uri}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }


def _attribute(value: Any) -> dict[str, Any]:
    """A Python value as a DynamoDB attribute value."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": _number(value)}
    return {"S": str(value)}
