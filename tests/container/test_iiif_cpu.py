"""Issue #12, "Half the CPU per image": the full-size JPEG derivative is the source's own bytes
(metadata stripped, no re-encode) when the source is a JPEG a browser shows, and the decode
shrinks on load as far as every remaining derivative allows."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import pyvips
from iiif_process import transform
from iiif_process.defaults import DEFAULT_INSTRUCTIONS
from iiif_process.errors import ImageRejectedError
from iiif_process.jpeg_markers import browser_ready, jpeg_layout, jpeg_without_metadata
from iiif_process.params import parse_instructions
from iiif_process.transform import Renderer, SourceImage, probe

from . import iiif_images as gen
from .conftest import Workspace

FULL = {"o": {"size": "full", "format": "", "rotation": "-1"}}

GPS = b"GPS 48.8584 N 2.2945 E"
XMP = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>creator: Jane</x:xmpmeta>"
COMMENT = b"camera serial 1234"


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def _with_segments(data: bytes, *segments: bytes) -> bytes:
    """``data`` with ``segments`` inserted right after SOI."""
    return data[:2] + b"".join(segments) + data[2:]


def _tagged(image: pyvips.Image | None = None) -> bytes:
    """A JPEG carrying EXIF (a GPS-like text), XMP, IPTC and a comment."""
    exif = b"Exif\0\0" + b"MM\0*" + struct.pack(">IH", 8, 0) + struct.pack(">I", 0) + GPS
    return _with_segments(
        gen.jpeg(image if image is not None else gen.gradient(240, 160), Q=90),
        _segment(0xE1, exif),
        _segment(0xE1, XMP),
        _segment(0xED, b"Photoshop 3.0\0" + b"8BIM byline"),
        _segment(0xFE, COMMENT),
    )


def _markers(data: bytes) -> list[int]:
    """The markers before the first scan."""
    found, pos = [], 2
    while data[pos + 1] != 0xDA:
        found.append(data[pos + 1])
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return found


def _identical(a: pyvips.Image, b: pyvips.Image) -> bool:
    same_shape = (a.width, a.height, a.bands) == (b.width, b.height, b.bands)
    return same_shape and (a.cast("int") - b.cast("int")).abs().max() == 0


def _run_o(ws: Workspace, data: bytes, spec: dict | None = None, **config: object) -> bytes:
    key = ws.put("photo.jpg", data)
    status, results = ws.run(
        [key], spec or FULL, config={"iiif_process": config} if config else None
    )
    assert status == 0, results
    return ws.read(next(iter(results[key]["uris"].values())))


def _renderer(tmp_path: Path, data: bytes, name: str = "s.jpg") -> Renderer:
    path = tmp_path / name
    path.write_bytes(data)
    return Renderer(SourceImage(probe(str(path), len(data), 0)))


def _one(spec: dict) -> tuple:
    return parse_instructions({"x": spec})


# --- the full-size derivative is the source ----------------------------------------------------


def test_full_size_jpeg_is_the_source_minus_its_metadata(ws: Workspace) -> None:
    source = _tagged()
    assert _run_o(ws, source) == jpeg_without_metadata(source)


def test_full_size_jpeg_decodes_to_the_sources_pixels(ws: Workspace) -> None:
    source = _tagged()
    out = pyvips.Image.new_from_buffer(_run_o(ws, source), "")
    assert _identical(out, pyvips.Image.new_from_buffer(source, ""))


def test_full_size_jpeg_keeps_no_exif_xmp_iptc_or_comment(ws: Workspace) -> None:
    out = _run_o(ws, _tagged())
    assert not {0xE1, 0xED, 0xFE} & set(_markers(out))
    assert GPS not in out and b"Jane" not in out and COMMENT not in out


def test_full_size_jpeg_is_no_larger_than_the_source(ws: Workspace) -> None:
    source = _tagged()
    assert len(_run_o(ws, source)) < len(source)


def test_full_size_jpeg_of_an_srgb_tagged_source_keeps_its_profile(ws: Workspace) -> None:
    tagged = gen.gradient(240, 160).icc_transform("srgb", input_profile="srgb")
    source = tagged.jpegsave_buffer(Q=90, keep="icc")
    out = _run_o(ws, source)
    assert out == jpeg_without_metadata(source)
    assert pyvips.Image.new_from_buffer(out, "").get_typeof("icc-profile-data")


def test_full_size_jpeg_drops_a_trailer_after_the_end_of_image(ws: Workspace) -> None:
    source = _tagged()
    out = _run_o(ws, source + b"preview image with its own EXIF")
    assert out == jpeg_without_metadata(source)


def test_full_size_jpeg_with_keep_metadata_is_the_source_as_it_is(ws: Workspace) -> None:
    source = _tagged()
    assert _run_o(ws, source, keep_metadata=True) == source


def test_rotation_minus_one_on_a_turned_source_passes_its_scan_data_through(
    ws: Workspace,
) -> None:
    source = gen.with_orientation(gen.marked(), 6)
    out = _run_o(ws, source)
    scan = source[source.index(b"\xff\xda") :]
    assert out.endswith(scan)


def test_rotation_minus_one_on_a_turned_source_records_its_orientation(ws: Workspace) -> None:
    # As a re-encoded -1 derivative does: the stored pixels, and the orientation to show them.
    out = pyvips.Image.new_from_buffer(_run_o(ws, gen.with_orientation(gen.marked(), 6)), "")
    assert out.get("orientation") == 6
    assert (out.width, out.height) == (60, 40)


def test_rotation_minus_one_records_only_the_orientation(ws: Workspace) -> None:
    out = pyvips.Image.new_from_buffer(_run_o(ws, gen.with_orientation(gen.marked(), 6)), "")
    exif = out.get("exif-data")
    # One IFD holding one entry: tag 0x0112 (orientation), SHORT, count 1, value 6.
    assert exif[6:] == b"MM\0*" + struct.pack(">IHHHIHHI", 8, 1, 0x0112, 3, 1, 6, 0, 0)


def _damaged() -> bytes:
    source = gen.jpeg(gen.gradient(400, 300), Q=90)
    middle = (source.index(b"\xff\xda") + len(source)) // 2
    return source[:middle] + b"\xff\xd3" + source[middle:]  # a restart marker out of place


@pytest.mark.parametrize(
    "instructions",
    [FULL, {**FULL, "n": {"size": "!100,100"}}],
    ids=["passed-through-alone", "with-a-decoded-derivative"],
)
def test_a_damaged_source_fails_even_when_passed_through(ws: Workspace, instructions: dict) -> None:
    key = ws.put("photo.jpg", _damaged())
    status, results = ws.run([key], instructions)
    assert status != 0
    assert "Corrupt JPEG data" in results[key]["error"]


# --- sources and instructions that are still re-encoded -----------------------------------------


def test_cmyk_source_is_re_encoded(ws: Workspace) -> None:
    out = pyvips.Image.new_from_buffer(_run_o(ws, gen.cmyk_jpeg()), "")
    assert (out.interpretation, out.bands) == ("srgb", 3)


def test_display_p3_source_is_re_encoded(ws: Workspace) -> None:
    source = gen.p3_jpeg()
    out = _run_o(ws, source)
    assert out[out.index(b"\xff\xda") :] != source[source.index(b"\xff\xda") :]


def test_sixteen_bit_png_is_re_encoded_to_eight_bits(ws: Workspace) -> None:
    key = ws.put("photo.png", gen.png16())
    status, results = ws.run([key], {"o": {"size": "full", "format": "png"}})
    assert status == 0, results
    assert ws.image(results[key]["uris"]["o"]).format == "uchar"


def test_a_format_change_is_re_encoded(ws: Workspace) -> None:
    out = _run_o(ws, _tagged(), {"o": {"size": "full", "format": "png"}})
    assert out.startswith(b"\x89PNG")


def test_a_rotation_that_turns_the_pixels_is_re_encoded(ws: Workspace) -> None:
    out = pyvips.Image.new_from_buffer(_run_o(ws, _tagged(), {"o": {"rotation": "90"}}), "")
    assert (out.width, out.height) == (160, 240)


def test_a_turned_source_at_rotation_zero_is_re_encoded_upright(ws: Workspace) -> None:
    out = _run_o(ws, gen.with_orientation(gen.marked(), 6), {"o": {"rotation": "0"}})
    image = pyvips.Image.new_from_buffer(out, "")
    assert (image.width, image.height) == (40, 60)


def test_a_gray_quality_is_re_encoded(ws: Workspace) -> None:
    out = _run_o(ws, _tagged(), {"o": {"quality": "gray"}})
    assert pyvips.Image.new_from_buffer(out, "").bands == 1


def test_a_source_with_an_mpf_segment_is_re_encoded(ws: Workspace) -> None:
    source = _with_segments(_tagged(), _segment(0xE2, b"MPF\0" + b"\0" * 16))
    out = _run_o(ws, source)
    assert out != jpeg_without_metadata(source)


def test_progressive_jpeg_passes_through(ws: Workspace) -> None:
    source = gen.jpeg(gen.gradient(240, 160), Q=90, interlace=True)
    assert _run_o(ws, source) == jpeg_without_metadata(source)


@pytest.mark.parametrize("frame", [0xC3, 0xC9, 0xCA])  # lossless, arithmetic coded
def test_frames_browsers_do_not_show_are_not_browser_ready(frame: int) -> None:
    source = gen.jpeg(gen.gradient(64, 48))
    sof = source.index(b"\xff\xc0")
    patched = source[: sof + 1] + bytes([frame]) + source[sof + 2 :]
    layout = jpeg_layout(patched)
    assert layout is not None and layout.frame == frame
    assert not browser_ready(layout)


def test_a_twelve_bit_frame_is_not_browser_ready() -> None:
    source = gen.jpeg(gen.gradient(64, 48))
    precision = source.index(b"\xff\xc0") + 4
    layout = jpeg_layout(source[:precision] + b"\x0c" + source[precision + 1 :])
    assert layout is not None and layout.precision == 12
    assert not browser_ready(layout)


def test_a_jpeg_without_its_end_of_image_has_no_layout() -> None:
    assert jpeg_layout(gen.jpeg()[:-2]) is None


def test_a_baseline_rgb_jpeg_is_browser_ready() -> None:
    layout = jpeg_layout(gen.jpeg())
    assert layout is not None and browser_ready(layout)


# --- shrink-on-load -----------------------------------------------------------------------------


def test_decode_shrinks_as_far_as_the_biggest_remaining_derivative_allows(
    tmp_path: Path,
) -> None:
    renderer = _renderer(tmp_path, gen.jpeg(gen.gradient(1600, 1200)))
    instructions = parse_instructions({**FULL, "b": {"size": "!600,450"}})  # b is 600x450
    assert renderer.plan(instructions) == 2  # 800x600 covers it, 400x300 would not


def test_decode_keeps_a_factor_exactly_at_the_limit(tmp_path: Path) -> None:
    renderer = _renderer(tmp_path, gen.jpeg(gen.gradient(1600, 1200)))
    assert renderer.plan(_one({"size": "400,300"})) == 4


def test_decode_does_not_shrink_below_a_derivative_one_pixel_larger(tmp_path: Path) -> None:
    renderer = _renderer(tmp_path, gen.jpeg(gen.gradient(1600, 1200)))
    assert renderer.plan(_one({"size": "401,300"})) == 2


def test_decode_is_full_size_when_a_full_size_raster_is_needed(tmp_path: Path) -> None:
    renderer = _renderer(tmp_path, gen.jpeg(gen.gradient(1600, 1200)))
    png = {"size": "full", "format": "png"}
    assert renderer.plan(parse_instructions({"o": png, "n": {"size": "!100,100"}})) == 1


def test_decode_is_full_size_for_a_crop(tmp_path: Path) -> None:
    renderer = _renderer(tmp_path, gen.jpeg(gen.gradient(1600, 1200)))
    assert renderer.plan(_one({"region": "0,0,800,600", "size": "!100,100"})) == 1


def test_decode_is_full_size_for_deep_zoom_tiles(tmp_path: Path) -> None:
    renderer = _renderer(tmp_path, gen.jpeg(gen.gradient(1600, 1200)))
    assert renderer.plan(_one({"size": "!100,100"}), full_size=True) == 1


def test_the_services_thumbnail_counts_in_the_plan(tmp_path: Path) -> None:
    renderer = _renderer(tmp_path, gen.jpeg(gen.gradient(1600, 1200)))
    assert renderer.plan(parse_instructions(FULL), thumbnail_box=400) == 4


def test_a_smart_crop_counts_its_cover_size(tmp_path: Path) -> None:
    # -1,-1,320,320 on 1600x1200 first scales to 427x320: 1/2 (800x600) covers it, 1/4 not.
    renderer = _renderer(tmp_path, gen.jpeg(gen.gradient(1600, 1200)))
    assert renderer.plan(_one({"region": "-1,-1,320,320"})) == 2


def test_a_png_source_is_never_shrunk_on_load(tmp_path: Path) -> None:
    renderer = _renderer(tmp_path, gen.png(gen.gradient(1600, 1200)), "s.png")
    assert renderer.plan(_one({"size": "!100,100"})) == 1


def test_the_decode_is_made_at_the_planned_shrink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[dict[str, object]] = []
    original = transform._open

    def spy(path: str, access: str, fail_on: str, **options: object) -> pyvips.Image:
        opened.append(options)
        return original(path, access, fail_on, **options)

    monkeypatch.setattr(transform, "_open", spy)
    renderer = _renderer(tmp_path, gen.jpeg(gen.gradient(1600, 1200)))
    instructions = parse_instructions({"b": {"size": "!600,450"}})
    renderer.plan(instructions)
    renderer.render(instructions[0], "s.jpg")
    assert opened[-1] == {"shrink": 2}


def test_the_decoded_raster_is_the_shrunk_one(tmp_path: Path) -> None:
    renderer = _renderer(tmp_path, gen.jpeg(gen.gradient(1600, 1200)))
    instructions = parse_instructions({"b": {"size": "!600,450"}})
    renderer.plan(instructions)
    renderer.render(instructions[0], "s.jpg")
    assert (renderer.source.raw.width, renderer.source.raw.height) == (800, 600)


def test_a_derivative_the_plan_did_not_cover_still_gets_full_size_pixels(
    tmp_path: Path,
) -> None:
    renderer = _renderer(tmp_path, gen.jpeg(gen.gradient(1600, 1200)))
    renderer.plan(_one({"size": "!100,100"}))
    out = renderer.render(_one({"size": "full", "format": "png"})[0], "s.jpg")
    assert (out.width, out.height) == (1600, 1200)


def test_a_turned_source_is_planned_on_its_turned_size(tmp_path: Path) -> None:
    # Stored 1600x1200 with orientation 6: shown 1200x1600; 300x400 is 1/4 of that.
    renderer = _renderer(tmp_path, gen.with_orientation(gen.gradient(1600, 1200), 6))
    assert renderer.plan(_one({"size": "300,400"})) == 4


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4400x2900 JPEG: go-iiif's default set lets its decode shrink to 1/2."""
    path = tmp_path_factory.mktemp("large") / "large.jpg"
    path.write_bytes(gen.jpeg(gen.gradient(4400, 2900), Q=90))
    return path


def _default_set(path: Path, plan: bool) -> dict[str, pyvips.Image]:
    renderer = Renderer(SourceImage(probe(str(path), path.stat().st_size, 0)))
    instructions = parse_instructions(DEFAULT_INSTRUCTIONS)
    if plan:
        assert renderer.plan(instructions) == 2
    return {
        ins.label: pyvips.Image.new_from_buffer(renderer.render(ins, "x").data, "")
        for ins in instructions
    }


def test_default_set_dimensions_are_unchanged_by_the_shrunk_decode(large: Path) -> None:
    planned, full = _default_set(large, True), _default_set(large, False)
    assert {k: (v.width, v.height) for k, v in planned.items()} == {
        k: (v.width, v.height) for k, v in full.items()
    }


def test_default_set_pixels_are_within_noise_of_the_full_decode(large: Path) -> None:
    planned, full = _default_set(large, True), _default_set(large, False)
    for label in ("k", "b", "z", "n"):
        diff = planned[label].cast("float") - full[label].cast("float")
        assert (diff * diff).avg() < 2.0, label  # PSNR above 45 dB


# --- one sequential pass when one downscale feeds every other derivative -------------------------


def test_the_default_set_reads_the_decoder_once_and_never_holds_the_decode(
    large: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[dict[str, object]] = []
    original = transform._open

    def spy(path: str, access: str, fail_on: str, **options: object) -> pyvips.Image:
        opened.append({"access": access, **options})
        return original(path, access, fail_on, **options)

    held: list[int] = []
    decode = SourceImage._decode
    renderer = Renderer(SourceImage(probe(str(large), large.stat().st_size, 0)))
    monkeypatch.setattr(transform, "_open", spy)  # after the header is read
    monkeypatch.setattr(
        SourceImage, "_decode", lambda self, shrink: held.append(shrink) or decode(self, shrink)
    )
    instructions = parse_instructions(DEFAULT_INSTRUCTIONS)
    renderer.plan(instructions)
    for ins in instructions:
        renderer.render(ins, "x")
    assert opened == [{"access": "sequential", "shrink": 2}]
    assert held == []  # the decoded 2200x1450 raster is never made


def test_the_one_pass_makes_the_decoded_rasters_pixels(
    large: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_pass = _default_set(large, True)
    monkeypatch.setattr(transform, "_one_pass", lambda needs, kept: None)
    from_raster = _default_set(large, True)
    for label, image in one_pass.items():
        assert _identical(image, from_raster[label]), label


def test_a_damaged_jpeg_fails_the_one_pass_as_a_decode(tmp_path: Path) -> None:
    data = gen.jpeg(gen.gradient(1600, 1200))
    renderer = _renderer(tmp_path, data[: len(data) // 2])
    instructions = parse_instructions({"b": {"size": "!600,450"}, "n": {"size": "!100,100"}})
    renderer.plan(instructions)
    with pytest.raises(ImageRejectedError, match="cannot decode jpegload image"):
        renderer.render(instructions[0], "s.jpg")


@pytest.mark.parametrize(
    ("needs", "kept", "expected"),
    [
        ([(True, 600, 450), (True, 100, 75)], [True, True], (True, 600, 450)),
        ([(True, 100, 75), (True, 600, 450)], [False, True], (True, 600, 450)),
        ([(True, 600, 450), (True, 600, 450)], [True, True], (True, 600, 450)),
        ([(True, 600, 450), (True, 100, 75)], [False, True], None),  # the biggest is not kept
        ([(True, 600, 450), (True, 601, 100)], [True, True], None),  # one is wider
        ([(True, 600, 450), (True, 100, 451)], [True, True], None),  # one is taller
        ([(True, 600, 450), (False, 100, 75)], [True, True], None),  # other orientation
        ([(True, 600, 450), None], [True, False], None),  # one needs the full size
        ([], [], None),
    ],
)
def test_the_one_pass_is_the_kept_downscale_that_covers_every_other(
    needs: list, kept: list, expected: tuple | None
) -> None:
    assert transform._one_pass(needs, kept) == expected
