"""Bad and unusual source images: a clear error for the bad ones, correct output for the rest."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pyvips

from . import iiif_images as gen
from .conftest import Workspace

TOOL = str(Path(sys.executable).parent / "iiif-process")
FULL_PNG = {"p": {"size": "full", "format": "png"}}
PNG_KEY = "{}/full/full/0/color.png"


def _error(ws: Workspace, data: bytes, key: str = "bad.jpg", **kwargs: object) -> str:
    ws.put(key, data)
    status, results = ws.run([key], **kwargs)  # type: ignore[arg-type]
    assert status == 1
    return results[key]["error"]


def test_truncated_jpeg_is_refused_with_a_clear_error(ws: Workspace) -> None:
    data = gen.jpeg(gen.gradient(400, 300))
    assert "cannot decode jpegload image" in _error(ws, data[: len(data) // 2])


def test_html_named_jpg_is_refused_as_not_an_image(ws: Workspace) -> None:
    error = _error(ws, b"<!doctype html><html><body>Not found</body></html>")
    assert "not a supported image" in error


def test_zero_bytes_are_refused_as_not_an_image(ws: Workspace) -> None:
    assert "not a supported image (0 bytes)" in _error(ws, b"")


def test_png_bomb_fails_quickly_from_its_header(ws: Workspace) -> None:
    started = time.monotonic()
    error = _error(ws, gen.png_bomb(), key="bomb.png")
    assert "20000x20000 = 400000000 pixels, over the limit" in error
    assert time.monotonic() - started < 5  # header check, no 1.2 GB decode


def test_image_over_the_configured_pixel_limit_is_refused(ws: Workspace) -> None:
    error = _error(
        ws, gen.jpeg(gen.gradient(100, 100)), config={"iiif_process": {"max_pixels": 5000}}
    )
    assert "100x100 = 10000 pixels, over the limit of 5000" in error


def test_pixel_limit_flag_overrides_the_config(ws: Workspace) -> None:
    error = _error(ws, gen.jpeg(gen.gradient(100, 100)), args=["-max-pixels", "9999"])
    assert "over the limit of 9999" in error


def test_pixel_limit_environment_variable_is_honoured(ws: Workspace) -> None:
    error = _error(ws, gen.jpeg(gen.gradient(100, 100)), env={"IIIF_PROCESS_MAX_PIXELS": "9000"})
    assert "over the limit of 9000" in error


def test_missing_source_object_is_reported(ws: Workspace) -> None:
    status, results = ws.run(["nope.jpg"])
    assert status == 1
    assert results["nope.jpg"]["error"].startswith("source object not found")


def test_untrusted_loader_formats_are_refused(ws: Workspace) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    assert "not a supported image" in _error(ws, svg, key="x.svg")


def test_cmyk_jpeg_becomes_srgb(ws: Workspace) -> None:
    ws.put("cmyk.jpg", gen.cmyk_jpeg())
    status, _ = ws.run(["cmyk.jpg"], FULL_PNG)
    out = ws.image(PNG_KEY.format("cmyk.jpg"))
    assert (status, out.interpretation, out.bands) == (0, "srgb", 3)


def test_16_bit_png_becomes_8_bit(ws: Workspace) -> None:
    ws.put("deep.png", gen.png16())
    ws.run(["deep.png"], FULL_PNG)
    out = ws.image(PNG_KEY.format("deep.png"))
    assert (out.format, out.bands) == ("uchar", 3)


def test_16_bit_png_keeps_its_levels(ws: Workspace) -> None:
    ws.put("deep.png", gen.png16())
    ws.run(["deep.png"], FULL_PNG)
    out = ws.image(PNG_KEY.format("deep.png"))
    assert out(119, 79)[0] == pytest.approx(255, abs=2)


def test_alpha_is_kept_in_png(ws: Workspace) -> None:
    ws.put("alpha.png", gen.alpha_png())
    ws.run(["alpha.png"], FULL_PNG)
    out = ws.image(PNG_KEY.format("alpha.png"))
    assert (out.bands, out(5, 5)[3]) == (4, 128)


def test_alpha_is_flattened_onto_white_in_jpeg(ws: Workspace) -> None:
    ws.put("alpha.png", gen.alpha_png())
    ws.run(["alpha.png"], {"a": {"format": "jpg"}})
    out = ws.image("alpha.png/full/full/0/color.jpg")
    assert out.bands == 3
    assert out(0, 0)[0] == pytest.approx(127, abs=4)  # black at 50 % over white


def test_alpha_survives_resizing(ws: Workspace) -> None:
    ws.put("alpha.png", gen.alpha_png())
    ws.run(["alpha.png"], {"a": {"size": "60,", "format": "png"}})
    out = ws.image("alpha.png/full/60,/0/color.png")
    assert (out.width, out.height, out.bands, out(30, 20)[3]) == (60, 40, 4, 128)


def test_palette_png_is_processed_as_rgb(ws: Workspace) -> None:
    ws.put("pal.png", gen.palette_png())
    status, _ = ws.run(["pal.png"], FULL_PNG)
    out = ws.image(PNG_KEY.format("pal.png"))
    assert (status, out.bands, out.width) == (0, 3, 120)


# Where the stored top-left marker appears once the EXIF orientation is applied (60x40 stored).
ORIENTATION_CASES = {
    1: ((60, 40), (0, 0)),
    2: ((60, 40), (59, 0)),
    3: ((60, 40), (59, 39)),
    4: ((60, 40), (0, 39)),
    5: ((40, 60), (0, 0)),
    6: ((40, 60), (39, 0)),
    7: ((40, 60), (39, 59)),
    8: ((40, 60), (0, 59)),
}


@pytest.mark.parametrize("orientation", sorted(ORIENTATION_CASES))
def test_exif_orientation_is_applied(ws: Workspace, orientation: int) -> None:
    (width, height), (x, y) = ORIENTATION_CASES[orientation]
    key = ws.put(f"o{orientation}.jpg", gen.with_orientation(gen.marked(), orientation))
    ws.run([key], FULL_PNG)
    out = ws.image(PNG_KEY.format(key))
    assert (out.width, out.height) == (width, height)
    red, green, _ = out(x, y)
    assert red > 200 and green < 60


def test_rotation_minus_one_keeps_the_stored_orientation(ws: Workspace) -> None:
    key = ws.put("o6.jpg", gen.with_orientation(gen.marked(), 6))
    ws.run([key], {"o": {"rotation": "-1", "format": "png"}})
    out = ws.image(f"{key}/full/full/-1/color.png")
    assert (out.width, out.height, out(0, 0)[0] > 200) == (60, 40, True)


def test_animated_gif_gives_its_first_frame(ws: Workspace) -> None:
    ws.put("anim.gif", gen.animated_gif())
    ws.run(["anim.gif"], FULL_PNG)
    out = ws.image(PNG_KEY.format("anim.gif"))
    assert (out.width, out.height) == (40, 30)
    assert out(20, 15)[:3] == pytest.approx([255, 0, 0], abs=8)


def test_multipage_tiff_gives_its_first_page(ws: Workspace) -> None:
    ws.put("pages.tif", gen.multipage_tiff())
    ws.run(["pages.tif"], FULL_PNG)
    out = ws.image(PNG_KEY.format("pages.tif"))
    assert (out.width, out.height) == (40, 30)
    assert out(20, 15)[:3] == pytest.approx([255, 0, 0], abs=8)


def test_embedded_colour_profile_is_converted_to_srgb(ws: Workspace) -> None:
    ws.put("p3.jpg", gen.p3_jpeg())
    ws.run(["p3.jpg"], FULL_PNG)
    out = ws.image(PNG_KEY.format("p3.jpg"))
    assert out(119, 0) == pytest.approx([254, 0, 75], abs=6)  # stored P3 values: [233, 51, 80]


# --- issue #8 item 6: a JPEG whose header promises more than the file holds ---------------------


def short_jpeg(factor: int = 10) -> bytes:
    """A complete, well-formed JPEG whose frame header claims ``factor`` times its real height:
    libjpeg runs out of data, warns, and (unless told to fail) fills the rest with grey."""
    data = gen.jpeg(gen.gradient(400, 300), Q=90)
    sof = data.index(b"\xff\xc0")
    height = int.from_bytes(data[sof + 5 : sof + 7], "big")
    return data[: sof + 5] + (height * factor).to_bytes(2, "big") + data[sof + 7 :]


def test_item6_the_built_jpeg_really_decodes_as_mostly_grey_when_warnings_are_ignored() -> None:
    image = pyvips.Image.new_from_buffer(short_jpeg(), "", fail_on="truncated").copy_memory()
    assert (image.width, image.height) == (400, 3000)
    assert image.crop(0, 400, 400, 2600).deviate() < 1  # the grey fill


def test_item6_a_jpeg_promising_more_data_than_it_holds_fails_naming_the_damage(
    ws: Workspace,
) -> None:
    error = _error(ws, short_jpeg(), key="short.jpg")
    assert "Corrupt JPEG data: premature end of data segment" in error
    assert ws.files() == set()  # nothing published, no grey image


def test_item6_libvips_warnings_are_logged_as_json_with_the_uri(ws: Workspace) -> None:
    # The real command, as the container runs it: logs are JSON lines on stderr.
    key = ws.put("short.jpg", short_jpeg())
    (ws.tmp / "i.json").write_text(json.dumps({"a": {"size": "full", "format": "jpg"}}))
    command = [TOOL, "-config", str(ws.config()), "-instructions", str(ws.tmp / "i.json")]
    done = subprocess.run([*command, "-uri", key], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    warnings = [entry for entry in lines if entry["message"] == "libvips warning"]
    assert warnings and all(entry["uri"] == key for entry in warnings)
    assert all(entry["level"] == "warning" and entry["warning"] for entry in warnings)
