"""Where the config and instructions documents may come from (issue #13)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from iiif_process.config import parse_config
from iiif_process.documents import load_config_document, load_document
from iiif_process.errors import ConfigError
from iiif_process.process_cli import parse_args


def test_an_unsupported_scheme_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unsupported source 'https://example\.org/c'"):
        load_document("https://example.org/c", "config.json", {})


def test_a_file_url_names_a_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"x": 1}))
    assert load_document(tmp_path.as_uri(), "config.json", {}) == {"x": 1}


def test_a_plain_path_names_a_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"y": 2}))
    assert load_document(str(tmp_path), "config.json", {}) == {"y": 2}


def _config_file(tmp_path: Path, document: object) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document))
    return str(path)


def test_a_cache_override_fills_a_config_without_derivatives(tmp_path: Path) -> None:
    path = _config_file(tmp_path, {"images": {"source": {"uri": "mem://"}}})
    args = parse_args(["-config", path, "-config-derivatives-cache-uri", "file:///out"])
    assert load_config_document(args, {})["derivatives"] == {"cache": {"uri": "file:///out"}}


def test_a_source_override_fills_a_config_without_images(tmp_path: Path) -> None:
    path = _config_file(tmp_path, {"derivatives": {"cache": {"uri": "mem://"}}})
    args = parse_args(["-config", path, "-config-images-source-uri", "s3blob://src"])
    assert load_config_document(args, {})["images"] == {"source": {"uri": "s3blob://src"}}


def test_a_cache_override_keeps_the_rest_of_the_derivatives_block(tmp_path: Path) -> None:
    document = {"images": {}, "derivatives": {"cache": {"uri": "mem://"}, "note": "kept"}}
    args = parse_args(
        ["-config", _config_file(tmp_path, document), "-config-derivatives-cache-uri", "mem://x"]
    )
    assert load_config_document(args, {})["derivatives"]["note"] == "kept"


def test_config_source_and_name_name_the_document(tmp_path: Path) -> None:
    (tmp_path / "mine.json").write_text(json.dumps({"images": {"source": {"uri": "mem://a"}}}))
    args = parse_args(["-config-source", tmp_path.as_uri(), "-config-name", "mine.json"])
    assert load_config_document(args, {})["images"] == {"source": {"uri": "mem://a"}}


def test_a_config_that_is_not_an_object_is_refused_as_such(tmp_path: Path) -> None:
    args = parse_args(["-config", _config_file(tmp_path, [1, 2])])
    with pytest.raises(ConfigError, match="config must be a JSON object"):
        parse_config(load_config_document(args, {"config-derivatives-cache-uri": "mem://"}))


def test_the_defaults_scheme_gives_the_built_in_document() -> None:
    assert load_document("defaults://", "config.json", {"built": "in"}) == {"built": "in"}
