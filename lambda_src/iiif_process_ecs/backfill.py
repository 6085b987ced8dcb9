"""``iiif-process-ecs -mode backfill``: send what a source bucket already holds through the
event queue (issue #10).

Page by page (ListObjectsV2, 1000 keys a page, from ``-start-after``, under ``-prefix``; the
next page is listed while this one is worked on): the trigger's key rule and size limit
(keys.check_key, one rule), then the ledger (BatchGetItem, 100 keys a call, ten calls at once)
to skip what is unchanged, then for the rest: ``queued`` in the ledger, then S3-notification
messages to the event queue (requeue.py: several records a message, ten messages a
SendMessageBatch, the calls of a page at once). The trigger then claims and packs them as it
does uploads.

The ``queued`` mark is a conditional UpdateItem per key (Ledger.queue_if_unchanged, sixteen at
once): it is written only if the item is still as read. A trigger claim or a task's outcome that
lands between the read and the mark is kept; the key is read again and decided again (it is
then usually skipped ``already started`` or ``unchanged``), so a backfill never overwrites a
newer state. Only keys whose mark was written are sent.

A page is done or undone as a whole: keys whose message could not be sent (or a page cut short
by a second Ctrl-C) get their ledger items put back as they were read, so ``-start-after`` (the
last key of the last finished page) resumes without losing a key.
"""

from __future__ import annotations

import json
import queue
import re
import shlex
import threading
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from .cost import (
    TaskSize,
    cost_of,
    estimate_backfill,
    prices_for,
    puts_per_image,
    sqs_billed_requests,
    tasks_for,
)
from .keys import check_key
from .ledger import (
    Ledger,
    LedgerError,
    concurrently,
    decide_claim,
    now_iso,
    same_object,
)
from .logs import log
from .progress import Progress
from .requeue import (
    RequeueKey,
    Requeuer,
    SendReport,
    message_bodies,
    run_sequencer,
    send_calls,
)

PAGE_SIZE = 1000  # ListObjectsV2's maximum keys a page
ALREADY_QUEUED = "already queued"
# A key whose item another part changed between the read and the mark is read and decided
# again, this many times in all; still moving after that, it is left to that part.
MARK_ROUNDS = 3
CHANGED_WHILE_QUEUEING = "changed while being queued (left to the part that changed it)"
# Threads for a page's ledger calls and sends: enough that a thousand conditional marks at a few
# milliseconds each take about as long as a new on-demand table's 4,000 writes a second allow.
# With 1 everything runs in the calling thread, one request at a time (no listing ahead).
BACKFILL_WORKERS = 32
FAILED_BEFORE = "failed before (-mode retry re-queues it)"
QUEUED_REASON = "queued by iiif-process-ecs -mode backfill"
EXIT_STOPPED = 130  # the shell's status for a run stopped by Ctrl-C


class BackfillUsageError(ValueError):
    """-mode backfill lacks something it needs (exit status 2); the message names the flag."""


class StopRequest:
    """Set by the first Ctrl-C (see cli.py): the run stops after the page in hand."""

    def __init__(self) -> None:
        self.requested = False


def reason_class(reason: str) -> str:
    """The short form of a skip reason used for counting: ``"too large: 5 bytes > ..."`` →
    ``"too large"``; ``"unsupported file type ('.txt'); ..."`` → ``"unsupported file type"``."""
    return re.split(r": | \(", reason, maxsplit=1)[0]


def skip_reason(
    item: Mapping[str, Any] | None, etag: str, recipe: str, *, force: bool, now: datetime
) -> str | None:
    """Why the ledger says a listed key needs no backfill, or None to queue it.

    The trigger's claim rule (unchanged: ``succeeded`` for this ETag and recipe, unless
    ``force``; ``already started``), and also: ``queued`` for this ETag and recipe (a message is
    on its way) and ``failed`` for it (``-mode retry`` is the way back), unless ``force``.
    """
    if item is None:
        return None
    decision = decide_claim(item, etag, recipe, force=force, now=now)
    if decision.action == "skip":
        return decision.reason
    if not force and same_object(item, etag, recipe):
        if item.get("status") == "queued":
            return ALREADY_QUEUED
        if item.get("status") == "failed":
            return FAILED_BEFORE
    return None


@dataclass(frozen=True)
class Listed:
    """One object of the listing."""

    key: str
    etag: str
    size: int


@dataclass
class BackfillResult:
    """The run's counts; ``failed`` keys could not be queued (AWS errors, put back)."""

    listed: int = 0
    queued: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: list[tuple[str, str]] = field(default_factory=list)
    messages: int = 0
    sqs_send_requests: int = 0
    last_key: str = ""
    stopped: bool = False
    pages: int = 0


@dataclass(frozen=True)
class BackfillOptions:
    """What to list and how to treat it."""

    bucket: str
    prefix: str = ""
    start_after: str = ""
    recipe: str = ""
    max_source_bytes: int = 0
    dry_run: bool = False
    force: bool = False
    run: str = ""
    region: str = ""
    page_size: int = PAGE_SIZE
    workers: int = BACKFILL_WORKERS


class Backfill:
    """One backfill run. ``ledger`` and ``requeuer`` talk to AWS; ``on_page`` (tests, the CLI)
    is called after each finished page and may raise KeyboardInterrupt to stop the run."""

    def __init__(
        self,
        s3: Any,
        ledger: Ledger,
        requeuer: Requeuer | None,
        options: BackfillOptions,
        *,
        progress: Progress | None = None,
        stop: StopRequest | None = None,
        on_page: Callable[[BackfillResult], None] | None = None,
        on_would_queue: Callable[[Sequence[str]], None] | None = None,
        on_failed_key: Callable[[str, str], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if requeuer is None and not options.dry_run:
            raise BackfillUsageError("a backfill that is not a dry run needs the event queue")
        self.s3 = s3
        self.ledger = ledger
        self.requeuer = requeuer
        self.options = options
        self.progress = progress
        self.stop = stop or StopRequest()
        self.on_page = on_page
        self.on_would_queue = on_would_queue
        self.on_failed_key = on_failed_key
        self.clock = clock
        self.result = BackfillResult()

    # -- the run -----------------------------------------------------------------------------

    def pages(self) -> Generator[list[Listed], None, None]:
        """ListObjectsV2 pages of Listed objects (1000 a page), in key order, each listed
        while the one before is worked on (prefetched) unless ``workers`` is 1."""
        if self.options.workers <= 1:
            return (page for page in self._listing())
        return prefetched(self._listing())

    def _listing(self) -> Iterator[list[Listed]]:
        kwargs: dict[str, Any] = {
            "Bucket": self.options.bucket,
            "PaginationConfig": {"PageSize": self.options.page_size},
        }
        if self.options.prefix:
            kwargs["Prefix"] = self.options.prefix
        if self.options.start_after:
            kwargs["StartAfter"] = self.options.start_after
        for page in self.s3.get_paginator("list_objects_v2").paginate(**kwargs):
            yield [
                Listed(
                    key=obj["Key"],
                    etag=str(obj.get("ETag", "")).strip('"'),
                    size=int(obj.get("Size", 0)),
                )
                for obj in page.get("Contents", [])
            ]

    def run(self) -> BackfillResult:
        """List, check, skip, queue; stops after a page when asked (``stop``, KeyboardInterrupt)."""
        result = self.result
        result.last_key = self.options.start_after
        pages = self.pages()
        try:
            for page in pages:
                try:
                    self.process_page(page)
                except KeyboardInterrupt:
                    result.stopped = True
                    break
                if page:
                    result.last_key = page[-1].key
                result.pages += 1
                self._show()
                if self.on_page is not None:
                    try:
                        self.on_page(result)
                    except KeyboardInterrupt:
                        result.stopped = True
                        break
                if self.stop.requested:
                    result.stopped = True
                    break
        except KeyboardInterrupt:
            # Between pages (while listing): nothing of the next page was done.
            result.stopped = True
        finally:
            pages.close()  # stops the listing thread
        self._show(final=True)
        if self.progress is not None:
            self.progress.finish()
        log(
            "backfill finished" if not result.stopped else "backfill stopped",
            listed=result.listed,
            queued=result.queued,
            skipped=dict(result.skipped),
            failed=len(result.failed),
            last_key=result.last_key,
        )
        return result

    def _show(self, *, final: bool = False) -> None:
        if self.progress is not None:
            r = self.result
            self.progress.update(r.listed, r.queued, r.skipped, final=final)

    # -- one page ----------------------------------------------------------------------------

    def process_page(self, page: Sequence[Listed]) -> None:
        """Check, read the ledger, mark and send one page; all of it or, if cut short, none."""
        counts: Counter[str] = Counter()
        candidates: list[Listed] = []
        for obj in page:
            verdict = check_key(obj.key, obj.size, self.options.max_source_bytes)
            if verdict is None:
                candidates.append(obj)
                continue
            counts[reason_class(verdict.reason)] += 1
            if verdict.outcome == "failed" and self.on_failed_key is not None:
                self.on_failed_key(obj.key, verdict.reason)
        seen = (
            self.ledger.get_many((obj.key for obj in candidates), workers=self.options.workers)
            if candidates
            else {}
        )
        now = self.clock()
        to_queue: list[Listed] = []
        for obj in candidates:
            reason = skip_reason(
                seen.get(obj.key),
                obj.etag,
                self.options.recipe,
                force=self.options.force,
                now=now,
            )
            if reason is None:
                to_queue.append(obj)
            else:
                counts[reason] += 1
        if self.options.dry_run:
            messages = self._messages(to_queue)
            self._count_messages(messages)
            if self.on_would_queue is not None and to_queue:
                self.on_would_queue([obj.key for obj in to_queue])
            self._add(len(page), len(to_queue), counts)
            return
        marked: dict[str, Mapping[str, Any] | None] = {}
        stamp = now_iso(now)
        try:
            counts.update(self.mark_queued(to_queue, seen, stamp, marked).values())
            messages = self._messages([obj for obj in to_queue if obj.key in marked])
            report = self.send(messages)
        except KeyboardInterrupt:
            # A second Ctrl-C: put the page's items back; the page is redone on resume.
            self.undo(marked, stamp)
            raise
        self._count_messages(messages)
        sent = set(report.sent)
        failed = [(uri, reason) for uri, reason in report.failed if uri in marked]
        if failed:
            self.undo({uri: marked[uri] for uri, _ in failed}, stamp)
            self.result.failed.extend(failed)
            if self.on_failed_key is not None:
                for uri, reason in failed:
                    self.on_failed_key(uri, f"not queued: {reason}")
        self._add(len(page), len(sent & set(marked)), counts)

    def send(self, messages: Sequence[tuple[list[str], str]]) -> SendReport:
        """Send a page's messages: its SendMessageBatch calls at once (up to ``workers``)."""
        report = SendReport()
        if not messages:
            return report
        assert self.requeuer is not None
        calls = send_calls(messages)
        lanes = min(self.options.workers, len(calls))
        groups = [[m for call in calls[lane::lanes] for m in call] for lane in range(lanes)]
        for part in concurrently(self.requeuer.send_messages, groups, workers=lanes):
            assert part is not None
            report.sent.extend(part.sent)
            report.failed.extend(part.failed)
        return report

    def _add(self, listed: int, queued: int, counts: Counter[str]) -> None:
        self.result.listed += listed
        self.result.queued += queued
        self.result.skipped.update(counts)

    def _messages(self, objects: Sequence[Listed]) -> list[tuple[list[str], str]]:
        keys = [
            RequeueKey(
                uri=obj.key,
                etag=obj.etag,
                size=obj.size,
                sequencer=run_sequencer("backfill", self.options.run, obj.key),
            )
            for obj in objects
        ]
        return message_bodies(self.options.bucket, keys, region=self.options.region)

    def _count_messages(self, messages: Sequence[tuple[list[str], str]]) -> None:
        self.result.messages += len(messages)
        for call in send_calls(messages):
            size = sum(len(body.encode("utf-8")) for _, body in call)
            self.result.sqs_send_requests += sqs_billed_requests(size)

    # -- the ledger --------------------------------------------------------------------------

    def mark_queued(
        self,
        objects: Sequence[Listed],
        seen: Mapping[str, Any],
        stamp: str,
        marked: dict[str, Mapping[str, Any] | None],
    ) -> dict[str, str]:
        """Set ``queued`` for ``objects``, each only if its item is still as read
        (Ledger.queue_if_unchanged, ``workers`` at once). ``marked`` receives uri → the item
        before for every mark written (as they are written, so that an interrupted page can be
        undone). A key whose item changed meanwhile is read again and decided again, up to
        MARK_ROUNDS times. Returns uri → skip reason for the keys not marked."""
        current: dict[str, Any] = dict(seen)
        pending = list(objects)
        skipped: dict[str, str] = {}

        def mark(obj: Listed) -> bool:
            before = current.get(obj.key)
            if not self.ledger.queue_if_unchanged(
                obj.key,
                seen=before,
                etag=obj.etag,
                size=obj.size,
                recipe=self.options.recipe,
                reason=QUEUED_REASON,
                stamp=stamp,
            ):
                return False
            marked[obj.key] = before
            return True

        for _ in range(MARK_ROUNDS):
            results = concurrently(mark, pending, workers=self.options.workers)
            lost = [obj for obj, done in zip(pending, results, strict=True) if not done]
            if not lost:
                return skipped
            fresh = self.ledger.get_many((obj.key for obj in lost), workers=self.options.workers)
            now = self.clock()
            pending = []
            for obj in lost:
                item = fresh.get(obj.key)
                reason = skip_reason(
                    item, obj.etag, self.options.recipe, force=self.options.force, now=now
                )
                if reason is None:
                    current[obj.key] = item
                    pending.append(obj)
                else:
                    skipped[obj.key] = reason
            if not pending:
                return skipped
        skipped.update((obj.key, CHANGED_WHILE_QUEUEING) for obj in pending)
        return skipped

    def undo(self, marked: Mapping[str, Mapping[str, Any] | None], stamp: str) -> None:
        """Put back the items of ``marked`` as they were before (delete those that did not
        exist), each only if it is still our ``queued`` of ``stamp``."""
        expect = {"status": "queued", "updated_at": stamp}

        def one(entry: tuple[str, Mapping[str, Any] | None]) -> None:
            uri, before = entry
            try:
                if before is not None:
                    self.ledger.put_back(before, expect=expect)
                else:
                    self.ledger.delete_if(uri, expect=expect)
            except (ClientError, BotoCoreError, LedgerError) as error:
                log("backfill: ledger item not put back", level="ERROR", uri=uri, error=str(error))

        concurrently(one, list(marked.items()), workers=self.options.workers)


def prefetched(pages: Iterator[list[Listed]]) -> Generator[list[Listed], None, None]:
    """``pages``, each fetched on a helper thread while the caller works on the one before
    (one page ahead). The helper stops when the caller stops asking; its errors reach the
    caller at the page they would have been."""
    ahead: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    done = threading.Event()

    def offer(entry: tuple[str, Any]) -> bool:
        while not done.is_set():
            try:
                ahead.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            for page in pages:
                if not offer(("page", page)):
                    return
        except BaseException as error:  # handed to the caller, raised there
            offer(("error", error))
            return
        offer(("end", None))

    thread = threading.Thread(target=fetch, name="backfill-listing", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = ahead.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        done.set()


def object_count(cloudwatch: Any, bucket: str, now: datetime | None = None) -> int | None:
    """The bucket's object count from S3's daily CloudWatch metric (NumberOfObjects), or None
    when there is none (new bucket, no permission): only a hint for the time left."""
    end = now or datetime.now(UTC)
    try:
        response = cloudwatch.get_metric_statistics(
            Namespace="AWS/S3",
            MetricName="NumberOfObjects",
            Dimensions=[
                {"Name": "BucketName", "Value": bucket},
                {"Name": "StorageType", "Value": "AllStorageTypes"},
            ],
            StartTime=end - timedelta(days=3),
            EndTime=end,
            Period=86400,
            Statistics=["Average"],
        )
    except (ClientError, BotoCoreError):
        return None
    points = sorted(response.get("Datapoints", []), key=lambda p: p["Timestamp"])
    return int(points[-1]["Average"]) if points else None


def summary(
    result: BackfillResult,
    *,
    max_uris_per_task: int,
    size: TaskSize,
    region: str,
    prices: str = "",
) -> dict[str, Any]:
    """The ``-json`` summary, exactly the issue's keys: listed, queued, skipped by reason,
    tasks, estimated cost. (Where to resume and keys not queued go to stderr, and the exit
    status says which: 130 stopped, 1 some key not queued.)"""
    usage = estimate_backfill(
        result.queued,
        max_uris_per_task,
        size,
        messages=result.messages,
        sqs_send_requests=result.sqs_send_requests,
    )
    table, _ = prices_for(region, size.architecture, prices)
    report: dict[str, Any] = {
        "listed": result.listed,
        "queued": result.queued,
        "skipped": dict(sorted(result.skipped.items())),
        "tasks": tasks_for(result.queued, max_uris_per_task),
        "estimated_cost_usd": round(cost_of(usage, table)["total"], 4),
    }
    return report


def describe(
    result: BackfillResult,
    report: Mapping[str, Any],
    *,
    dry_run: bool,
    size: TaskSize,
    region: str,
    prices: str = "",
) -> str:
    """The human-readable end of a run."""
    _, note = prices_for(region, size.architecture, prices)
    verb = "would be queued" if dry_run else "queued"
    lines = [
        f"listed {report['listed']:,}; {verb} {report['queued']:,} "
        f"({report['tasks']:,} task(s) at most-URIs-per-task); skipped "
        f"{sum(report['skipped'].values()):,}"
    ]
    for reason, count in sorted(report["skipped"].items(), key=lambda p: (-p[1], p[0])):
        lines.append(f"  {count:>9,}  {reason}")
    if result.failed:
        lines.append(f"not queued (AWS errors; put back, run again): {len(result.failed):,}")
    tiles = (
        f"tiles on: {puts_per_image(size)} S3 PUTs an image"
        if size.tiles
        else f"tiles off: {puts_per_image(size)} S3 PUTs an image"
    )
    lines.append(
        f"estimated cost of processing them: ${report['estimated_cost_usd']:,.4f} "
        f"({size.vcpu:g} vCPU / {size.memory_gb:g} GB {size.architecture} tasks, {tiles}; "
        f"{note}; an estimate from make bench's 24 MP figures, see docs/backfill.md)"
    )
    return "\n".join(lines) + "\n"


def resume_hint(result: BackfillResult) -> str:
    """The line printed when a run stops early."""
    if not result.last_key:
        return "stopped before the first page finished; run the same command again\n"
    return f"stopped; to resume: -start-after {shlex.quote(result.last_key)}\n"


def write_json(stream: TextIO, report: Mapping[str, Any]) -> None:
    stream.write(json.dumps(report, ensure_ascii=False) + "\n")
