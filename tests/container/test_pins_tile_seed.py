"""iiif-tile-seed's command line (flags, -processes and -scale-factors bounds) and exit status
(issue #13)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from iiif_process import tile_seed_cli
from iiif_process.arguments import UsageError
from iiif_process.tile_seed_cli import run

from . import iiif_images as gen


def _argv(tmp_path: Path, *args: str) -> list[str]:
    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir(exist_ok=True)
    out.mkdir(exist_ok=True)
    (source / "a.jpg").write_bytes(gen.jpeg())
    return [
        "-config-images-source-uri",
        source.as_uri(),
        "-config-derivatives-cache-uri",
        out.as_uri(),
        *args,
    ]


def test_one_process_is_allowed(tmp_path: Path) -> None:
    status, _ = run(_argv(tmp_path, "-processes", "1", "a.jpg"), {})
    assert status == 0


def test_zero_processes_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="-processes must be between 1 and 256, not 0"):
        run(_argv(tmp_path, "-processes", "0", "a.jpg"), {})


def test_256_processes_are_allowed(tmp_path: Path) -> None:
    status, _ = run(_argv(tmp_path, "-processes", "256", "a.jpg"), {})
    assert status == 0


def test_257_processes_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not 257"):
        run(_argv(tmp_path, "-processes", "257", "a.jpg"), {})


def test_a_config_that_cannot_be_read_exits_1(tmp_path: Path) -> None:
    argv = ["-config-source", (tmp_path / "nowhere").as_uri(), "a.jpg", "b.jpg"]
    status, _ = run(argv, {})
    assert status == 1


def test_a_config_that_cannot_be_read_is_an_error_for_every_identifier(tmp_path: Path) -> None:
    argv = ["-config-source", (tmp_path / "nowhere").as_uri(), "a.jpg", "b.jpg"]
    _, results = run(argv, {})
    assert {src: "cannot read" in entry["error"] for src, entry in results.items()} == {
        "a.jpg": True,
        "b.jpg": True,
    }


def test_without_processes_16_objects_are_written_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The documented default (docs/iiif-process.md): what the seeder is asked to use.
    asked: list[int] = []
    real = tile_seed_cli.seed_image

    def seed_image(*args: Any) -> dict[str, Any]:
        asked.append(args[-1])
        return real(*args)

    monkeypatch.setattr(tile_seed_cli, "seed_image", seed_image)
    run(_argv(tmp_path, "a.jpg"), {})
    assert asked == [16]


@pytest.mark.parametrize("factors", ["0", "4,2,0", "-1"])
def test_scale_factors_under_one_are_a_usage_error(factors: str) -> None:
    with pytest.raises(UsageError, match="-scale-factors must be positive integers"):
        tile_seed_cli.tile_options(tile_seed_cli.parse_args(["-scale-factors", factors]))


def test_scale_factors_of_one_and_up_are_kept() -> None:
    options = tile_seed_cli.tile_options(tile_seed_cli.parse_args(["-scale-factors", "4,2,1"]))
    assert options.scale_factors == (4, 2, 1)


# The flags that take a value, as docs/iiif-process.md lists them for iiif-tile-seed.
VALUE_FLAGS = [
    "config-source",
    "config-name",
    "config-images-source-uri",
    "config-derivatives-cache-uri",
    "endpoint",
    "api-version",
    "tile-size",
    "scale-factors",
    "format",
    "quality",
    "processes",
    "mode",
]


@pytest.mark.parametrize("name", VALUE_FLAGS)
def test_a_value_flag_takes_the_next_argument(name: str) -> None:
    args = tile_seed_cli.parse_args([f"-{name}", "v", "a.jpg"])
    assert (args.get(name), args.positional) == ("v", ["a.jpg"])


@pytest.mark.parametrize("name", ["no-extension", "refresh", "verbose", "h", "help"])
def test_a_boolean_flag_takes_no_argument(name: str) -> None:
    args = tile_seed_cli.parse_args([f"-{name}", "a.jpg"])
    assert (args.flag(name), args.positional) == (True, ["a.jpg"])


def test_a_tile_size_of_4096_is_accepted() -> None:
    options = tile_seed_cli.tile_options(tile_seed_cli.parse_args(["-tile-size", "4096"]))
    assert options.tile_size == 4096


def test_a_tile_size_over_4096_is_a_usage_error_naming_the_flag() -> None:
    with pytest.raises(UsageError, match="tile-size"):
        tile_seed_cli.tile_options(tile_seed_cli.parse_args(["-tile-size", "4097"]))
