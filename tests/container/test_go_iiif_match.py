"""Issue #12, "Match go-iiif": the same files as go-iiif v8 for the same source and instructions.

Known figures come from ../shared/reference/go-iiif-v8-observed.md (go-iiif v8.1.8 run beside
this tool) and from go-iiif's own code (image/transformation.go, go-atkinson, go-colours).
"""

from __future__ import annotations

import os
import random
import stat
from collections.abc import Iterator

import numpy as np
import pytest
import pyvips
from iiif_process import atkinson as atkinson_module
from iiif_process.atkinson import atkinson, go_grey
from iiif_process.config import parse_config
from iiif_process.defaults import DEFAULT_INSTRUCTIONS, default_config
from iiif_process.errors import ConfigError
from iiif_process.params import parse_size
from iiif_process.services import closest, colour_list, marekm4_colours, palette

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
    # A resized derivative: a full-size JPEG of a JPEG is the source's own bytes, not re-encoded.
    key = ws.put("photo.jpg", gen.jpeg())
    status, results = ws.run(
        [key],
        instructions={"a": {"size": "!32,32", "format": "jpg"}},
        config={"iiif_process": {"jpeg_quality": quality}},
    )
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


# 5. Palette entries carry `closest` (crayola, css4); defaults:// names marekm4 as go-iiif v8.


def _pixels(counts: list[tuple[tuple[int, int, int], int]]) -> pyvips.Image:
    """A one-row sRGB image holding each colour ``count`` times."""
    data = b"".join(bytes(rgb) * n for rgb, n in counts)
    width = sum(n for _, n in counts)
    return pyvips.Image.new_from_memory(data, width, 1, 3, "uchar").copy(interpretation="srgb")


@pytest.mark.parametrize(
    ("rgb", "list_name", "expected"),
    [
        ((0, 0, 0), "crayola", {"name": "Black", "hex": "#000000", "reference": "crayola"}),
        ((255, 255, 255), "crayola", {"name": "White", "hex": "#ffffff", "reference": "crayola"}),
        ((254, 1, 0), "css4", {"name": "red", "hex": "#ff0000", "reference": "css4"}),
        ((250, 250, 250), "css4", {"name": "snow", "hex": "#fffafa", "reference": "css4"}),
        # snow (#fffafa, listed 36th) and ghostwhite (#f8f8ff, 114th) are both 38 away:
        # go-colours' grid keeps the last listed.
        ((249, 249, 249), "css4", {"name": "ghostwhite", "hex": "#f8f8ff", "reference": "css4"}),
    ],
)
def test_closest_picks_the_nearest_named_colour_as_go_colours_does(
    rgb: tuple[int, int, int], list_name: str, expected: dict[str, str]
) -> None:
    assert closest(rgb, list_name) == expected


def test_colour_lists_are_go_colours_lists() -> None:
    assert (len(colour_list("crayola")), len(colour_list("css4")), len(colour_list("css3"))) == (
        149,
        139,
        138,
    )
    assert colour_list("crayola")[0][:2] == ("Tickle Me Pink", "#fc89ac")
    assert colour_list("css4")[0][:2] == ("navy", "#000080")


def test_marekm4_extruder_gives_the_cubes_means_most_populous_first() -> None:
    image = _pixels(
        [
            ((200, 30, 30), 600),  # cube r+: 60 %
            ((20, 40, 220), 150),  # cube b+: 30 %, mean (30, 50, 210)
            ((40, 60, 200), 150),
            ((240, 240, 240), 95),  # cube r+g+b+: 9.5 %
            ((0, 255, 0), 5),  # cube g+: 0.5 %, under 1 %: left out
        ]
    )
    assert marekm4_colours(image, 5) == [(200, 30, 30), (30, 50, 210), (240, 240, 240)]
    assert marekm4_colours(image, 2) == [(200, 30, 30), (30, 50, 210)]


def test_palette_entries_carry_closest_in_go_iiif_v8_shape() -> None:
    image = _pixels([((0, 0, 0), 70), ((255, 255, 255), 30)])
    assert palette(image, 5, "marekm4") == [
        {
            "name": "#000000",
            "hex": "#000000",
            "reference": "marekm4",
            "closest": [
                {"name": "Black", "hex": "#000000", "reference": "crayola"},
                {"name": "black", "hex": "#000000", "reference": "css4"},
            ],
        },
        {
            "name": "#ffffff",
            "hex": "#ffffff",
            "reference": "marekm4",
            "closest": [
                {"name": "White", "hex": "#ffffff", "reference": "crayola"},
                {"name": "white", "hex": "#ffffff", "reference": "css4"},
            ],
        },
    ]


def test_defaults_name_the_marekm4_extruder_as_go_iiif_v8() -> None:
    config = parse_config(default_config())
    assert (config.palette_extruder, config.palette_lists) == ("marekm4", ("crayola", "css4"))


def test_palette_lists_follow_the_config() -> None:
    seed = parse_config(
        {**_config(), "palette": {"extruder": {"name": "marekm4"}, "palette": [{"name": "css3"}]}}
    )
    v8 = parse_config(
        {**_config(), "palette_service": {"palettes": [{"uri": "css4://"}, {"uri": "crayola://"}]}}
    )
    assert (seed.palette_lists, v8.palette_lists) == (("css3",), ("css4", "crayola"))


def test_palette_lists_reject_an_unknown_list_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"palette_service\.palettes: unsupported colour list"):
        parse_config({**_config(), "palette_service": {"palettes": [{"uri": "pantone://"}]}})


def test_report_palette_has_closest_colours(ws: Workspace) -> None:
    key = ws.put("photo.jpg", gen.jpeg(gen.gradient(240, 160)))
    status, results = ws.run([key], config={"profile": {"services": {"enable": ["palette"]}}})
    assert status == 0, results
    entries = results[key]["palette"]
    assert 2 <= len(entries) <= 5
    for entry in entries:
        rgb = tuple(int(entry["hex"][i : i + 2], 16) for i in (1, 3, 5))
        assert entry["closest"] == [closest(rgb, "crayola"), closest(rgb, "css4")]


def test_palette_named_marekm4_uses_the_marekm4_extruder() -> None:
    image = _pixels(
        [((200, 30, 30), 60), ((20, 40, 220), 15), ((40, 60, 200), 15), ((240,) * 3, 10)]
    )
    assert [entry["hex"] for entry in palette(image, 5, "marekm4")] == [
        "#c81e1e",
        "#1e32d2",
        "#f0f0f0",
    ]


def test_report_palette_closest_follows_the_configured_lists(ws: Workspace) -> None:
    key = ws.put("photo.jpg", gen.jpeg(gen.gradient(240, 160)))
    config = {
        "profile": {"services": {"enable": ["palette"]}},
        "palette_service": {"extruders": [{"uri": "marekm4://"}], "palettes": [{"uri": "css3://"}]},
    }
    status, results = ws.run([key], config=config)
    assert status == 0, results
    entries = results[key]["palette"]
    assert entries
    assert {entry["reference"] for entry in entries} == {"marekm4"}
    for entry in entries:
        rgb = tuple(int(entry["hex"][i : i + 2], 16) for i in (1, 3, 5))
        assert entry["closest"] == [closest(rgb, "css3")]


# 6. Dither diffuses error as go-iiif's Atkinson dither (go-atkinson) does.


def _go_atkinson(grey: list[list[int]]) -> list[list[int]]:
    """go-atkinson's Dither, line for line (its 8-bit pixels wrap around: uint8(int16(v) + e))."""
    height, width = len(grey), len(grey[0])
    pixels = [list(row) for row in grey]
    for y in range(height):
        for x in range(width):
            value = pixels[y][x]
            mono = 0 if value < 128 else 255
            error = int((value - mono) / 8)
            pixels[y][x] = mono
            for nx, ny in (
                (x + 1, y),
                (x - 1, y + 1),
                (x, y + 1),
                (x + 1, y + 1),
                (x + 2, y),
                (x, y + 2),
            ):
                if 0 <= nx < width and 0 <= ny < height:
                    pixels[ny][nx] = (pixels[ny][nx] + error) & 0xFF
    return pixels


def _grey_image(rows: list[list[int]]) -> pyvips.Image:
    data = bytes(v for row in rows for v in row)
    return pyvips.Image.new_from_memory(data, len(rows[0]), len(rows), 1, "uchar")


def _rows(image: pyvips.Image) -> list[list[int]]:
    data = image.write_to_memory()
    return [list(data[y * image.width : (y + 1) * image.width]) for y in range(image.height)]


def test_dither_diffuses_error_as_go_atkinson_by_hand() -> None:
    # 100 -> 0, error 12 to the next two; 112 -> 0, error 14; 126 -> 0, error 15; 129 -> 255.
    assert _rows(atkinson(_grey_image([[100, 100, 100, 100]]))) == [[0, 0, 0, 255]]


def test_dither_of_flat_grey_is_go_atkinson_pixel_for_pixel() -> None:
    rows = [[100] * 23 for _ in range(17)]
    assert _rows(atkinson(_grey_image(rows))) == _go_atkinson(rows)


def test_dither_is_go_atkinson_pixel_for_pixel_where_go_does_not_wrap() -> None:
    # Values of 90..165 never leave 0..255 with six errors of at most 15: go-atkinson exactly.
    rng = random.Random(12)
    rows = [[rng.randint(90, 165) for _ in range(61)] for _ in range(37)]
    assert _rows(atkinson(_grey_image(rows))) == _go_atkinson(rows)


def test_dither_saturates_where_go_atkinson_wraps_around() -> None:
    # go-atkinson: 100 passes 12 to both neighbours; 250 + 12 wraps to 6: both turn black.
    rows = [[100, 250, 250]]
    assert _go_atkinson(rows) == [[0, 0, 0]]
    assert _rows(atkinson(_grey_image(rows))) == [[0, 255, 255]]


def test_dither_passes_no_error_beyond_white() -> None:
    # 120 passes 15 on; the 265s saturate to white and pass nothing, so 126 stays black.
    # (go-atkinson wraps the 265s to 9 and 10, black, whose errors make 126 white.)
    rows = [[120, 250, 250, 126]]
    assert _go_atkinson(rows) == [[0, 0, 0, 255]]
    assert _rows(atkinson(_grey_image(rows))) == [[0, 255, 255, 0]]


def test_dither_carries_the_error_across_strips(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    rows = [[rng.randint(90, 165) for _ in range(19)] for _ in range(23)]
    whole = _rows(atkinson(_grey_image(rows)))
    monkeypatch.setattr(atkinson_module, "STRIP", 4)
    assert _rows(atkinson(_grey_image(rows))) == whole == _go_atkinson(rows)


@pytest.mark.parametrize(
    ("rgb", "grey"),
    [
        ((255, 255, 255), 255),
        ((0, 0, 0), 0),
        ((255, 0, 0), 76),
        ((0, 255, 0), 150),
        ((0, 0, 255), 29),
        ((10, 200, 30), 124),
        ((0, 21, 154), 30),
    ],
)
def test_dither_greys_with_go_gray_model(rgb: tuple[int, int, int], grey: int) -> None:
    # Go: (19595 R + 38470 G + 7471 B + 1 << 15) >> 24 on 16-bit values (v * 257).
    assert go_grey(np.array([[rgb]], dtype=np.uint8), np)[0, 0] == grey


def test_dither_quality_is_atkinson_in_the_tool(ws: Workspace) -> None:
    image = gen.gradient(64, 48)
    key = ws.put("photo.png", gen.png(image))
    status, results = ws.run([key], {"d": {"quality": "dither", "format": "png"}})
    assert status == 0, results
    out = ws.image(results[key]["uris"]["d"])
    pixels = np.frombuffer(image.write_to_memory(), dtype=np.uint8).reshape(48, 64, 3)
    expected = _go_atkinson(go_grey(pixels, np).tolist())
    assert _rows(out) == expected
