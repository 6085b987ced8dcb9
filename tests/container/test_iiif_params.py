"""IIIF parameter parsing, geometry and derivative paths."""

from __future__ import annotations

import pytest
from iiif_process.defaults import DEFAULT_INSTRUCTIONS
from iiif_process.errors import ParameterError
from iiif_process.params import (
    parse_instruction,
    parse_instructions,
    parse_quality,
    parse_region,
    parse_rotation,
    parse_size,
)


@pytest.mark.parametrize(
    ("value", "box"),
    [
        ("full", (0, 0, 600, 400)),
        ("square", (100, 0, 400, 400)),
        ("10,20,30,40", (10, 20, 30, 40)),
        ("550,350,100,100", (550, 350, 50, 50)),  # clipped to the image
        ("pct:10,25,50,50", (60, 100, 300, 200)),
        ("pct:0.5,0,10.5,100", (3, 0, 63, 400)),
        ("-1,-1,320,320", (0, 0, 320, 320)),
        ("-1,-1,900,100", (0, 0, 600, 100)),  # smart crop larger than the image: clipped
    ],
)
def test_region_forms_give_the_expected_box(value: str, box: tuple[int, int, int, int]) -> None:
    assert parse_region(value).box(600, 400) == box


@pytest.mark.parametrize("value", ["x", "1,2,3", "-2,-1,3,3", "pct:1,2,3", "0,0,0,10", "pct:"])
def test_region_rejects_malformed_values_naming_them(value: str) -> None:
    with pytest.raises(ParameterError, match="region"):
        parse_region(value, "lbl")


def test_region_outside_the_image_is_an_error() -> None:
    with pytest.raises(ParameterError, match="outside"):
        parse_region("700,0,10,10").box(600, 400)


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ("full", (600, 400)),
        ("max", (600, 400)),
        ("^max", (600, 400)),
        ("300,", (300, 200)),
        (",100", (150, 100)),
        ("pct:50", (300, 200)),
        ("pct:12.5", (75, 50)),
        ("200,300", (200, 300)),  # distorts
        ("!300,300", (300, 200)),
        ("!2048,1536", (2048, 1365)),  # `!w,h` enlarges (Image API 2.1, go-iiif)
        ("^!1200,1200", (1200, 800)),
        ("^900,", (900, 600)),
        ("1200,", (1200, 800)),  # IIIF 2.1 `w,` may upscale
    ],
)
def test_size_forms_give_the_expected_dimensions(value: str, target: tuple[int, int]) -> None:
    assert parse_size(value).target(600, 400) == target


@pytest.mark.parametrize("value", ["0,", ",0", "pct:0", "!0,10", "big", "^full", "-5,", "10,10,10"])
def test_size_rejects_malformed_values_naming_them(value: str) -> None:
    with pytest.raises(ParameterError, match="size"):
        parse_size(value, "lbl")


@pytest.mark.parametrize(
    ("value", "degrees", "mirror", "auto"),
    [
        ("0", 0, False, True),
        ("90", 90, False, True),
        ("180", 180, False, True),
        ("270", 270, False, True),
        ("!0", 0, True, True),
        ("!90", 90, True, True),
        ("22.5", 22.5, False, True),
        ("-1", 0, False, False),
    ],
)
def test_rotation_forms(value: str, degrees: float, mirror: bool, auto: bool) -> None:
    rotation = parse_rotation(value)
    assert (rotation.degrees, rotation.mirror, rotation.auto_orient) == (degrees, mirror, auto)


@pytest.mark.parametrize("value", ["360", "-90", "abc", "!-1", "9O"])
def test_rotation_rejects_malformed_values(value: str) -> None:
    with pytest.raises(ParameterError, match="rotation"):
        parse_rotation(value)


def test_arbitrary_rotation_is_refused_when_the_config_disables_it() -> None:
    with pytest.raises(ParameterError, match="disabled"):
        parse_rotation("45", "x", frozenset({"rotationArbitrary"}))


@pytest.mark.parametrize(
    ("value", "kind", "crisp"),
    [
        ("default", "default", (2.0, 0.5, 0.025)),
        ("color", "color", (2.0, 0.5, 0.025)),
        ("gray", "gray", (2.0, 0.5, 0.025)),
        ("bitonal", "bitonal", (2.0, 0.5, 0.025)),
        ("dither", "dither", (2.0, 0.5, 0.025)),
        ("crisp", "crisp", (2.0, 0.5, 0.025)),
        ("crisp:1.5,0.8,0.1", "crisp", (1.5, 0.8, 0.1)),
    ],
)
def test_quality_forms(value: str, kind: str, crisp: tuple[float, float, float]) -> None:
    quality = parse_quality(value)
    assert (quality.kind, quality.crisp) == (kind, crisp)


@pytest.mark.parametrize("value", ["grey", "crisp:1,2,3", "sepia", "crisp:"])
def test_quality_rejects_unsupported_values(value: str) -> None:
    with pytest.raises(ParameterError, match="quality"):
        parse_quality(value)


def test_bitonal_is_refused_when_the_config_disables_it() -> None:
    with pytest.raises(ParameterError, match="quality 'bitonal' is disabled"):
        parse_quality("bitonal", "x", frozenset({"bitonal"}))


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp", "tif", "gif"])
def test_every_format_is_accepted(fmt: str) -> None:
    assert parse_instruction("x", {"format": fmt}).format == fmt


def test_unsupported_format_names_label_and_parameter() -> None:
    with pytest.raises(ParameterError, match=r"instruction 'x': unsupported format 'bmp'"):
        parse_instruction("x", {"format": "bmp"})


def test_missing_fields_take_go_iiif_defaults() -> None:
    ins = parse_instruction("x", {})
    assert (ins.region_str, ins.size_str, ins.rotation_str, ins.quality_str, ins.format) == (
        "full",
        "full",
        "0",
        "default",
        "jpg",
    )


def test_empty_format_becomes_jpg() -> None:
    assert parse_instruction("o", {"format": ""}).format == "jpg"


def test_path_uses_literal_parameters_and_writes_default_as_color() -> None:
    ins = parse_instruction("b", {"size": "!1024,768", "format": "jpg"})
    assert ins.key("source/IMG_0084.JPG") == "source/IMG_0084.JPG/full/!1024,768/0/color.jpg"


def test_paths_of_the_default_instruction_set() -> None:
    keys = {i.label: i.key("a.jpg") for i in parse_instructions(DEFAULT_INSTRUCTIONS)}
    assert keys == {
        "o": "a.jpg/full/full/-1/color.jpg",
        "k": "a.jpg/full/!2048,1536/0/color.jpg",
        "b": "a.jpg/full/!1024,768/0/color.jpg",
        "c": "a.jpg/full/!800,600/0/color.jpg",
        "dc": "a.jpg/full/!800,600/0/dither.jpg",
        "z": "a.jpg/full/!640,480/0/color.jpg",
        "n": "a.jpg/full/!320,240/0/color.jpg",
        "s": "a.jpg/-1,-1,320,320/full/0/crisp:2.0,0.5,0.025.jpg",
        "ds": "a.jpg/-1,-1,320,320/full/0/dither.jpg",
    }


def test_instructions_must_be_a_non_empty_object() -> None:
    with pytest.raises(ParameterError, match="non-empty JSON object"):
        parse_instructions([])
