"""Issue #8 item 9: iiif-process applies the one key rule of docs/contracts.md.

The table under "Keys: one rule for trigger and tool" is parsed here, and every row is checked
against ``safe_key``; a few rows go through the command line too. The trigger's tests read the same
table, so both sides agree by construction: add rows to the table, never here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from iiif_process.errors import UnsafeURIError
from iiif_process.stores import MAX_KEY_BYTES, safe_key

from . import iiif_images as gen
from .conftest import Workspace

CONTRACTS = Path(__file__).resolve().parents[2] / "docs" / "contracts.md"
_ROW = re.compile(r"^\| `(?P<key>\".*\")` \| (?P<verdict>accept|refuse) \|$")


def key_table() -> list[tuple[str, str]]:
    """The (key, verdict) rows of the contract's key table, keys JSON-decoded."""
    text = CONTRACTS.read_text(encoding="utf-8")
    section = text.split("## Keys: one rule for trigger and tool", 1)[1].split("\n## ", 1)[0]
    rows = [m for line in section.splitlines() if (m := _ROW.match(line.strip()))]
    return [(json.loads(m["key"]), m["verdict"]) for m in rows]


TABLE = key_table()


def test_the_contract_table_is_read_whole() -> None:
    # Every table row parsed (a format change must not silently drop rows), both verdicts there.
    section = CONTRACTS.read_text(encoding="utf-8").split("## Keys: one rule", 1)[1]
    body_rows = [
        line for line in section.split("\n## ", 1)[0].splitlines() if line.startswith("| `")
    ]
    assert len(TABLE) == len(body_rows) >= 20
    assert {verdict for _, verdict in TABLE} == {"accept", "refuse"}


def test_the_length_limit_is_the_contracts_900_bytes() -> None:
    assert MAX_KEY_BYTES == 900


@pytest.mark.parametrize(("key", "verdict"), TABLE, ids=[repr(k)[:40] for k, _ in TABLE])
def test_item9_safe_key_agrees_with_the_contract_table(key: str, verdict: str) -> None:
    if verdict == "accept":
        assert safe_key(key) == key
    else:
        with pytest.raises(UnsafeURIError):
            safe_key(key)


def test_item9_the_cli_refuses_a_dot_segment_before_any_read(ws: Workspace) -> None:
    # The object exists under exactly that name on disk: only the key rule can refuse it.
    (ws.source / "a").mkdir()
    (ws.source / "a" / "b.jpg").write_bytes(gen.jpeg())
    status, results = ws.run(["a/./b.jpg"])
    assert status == 1
    assert "'.' or '..' segment" in results["a/./b.jpg"]["error"]
    assert ws.files() == set()


def test_item9_the_cli_refuses_a_key_that_reads_as_a_flag(ws: Workspace) -> None:
    ws.put("-uri.jpg", gen.jpeg())
    status, results = ws.run(["-uri.jpg"])
    assert status == 1
    assert "starts with '-'" in results["-uri.jpg"]["error"]
    assert ws.files() == set()


def test_item9_the_cli_accepts_a_double_dot_inside_a_name(ws: Workspace) -> None:
    ws.put("a..b.jpg", gen.jpeg())
    status, results = ws.run(["a..b.jpg"])
    assert status == 0, results
    assert "a..b.jpg/full/full/0/color.jpg" in ws.files()


def test_item9_the_cli_refuses_a_key_whose_derivative_keys_would_exceed_s3s_limit(
    ws: Workspace,
) -> None:
    key = "k" * (MAX_KEY_BYTES - 3) + ".jpg"
    status, results = ws.run([key])
    assert status == 1
    assert f"over {MAX_KEY_BYTES} bytes" in results[key]["error"]
