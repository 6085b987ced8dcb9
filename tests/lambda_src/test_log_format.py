"""One log format for the Lambda and the container tool: the same head fields, time format and
level case, so one CloudWatch Logs Insights query reads both."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from iiif_process import metrics as tool_metrics
from iiif_process.logs import JsonFormatter
from iiif_process_ecs import logs
from iiif_process_ecs import metrics as lambda_metrics

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def lambda_line() -> Iterator[dict[str, object]]:
    stream = io.StringIO()
    logs.configure(stream)
    try:
        logs.log("deadline near", level="WARNING", uris=3)
    finally:
        logs.configure(None)
    yield json.loads(stream.getvalue())


def container_line() -> dict[str, object]:
    record = logging.LogRecord("iiif_process.batch", logging.WARNING, "", 0, "slow", None, None)
    return json.loads(JsonFormatter().format(record))


def test_both_lines_open_with_the_same_fields(lambda_line: dict[str, object]) -> None:
    assert (
        list(lambda_line)[:4]
        == list(container_line())[:4]
        == [
            "time",
            "level",
            "logger",
            "message",
        ]
    )


def test_both_times_are_utc_with_milliseconds(lambda_line: dict[str, object]) -> None:
    assert TIME.match(str(lambda_line["time"])) and TIME.match(str(container_line()["time"]))


def test_both_levels_are_lower_case(lambda_line: dict[str, object]) -> None:
    assert lambda_line["level"] == container_line()["level"] == "warning"


def test_the_lambdas_fields_follow_the_head(lambda_line: dict[str, object]) -> None:
    assert (lambda_line["logger"], lambda_line["uris"]) == ("iiif_process_ecs", 3)


def test_a_switched_off_log_writes_nothing() -> None:
    stream = io.StringIO()
    logs.configure(stream, enabled=False)
    try:
        logs.log("hidden")
    finally:
        logs.configure(None)
    assert stream.getvalue() == ""


def _metric_line(emit: Callable[..., None]) -> dict[str, Any]:
    stream = io.StringIO()
    emit({"TasksStarted": 1}, stack="s", stream=stream)
    return json.loads(stream.getvalue())


@pytest.mark.parametrize("emit", [lambda_metrics.emit, tool_metrics.emit], ids=["lambda", "tool"])
def test_metric_lines_carry_the_log_lines_time_format(emit: Callable[..., None]) -> None:
    assert TIME.match(str(_metric_line(emit)["time"]))


@pytest.mark.parametrize("emit", [lambda_metrics.emit, tool_metrics.emit], ids=["lambda", "tool"])
def test_a_metric_lines_time_is_its_timestamp(emit: Callable[..., None]) -> None:
    line = _metric_line(emit)
    seconds, millis = divmod(line["_aws"]["Timestamp"], 1000)
    expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
    assert line["time"] == expected


def test_lambda_lines_are_not_passed_on_to_the_root_logger() -> None:
    # The Lambda runtime's own root handler would write each record a second time.
    caught = io.StringIO()
    root = logging.StreamHandler(caught)
    logging.getLogger().addHandler(root)
    try:
        logs.configure(io.StringIO())
        logs.log("once")
    finally:
        logging.getLogger().removeHandler(root)
        logs.configure(None)
    assert caught.getvalue() == ""
