"""The tool's metrics (issue #15): EMF lines on stderr, per image, with the contract's names.

The contract's units, dimensions, reasons and ``check_emf`` are in tests/metrics_contract.py, shared
with tests/lambda_src/test_metrics.py, which holds the Lambda's copy of the module to the same
expectations.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from iiif_process import metrics
from iiif_process.pool import image_metrics

from ..metrics_contract import CONTRACT_UNITS, CONTRACTS, REASONS, check_emf
from . import iiif_images as gen
from .conftest import Workspace

TOOL = str(Path(sys.executable).parent / "iiif-process")


def metric_lines(text: str) -> list[dict[str, Any]]:
    """The EMF objects among JSON log lines."""
    return [check_emf(doc) for doc in map(json.loads, text.splitlines()) if "_aws" in doc]


def declared(doc: dict[str, Any]) -> set[str]:
    return {m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}


# -- the module --------------------------------------------------------------------------------


def test_the_contract_table_is_read() -> None:
    assert CONTRACT_UNITS["BytesWritten"] == "Bytes"


def test_units_are_the_contracts() -> None:
    assert metrics.UNITS == CONTRACT_UNITS


def test_a_line_is_emf_of_the_namespace() -> None:
    stream = io.StringIO()
    metrics.emit({"ImagesSucceeded": 1, "BytesWritten": 10}, stack="s", stream=stream)
    (doc,) = metric_lines(stream.getvalue())
    assert (doc["Stack"], doc["ImagesSucceeded"], doc["BytesWritten"]) == ("s", 1, 10)


def test_a_reason_line_declares_the_stack_alone_too() -> None:
    doc = metrics.document({"ImagesFailed": 1}, reason="corrupt-image", stack="s")
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["Stack"],
        ["Stack", "ReasonClass"],
    ]


def test_a_line_without_reason_has_only_the_stack_dimension() -> None:
    doc = metrics.document({"ImageSeconds": 1.5}, stack="s")
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stack"]]
    assert "ReasonClass" not in doc


def test_a_reason_metric_needs_its_reason() -> None:
    with pytest.raises(ValueError, match="ReasonClass goes with"):
        metrics.document({"ImagesFailed": 1})


def test_a_reason_never_goes_on_a_stack_only_metric() -> None:
    with pytest.raises(ValueError, match="ReasonClass goes with"):
        metrics.document({"ImagesFailed": 1, "ImageSeconds": 2.0}, reason="other")


def test_an_unknown_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="ImagesDone"):
        metrics.document({"ImagesDone": 1})


def test_an_unknown_reason_class_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown ReasonClass"):
        metrics.document({"ImagesFailed": 1}, reason="bad-image")


def test_stack_from_the_environment() -> None:
    assert metrics.stack_name({"IIIF_PROCESS_STACK_NAME": "Prod"}) == "Prod"


def test_stack_defaults_to_local() -> None:
    assert metrics.stack_name({}) == "local"


@pytest.mark.parametrize(("error", "retryable", "expected"), REASONS)
def test_reason_class(error: str, retryable: bool, expected: str) -> None:
    assert metrics.reason_class(error, retryable) == expected


def test_every_reason_class_is_one_of_the_contract() -> None:
    section = CONTRACTS.read_text().split("## Metrics", 1)[1]
    listed = re.search(r"`ReasonClass` is one of: (.+?)\.\n", section, re.S)
    assert listed is not None
    assert set(metrics.REASON_CLASSES) == set(re.findall(r"`([a-z-]+)`", listed[1]))


# -- per image, in the batch's record path -----------------------------------------------------


def test_a_succeeded_image_reports_what_it_wrote(capsys: pytest.CaptureFixture[str]) -> None:
    meta = {"seconds": 0.5, "cpu_seconds": 0.25, "bytes_written": 1300, "objects_written": 2}
    image_metrics({"origin": "a.jpg", "uris": {}}, meta)
    (doc,) = metric_lines(capsys.readouterr().err)
    assert {k: doc[k] for k in declared(doc)} == {
        "ImagesSucceeded": 1,
        "ImageSeconds": 0.5,
        "ImageCpuSeconds": 0.25,
        "BytesWritten": 1300,
        "ObjectsWritten": 2,
    }


def test_a_failed_image_is_counted_by_its_class(capsys: pytest.CaptureFixture[str]) -> None:
    image_metrics(
        {"origin": "a.jpg", "error": "cannot read s3://b/a: SlowDown"}, {"retryable": True}
    )
    (doc,) = metric_lines(capsys.readouterr().err)
    assert (doc["ImagesFailed"], doc["ReasonClass"]) == (1, "transient")


def test_a_failed_image_reports_its_seconds_on_a_stack_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    image_metrics({"origin": "a.jpg", "error": "x"}, {"seconds": 0.5, "cpu_seconds": 0.1})
    failed, timing = metric_lines(capsys.readouterr().err)
    assert declared(failed) == {"ImagesFailed"}
    assert (declared(timing), "ReasonClass" in timing) == (
        {"ImageSeconds", "ImageCpuSeconds"},
        False,
    )


# -- the real tool -----------------------------------------------------------------------------


def _run_tool(ws: Workspace, *keys: str, env: dict[str, str] | None = None) -> Any:
    ins = ws.tmp / "instructions.json"
    ins.write_text(json.dumps({"a": {"size": "full", "format": "jpg"}, "b": {"size": "!32,32"}}))
    argv = [
        TOOL,
        "-config-images-source-uri",
        ws.source.as_uri(),
        "-config-derivatives-cache-uri",
        ws.out.as_uri(),
        "-instructions",
        str(ins),
        *keys,
    ]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IIIF_")}
    environ.update(env or {})
    return subprocess.run(argv, capture_output=True, text=True, check=False, env=environ)


def test_the_tool_counts_a_good_image_as_succeeded(ws: Workspace) -> None:
    ws.put("good.jpg", gen.jpeg())
    done = _run_tool(ws, "good.jpg")
    (doc,) = metric_lines(done.stderr)
    written = sum(path.stat().st_size for path in ws.out.rglob("*") if path.is_file())
    assert (doc["ImagesSucceeded"], doc["ObjectsWritten"], doc["BytesWritten"]) == (1, 2, written)


def test_the_tool_measures_cpu_seconds(ws: Workspace) -> None:
    ws.put("big.jpg", gen.jpeg(gen.gradient(3000, 2000)))
    (doc,) = metric_lines(_run_tool(ws, "big.jpg").stderr)
    assert doc["ImageCpuSeconds"] > 0
    assert doc["ImageSeconds"] > 0


def test_the_tool_names_its_stack(ws: Workspace) -> None:
    ws.put("good.jpg", gen.jpeg())
    done = _run_tool(ws, "good.jpg", env={"IIIF_PROCESS_STACK_NAME": "MyStack"})
    assert [doc["Stack"] for doc in metric_lines(done.stderr)] == ["MyStack"]


def test_the_tool_classifies_its_own_failures(ws: Workspace) -> None:
    good = gen.jpeg(gen.gradient(400, 300))
    ws.put("text.jpg", b"hello, this is not an image\n" * 3)
    ws.put("half.jpg", good[: len(good) // 2])
    done = _run_tool(ws, "text.jpg", "half.jpg")
    failed = {
        doc["ReasonClass"]: doc["ImagesFailed"]
        for doc in metric_lines(done.stderr)
        if "ImagesFailed" in doc
    }
    assert failed == {"not-an-image": 1, "corrupt-image": 1}


def test_the_tool_counts_every_image_failed_when_its_config_is_bad(ws: Workspace) -> None:
    """A bad config in a new image is the "run of failures after a bad deploy" to alarm on."""
    bad = ws.tmp / "bad-instructions.json"
    bad.write_text("{ not json")
    argv = [TOOL, "-instructions", str(bad), "-config-images-source-uri", ws.source.as_uri()]
    argv += ["-config-derivatives-cache-uri", ws.out.as_uri(), "a.jpg", "b.jpg"]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IIIF_")}
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=environ)
    failed = [doc["ImagesFailed"] for doc in metric_lines(done.stderr) if "ImagesFailed" in doc]
    assert (done.returncode, failed) == (1, [2])


def test_the_tools_stdout_stays_one_json_object(ws: Workspace) -> None:
    ws.put("good.jpg", gen.jpeg())
    ws.put("text.jpg", b"not an image")
    done = _run_tool(ws, "good.jpg", "text.jpg")
    assert sorted(json.loads(done.stdout)) == ["good.jpg", "text.jpg"]
    assert "_aws" not in done.stdout
