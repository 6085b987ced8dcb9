"""Structured logs: one JSON object per line, on stderr (CloudWatch Logs in the Lambda)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

_stream: TextIO | None = None
_enabled = True


def configure(stream: TextIO | None = None, *, enabled: bool = True) -> None:
    """Send log lines to ``stream`` (default: the current sys.stderr), or switch them off."""
    global _stream, _enabled
    _stream = stream
    _enabled = enabled


def log(message: str, *, level: str = "INFO", **fields: Any) -> None:
    """Write ``{"time", "level", "logger", "message", **fields}`` as one JSON line."""
    if not _enabled:
        return
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "level": level,
        "logger": "iiif_process_ecs",
        "message": message,
        **fields,
    }
    stream = _stream or sys.stderr
    stream.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
    stream.flush()
