"""backfill.py's listing: with one worker the pages are listed in the caller's thread, one at a
time, else the next page is listed ahead in a thread of its own."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
from iiif_process_ecs.backfill import Backfill, BackfillOptions
from iiif_process_ecs.ledger import Ledger
from iiif_process_ecs.requeue import Requeuer

from tests.lambda_src.backfill_support import Place, new_place, put_objects
from tests.lambda_src.conftest import REGION, Infra
from tests.lambda_src.ledger_support import dynamodb


@pytest.fixture
def place(infra: Infra) -> Place:
    return new_place(infra)


def listing_threads(place: Place, workers: int) -> set[str]:
    """The names of the threads that called ListObjectsV2 during a dry run."""
    put_objects(place.bucket, [f"img/{index:03d}.jpg" for index in range(5)])
    s3 = boto3.client("s3", region_name=REGION)
    threads: set[str] = set()

    def note(**_: Any) -> None:
        threads.add(threading.current_thread().name)

    s3.meta.events.register("before-call.s3.ListObjectsV2", note)
    requeuer = Requeuer(boto3.client("sqs", region_name=REGION), place.queue, place.bucket)
    options = BackfillOptions(bucket=place.bucket, dry_run=True, page_size=2, workers=workers)
    Backfill(s3, Ledger(place.table, dynamodb()), requeuer, options).run()
    return threads


def test_with_one_worker_pages_are_listed_in_the_callers_thread(place: Place) -> None:
    assert listing_threads(place, workers=1) == {threading.current_thread().name}


def test_with_more_workers_the_next_page_is_listed_in_another_thread(place: Place) -> None:
    assert threading.current_thread().name not in listing_threads(place, workers=4)
