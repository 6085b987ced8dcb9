"""Derivatives: every parameter applied to real pixels, output paths, formats, reports."""

from __future__ import annotations

import hashlib
import json

import pytest
from iiif_process.defaults import DEFAULT_INSTRUCTIONS

from . import iiif_images as gen
from .conftest import Workspace


@pytest.fixture
def photo(ws: Workspace) -> str:
    """A 120x80 gradient JPEG in the source."""
    return ws.put("dir/photo.jpg", gen.jpeg(gen.gradient(), Q=95))


def _one(ws: Workspace, key: str, **params: str):
    params.setdefault("format", "png")
    status, results = ws.run([key], {"x": params})
    assert status == 0, results
    return ws.image(results[key]["uris"]["x"])


@pytest.mark.parametrize(
    ("region", "size"),
    [
        ("full", (120, 80)),
        ("square", (80, 80)),
        ("10,10,50,30", (50, 30)),
        ("100,60,50,50", (20, 20)),
        ("pct:50,50,50,50", (60, 40)),
        ("-1,-1,40,30", (40, 30)),
    ],
)
def test_region_gives_the_expected_dimensions(
    ws: Workspace, photo: str, region: str, size: tuple[int, int]
) -> None:
    out = _one(ws, photo, region=region)
    assert (out.width, out.height) == size


def test_smart_crop_is_a_thumbnail_of_the_whole_image(ws: Workspace) -> None:
    # go-iiif's -1,-1,w,h: scale to cover w x h, then crop; the whole height survives, so the red
    # top band and the blue bottom band (180 px apart in the source) are both in a 40x40 crop.
    key = ws.put("banded.png", gen.png(gen.banded()))
    out = _one(ws, key, region="-1,-1,40,40")
    assert (out.width, out.height) == (40, 40)
    assert (out(20, 0), out(20, 39)) == ([255.0, 0.0, 0.0], [0.0, 0.0, 255.0])


def test_smart_crop_takes_the_most_interesting_part(ws: Workspace) -> None:
    key = ws.put("detail.png", gen.png(gen.detail_on_the_right()))
    out = _one(ws, key, region="-1,-1,50,50")
    # The 200x50 cover copy keeps its right quarter (the checkerboard): no flat grey left there.
    assert out.crop(25, 0, 25, 50).colourspace("lch")[1].avg() > 60


def test_smart_crop_never_enlarges(ws: Workspace, photo: str) -> None:
    out = _one(ws, photo, region="-1,-1,500,60")
    assert (out.width, out.height) == (120, 60)


def test_pixel_region_takes_the_right_pixels(ws: Workspace, photo: str) -> None:
    out = _one(ws, photo, region="60,0,60,80")
    assert out(0, 0)[0] == pytest.approx(60 * 255 / 119, abs=6)


@pytest.mark.parametrize(
    ("size", "dims"),
    [
        ("full", (120, 80)),
        ("max", (120, 80)),
        ("60,", (60, 40)),
        (",20", (30, 20)),
        ("pct:25", (30, 20)),
        ("50,50", (50, 50)),
        ("!30,30", (30, 20)),
        ("!300,300", (300, 200)),  # enlarges, as go-iiif does
        ("^!240,240", (240, 160)),
        ("^max", (120, 80)),
    ],
)
def test_size_gives_the_expected_dimensions(
    ws: Workspace, photo: str, size: str, dims: tuple[int, int]
) -> None:
    out = _one(ws, photo, size=size)
    assert (out.width, out.height) == dims


def test_region_then_size(ws: Workspace, photo: str) -> None:
    out = _one(ws, photo, region="square", size="40,")
    assert (out.width, out.height) == (40, 40)


@pytest.mark.parametrize(
    ("rotation", "dims", "corner"),
    [("90", (40, 60), (39, 0)), ("180", (60, 40), (59, 39)), ("270", (40, 60), (0, 59))],
)
def test_rotation_by_90s_turns_clockwise(
    ws: Workspace, rotation: str, dims: tuple[int, int], corner: tuple[int, int]
) -> None:
    key = ws.put("m.png", gen.png(gen.marked()))
    out = _one(ws, key, rotation=rotation)
    assert (out.width, out.height) == dims
    assert out(*corner)[0] > 200


def test_mirror_flips_before_rotating(ws: Workspace) -> None:
    key = ws.put("m.png", gen.png(gen.marked()))
    out = _one(ws, key, rotation="!0")
    assert out(59, 0)[0] > 200 and out(0, 0)[0] < 50


def test_arbitrary_rotation_when_enabled(ws: Workspace, photo: str) -> None:
    out = _one(ws, photo, rotation="45")
    assert out.width > 120 and out.height > 80


def test_gray_quality_has_one_band(ws: Workspace, photo: str) -> None:
    assert _one(ws, photo, quality="gray").bands == 1


def test_bitonal_quality_is_black_and_white(ws: Workspace, photo: str) -> None:
    out = _one(ws, photo, quality="bitonal")
    levels = {i for i, n in enumerate(out.hist_find().tolist()[0]) if n}
    assert levels == {0, 255}


def test_dither_quality_is_black_and_white_and_mixed(ws: Workspace, photo: str) -> None:
    out = _one(ws, photo, quality="dither")
    levels = {i for i, n in enumerate(out.hist_find().tolist()[0]) if n}
    assert levels == {0, 255}


def test_crisp_quality_sharpens(ws: Workspace) -> None:
    key = ws.put("soft.png", gen.png(gen.marked().gaussblur(2).cast("uchar")))
    plain = _one(ws, key)
    sharp = _one(ws, key, quality="crisp:2.0,1.5,0.01")
    assert (sharp - plain).abs().max() > 5


def test_crisp_default_quality_is_accepted(ws: Workspace, photo: str) -> None:
    assert _one(ws, photo, quality="crisp").width == 120


@pytest.mark.parametrize(
    ("fmt", "loader"),
    [
        ("jpg", "jpegload"),
        ("png", "pngload"),
        ("webp", "webpload"),
        ("tif", "tiffload"),
        ("gif", "gifload"),
    ],
)
def test_formats_are_encoded_as_named(ws: Workspace, photo: str, fmt: str, loader: str) -> None:
    assert _one(ws, photo, format=fmt).get("vips-loader").startswith(loader)


def test_unsupported_parameter_fails_the_uri_naming_it(ws: Workspace, photo: str) -> None:
    status, results = ws.run([photo], {"x": {"size": "huge"}})
    assert status == 1
    assert (
        results[photo]["error"] == "invalid instructions: instruction 'x': unsupported size 'huge'"
    )


def test_unsupported_parameter_writes_nothing(ws: Workspace, photo: str) -> None:
    ws.run([photo], {"ok": {"size": "10,"}, "x": {"quality": "sepia"}})
    assert ws.files() == set()


def test_default_instruction_set_writes_every_path(ws: Workspace, photo: str) -> None:
    status, _ = ws.run([photo], DEFAULT_INSTRUCTIONS)
    assert status == 0
    assert ws.files() == {
        f"dir/photo.jpg/{p}"
        for p in (
            "full/full/-1/color.jpg",
            "full/!2048,1536/0/color.jpg",
            "full/!1024,768/0/color.jpg",
            "full/!800,600/0/color.jpg",
            "full/!800,600/0/dither.jpg",
            "full/!640,480/0/color.jpg",
            "full/!320,240/0/color.jpg",
            "-1,-1,320,320/full/0/crisp:2.0,0.5,0.025.jpg",
            "-1,-1,320,320/full/0/dither.jpg",
        )
    }


def test_cascaded_downscales_have_exact_dimensions(ws: Workspace) -> None:
    key = ws.put("big.jpg", gen.jpeg(gen.gradient(1500, 1000)))
    status, results = ws.run([key], DEFAULT_INSTRUCTIONS)
    dims = results[key]["dimensions"]
    assert status == 0
    assert dims == {
        "b": [1024, 682],
        "c": [800, 533],
        "dc": [800, 533],
        "ds": [320, 320],
        "k": [2048, 1365],  # enlarged, as go-iiif does
        "n": [320, 213],
        "o": [1500, 1000],
        "s": [320, 320],
        "z": [640, 426],
    }


def test_report_dimensions_match_the_written_files(ws: Workspace) -> None:
    key = ws.put("big.jpg", gen.jpeg(gen.gradient(1500, 1000)))
    _, results = ws.run([key], DEFAULT_INSTRUCTIONS)
    report = results[key]
    for label, uri in report["uris"].items():
        image = ws.image(uri)
        assert [image.width, image.height] == report["dimensions"][label], label


def test_report_fields(ws: Workspace, photo: str) -> None:
    _, results = ws.run([photo], {"a": {"size": "60,"}})
    data = (ws.source / photo).read_bytes()
    assert results[photo] == {
        "dimensions": {"a": [60, 40]},
        "origin": photo,
        "origin_fingerprint": hashlib.sha1(data).hexdigest(),
        "origin_uri": f"file:///{photo}",
        "uris": {"a": f"{photo}/full/60,/0/color.jpg"},
    }


def test_seed_report_is_written_with_report_name(ws: Workspace, photo: str) -> None:
    _, results = ws.run([photo], args=["-report", "-report-name", "rep.json"])
    assert json.loads(ws.read(f"{photo}/rep.json")) == results[photo]


def test_seed_report_name_defaults_to_process_json(ws: Workspace, photo: str) -> None:
    ws.run([photo], args=["-report"])
    assert f"{photo}/process.json" in ws.files()


def test_no_report_without_the_flag(ws: Workspace, photo: str) -> None:
    ws.run([photo])
    assert not any(f.endswith(".json") for f in ws.files())


def test_services_are_added_when_enabled(ws: Workspace, photo: str) -> None:
    config = {"profile": {"services": {"enable": ["palette", "blurhash", "imagehash"]}}}
    _, results = ws.run([photo], config=config)
    report = results[photo]
    assert len(report["palette"]) == 5
    assert set(report["palette"][0]) == {"name", "hex", "reference", "closest"}
    assert len(report["blurhash"]) == 6 + 2 * 63  # 8x8 components
    assert report["imagehash"]["average"].startswith("a:")
    assert report["imagehash"]["difference"].startswith("d:")


def test_unknown_services_are_ignored(ws: Workspace, photo: str) -> None:
    status, results = ws.run([photo], config={"profile": {"services": {"enable": ["pigo"]}}})
    assert status == 0 and "pigo" not in results[photo]
