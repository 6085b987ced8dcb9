"""``make bench``, backfill part: keys per second of ``-mode backfill`` against the embedded AWS.

100,000 objects in a source bucket of the embedded AWS (moto's server on localhost, as for
``make demo``; the objects go straight into its S3 backend, the part being measured goes over
HTTP). Two runs of the real Backfill (iiif_process_ecs.backfill), timed end to end:

- first: every key new: ListObjectsV2 pages, BatchGetItem reads, BatchWriteItem ``queued`` marks
  and SendMessageBatch calls (what a first backfill of a collection does);
- again: every key already queued: listing and ledger reads only (a resumed or repeated run).

Printed beside what AWS's API limits allow (README, "Backfill speed"): the calls a thousand keys
take, and the rate one sequential client reaches at typical in-region latencies (assumed).

Usage: ``python -m bench.backfill [--keys N]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from iiif_process_ecs.backfill import PAGE_SIZE, WRITE_BATCH_LIMIT, Backfill, BackfillOptions
from iiif_process_ecs.ledger import BATCH_GET_LIMIT, Ledger
from iiif_process_ecs.requeue import MESSAGES_PER_CALL, RECORDS_PER_MESSAGE, Requeuer

KEYS = 100_000
BUCKET = "bench-backfill-source"
TABLE = "bench-backfill-ledger"
QUEUE = "bench-backfill-events"

# Typical in-region latencies of one call (assumed for the AWS figure, not measured here).
LATENCY_SECONDS = {
    "ListObjectsV2": 0.030,
    "BatchGetItem": 0.008,
    "BatchWriteItem": 0.008,
    "SendMessageBatch": 0.010,
}


@dataclass(frozen=True)
class Figures:
    """Keys per second of the two runs, and their key counts."""

    keys: int
    first_seconds: float
    first_queued: int
    again_seconds: float
    again_skipped: int

    @property
    def first_rate(self) -> float:
        return self.keys / self.first_seconds

    @property
    def again_rate(self) -> float:
        return self.keys / self.again_seconds


def calls_per_thousand() -> dict[str, float]:
    """API calls a thousand new keys take, from the limits the backfill packs to."""
    return {
        "ListObjectsV2": 1000 / PAGE_SIZE,
        "BatchGetItem": 1000 / BATCH_GET_LIMIT,
        "BatchWriteItem": 1000 / WRITE_BATCH_LIMIT,
        "SendMessageBatch": 1000 / (RECORDS_PER_MESSAGE * MESSAGES_PER_CALL),
    }


def aws_rate(calls: dict[str, float], *, skip: Sequence[str] = ()) -> float:
    """Keys per second of one sequential client at LATENCY_SECONDS per call."""
    seconds = sum(n * LATENCY_SECONDS[name] for name, n in calls.items() if name not in skip)
    return 1000 / seconds


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


def _run(aws: Any, s3: Any, dynamodb: Any, queue: str) -> tuple[float, Any]:
    backfill = Backfill(
        s3,
        Ledger(TABLE, dynamodb),
        Requeuer(aws.client("sqs"), queue, BUCKET, region=aws.region),
        BackfillOptions(bucket=BUCKET, run="bench", region=aws.region),
    )
    started = time.perf_counter()
    result = backfill.run()
    return time.perf_counter() - started, result


def measure_backfill(keys: int = KEYS) -> Figures:
    """Both runs against a fresh embedded AWS."""
    from local_aws.server import moto_server

    with moto_server() as aws:
        s3, dynamodb, queue = _create(aws)
        _fill(keys)
        first_seconds, first = _run(aws, s3, dynamodb, queue)
        again_seconds, again = _run(aws, s3, dynamodb, queue)
    return Figures(
        keys=keys,
        first_seconds=first_seconds,
        first_queued=first.queued,
        again_seconds=again_seconds,
        again_skipped=sum(again.skipped.values()),
    )


def render_backfill(figures: Figures | None, note: str = "") -> list[str]:
    """The backfill lines of the report."""
    calls = calls_per_thousand()
    per_thousand = ", ".join(f"{name} {n:g}" for name, n in calls.items())
    lines = [
        "",
        "backfill (-mode backfill), keys per second:",
        f"  calls per 1000 new keys: {per_thousand}",
        f"  AWS, one sequential client at typical latencies (README): "
        f"{aws_rate(calls):,.0f} keys/s first run, "
        f"{aws_rate(calls, skip=('BatchWriteItem', 'SendMessageBatch')):,.0f} keys/s repeated",
    ]
    if figures is None:
        lines.append(f"  embedded AWS: not measured ({note})")
        return lines
    lines += [
        f"  embedded AWS, {figures.keys:,} keys, first run (list, read, mark, queue): "
        f"{figures.first_rate:,.0f} keys/s ({figures.first_seconds:.1f} s, "
        f"{figures.first_queued:,} queued)",
        f"  embedded AWS, the same keys again (list, read; all already queued): "
        f"{figures.again_rate:,.0f} keys/s ({figures.again_seconds:.1f} s, "
        f"{figures.again_skipped:,} skipped)",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backfill", description=__doc__)
    parser.add_argument("--keys", type=int, default=KEYS, help=f"objects (default {KEYS:,})")
    args = parser.parse_args(argv)
    print("\n".join(render_backfill(measure_backfill(args.keys))).lstrip("\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
