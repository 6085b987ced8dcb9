"""All-or-nothing publication per URI, and failure isolation between URIs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from iiif_process.config import Config, StoreSpec
from iiif_process.errors import StoreError
from iiif_process.params import parse_instructions
from iiif_process.process import MemoryGate, ReportOptions, process_uri
from iiif_process.stores import DiskStore, MemoryStore, S3Store
from moto import mock_aws

from . import iiif_images as gen
from .conftest import Workspace

TWO = {"a": {"size": "10,"}, "b": {"size": "20,"}}


def _refuse_second_write(ws: Workspace, key: str) -> None:
    # A plain file where the second derivative's directory must go: that write fails for real.
    blocker = ws.out / key / "full" / "20,"
    blocker.parent.mkdir(parents=True)
    blocker.write_bytes(b"")


def test_refused_write_fails_the_uri_with_the_reason(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg())
    _refuse_second_write(ws, key)
    status, results = ws.run([key], TWO)
    assert status == 1
    assert results[key]["error"].startswith("cannot write file://")


def test_refused_write_removes_what_was_already_written(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg())
    _refuse_second_write(ws, key)
    ws.run([key], TWO, args=["-report"])
    assert ws.files() == {"a.jpg/full/20,"}  # only the blocker: no derivative, no report


def test_one_bad_image_does_not_stop_the_others(ws: Workspace) -> None:
    ws.put("good.jpg", gen.jpeg())
    ws.put("bad.jpg", b"junk")
    status, results = ws.run(["bad.jpg", "good.jpg"], args=["-report"])
    assert status == 1
    assert "error" in results["bad.jpg"]
    assert "good.jpg/process.json" in ws.files()


def test_every_uri_gets_an_entry_in_input_order(ws: Workspace) -> None:
    keys = [ws.put(f"{i}.jpg", gen.jpeg(gen.gradient(40 + i, 30))) for i in range(6)]
    status, results = ws.run([*keys, "missing.jpg"], args=["-workers", "3"])
    assert list(results) == [*keys, "missing.jpg"]
    assert status == 1
    assert [results[k]["dimensions"]["a"][0] for k in keys] == [40, 41, 42, 43, 44, 45]


def test_all_succeeded_exits_zero(ws: Workspace) -> None:
    keys = [ws.put(f"{i}.jpg", gen.jpeg()) for i in range(3)]
    status, _ = ws.run(keys)
    assert status == 0


def test_duplicate_uris_are_processed_once(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg())
    status, results = ws.run([key, key])
    assert (status, list(results)) == (0, [key])


def test_memory_gate_holds_back_an_image_that_does_not_fit() -> None:
    gate = MemoryGate(100)
    entered = threading.Event()

    def second() -> None:
        with gate.reserve(50):
            entered.set()

    with gate.reserve(80):
        worker = threading.Thread(target=second)
        worker.start()
        assert not entered.wait(0.2)
    worker.join(5)
    assert entered.is_set()


# --- issue #8 item 3: a failed re-run never damages what an earlier run published -------------

FIRST = {"a": {"size": "10,"}, "b": {"size": "20,"}}
# The re-run makes a new derivative ("c", written first) besides the earlier two.
RERUN = {"c": {"size": "30,"}, **FIRST}
KEYS = {label: f"x.jpg/full/{w},/0/color.jpg" for label, w in (("a", 10), ("b", 20), ("c", 30))}
REPORT = "x.jpg/process.json"


class FailingWrites:
    """Mixed into a real store: its Nth write (counting from 1) fails, as a full disk or an S3
    outage would; ``None`` = never. Records the keys written, in order."""

    fail_on: int | None = None

    def write(self, key: str, data: bytes, content_type: str) -> None:
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == self.fail_on:
            raise StoreError(f"cannot write {key}: injected failure")
        super().write(key, data, content_type)  # type: ignore[misc]
        self.written = [*getattr(self, "written", []), key]


class FailingDiskStore(FailingWrites, DiskStore):
    """A disk store whose Nth write fails."""


class FailingS3Store(FailingWrites, S3Store):
    """An S3 store whose Nth write fails."""


def _process(source: Any, derivatives: Any, instructions: dict[str, Any]) -> dict[str, Any]:
    config = Config(source=StoreSpec("memory"), derivatives=StoreSpec("memory"))
    return process_uri(
        "x.jpg",
        config,
        parse_instructions(instructions),
        source,
        derivatives,
        ReportOptions(enabled=True, name_template="process.json"),
    )


def _source() -> MemoryStore:
    source = MemoryStore("item3")
    source.write("x.jpg", gen.jpeg(), "image/jpeg")
    return source


def _disk_objects(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("failing_write", [3, 4])  # "b" (a replacement), the report (last)
def test_item3_failed_rerun_on_disk_keeps_the_earlier_complete_set(
    tmp_path: Path, failing_write: int
) -> None:
    _process(_source(), DiskStore(str(tmp_path)), FIRST)
    earlier = _disk_objects(tmp_path)
    assert set(earlier) == {KEYS["a"], KEYS["b"], REPORT}
    store = FailingDiskStore(str(tmp_path))
    store.fail_on = failing_write
    with pytest.raises(StoreError, match="injected failure"):
        _process(_source(), store, RERUN)
    after = _disk_objects(tmp_path)
    # The earlier derivatives and report all remain; only the new "c" (created by this run) went.
    assert set(after) == set(earlier)
    assert after[REPORT] == earlier[REPORT]


def test_item3_failed_rerun_deletes_the_derivative_it_created(tmp_path: Path) -> None:
    _process(_source(), DiskStore(str(tmp_path)), FIRST)
    store = FailingDiskStore(str(tmp_path))
    store.fail_on = 3
    with pytest.raises(StoreError):
        _process(_source(), store, RERUN)
    assert store.written[0] == KEYS["c"]  # it was written, then removed
    assert not (tmp_path / KEYS["c"]).exists()


def test_item3_report_is_written_after_every_derivative(tmp_path: Path) -> None:
    store = FailingDiskStore(str(tmp_path))
    _process(_source(), store, RERUN)
    assert store.written[-1] == REPORT
    assert sorted(store.written[:-1]) == sorted(KEYS.values())


def test_item3_failed_first_run_leaves_nothing(tmp_path: Path) -> None:
    store = FailingDiskStore(str(tmp_path))
    store.fail_on = 3
    with pytest.raises(StoreError):
        _process(_source(), store, RERUN)
    assert _disk_objects(tmp_path) == {}


@mock_aws
@pytest.mark.parametrize("failing_write", [3, 4])
def test_item3_failed_rerun_on_s3_keeps_the_earlier_complete_set(failing_write: int) -> None:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="dst")
    _process(_source(), S3Store("dst", "out/", client=client), FIRST)

    def objects() -> dict[str, bytes]:
        listed = client.list_objects_v2(Bucket="dst").get("Contents", [])
        return {
            o["Key"]: client.get_object(Bucket="dst", Key=o["Key"])["Body"].read() for o in listed
        }

    earlier = objects()
    assert set(earlier) == {f"out/{k}" for k in (KEYS["a"], KEYS["b"], REPORT)}
    store = FailingS3Store("dst", "out/", client=client)
    store.fail_on = failing_write
    with pytest.raises(StoreError, match="injected failure"):
        _process(_source(), store, RERUN)
    after = objects()
    assert set(after) == set(earlier)
    assert after[f"out/{REPORT}"] == earlier[f"out/{REPORT}"]
    assert store.written[0] == KEYS["c"]  # created by the re-run, then removed


@mock_aws
def test_item3_s3_store_lists_which_keys_exist() -> None:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="dst")
    client.put_object(Bucket="dst", Key="p/x.jpg/a", Body=b"1")
    client.put_object(Bucket="dst", Key="p/x.jpg/b", Body=b"1")
    store = S3Store("dst", "p/", client=client)
    assert store.existing(["x.jpg/a", "x.jpg/c"]) == {"x.jpg/a"}
