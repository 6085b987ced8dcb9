"""All-or-nothing publication per URI, and failure isolation between URIs."""

from __future__ import annotations

import threading

from iiif_process.process import MemoryGate

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


def test_memory_gate_admits_an_image_larger_than_the_budget_alone() -> None:
    gate = MemoryGate(100)
    with gate.reserve(10_000):
        assert gate.used == 100
