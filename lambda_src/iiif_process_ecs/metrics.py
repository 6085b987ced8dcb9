"""CloudWatch metrics as embedded metric format (EMF) lines in the logs already written
(docs/contracts.md "Metrics"): no API call, no agent; CloudWatch Logs turns each line into
metric data points.

The same text is in ``iiif_process`` (the tool, lines on stderr) and ``iiif_process_ecs`` (the
Lambda functions, lines through their log function): the two packages never import each other,
and the tests hold both copies to one text.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from .logs import format_time

NAMESPACE = "IiifProcess"
STACK_VARIABLE = "IIIF_PROCESS_STACK_NAME"
DEFAULT_STACK = "local"

UNITS = {
    "ImagesSucceeded": "Count",
    "ImagesFailed": "Count",
    "ImageSeconds": "Seconds",
    "ImageCpuSeconds": "Seconds",
    "BytesWritten": "Bytes",
    "ObjectsWritten": "Count",
    "TasksStarted": "Count",
    "UrisSkipped": "Count",
    "Redrives": "Count",
    "TasksKilledOutOfMemory": "Count",
}
# These carry ReasonClass; their lines declare [Stack] too, so a per-stack total exists.
REASON_METRICS = frozenset({"ImagesFailed", "UrisSkipped", "Redrives"})

REASON_CLASSES = (
    "unsafe-key",
    "unsupported-type",
    "too-large",
    "over-pixel-limit",
    "over-memory-budget",
    "not-an-image",
    "corrupt-image",
    "unchanged",
    "already-started",
    "no-such-object",
    "killed",
    "out-of-memory",
    "stopped",
    "transient",
    "other",
)

# (class, pattern) in order, first match wins. The texts are the reasons the tool, the trigger
# and reconcile write (a re-queued item's reason is the tool's).
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("unsafe-key", r"^(unsafe key:|empty URI$|URI .* (contains|is|has|starts)|key .* resolv)"),
        ("no-such-object", r"^(source object (not found|is a directory)|no such object$)"),
        ("too-large", r"^too large: "),
        ("over-pixel-limit", r"pixels, over the limit of"),
        ("over-memory-budget", r"over the memory budget"),
        ("unsupported-type", r"^(image format .* is not accepted|unsupported file type|folder )"),
        ("not-an-image", r"^(not a supported image .*not in a known format|zero-byte object$)"),
        ("corrupt-image", r"^(not a supported image|cannot decode |derivative .* failed: )"),
        ("unchanged", r"^unchanged$"),
        ("already-started", r"^already started$"),
        ("stopped", r"^(abandoned: stopped by SIGTERM|task stopped|task failed to start)"),
        ("killed", r"^(worker killed by|worker exited with status|task exited with status)"),
        ("out-of-memory", r"out of memory|OutOfMemory"),
    )
)


def stack_name(environ: Mapping[str, str] | None = None) -> str:
    """The Stack dimension: ``IIIF_PROCESS_STACK_NAME``, or ``local`` when unset or empty."""
    env = os.environ if environ is None else environ
    return env.get(STACK_VARIABLE) or DEFAULT_STACK


def reason_class(error: str, retryable: bool | None = None) -> str:
    """The contract's ReasonClass of a failure or skip reason; an unrecognised reason is
    ``transient`` when a re-run may fix it (``retryable``), else ``other``."""
    text = error.removeprefix("re-queued: ").removeprefix("cannot start: ")
    for name, pattern in _RULES:
        if pattern.search(text):
            return name
    return "transient" if retryable else "other"


def document(
    values: Mapping[str, float],
    *,
    reason: str | None = None,
    stack: str | None = None,
    now_ms: int | None = None,
) -> dict[str, Any]:
    """One EMF object declaring ``values`` (metric name → number) for the stack, and for the
    ReasonClass ``reason`` too. Metrics with and without ReasonClass never share a line, so no
    metric gets a dimension the contract does not give it."""
    unknown = set(values) - set(UNITS)
    if unknown or not values:
        raise ValueError(f"not metrics of the contract: {sorted(unknown) or 'none given'}")
    with_reason = set(values) & REASON_METRICS
    if (reason is None and with_reason) or (reason is not None and with_reason != set(values)):
        raise ValueError(f"ReasonClass goes with {sorted(REASON_METRICS)} alone: {sorted(values)}")
    if reason is not None and reason not in REASON_CLASSES:
        raise ValueError(f"unknown ReasonClass {reason!r}")
    dimensions = [["Stack"], ["Stack", "ReasonClass"]] if reason is not None else [["Stack"]]
    doc: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if now_ms is None else now_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": dimensions,
                    "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in values],
                }
            ],
        },
        "Stack": stack or stack_name(),
    }
    if reason is not None:
        doc["ReasonClass"] = reason
    doc.update(values)
    return doc


def emit(
    values: Mapping[str, float],
    *,
    reason: str | None = None,
    stack: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """Write one EMF line (with the log lines' time, level, logger and message) to ``stream``
    (default: the current stderr; never stdout, which carries the tool's result)."""
    now = time.time()  # one reading: the line's time is its metrics' Timestamp
    head = {
        "time": format_time(now),
        "level": "info",
        "logger": __name__,
        "message": "metrics",
    }
    doc = document(values, reason=reason, stack=stack, now_ms=int(now * 1000))
    line = json.dumps({**head, **doc})
    out = stream or sys.stderr
    out.write(line + "\n")
    out.flush()
