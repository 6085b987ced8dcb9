"""Where the config and instructions documents may come from (issue #13)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from iiif_process.documents import load_document
from iiif_process.errors import ConfigError


def test_an_unsupported_scheme_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unsupported source 'https://example\.org/c'"):
        load_document("https://example.org/c", "config.json", {})


def test_a_file_url_names_a_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"x": 1}))
    assert load_document(tmp_path.as_uri(), "config.json", {}) == {"x": 1}


def test_a_plain_path_names_a_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"y": 2}))
    assert load_document(str(tmp_path), "config.json", {}) == {"y": 2}
