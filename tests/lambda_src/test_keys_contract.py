"""Issue #8 item 9: the trigger applies the one key rule of docs/contracts.md, row by row."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from iiif_process_ecs.keys import MAX_KEY_BYTES, unsafe_reason

from tests.lambda_src.conftest import Infra
from tests.lambda_src.test_ecs_trigger_handler import run

CONTRACTS = Path(__file__).resolve().parents[2] / "docs" / "contracts.md"
SECTION = "## Keys: one rule for trigger and tool"
ROW = re.compile(r'^\| `(".*")` \| (accept|refuse) \|$')


def key_table() -> list[tuple[str, str]]:
    """(key, verdict) for every row of the key table in docs/contracts.md."""
    text = CONTRACTS.read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        match = ROW.match(line)
        if match:
            rows.append((json.loads(match.group(1)), match.group(2)))
    return rows


ROWS = key_table()


def test_the_table_is_read_whole() -> None:
    # Guards the parser: a change of the table's format must not leave this file testing nothing.
    table_lines = [line for line in CONTRACTS.read_text().splitlines() if line.startswith('| `"')]
    assert len(ROWS) == len(table_lines) >= 25
    assert {verdict for _, verdict in ROWS} == {"accept", "refuse"}


@pytest.mark.parametrize(("key", "verdict"), ROWS, ids=[f"row{i}" for i in range(len(ROWS))])
def test_the_trigger_rule_agrees_with_each_row(key: str, verdict: str) -> None:
    assert (unsafe_reason(key) is None) == (verdict == "accept")


def test_the_length_limit_is_900_bytes() -> None:
    assert MAX_KEY_BYTES == 900
    assert unsafe_reason("a" * 896 + ".jpg") is None
    assert unsafe_reason("a" * 897 + ".jpg") is not None


def test_the_handler_launches_accepted_rows_and_fails_refused_ones(infra: Infra) -> None:
    response = run(infra, {"uris": [key for key, _ in ROWS]})
    launched = {entry["uri"] for entry in response["launched"]}
    failed = {entry["uri"]: entry["reason"] for entry in response["failed"]}
    for key, verdict in ROWS:
        if verdict == "accept":
            assert key in launched, key
        else:
            assert key not in launched, key
            assert failed[key].startswith("unsafe key: "), key
