"""The backfill's progress display (progress.py): a bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import io
import sys

import pytest
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


class TerminalStream(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def bar_of(stream: io.StringIO) -> str:
    """The last bar drawn on a terminal stream."""
    return stream.getvalue().rsplit("\r\x1b[2K", 1)[1]


def test_a_redraw_is_due_exactly_a_tenth_of_a_second_after_the_last() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, tty=True, clock=clock)
    progress.update(1, 0, {})
    clock.now = 0.1
    progress.update(2, 0, {})
    assert stream.getvalue().count("\r") == 2


def test_a_final_update_is_drawn_even_within_a_tenth_of_a_second() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, tty=True, clock=clock)
    progress.update(1, 0, {})
    progress.update(2, 0, {}, final=True)
    assert "backfill: 2 listed" in bar_of(stream)


def test_a_negative_duration_reads_as_zero() -> None:
    assert format_duration(-5.0) == "0:00:00"


def test_time_left_after_the_first_key() -> None:
    assert time_left(1, 1000, 10.0) == 9990.0


def test_time_left_needs_time_to_have_passed() -> None:
    assert time_left(100, 1000, 0.0) is None


def test_time_left_within_the_first_second() -> None:
    assert time_left(100, 1000, 0.5) == 4.5


def test_the_rate_counts_from_when_the_progress_began() -> None:
    stream, clock = io.StringIO(), Clock()
    clock.now = 10.0
    progress = Progress(stream, tty=True, clock=clock, width=lambda: 200)
    clock.now = 14.0
    progress.update(2000, 0, {})
    assert "2,000 listed, 0 queued, 0 skipped, 500 keys/s" in bar_of(stream)


def test_the_rate_is_zero_at_the_first_instant() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, tty=True, clock=clock, width=lambda: 200)
    progress.update(7, 0, {})
    assert bar_of(stream).endswith("0 keys/s")


def test_the_rate_within_the_first_second() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, tty=True, clock=clock, width=lambda: 200)
    clock.now = 0.5
    progress.update(100, 0, {})
    assert bar_of(stream).endswith("200 keys/s")


def test_skip_reasons_are_listed_most_frequent_first_then_by_name() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, tty=True, clock=clock, width=lambda: 200)
    progress.update(30, 0, {"too large": 5, "unchanged": 20, "not an image": 5})
    assert "30 skipped (unchanged 20, not an image 5, too large 5)" in bar_of(stream)


def test_plain_lines_have_no_bar_even_with_a_total() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, tty=False, total=4000, clock=clock)
    progress.update(1000, 0, {})
    assert stream.getvalue().startswith("backfill: 1,000/4,000 listed")


def test_the_bar_stops_full_when_more_keys_are_listed_than_expected() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, tty=True, total=4000, clock=clock, width=lambda: 200)
    progress.update(5000, 0, {})
    assert bar_of(stream).startswith("[####################] 100%")


def test_the_bar_is_cut_one_character_short_of_the_terminal_width() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, tty=True, clock=clock, width=lambda: 50)
    progress.update(1, 0, {})
    assert len(bar_of(stream)) == 49


def test_a_very_narrow_terminal_still_shows_twenty_characters() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, tty=True, clock=clock, width=lambda: 10)
    progress.update(1, 0, {})
    assert bar_of(stream) == "backfill: 1 listed, "


def test_a_stream_that_is_a_terminal_gets_the_bar_unasked() -> None:
    stream, clock = TerminalStream(), Clock()
    progress = Progress(stream, clock=clock, width=lambda: 200)
    progress.update(1, 0, {})
    assert stream.getvalue().startswith("\r\x1b[2K")


def test_a_final_count_under_a_thousand_is_printed_on_other_streams() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, tty=False, clock=clock)
    progress.update(1, 1, {}, final=True)
    assert stream.getvalue().startswith("backfill: 1 listed, 1 queued")


def test_a_final_update_with_nothing_listed_prints_nothing_on_other_streams() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, tty=False, clock=clock)
    progress.update(0, 0, {}, final=True)
    assert stream.getvalue() == ""


def test_a_new_progress_has_counted_nothing() -> None:
    progress = Progress(io.StringIO(), tty=False, clock=Clock())
    assert (progress.listed, progress.queued, progress.skipped) == (0, 0, {})


def test_a_note_before_any_bar_is_written_as_a_plain_line() -> None:
    stream = io.StringIO()
    progress = Progress(stream, tty=True, clock=Clock())
    progress.note("stopping after this page")
    assert stream.getvalue() == "stopping after this page\n"


def test_finish_ends_the_bars_line_once() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, tty=True, clock=clock)
    progress.update(1, 0, {})
    progress.finish()
    progress.finish()
    assert stream.getvalue().count("\n") == 1


def test_finish_without_a_bar_writes_nothing() -> None:
    stream = io.StringIO()
    Progress(stream, tty=True, clock=Clock()).finish()
    assert stream.getvalue() == ""


def test_a_terminal_of_unknown_size_is_taken_as_a_hundred_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # shutil.get_terminal_size asks COLUMNS, then sys.__stdout__: neither can say here.
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(sys, "__stdout__", None)
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, tty=True, total=10**9, clock=clock)
    clock.now = 1.0
    progress.update(123_456_789, 1_000_000, {"unchanged": 122_456_789, "not an image": 3})
    assert len(bar_of(stream)) == 99
