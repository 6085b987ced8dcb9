"""How logs.py bounds a line: the 64 KiB limit to the byte, what shrinking keeps, UTF-8 text."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from iiif_process_ecs import logs
from iiif_process_ecs.logs import bounded_json, cut, format_line, format_time, log, sample

LIMIT = 64 * 1024  # the documented bound, written out so that a changed constant is noticed


def logged(quiet_logs: io.StringIO, message: str, **fields: Any) -> str:
    """The one line ``log(message, **fields)`` writes (the stream is emptied first)."""
    quiet_logs.seek(0)
    quiet_logs.truncate()
    log(message, **fields)
    (line,) = quiet_logs.getvalue().splitlines()
    return line


def size(line: str) -> int:
    return len(line.encode("utf-8"))


def test_a_line_of_exactly_64_kib_is_written_whole(quiet_logs: io.StringIO) -> None:
    overhead = size(logged(quiet_logs, "m", blob=""))
    line = logged(quiet_logs, "m", blob="x" * (LIMIT - overhead))
    assert size(line) == LIMIT
    assert "truncated" not in json.loads(line)


def test_a_line_one_byte_over_64_kib_is_shrunk(quiet_logs: io.StringIO) -> None:
    overhead = size(logged(quiet_logs, "m", blob=""))
    shown = json.loads(logged(quiet_logs, "m", blob="x" * (LIMIT - overhead + 1)))
    assert (shown["truncated"], shown["blob"]) == (
        True,
        "x" * 200 + f"...(+{LIMIT - overhead - 199} chars)",
    )


def test_a_shrunk_line_of_exactly_64_kib_keeps_its_fields(quiet_logs: io.StringIO) -> None:
    # Mapping keys are never cut, so a long key sets the shrunk line's size to the byte.
    big = "x" * 70_000
    overhead = size(logged(quiet_logs, "m", table={"": 0}, big=big))
    shown = json.loads(logged(quiet_logs, "m", table={"k" * (LIMIT - overhead): 0}, big=big))
    assert shown["truncated"] is True
    assert "dropped_fields" not in shown


def test_a_line_that_cannot_be_shrunk_cuts_its_message_to_1000_characters(
    quiet_logs: io.StringIO,
) -> None:
    shown = json.loads(logged(quiet_logs, "m" * 5000, table={f"k{i}": 0 for i in range(20_000)}))
    assert shown["message"] == "m" * 1000 + "...(+4000 chars)"


def test_a_line_that_cannot_be_shrunk_names_at_most_50_dropped_fields(
    quiet_logs: io.StringIO,
) -> None:
    names = [f"f{index:02d}" for index in range(59)]
    fields: dict[str, Any] = {"table": {f"k{i}": 0 for i in range(20_000)}}
    fields.update(dict.fromkeys(names, 1))
    shown = json.loads(logged(quiet_logs, "huge", **fields))
    assert shown["dropped_fields"] == ["table", *names[:49]]


def test_a_long_list_is_shown_as_its_first_ten_items_and_a_count() -> None:
    shown = json.loads(bounded_json({"keys": [str(i) for i in range(1000)]}, max_bytes=500))
    assert shown["keys"] == [str(i) for i in range(10)] + ["...(+990 more)"]


def test_a_list_of_ten_items_is_shown_whole_when_shrunk() -> None:
    value = {"keys": [str(i) for i in range(10)], "blob": "x" * 1000}
    shown = json.loads(bounded_json(value, max_bytes=500))
    assert shown["keys"] == [str(i) for i in range(10)]


def test_strings_are_cut_to_200_characters() -> None:
    assert cut("a" * 300) == "a" * 200 + "...(+100 chars)"


def test_a_string_of_exactly_200_characters_is_not_cut() -> None:
    assert cut("a" * 200) == "a" * 200


def test_a_sample_is_the_first_items() -> None:
    assert sample(["a", "b", "c"], 2) == ["a", "b"]


def test_a_sample_cuts_strings_inside_mappings() -> None:
    assert sample([{"key": "x" * 300}]) == [{"key": "x" * 200 + "...(+100 chars)"}]


def test_a_sample_shortens_nested_lists() -> None:
    assert sample([list("abcdefghijkl")]) == [[*"abcdefghij", "...(+2 more)"]]


def test_a_value_that_fits_is_plain_json() -> None:
    value = {"keys": [str(i) for i in range(11)]}
    assert bounded_json(value, max_bytes=len(json.dumps(value))) == json.dumps(value)


def test_a_value_whose_sample_fits_exactly_is_shown_as_the_sample() -> None:
    value = ["x" * 300] * 11
    expected = json.dumps(["x" * 200 + "...(+100 chars)"] * 10 + ["...(+1 more)"])
    assert bounded_json(value, max_bytes=len(expected)) == expected


def test_a_value_too_big_even_sampled_is_cut_to_an_eighth_of_the_bound() -> None:
    shown = json.loads(bounded_json("x" * 1000, max_bytes=80))
    assert shown == {"truncated": '"xxxxxxxxx...(+207 chars)'}


@pytest.mark.parametrize(
    ("value", "max_bytes"),
    [
        ("café", 100),  # whole
        (["café"] * 11, 60),  # sampled
        ("café" * 100, 40),  # cut
    ],
)
def test_bounded_json_writes_non_ascii_text_as_utf_8(value: Any, max_bytes: int) -> None:
    assert "café" in bounded_json(value, max_bytes=max_bytes)


@pytest.mark.parametrize(
    "fields",
    [
        {"key": "café.jpg"},  # whole
        {"key": "café.jpg", "blob": "x" * 70_000},  # shrunk
        {"key": "café.jpg", "table": {f"k{i}": 0 for i in range(20_000)}},  # fields dropped
    ],
)
def test_a_line_writes_non_ascii_text_as_utf_8(fields: dict[str, Any]) -> None:
    assert "café" in format_line("café", "INFO", fields, 0.0)


def test_a_records_time_is_utc_with_milliseconds() -> None:
    assert format_time(1.5) == "1970-01-01T00:00:01.500Z"


def test_a_line_carries_the_records_own_time() -> None:
    assert json.loads(format_line("m", "INFO", {}, 0.0))["time"] == "1970-01-01T00:00:00.000Z"


def test_a_line_without_a_time_is_stamped_now() -> None:
    assert json.loads(format_line("m", "INFO", {}))["time"] > "2024"


def test_lines_do_not_reach_the_root_loggers_handlers(quiet_logs: io.StringIO) -> None:
    # The Lambda runtime gives the root logger a handler: one line per record, not two.
    root = io.StringIO()
    handler = logging.StreamHandler(root)
    logging.getLogger().addHandler(handler)
    try:
        log("once")
    finally:
        logging.getLogger().removeHandler(handler)
    assert root.getvalue() == ""


def test_configure_sends_lines_to_the_stream_given() -> None:
    stream = io.StringIO()
    logs.configure(stream)
    try:
        log("here")
    finally:
        logs.configure(None)
    assert json.loads(stream.getvalue())["message"] == "here"


def test_configure_without_a_stream_writes_to_the_current_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure(None)
    log("to stderr")
    assert json.loads(capsys.readouterr().err)["message"] == "to stderr"
