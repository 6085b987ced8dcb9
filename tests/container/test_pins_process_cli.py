"""iiif-process's command line: which flags take a value, and the public base URL check
(issue #13)."""

from __future__ import annotations

import pytest
from iiif_process.arguments import count
from iiif_process.errors import ConfigError
from iiif_process.process_cli import deep_zoom_settings, parse_args


def _base(url: str) -> str:
    settings, _ = deep_zoom_settings(parse_args(["-public-base-url", url]), {})
    return settings.public_base_url


@pytest.mark.parametrize(
    "url", ["https://x.org/iiif?", "https://x.org/iiif#", "https://x.org/?a=1"]
)
def test_a_base_url_with_a_query_or_fragment_mark_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="must have no query or fragment"):
        _base(url)


def test_a_base_url_loses_its_trailing_slash() -> None:
    assert _base("https://x.org/iiif/") == "https://x.org/iiif"


def test_max_source_bytes_takes_a_value() -> None:
    args = parse_args(["-max-source-bytes", "1000", "a.jpg"])
    assert (count(args, {}, "max-source-bytes"), args.positional) == (1000, ["a.jpg"])


# The flags that take a value, as docs/iiif-process.md lists them (go-iiif's, then ours).
VALUE_FLAGS = [
    "config",
    "instructions",
    "uri",
    "report-name",
    "config-source",
    "config-name",
    "instructions-source",
    "instructions-name",
    "config-images-source-uri",
    "config-derivatives-cache-uri",
    "report-template",
    "report-bucket-uri",
    "max-pixels",
    "max-source-bytes",
    "workers",
    "stop-seconds",
    "iiif-api-version",
    "tile-size",
    "public-base-url",
    "publish-concurrency",
]


@pytest.mark.parametrize("name", VALUE_FLAGS)
def test_a_value_flag_takes_the_next_argument(name: str) -> None:
    args = parse_args([f"-{name}", "v", "a.jpg"])
    assert (args.get(name), args.positional) == ("v", ["a.jpg"])


@pytest.mark.parametrize("name", ["tiles", "report", "verbose", "h", "help"])
def test_a_boolean_flag_takes_no_argument(name: str) -> None:
    args = parse_args([f"-{name}", "a.jpg"])
    assert (args.flag(name), args.positional) == (True, ["a.jpg"])


def _tile_size(size: str) -> int:
    settings, _ = deep_zoom_settings(parse_args(["-tile-size", size]), {})
    return settings.tile_size


@pytest.mark.parametrize("size", [64, 4096])
def test_tile_sizes_from_64_to_4096_are_accepted(size: int) -> None:
    assert _tile_size(str(size)) == size


@pytest.mark.parametrize("size", ["63", "4097"])
def test_tile_sizes_outside_64_to_4096_are_refused(size: str) -> None:
    with pytest.raises(ConfigError, match="-tile-size must be from 64 to 4096"):
        _tile_size(size)
