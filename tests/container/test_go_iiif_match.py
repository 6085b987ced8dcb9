"""Issue #12, "Match go-iiif": the same files as go-iiif v8 for the same source and instructions.

Known figures come from ../shared/reference/go-iiif-v8-observed.md (go-iiif v8.1.8 run beside
this tool) and from go-iiif's own code (image/transformation.go, go-atkinson, go-colours).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

import pytest
from iiif_process.config import parse_config
from iiif_process.defaults import DEFAULT_INSTRUCTIONS
from iiif_process.errors import ConfigError
from iiif_process.params import parse_size

from . import iiif_images as gen
from .conftest import Workspace


def _config(**own: object) -> dict:
    return {
        "images": {"source": {"uri": "mem://"}},
        "derivatives": {"cache": {"uri": "mem://"}},
        "iiif_process": own,
    }


# 1. `!w,h` enlarges (Image API 2.1, go-iiif); "3" rules enlarge only with `^`.


@pytest.mark.parametrize(
    ("size", "dims"),
    [("!2048,1536", (2048, 1362)), ("!1024,768", (1024, 681))],  # go-iiif on a 451x300 image
)
def test_fit_size_enlarges_an_image_smaller_than_the_box(size: str, dims: tuple[int, int]) -> None:
    assert parse_size(size).target(451, 300) == dims


@pytest.mark.parametrize(
    ("size", "dims"),
    [
        ("!2048,1536", (451, 300)),
        ("1200,", (451, 300)),
        (",600", (451, 300)),
        ("pct:200", (451, 300)),
        ("900,200", (451, 200)),
        ("!200,200", (200, 133)),  # shrinking is unchanged
        ("^!2048,1536", (2048, 1362)),
        ("^902,", (902, 600)),
        ("^pct:200", (902, 600)),
    ],
)
def test_size_rules_3_enlarge_only_with_caret(size: str, dims: tuple[int, int]) -> None:
    assert parse_size(size).target(451, 300, "3") == dims


def test_size_rules_default_to_image_api_2_1() -> None:
    assert parse_config(_config()).size_rules == "2.1"


@pytest.mark.parametrize("value", ["3", "2.1"])
def test_size_rules_setting_is_read(value: str) -> None:
    assert parse_config(_config(size_rules=value)).size_rules == value


@pytest.mark.parametrize("value", [3, 2.1, "2", "v3", "", None, ["3"]])
def test_size_rules_setting_rejects_other_values_naming_it(value: object) -> None:
    with pytest.raises(ConfigError, match=r"iiif_process\.size_rules must be"):
        parse_config(_config(size_rules=value))


def test_fit_size_enlarges_a_small_image_in_the_tool(ws: Workspace) -> None:
    key = ws.put("small.jpg", gen.jpeg(gen.gradient(120, 80), Q=95))
    status, results = ws.run([key], {"k": {"size": "!2048,1536", "format": "jpg"}})
    assert status == 0, results
    assert results[key]["dimensions"]["k"] == [2048, 1365]
    image = ws.image(results[key]["uris"]["k"])
    assert (image.width, image.height) == (2048, 1365)


def test_size_rules_3_in_the_config_keep_a_small_image_small(ws: Workspace) -> None:
    key = ws.put("small.jpg", gen.jpeg(gen.gradient(120, 80), Q=95))
    status, results = ws.run(
        [key],
        {"k": {"size": "!2048,1536", "format": "jpg"}, "u": {"size": "^!240,240"}},
        config={"iiif_process": {"size_rules": "3"}},
    )
    assert status == 0, results
    assert results[key]["dimensions"] == {"k": [120, 80], "u": [240, 160]}


# 2. The computed side is truncated as go-iiif does.


@pytest.mark.parametrize(
    ("source", "size", "dims"),
    [
        ((6000, 4000), "!1024,768", (1024, 682)),  # observed: rounding would give 683
        ((6000, 4000), "!640,480", (640, 426)),  # observed: rounding would give 427
        ((6000, 4000), "!2048,1536", (2048, 1365)),
        ((451, 300), "!2048,1536", (2048, 1362)),  # observed
        ((451, 300), "!1024,768", (1024, 681)),  # observed
        ((6000, 4000), "1024,", (1024, 682)),
        ((4000, 6000), ",1024", (682, 1024)),
        ((601, 401), "pct:12.5", (76, 51)),  # go-iiif: the ceiling of 75.125 and 50.125
        ((400, 600), "!1024,768", (512, 768)),  # confined by the height
    ],
)
def test_computed_side_is_truncated_as_go_iiif_does(
    source: tuple[int, int], size: str, dims: tuple[int, int]
) -> None:
    assert parse_size(size).target(*source) == dims


def test_fit_size_keeps_the_box_side_where_go_iiif_float_arithmetic_is_one_short() -> None:
    # go-iiif: int(1122 * (1024 / 1122)) = 1023. A !1024,768 derivative is 1024 wide here.
    assert int(1122 * (1024 / 1122)) == 1023
    assert parse_size("!1024,768").target(1122, 748) == (1024, 682)
    assert parse_size("!768,1024").target(748, 1122) == (682, 1024)


def test_default_set_dimensions_match_go_iiif(ws: Workspace) -> None:
    # A 3:2 photo, as the observed 6000x4000 one: go-iiif's b and z are 1024x682 and 640x426.
    key = ws.put("photo.jpg", gen.jpeg(gen.gradient(1500, 1000)))
    status, results = ws.run([key], DEFAULT_INSTRUCTIONS)
    assert status == 0, results
    assert results[key]["dimensions"] == {
        "b": [1024, 682],
        "c": [800, 533],
        "dc": [800, 533],
        "ds": [320, 320],
        "k": [2048, 1365],
        "n": [320, 213],
        "o": [1500, 1000],
        "s": [320, 320],
        "z": [640, 426],
    }
    for label, uri in results[key]["uris"].items():
        image = ws.image(uri)
        assert [image.width, image.height] == results[key]["dimensions"][label], label


# 3. Files on disk are 0644 (folders 0755) whatever the umask.


@pytest.fixture
def strict_umask() -> Iterator[None]:
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def test_derivatives_on_disk_are_written_with_mode_0644(ws: Workspace, strict_umask: None) -> None:
    key = ws.put("photo.jpg", gen.jpeg())
    status, results = ws.run(
        [key], {"a": {"size": "!60,60"}, "b": {"size": "full"}}, args=["-report"]
    )
    assert status == 0, results
    files = sorted(p for p in ws.out.rglob("*") if p.is_file())
    assert len(files) == 3  # two derivatives and the report
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o644}


def test_folders_made_for_derivatives_are_0755(ws: Workspace, strict_umask: None) -> None:
    key = ws.put("photo.jpg", gen.jpeg())
    status, results = ws.run([key])
    assert status == 0, results
    folders = [p for p in ws.out.rglob("*") if p.is_dir()]
    assert len(folders) == 4  # photo.jpg/full/full/0
    assert {stat.S_IMODE(p.stat().st_mode) for p in folders} == {0o755}


# 4. A JPEG quality setting.


def _ijg_luma_dc(quality: int) -> int:
    """The first luminance quantiser of libjpeg's tables at ``quality`` (IJG scaling of 16)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return max(1, (16 * scale + 50) // 100)


def _luma_dc(jpeg: bytes) -> int:
    """The first value of the first quantisation table (DQT) of a baseline JPEG."""
    at = jpeg.index(b"\xff\xdb")
    return jpeg[at + 5]


def test_jpeg_quality_defaults_to_75() -> None:
    assert parse_config(_config()).jpeg_quality == 75


@pytest.mark.parametrize("quality", [100, 90, 40])
def test_jpeg_quality_setting_sets_the_derivatives_quality(ws: Workspace, quality: int) -> None:
    key = ws.put("photo.jpg", gen.jpeg())
    status, results = ws.run([key], config={"iiif_process": {"jpeg_quality": quality}})
    assert status == 0, results
    assert _luma_dc(ws.read(results[key]["uris"]["a"])) == _ijg_luma_dc(quality)


def test_jpeg_quality_default_is_written(ws: Workspace) -> None:
    key = ws.put("photo.jpg", gen.jpeg())
    status, results = ws.run([key])
    assert status == 0, results
    assert _luma_dc(ws.read(results[key]["uris"]["a"])) == _ijg_luma_dc(75) == 8


@pytest.mark.parametrize("value", [0, 101, -5, 75.0, "75", True, None])
def test_jpeg_quality_setting_rejects_other_values_naming_it(value: object) -> None:
    with pytest.raises(ConfigError, match=r"iiif_process\.jpeg_quality must be a whole number"):
        parse_config(_config(jpeg_quality=value))


@pytest.mark.parametrize("value", [1, 100])
def test_jpeg_quality_setting_accepts_its_bounds(value: int) -> None:
    assert parse_config(_config(jpeg_quality=value)).jpeg_quality == value
