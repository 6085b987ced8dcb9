"""``make bench``, backfill part: keys per second of ``-mode backfill`` against the embedded AWS,
where the time goes, and what AWS's API limits allow.

100,000 objects in a source bucket of the embedded AWS (moto's server on localhost, as for
``make demo``; the objects go straight into its S3 backend, the part being measured goes over
HTTP). The real Backfill (iiif_process_ecs.backfill), timed end to end:

- first run: every key new: ListObjectsV2 pages, BatchGetItem reads, a conditional PutItem
  ``queued`` mark per key and SendMessageBatch calls (what a first backfill of a collection does);
- with ``--again``, a second run: every key already queued: listing and ledger reads only (a
  resumed or repeated run).

Every AWS call is timed where the client makes it, by operation: the calls, their total time,
and the mean time of the first and last tenth of them (moto's listing sorts the whole bucket for
every page, so it grows with the bucket). The event queue is drained as it fills, as the
trigger's event source mapping does on AWS, by a thread of its own whose calls are not counted:
moto's SendMessage evaluates the queue's attributes, counting every message in it, on each
send, so an undrained queue of 10,000 messages makes every send ten times slower (measured:
21 ms a call at first, 265 ms after 10,000 keys), which AWS does not. The drained records are
counted: every queued key must arrive once.

The run uses the CLI's threads (backfill.BACKFILL_WORKERS) by default. Against AWS they hide
round trips; against the embedded AWS, which runs in this same interpreter, they mostly contend
for it (10,000 keys: 168 keys/s with 32 threads, 132 with one). With ``--workers 1`` every
request is made one at a time, so the run's time is exactly the time in AWS calls plus the time
in our code, and the report adds that up: the profile.

The AWS figure is computed, not measured: the calls a thousand keys take at the API limits
(ListObjectsV2 1000 keys a page, BatchGetItem 100 keys, SendMessageBatch 10 messages of 10
records, one conditional PutItem a key), typical in-region latencies (assumed), the CLI's
threads, and a new on-demand DynamoDB table's throughput (4,000 writes/s, 12,000 reads/s).

Usage: ``python -m bench.backfill [--keys N] [--workers N] [--again]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from iiif_process_ecs.backfill import BACKFILL_WORKERS, PAGE_SIZE, Backfill, BackfillOptions
from iiif_process_ecs.ledger import BATCH_GET_LIMIT, Ledger
from iiif_process_ecs.requeue import MESSAGES_PER_CALL, RECORDS_PER_MESSAGE, Requeuer

KEYS = 100_000
WORKERS = BACKFILL_WORKERS
BUCKET = "bench-backfill-source"
TABLE = "bench-backfill-ledger"
QUEUE = "bench-backfill-events"

# Typical in-region latencies of one call (assumed for the AWS figure, not measured here).
LATENCY_SECONDS = {
    "ListObjectsV2": 0.030,
    "BatchGetItem": 0.008,
    "PutItem": 0.006,
    "SendMessageBatch": 0.010,
}
# A new on-demand table serves up to this many write / read request units a second at once
# (AWS DynamoDB developer guide, "On-demand capacity mode", initial throughput); a mark is one
# write unit (items under 1 KB), a consistent read of an item under 4 KB one read unit.
ON_DEMAND_WRITES_PER_SECOND = 4_000
ON_DEMAND_READS_PER_SECOND = 12_000

# boto3 method → API operation name, for the report.
OPERATIONS = {
    "list_objects_v2": "ListObjectsV2",
    "batch_get_item": "BatchGetItem",
    "put_item": "PutItem",
    "send_message_batch": "SendMessageBatch",
}


@dataclass
class CallTimes:
    """The durations of one operation's calls, in the order they were made."""

    durations: list[float] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.durations)

    def tenth_ms(self, last: bool) -> float:
        """Mean milliseconds of the first (or last) tenth of the calls."""
        n = max(1, len(self.durations) // 10)
        part = self.durations[-n:] if last else self.durations[:n]
        return 1000 * sum(part) / len(part) if part else 0.0


class Timer:
    """Times every call made through the clients it wraps, by operation (thread-safe)."""

    def __init__(self) -> None:
        self.calls: dict[str, CallTimes] = defaultdict(CallTimes)
        self._lock = threading.Lock()

    def add(self, method: str, seconds: float) -> None:
        with self._lock:
            self.calls[OPERATIONS.get(method, method)].durations.append(seconds)

    def wrap(self, client: Any) -> Any:
        return _Timed(client, self)


class _Timed:
    def __init__(self, client: Any, timer: Timer) -> None:
        self._client = client
        self._timer = timer

    def get_paginator(self, name: str) -> Any:
        paginator = self._client.get_paginator(name)
        timer = self._timer

        class Timed:
            def paginate(self, **kwargs: Any) -> Iterator[Any]:
                pages = iter(paginator.paginate(**kwargs))
                while True:
                    started = time.perf_counter()
                    try:
                        page = next(pages)
                    except StopIteration:
                        return
                    timer.add(name, time.perf_counter() - started)
                    yield page

        return Timed()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(**kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attribute(**kwargs)
            finally:
                self._timer.add(name, time.perf_counter() - started)

        return call


@dataclass(frozen=True)
class RunFigures:
    """One timed run: its wall time, counts and the time in each operation."""

    label: str
    keys: int
    seconds: float
    queued: int
    skipped: int
    calls: dict[str, CallTimes]

    @property
    def rate(self) -> float:
        return self.keys / self.seconds

    @property
    def in_calls(self) -> float:
        return sum(times.total for times in self.calls.values())


@dataclass(frozen=True)
class Figures:
    """Both runs."""

    keys: int
    workers: int
    runs: tuple[RunFigures, ...]


def calls_per_thousand() -> dict[str, float]:
    """API calls a thousand new keys take, from the limits the backfill packs to."""
    return {
        "ListObjectsV2": 1000 / PAGE_SIZE,
        "BatchGetItem": 1000 / BATCH_GET_LIMIT,
        "PutItem": 1000.0,
        "SendMessageBatch": 1000 / (RECORDS_PER_MESSAGE * MESSAGES_PER_CALL),
    }


def aws_rate(
    calls: dict[str, float], *, workers: int = BACKFILL_WORKERS, skip: Sequence[str] = ()
) -> float:
    """Keys per second on AWS at LATENCY_SECONDS per call: the listing runs a page ahead (its
    own thread), the other calls of a page ``workers`` at once; capped by the on-demand table's
    write and read throughput."""
    work = sum(
        math.ceil(n / workers) * LATENCY_SECONDS[name]
        for name, n in calls.items()
        if name not in skip and name != "ListObjectsV2"
    )
    seconds = max(work, calls["ListObjectsV2"] * LATENCY_SECONDS["ListObjectsV2"])
    rate = 1000 / seconds
    if "PutItem" not in skip:
        rate = min(rate, ON_DEMAND_WRITES_PER_SECOND)
    return min(rate, ON_DEMAND_READS_PER_SECOND)


def _create(aws: Any) -> tuple[Any, Any, str]:
    s3, dynamodb, sqs = aws.client("s3"), aws.client("dynamodb"), aws.client("sqs")
    s3.create_bucket(Bucket=BUCKET)
    dynamodb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("uri", "status", "updated_at", "task_arn")
        ],
        KeySchema=[{"AttributeName": "uri", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": hash_key, "KeyType": "HASH"},
                    {"AttributeName": range_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, hash_key, range_key in (
                ("by-status", "status", "updated_at"),
                ("by-task", "task_arn", "uri"),
            )
        ],
    )
    queue = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    return s3, dynamodb, queue


def _fill(count: int) -> None:
    # The server runs in this process: its S3 backend takes the objects without 100,000 PUTs.
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    for index in range(count):
        backend.put_object(BUCKET, f"collection/{index // 1000:03d}/{index:07d}.tif", b"tiff")


class Drain:
    """Receives and deletes the event queue's messages as they arrive (what the trigger's event
    source mapping does), on a thread of its own; counts the records it took."""

    def __init__(self, sqs: Any, queue: str) -> None:
        self.sqs = sqs
        self.queue = queue
        self.records = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="bench-drain", daemon=True)

    def __enter__(self) -> Drain:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _loop(self) -> None:
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                if self.stop.is_set():
                    return
                time.sleep(0.05)
                continue
            for message in messages:
                self.records += len(json.loads(message["Body"])["Records"])
            self.sqs.delete_message_batch(
                QueueUrl=self.queue,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )


def _run(aws: Any, s3: Any, dynamodb: Any, queue: str, label: str, workers: int) -> RunFigures:
    timer = Timer()
    backfill = Backfill(
        timer.wrap(s3),
        Ledger(TABLE, timer.wrap(dynamodb)),
        Requeuer(timer.wrap(aws.client("sqs")), queue, BUCKET, region=aws.region),
        BackfillOptions(bucket=BUCKET, run="bench", region=aws.region, workers=workers),
    )
    with Drain(aws.client("sqs"), queue) as drain:
        started = time.perf_counter()
        result = backfill.run()
        seconds = time.perf_counter() - started
    if drain.records != result.queued:
        raise RuntimeError(f"{result.queued} keys queued but {drain.records} records arrived")
    return RunFigures(
        label=label,
        keys=result.listed,
        seconds=seconds,
        queued=result.queued,
        skipped=sum(result.skipped.values()),
        calls=dict(timer.calls),
    )


def measure_backfill(keys: int = KEYS, workers: int = WORKERS, *, again: bool = False) -> Figures:
    """The first run (and with ``again`` a second) against a fresh embedded AWS."""
    from local_aws.server import moto_server

    with moto_server() as aws:
        s3, dynamodb, queue = _create(aws)
        _fill(keys)
        runs = [_run(aws, s3, dynamodb, queue, "first run (list, read, mark, queue)", workers)]
        if again:
            runs.append(_run(aws, s3, dynamodb, queue, "the same keys again (list, read)", workers))
    return Figures(keys=keys, workers=workers, runs=tuple(runs))


def _run_lines(run: RunFigures, workers: int) -> list[str]:
    lines = [
        f"  embedded AWS, {run.keys:,} keys, {run.label}: {run.rate:,.0f} keys/s "
        f"({run.seconds:.1f} s; {run.queued:,} queued, {run.skipped:,} skipped)",
    ]
    order = sorted(run.calls.items(), key=lambda pair: -pair[1].total)
    for name, times in order:
        # Only one request at a time makes the times of the calls add up to the run's.
        share = (
            f"{times.total:>8.1f} s {100 * times.total / run.seconds:>4.0f} %  "
            if workers <= 1
            else ""
        )
        lines.append(
            f"    {name:<17} {len(times.durations):>7,} calls {share}ms/call first tenth "
            f"{times.tenth_ms(last=False):>7.1f}, last tenth {times.tenth_ms(last=True):>7.1f}"
        )
    if workers <= 1:
        ours = run.seconds - run.in_calls
        lines.append(
            f"    {'our code':<17} {'':>13} {ours:>8.1f} s {100 * ours / run.seconds:>4.0f} %  "
            f"= {run.keys / ours if ours > 0 else float('inf'):,.0f} keys/s on its own"
        )
    return lines


def render_backfill(figures: Figures | None, note: str = "") -> list[str]:
    """The backfill lines of the report."""
    calls = calls_per_thousand()
    per_thousand = ", ".join(f"{name} {n:g}" for name, n in calls.items())
    repeated = aws_rate(calls, skip=("PutItem", "SendMessageBatch"))
    lines = [
        "",
        "backfill (-mode backfill), keys per second:",
        f"  calls per 1000 new keys: {per_thousand}",
        f"  AWS (computed from the API limits, {BACKFILL_WORKERS} threads, typical latencies; "
        f"a new on-demand table takes {ON_DEMAND_WRITES_PER_SECOND:,} writes/s): "
        f"{aws_rate(calls):,.0f} keys/s first run, {repeated:,.0f} keys/s repeated; "
        f"a million new keys in {1_000_000 / aws_rate(calls) / 60:.0f} min",
    ]
    if figures is None:
        lines.append(f"  embedded AWS: not measured ({note})")
        return lines
    lines.append(
        f"  embedded AWS, {figures.workers} thread(s) (time in each API where the client calls "
        "it; the event queue drained as it fills, as the trigger does):"
    )
    for run in figures.runs:
        lines += _run_lines(run, figures.workers)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backfill", description=__doc__)
    parser.add_argument("--keys", type=int, default=KEYS, help=f"objects (default {KEYS:,})")
    parser.add_argument("--workers", type=int, default=WORKERS, help=f"threads (default {WORKERS})")
    parser.add_argument(
        "--again", action="store_true", help="also time a second run over the same keys"
    )
    args = parser.parse_args(argv)
    figures = measure_backfill(args.keys, args.workers, again=args.again)
    print("\n".join(render_backfill(figures)).lstrip("\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
