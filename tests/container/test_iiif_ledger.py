"""The tool's ledger writes (#9, docs/contracts.md "The ledger"): with IIIF_PROCESS_LEDGER_TABLE
set, each image's outcome is written with UpdateItem as it finishes; without it, nothing; a
throttled write is retried; a failed write never fails the image. DynamoDB is moto in-process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import boto3
import pytest
from botocore.exceptions import ClientError
from iiif_process.batch import process_uris
from iiif_process.config import Config, StoreSpec
from iiif_process.ledger import Ledger
from iiif_process.params import parse_instructions
from iiif_process.pool import ABANDONED, StopSignal
from iiif_process.process import ReportOptions
from iiif_process.stores import DiskStore, Downloaded, MemoryStore, S3Store
from moto import mock_aws
from moto.server import ThreadedMotoServer

from . import iiif_images as gen
from .conftest import Workspace
from .test_iiif_pool import KILLER, KillingStore

TABLE = "iiif-ledger"
RECIPE = "0123456789abcdef"
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
INSTRUCTIONS = parse_instructions({"a": {"size": "!40,40", "format": "jpg"}})


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's DynamoDB with the ledger table (partition key ``uri``, as the contract says)."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "uri", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "uri", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _items(client: Any) -> dict[str, dict[str, Any]]:
    """Every item of the table, keyed by uri, with plain values."""
    items = client.scan(TableName=TABLE)["Items"]
    return {item["uri"]["S"]: {k: _plain(v) for k, v in item.items()} for item in items}


def _plain(value: dict[str, Any]) -> Any:
    ((kind, raw),) = value.items()
    return float(raw) if kind == "N" else raw


def _env(**extra: str) -> dict[str, str]:
    return {"IIIF_PROCESS_LEDGER_TABLE": TABLE, "IIIF_PROCESS_RECIPE": RECIPE, **extra}


# --- a run of the command --------------------------------------------------------------------


def test_a_succeeded_image_is_recorded_with_its_count_time_size_and_recipe(
    dynamodb: Any, ws: Workspace
) -> None:
    data = gen.jpeg()
    ws.put("good.jpg", data)
    status, _ = ws.run(["good.jpg"], {"a": {"size": "10,"}, "b": {"size": "20,"}}, env=_env())
    item = _items(dynamodb)["good.jpg"]
    assert status == 0
    assert {k: item[k] for k in ("status", "derivatives", "size", "recipe")} == {
        "status": "succeeded",
        "derivatives": 2,
        "size": len(data),
        "recipe": RECIPE,
    }
    assert item["seconds"] > 0
    assert STAMP.fullmatch(item["finished_at"]) and STAMP.fullmatch(item["created_at"])
    assert "processing_at" not in item  # no longer in progress


def test_a_failed_image_is_recorded_with_its_reason_and_not_retryable(
    dynamodb: Any, ws: Workspace
) -> None:
    ws.put("junk.jpg", b"not an image")
    _, results = ws.run(["junk.jpg"], env=_env())
    item = _items(dynamodb)["junk.jpg"]
    assert (item["status"], item["reason"], item["retryable"]) == (
        "failed",
        results["junk.jpg"]["error"],
        False,
    )


def test_a_missing_object_is_not_retryable(dynamodb: Any, ws: Workspace) -> None:
    ws.run(["missing.jpg"], env=_env())
    item = _items(dynamodb)["missing.jpg"]
    assert (item["status"], item["retryable"]) == ("failed", False)
    assert item["reason"].startswith("source object not found")


def test_an_unsafe_key_is_recorded_failed_and_not_retryable(dynamodb: Any, ws: Workspace) -> None:
    ws.run(["../x.jpg"], env=_env())
    item = _items(dynamodb)["../x.jpg"]
    assert (item["status"], item["retryable"]) == ("failed", False)


def test_nothing_is_written_without_the_variable(dynamodb: Any, ws: Workspace) -> None:
    ws.put("good.jpg", gen.jpeg())
    ws.put("junk.jpg", b"junk")
    ws.run(["good.jpg", "junk.jpg"], env={"IIIF_PROCESS_RECIPE": RECIPE})
    assert _items(dynamodb) == {}


def test_a_ledger_that_cannot_be_written_never_fails_an_image(dynamodb: Any, ws: Workspace) -> None:
    ws.put("good.jpg", gen.jpeg())
    status, results = ws.run(["good.jpg"], env=_env(IIIF_PROCESS_LEDGER_TABLE="no-such-table"))
    assert (status, "dimensions" in results["good.jpg"]) == (0, True)


# --- the batch ----------------------------------------------------------------------------------


def _batch(tmp_path: Path, uris: list[str], ledger: Ledger) -> dict[str, Any]:
    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir()
    out.mkdir()
    for uri in uris:
        (source / uri).write_bytes(gen.jpeg())
    config = Config(StoreSpec("disk", path=str(source)), StoreSpec("disk", path=str(out)))
    results = process_uris(
        uris,
        config,
        INSTRUCTIONS,
        KillingStore(str(source)),
        DiskStore(str(out)),
        ReportOptions(),
        ledger=ledger,
    )
    ledger.close()
    return results


def test_a_killed_worker_is_recorded_failed_and_retryable(dynamodb: Any, tmp_path: Path) -> None:
    _batch(tmp_path, ["a.jpg", KILLER, "b.jpg"], Ledger(TABLE, RECIPE))
    item = _items(dynamodb)[KILLER]
    assert (item["status"], item["reason"], item["retryable"]) == (
        "failed",
        "worker killed by SIGKILL (out of memory?) while processing this image",
        True,
    )


def test_a_uri_no_worker_could_take_is_recorded_failed_and_retryable(
    dynamodb: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    _batch(tmp_path, ["a.jpg"], Ledger(TABLE, RECIPE))
    item = _items(dynamodb)["a.jpg"]
    assert (item["status"], item["retryable"]) == ("failed", True)


def test_a_uri_abandoned_on_sigterm_is_recorded_failed_and_retryable(
    dynamodb: Any, tmp_path: Path
) -> None:
    stop = StopSignal()
    stop.set()  # SIGTERM before the batch started a worker
    ledger = Ledger(TABLE, RECIPE)
    config = Config(StoreSpec("memory"), StoreSpec("memory"))
    process_uris(
        ["a.jpg"],
        config,
        INSTRUCTIONS,
        MemoryStore(),
        MemoryStore(),
        ReportOptions(),
        stop=stop,
        ledger=ledger,
    )
    ledger.close()
    item = _items(dynamodb)["a.jpg"]
    assert (item["status"], item["reason"], item["retryable"]) == ("failed", ABANDONED, True)


class RecordingClient:
    """A DynamoDB client that notes each UpdateItem (uri, what it sets) before making it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[tuple[str, str]] = []

    def update_item(self, **request: Any) -> Any:
        values = request["ExpressionAttributeValues"]
        what = values[":status"]["S"] if ":status" in values else "processing_at"
        self.calls.append((request["Key"]["uri"]["S"], what))
        return self.client.update_item(**request)


def test_an_image_is_marked_in_progress_when_it_starts_then_its_outcome(
    dynamodb: Any, tmp_path: Path
) -> None:
    client = RecordingClient(dynamodb)
    _batch(tmp_path, ["a.jpg", "b.jpg"], Ledger(TABLE, RECIPE, client=client))
    assert [what for uri, what in client.calls if uri == "a.jpg"] == [
        "processing_at",
        "succeeded",
    ]


class LedgerWatchingStore(MemoryStore):
    """A source that, when asked for ``b.jpg``, notes the ledger status of ``a.jpg`` (waiting up
    to a few seconds for the background writer)."""

    def __init__(self, client: Any) -> None:
        super().__init__("watching")
        self.client = client
        self.seen: str | None = None

    def download(self, key: str, handle: BinaryIO, max_bytes: int) -> Downloaded:
        if key == "b.jpg":
            deadline = time.monotonic() + 5
            while self.seen != "succeeded" and time.monotonic() < deadline:
                item = self.client.get_item(TableName=TABLE, Key={"uri": {"S": "a.jpg"}})
                self.seen = item.get("Item", {}).get("status", {}).get("S")
                time.sleep(0.02)
        return super().download(key, handle, max_bytes)


def test_an_outcome_is_written_as_the_image_finishes_not_at_the_end(dynamodb: Any) -> None:
    # One worker: a.jpg finishes before b.jpg is read; by then a.jpg's item says succeeded.
    source = LedgerWatchingStore(dynamodb)
    for uri in ("a.jpg", "b.jpg"):
        source.write(uri, gen.jpeg(), "image/jpeg")
    config = Config(StoreSpec("memory"), StoreSpec("memory"), workers=1)
    ledger = Ledger(TABLE, RECIPE)
    process_uris(
        ["a.jpg", "b.jpg"],
        config,
        INSTRUCTIONS,
        source,
        MemoryStore(),
        ReportOptions(),
        ledger=ledger,
    )
    ledger.close()
    assert source.seen == "succeeded"


def test_the_etag_and_size_of_the_s3_object_read_are_recorded(dynamodb: Any) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="src")
    data = gen.jpeg()
    etag = s3.put_object(Bucket="src", Key="a.jpg", Body=data)["ETag"].strip('"')
    config = Config(StoreSpec("memory"), StoreSpec("memory"))
    ledger = Ledger(TABLE, RECIPE)
    source = S3Store("src", client=s3)
    process_uris(
        ["a.jpg"], config, INSTRUCTIONS, source, MemoryStore(), ReportOptions(), ledger=ledger
    )
    ledger.close()
    item = _items(dynamodb)["a.jpg"]
    assert (item["etag"], item["size"]) == (etag, len(data))


# --- the command, as the task runs it -------------------------------------------------------


@pytest.fixture
def ledger_env() -> Iterator[tuple[dict[str, str], Any]]:
    """A moto server with the ledger table; the tool's environment pointing at it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "IIIF_PROCESS_LEDGER_TABLE": "ledger",
    }
    client = boto3.client(
        "dynamodb",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_table(
        TableName="ledger",
        KeySchema=[{"AttributeName": "uri", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "uri", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield env, client
    server.stop()


def test_the_command_records_the_etag_and_size_of_the_s3_object_it_read(
    tmp_path: Path, ledger_env: tuple[dict[str, str], Any]
) -> None:
    env, dynamodb = ledger_env
    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for bucket in ("src", "dst"):
        s3.create_bucket(Bucket=bucket)
    data = gen.jpeg()
    etag = s3.put_object(Bucket="src", Key="a.jpg", Body=data)["ETag"].strip('"')
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "iiif-process"),
            "-config-images-source-uri",
            "s3blob://src?region=us-east-1",
            "-config-derivatives-cache-uri",
            "s3blob://dst?region=us-east-1",
            "a.jpg",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IIIF_"))}, **env},
    )
    assert run.returncode == 0, run.stderr
    item = dynamodb.get_item(TableName="ledger", Key={"uri": {"S": "a.jpg"}})["Item"]
    assert (item["status"]["S"], item["etag"]["S"], item["size"]["N"]) == (
        "succeeded",
        etag,
        str(len(data)),
    )


# --- the writes ----------------------------------------------------------------------------------


class ThrottledOnce:
    """A DynamoDB client whose first UpdateItem is throttled, as DynamoDB does under load."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls = 0

    def update_item(self, **request: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise ClientError(
                {
                    "Error": {
                        "Code": "ProvisionedThroughputExceededException",
                        "Message": "The level of configured provisioned throughput was exceeded",
                    }
                },
                "UpdateItem",
            )
        return self.client.update_item(**request)


def test_a_throttled_write_is_retried_after_a_pause(dynamodb: Any) -> None:
    client, pauses = ThrottledOnce(dynamodb), []
    ledger = Ledger(TABLE, RECIPE, client=client, sleep=pauses.append)
    ledger.succeeded("a.jpg", 9, 1.5, etag="abc", size=10)
    ledger.close()
    assert (client.calls, len(pauses), _items(dynamodb)["a.jpg"]["status"]) == (
        2,
        1,
        "succeeded",
    )


class AlwaysThrottled(ThrottledOnce):
    def update_item(self, **request: Any) -> Any:
        self.calls = 0
        return super().update_item(**request)


def test_a_write_throttled_every_time_gives_up_with_growing_pauses(dynamodb: Any) -> None:
    pauses: list[float] = []
    ledger = Ledger(TABLE, RECIPE, client=AlwaysThrottled(dynamodb), sleep=pauses.append)
    assert ledger.write("a.jpg", {"set": {"status": "failed"}, "created": "t"}) is False
    assert pauses == sorted(pauses) and len(pauses) == 4 and pauses[0] < pauses[-1]


def test_a_write_refused_for_good_is_not_retried(dynamodb: Any) -> None:
    pauses: list[float] = []
    ledger = Ledger("no-such-table", client=dynamodb, sleep=pauses.append)
    assert (ledger.write("a.jpg", {"set": {}, "created": "t"}), pauses) == (False, [])


def test_a_failed_image_sets_reason_retryable_and_clears_in_progress(dynamodb: Any) -> None:
    ledger = Ledger(TABLE, None, client=dynamodb)
    ledger.started("a.jpg")
    ledger.failed("a.jpg", "cannot read s3://b/a.jpg: SlowDown", retryable=True)
    ledger.close()
    item = _items(dynamodb)["a.jpg"]
    assert {k: item.get(k) for k in ("status", "reason", "retryable", "processing_at")} == {
        "status": "failed",
        "reason": "cannot read s3://b/a.jpg: SlowDown",
        "retryable": True,
        "processing_at": None,
    }


class ThreadRecording:
    """A real moto client that notes which thread made each UpdateItem."""

    def __init__(self, client: Any) -> None:
        self.client, self.threads = client, []

    def update_item(self, **request: Any) -> Any:
        self.threads.append(threading.current_thread())
        return self.client.update_item(**request)


def test_the_in_progress_mark_is_written_before_started_returns(dynamodb: Any) -> None:
    """A task killed by the decode must leave the mark behind (reconcile re-runs it alone)."""
    client = ThreadRecording(dynamodb)
    ledger = Ledger(TABLE, RECIPE, client=client)
    ledger.started("poison.tif")
    assert (client.threads, "processing_at" in _items(dynamodb)["poison.tif"]) == (
        [threading.current_thread()],
        True,
    )
