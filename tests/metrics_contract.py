"""The metrics contract (docs/contracts.md "Metrics") as tests hold both parts to it: the units,
the dimensions, the reason texts each part writes with their class, and ``check_emf``.

Shared by tests/container/test_iiif_metrics.py and tests/lambda_src/test_metrics.py; it imports
nothing beyond the standard library and the tool's ``metrics`` module, so the Lambda's tests can
run where pyvips is absent (the runtime-Python run, ``python -m image_build.runtime_python``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from iiif_process import metrics

CONTRACTS = Path(__file__).resolve().parents[1] / "docs" / "contracts.md"


def _contract_units() -> dict[str, str]:
    """Metric name → unit, read from the table of docs/contracts.md "Metrics"."""
    section = CONTRACTS.read_text().split("## Metrics", 1)[1].split("\n## ", 1)[0]
    units: dict[str, str] = {}
    for row in re.findall(r"^\| `(.+?)\|(.+?)\|", section, re.M):
        names = re.findall(r"`?(\w+)`?", row[0])
        for name, unit in zip(names, row[1].split("/"), strict=True):
            units[name] = unit.strip()
    return units


CONTRACT_UNITS = _contract_units()
CONTRACT_DIMENSIONS = {"Stack", "ReasonClass"}

# Reasons as the parts write them → their class. The tool's texts are the ones it produced on
# real files (see test_the_tool_classifies_its_own_failures); the others come from the trigger
# (lambda_src keys.py, ledger.py, claims.py) and reconcile (cause_of, and the tool's reasons it
# re-queues).
REASONS: list[tuple[str, bool, str]] = [
    (
        "not a supported image (84 bytes): VipsForeignLoad: source is not in a known format",
        False,
        "not-an-image",
    ),
    (
        "not a supported image (745 bytes): VipsJpeg: premature end of JPEG image",
        False,
        "corrupt-image",
    ),
    (
        "cannot decode jpegload image: VipsJpeg: Corrupt JPEG data: premature end of data segment",
        False,
        "corrupt-image",
    ),
    ("derivative 'a' failed: VipsJpeg: out of order read", False, "corrupt-image"),
    ("image format 'svgload' is not accepted", False, "unsupported-type"),
    (
        "image is 20000x20000 = 400000000 pixels, over the limit of 100000000 "
        "(iiif_process.max_pixels / IIIF_PROCESS_MAX_PIXELS / -max-pixels)",
        False,
        "over-pixel-limit",
    ),
    (
        "image needs about 900 MB of memory (decoded), over the memory budget of 400 MB "
        "(from the task's memory limit, or iiif_process.memory_budget_mb)",
        False,
        "over-memory-budget",
    ),
    ("too large: 5000 bytes > limit 4000 bytes", False, "too-large"),
    ("source object not found: file:///tmp/src/missing.jpg", False, "no-such-object"),
    ("URI '../x.jpg' contains a '.' or '..' segment", False, "unsafe-key"),
    ("URI '/etc/passwd' is an absolute path", False, "unsafe-key"),
    ("empty URI", False, "unsafe-key"),
    ("cannot read s3://b/a.jpg: SlowDown", True, "transient"),
    ("cannot read s3://b/a.jpg: AccessDenied", False, "other"),
    ("abandoned: stopped by SIGTERM before it finished", True, "stopped"),
    ("worker killed by SIGKILL (out of memory?) while processing this image", True, "killed"),
    ("worker exited with status 1 while processing this image", True, "killed"),
    ("out of memory while processing this image", True, "out-of-memory"),
    ("internal error: ValueError: boom", False, "other"),
    ("cannot start: config has no images.source", False, "other"),
    # the trigger
    ("unsafe key: key contains '//'", False, "unsafe-key"),
    ("folder placeholder (key ends with '/')", False, "unsupported-type"),
    ("zero-byte object", False, "not-an-image"),
    (
        "unsupported file type ('.txt'); supported: gif, jpeg, jpg, png, tif, tiff, webp",
        False,
        "unsupported-type",
    ),
    ("unchanged", False, "unchanged"),
    ("already started", False, "already-started"),
    ("no such object", False, "no-such-object"),
    ("Records[0]: not an ObjectCreated event ('ObjectRemoved:Delete')", False, "other"),
    # reconcile: causes of a stopped task, and re-queued tool reasons
    ("task killed: out of memory (exit 137)", False, "out-of-memory"),
    ("task stopped: Fargate Spot capacity reclaimed (SpotInterruption)", False, "stopped"),
    ("task stopped by a user: StopTask", False, "stopped"),
    ("task failed to start: image pull failed (CannotPullContainerError)", False, "stopped"),
    ("task exited with status 1", False, "killed"),
    ("re-queued: cannot read s3://b/a.jpg: SlowDown", True, "transient"),
]


def check_emf(doc: dict[str, Any]) -> dict[str, Any]:
    """Assert ``doc`` is an EMF object of the contract; returns it."""
    aws = doc["_aws"]
    assert isinstance(aws["Timestamp"], int) and aws["Timestamp"] > 1_600_000_000_000
    (directive,) = aws["CloudWatchMetrics"]
    assert directive["Namespace"] == "IiifProcess"
    assert directive["Metrics"]
    for declared in directive["Metrics"]:
        value = doc[declared["Name"]]
        assert isinstance(value, int | float) and not isinstance(value, bool)
        assert declared["Unit"] == CONTRACT_UNITS[declared["Name"]]
    assert ["Stack"] in directive["Dimensions"]
    for dimension_set in directive["Dimensions"]:
        assert set(dimension_set) <= CONTRACT_DIMENSIONS
        for name in dimension_set:
            assert isinstance(doc[name], str) and doc[name]
    if "ReasonClass" in doc:
        assert doc["ReasonClass"] in metrics.REASON_CLASSES
    return doc
