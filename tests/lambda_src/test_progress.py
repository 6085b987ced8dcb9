"""The backfill's progress display (progress.py): a bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import io

from iiif_process_ecs.progress import Progress, format_duration, time_left


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_terminal_gets_one_line_redrawn_with_carriage_returns() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, tty=True, total=4000, clock=clock, width=lambda: 200)
    clock.now = 2.0
    progress.update(1000, 800, {"unchanged": 150, "too large": 50})
    clock.now = 4.0
    progress.update(2000, 1600, {"unchanged": 400})
    text = stream.getvalue()
    assert "\n" not in text
    assert text.count("\r\x1b[2K") == 2
    last = text.rsplit("\r\x1b[2K", 1)[1]
    assert last.startswith("[##########..........]  50%")
    assert "2,000/4,000 listed, 1,600 queued, 400 skipped (unchanged 400), 500 keys/s" in last
    assert last.endswith("0:00:04 left")


def test_a_terminal_redraws_at_most_ten_times_a_second() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, tty=True, clock=clock)
    clock.now = 1.0
    progress.update(1, 0, {})
    clock.now = 1.05
    progress.update(2, 0, {})
    assert stream.getvalue().count("\r") == 1


def test_a_note_clears_the_bar_and_keeps_its_own_line() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, tty=True, clock=clock)
    clock.now = 1.0
    progress.update(1, 0, {})
    progress.note("failed: a//b.jpg: unsafe key")
    assert stream.getvalue().endswith("\r\x1b[2Kfailed: a//b.jpg: unsafe key\n")


def test_other_streams_get_a_line_per_thousand_keys() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, tty=False, clock=clock)
    clock.now = 1.0
    for listed in (400, 999, 1000, 1500, 2300):
        progress.update(listed, listed, {})
    progress.update(2300, 2300, {}, final=True)
    lines = stream.getvalue().splitlines()
    assert [line.split(" listed")[0] for line in lines] == [
        "backfill: 1,000",
        "backfill: 2,300",
    ]


def test_time_left_needs_a_total_and_a_rate() -> None:
    assert time_left(100, None, 10.0) is None
    assert time_left(0, 1000, 10.0) is None
    assert time_left(1000, 1000, 10.0) is None
    assert time_left(100, 1000, 10.0) == 90.0


def test_durations_read_hours_minutes_seconds() -> None:
    assert format_duration(3725.4) == "1:02:05"
