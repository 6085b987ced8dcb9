"""Structured logs: one JSON object per line, on stderr (CloudWatch Logs in the Lambda).

The standard ``logging`` module with a thin formatter, in the container tool's format
(``iiif_process.logs``): ``{"time": "2026-11-30T15:00:00.123Z", "level": "info", "logger",
"message", ...fields}``, level in lower case, as the metrics lines.

No line exceeds MAX_LINE_BYTES: CloudWatch cuts events over 256 KB, and an event of 10,000 keys
would otherwise log megabytes in one line. A line over the bound is shrunk (lists to a sample,
long strings cut, marked ``"truncated": true``); if that is still too long, only its message
and the names of the dropped fields remain.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

# Well under CloudWatch Logs' 256 KB per event (which counts 26 bytes of overhead too).
MAX_LINE_BYTES = 64 * 1024
# Lists beyond this many items are logged as a sample of their first items.
SAMPLE_ITEMS = 10
# Strings (keys, reasons) in a sample or a shrunk line are cut to this many characters.
SAMPLE_CHARS = 200

LOGGER = logging.getLogger("iiif_process_ecs")


def format_time(created: float) -> str:
    """``2026-11-30T15:00:00.123Z``: UTC, milliseconds (the container tool's format)."""
    millis = int(created * 1000)  # seconds and milliseconds from one rounding
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000)) + f".{millis % 1000:03d}Z"
    )


class BoundedJsonFormatter(logging.Formatter):
    """A record as one JSON line of at most MAX_LINE_BYTES; its fields come from ``log()``."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        return format_line(record.getMessage(), record.levelname, fields, record.created)


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is written (pytest swaps it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure(stream: TextIO | None = None, *, enabled: bool = True) -> None:
    """Send log lines to ``stream`` (default: the current sys.stderr), or switch them off."""
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler.setFormatter(BoundedJsonFormatter())
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(logging.INFO)
    # The Lambda runtime gives the root logger a handler of its own: one line per record here.
    LOGGER.propagate = False
    LOGGER.disabled = not enabled


configure()


def cut(text: str, chars: int = SAMPLE_CHARS) -> str:
    """``text``, cut to ``chars`` characters with a note of how many were left out."""
    if len(text) <= chars:
        return text
    return f"{text[:chars]}...(+{len(text) - chars} chars)"


def sample(items: Iterable[Any], count: int = SAMPLE_ITEMS) -> list[Any]:
    """The first ``count`` items, each string cut to SAMPLE_CHARS: a bounded view of a list."""
    shown: list[Any] = []
    for item in items:
        if len(shown) == count:
            break
        shown.append(_shrink(item))
    return shown


def _shrink(value: Any) -> Any:
    if isinstance(value, str):
        return cut(value)
    if isinstance(value, Mapping):
        return {str(key): _shrink(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        shown = [_shrink(item) for item in items[:SAMPLE_ITEMS]]
        if len(items) > SAMPLE_ITEMS:
            shown.append(f"...(+{len(items) - SAMPLE_ITEMS} more)")
        return shown
    return value


def bounded_json(value: Any, max_bytes: int = MAX_LINE_BYTES) -> str:
    """``value`` as JSON of at most ``max_bytes`` UTF-8 bytes (shrunk, then cut, if needed)."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    if _size(text) <= max_bytes:
        return text
    text = json.dumps(_shrink(value), default=str, ensure_ascii=False)
    if _size(text) <= max_bytes:
        return text
    return json.dumps({"truncated": cut(text, max_bytes // 8)}, ensure_ascii=False)


def _size(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogatepass"))


def format_line(
    message: str, level: str, fields: Mapping[str, Any], created: float | None = None
) -> str:
    """The JSON line for a record, within MAX_LINE_BYTES (without its newline)."""
    head = {
        "time": format_time(time.time() if created is None else created),
        "level": level.lower(),
        "logger": LOGGER.name,
        "message": message,
    }
    line = json.dumps({**head, **fields}, default=str, ensure_ascii=False)
    if _size(line) <= MAX_LINE_BYTES:
        return line
    shrunk = {name: _shrink(value) for name, value in fields.items()}
    line = json.dumps({**head, **shrunk, "truncated": True}, default=str, ensure_ascii=False)
    if _size(line) <= MAX_LINE_BYTES:
        return line
    head["message"] = cut(message, 1000)
    kept = {"truncated": True, "dropped_fields": sample(fields, 50)}
    return json.dumps({**head, **kept}, default=str, ensure_ascii=False)


def log(message: str, *, level: str = "INFO", **fields: Any) -> None:
    """Log ``message`` with ``fields`` at ``level`` (``INFO``, ``WARNING``, ``ERROR``, ...):
    one bounded JSON line ``{"time", "level", "logger", "message", **fields}``."""
    LOGGER.log(logging.getLevelName(level.upper()), message, extra={"fields": fields})
