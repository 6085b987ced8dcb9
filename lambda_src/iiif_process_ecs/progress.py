"""Progress of a long CLI run (``-mode backfill``): a one-line bar on a terminal, else one plain
line per thousand keys. Plain ANSI and carriage returns, no dependency; written to stderr so
that stdout stays the command's output."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from typing import TextIO

LINE_EVERY = 1000
REDRAW_SECONDS = 0.1
BAR_WIDTH = 20
_CLEAR_LINE = "\r\x1b[2K"


def format_duration(seconds: float) -> str:
    """``H:MM:SS``."""
    whole = max(round(seconds), 0)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def time_left(listed: int, total: int | None, elapsed: float) -> float | None:
    """Seconds left at the rate so far, or None when it cannot be known (no total, nothing
    listed yet, or more listed than the total said)."""
    if not total or listed <= 0 or elapsed <= 0 or listed >= total:
        return None
    return (total - listed) / (listed / elapsed)


class Progress:
    """Counts of listed, queued and skipped (by reason) keys, shown as they change.

    ``tty`` None asks the stream. ``total`` (keys expected) makes a bar and a time left.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        tty: bool | None = None,
        total: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        label: str = "backfill",
        width: Callable[[], int] = lambda: shutil.get_terminal_size((100, 20)).columns,
    ) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.total = total
        self.clock = clock
        self.label = label
        self.width = width
        self.started = clock()
        self._last_draw = float("-inf")
        self._lines = 0
        self._printed = 0
        self._drawn = False
        self.listed = 0
        self.queued = 0
        self.skipped: dict[str, int] = {}

    def _text(self, *, bar: bool) -> str:
        elapsed = self.clock() - self.started
        rate = self.listed / elapsed if elapsed > 0 else 0.0
        skipped = sum(self.skipped.values())
        reasons = ", ".join(
            f"{reason} {count:,}"
            for reason, count in sorted(self.skipped.items(), key=lambda p: (-p[1], p[0]))
        )
        parts = []
        if bar and self.total:
            done = min(self.listed / self.total, 1.0)
            filled = int(done * BAR_WIDTH)
            parts.append(f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done:4.0%}")
        listed = f"{self.listed:,}" + (f"/{self.total:,}" if self.total else "")
        parts.append(f"{self.label}: {listed} listed")
        parts.append(f"{self.queued:,} queued")
        parts.append(f"{skipped:,} skipped" + (f" ({reasons})" if reasons else ""))
        parts.append(f"{rate:,.0f} keys/s")
        left = time_left(self.listed, self.total, elapsed)
        if left is not None:
            parts.append(f"{format_duration(left)} left")
        return ", ".join(parts)

    def update(
        self, listed: int, queued: int, skipped: Mapping[str, int], *, final: bool = False
    ) -> None:
        """New totals. A terminal redraws (at most every REDRAW_SECONDS unless ``final``); other
        streams get a line each time ``listed`` passes a multiple of LINE_EVERY."""
        self.listed, self.queued, self.skipped = listed, queued, dict(skipped)
        if self.tty:
            now = self.clock()
            if final or now - self._last_draw >= REDRAW_SECONDS:
                self._last_draw = now
                text = self._text(bar=True)[: max(self.width() - 1, 20)]
                self.stream.write(_CLEAR_LINE + text)
                self._drawn = True
                self.stream.flush()
            return
        thousands = listed // LINE_EVERY
        if thousands > self._lines or (final and listed != self._printed):
            self._lines, self._printed = thousands, listed
            self.stream.write(self._text(bar=False) + "\n")
            self.stream.flush()

    def note(self, line: str) -> None:
        """Print ``line`` without breaking the bar (it is redrawn on the next update)."""
        if self.tty and self._drawn:
            self.stream.write(_CLEAR_LINE)
            self._last_draw = float("-inf")
        self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """End the bar's line."""
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
