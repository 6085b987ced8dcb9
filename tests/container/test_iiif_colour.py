"""Colour management (container/iiif_process/colour.py): CMYK with and without a profile, Adobe's
inverted CMYK, and the inputs that must come out as they always did.

The CMYK material is made from the real photos in samples/ the way its writers make it:
- a press separation with libvips' built-in CMYK profile, relative colorimetric with black-point
  compensation (Photoshop's default conversion settings), saved by libvips' JPEG writer (which,
  like libjpeg, writes the APP14 "Adobe" marker, transform 0, and inverted ink), with the profile
  embedded or stripped;
- the same separation as Photoshop stores it: YCCK (APP14 transform 2), inverted ink, crafted
  here byte for byte;
- Pillow's ``convert("CMYK")`` (C = 255 - R, M = 255 - G, Y = 255 - B, K = 0) saved by Pillow:
  the untagged case the old pipeline took to 5.6-11.3 mean ΔE76 here (the issue's 12.7).

Every source is written to disk and decoded as the tool decodes it (``probe`` and
``SourceImage``), then converted by ``colour.to_srgb`` and compared with the RGB original in
CIELAB (mean ΔE76). Figures measured when this was written, through iiif-process (old pipeline
-> colour.py; docs/colour.md has the table): tagged and untagged 3.0-5.1 -> 1.6-3.0, Photoshop
YCCK 3.0-5.2 -> 1.6-3.1, Pillow's untagged 5.6-11.3 -> 0.7-1.0; sRGB and P3 controls unchanged
(0.7-2.2).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
import pyvips
from iiif_process import colour
from iiif_process.transform import SourceImage, probe
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
PHOTOS = ("coffee", "chelsea", "astronaut", "rocket")
QUALITY = 92
LIMIT = 5.0  # the target: mean ΔE76 below 5 of the RGB original


# --- material -------------------------------------------------------------------------------


@cache
def original(name: str) -> pyvips.Image:
    """A sample photo in sRGB, without a profile: the RGB original every case is compared with
    (rocket.jpg is Adobe RGB, converted through its profile)."""
    image = pyvips.Image.new_from_file(str(SAMPLES / f"{name}.jpg"))
    if image.get_typeof("icc-profile-data"):
        image = image.icc_transform("srgb", embedded=True, intent="relative")
        image.remove("icc-profile-data")
    return image.copy_memory()


@cache
def separation(name: str) -> pyvips.Image:
    """The photo separated to CMYK ink (0 = no ink) through libvips' built-in CMYK profile, as
    Photoshop separates by default; the profile is attached."""
    return original(name).icc_transform(
        "cmyk", input_profile="srgb", intent="relative", black_point_compensation=True
    )


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, marker, length) of each JPEG marker segment before the scan."""
    found, pos = [], 2
    while pos + 4 <= len(data) and data[pos + 1] != 0xDA:
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        found.append((pos, data[pos + 1], length))
        pos += 2 + length
    return found


def adobe_marker(data: bytes) -> bytes:
    """The payload of a JPEG's APP14 "Adobe" segment (b'' when there is none)."""
    for pos, marker, length in _segments(data):
        if marker == 0xEE and data[pos + 4 : pos + 9] == b"Adobe":
            return data[pos + 4 : pos + 2 + length]
    return b""


def _with_adobe_transform(data: bytes, transform: int) -> bytes:
    """The JPEG with its APP14 "Adobe" transform byte (0 CMYK, 1 YCbCr, 2 YCCK) set."""
    for pos, marker, _length in _segments(data):
        if marker == 0xEE and data[pos + 4 : pos + 9] == b"Adobe":
            patched = bytearray(data)
            patched[pos + 4 + 11] = transform
            return bytes(patched)
    raise AssertionError("no APP14 Adobe segment")


def cmyk_jpeg(name: str, tagged: bool) -> bytes:
    """The separation saved by libvips: APP14 Adobe transform 0, inverted ink."""
    return separation(name).jpegsave_buffer(Q=QUALITY, keep="icc" if tagged else "none")


def photoshop_ycck_jpeg(name: str, tagged: bool) -> bytes:
    """The separation as Photoshop stores CMYK JPEGs: inverted ink, turned into YCCK, and an
    APP14 Adobe segment with transform 2.

    libjpeg's YCCK is YCbCr of (255 - C', 255 - M', 255 - Y') and K' unchanged, where X' is what
    is stored (the inverted ink, 255 - X). So Y, Cb, Cr are computed from the ink itself and K'
    is 255 - K. libvips' writer inverts whatever it is given, so it is given 255 - stored."""
    ink = separation(name)
    c, m, y, k = (ink.extract_band(i).cast("float") for i in range(4))
    luma = c * 0.299 + m * 0.587 + y * 0.114
    cb = c * -0.168736 + m * -0.331264 + y * 0.5 + 128
    cr = c * 0.5 + m * -0.418688 + y * -0.081312 + 128
    stored = luma.bandjoin([cb, cr, 255 - k]).rint()
    given = (255 - stored).cast("uchar").copy(interpretation="cmyk")
    if tagged:
        given.set_type(pyvips.GValue.blob_type, "icc-profile-data", ink.get("icc-profile-data"))
    data = given.jpegsave_buffer(Q=QUALITY, keep="icc" if tagged else "none")
    return _with_adobe_transform(data, 2)


def pillow_cmyk_jpeg(name: str) -> bytes:
    """Pillow's naive separation (K = 0), saved by Pillow (APP14 Adobe, inverted ink)."""
    rgb = Image.open(io.BytesIO(original(name).pngsave_buffer())).convert("RGB")
    out = io.BytesIO()
    rgb.convert("CMYK").save(out, "JPEG", quality=QUALITY)
    return out.getvalue()


def srgb_jpeg(name: str) -> bytes:
    """The photo itself re-saved (untagged sRGB; no chroma subsampling, as CMYK is saved)."""
    return original(name).jpegsave_buffer(Q=QUALITY, subsample_mode="off")


def p3_jpeg(name: str) -> bytes:
    """The photo in Display P3, with the profile embedded (a non-sRGB RGB source)."""
    p3 = original(name).icc_transform("p3", input_profile="srgb", intent="relative")
    return p3.jpegsave_buffer(Q=QUALITY, keep="icc", subsample_mode="off")


CASES: dict[str, Callable[[str], bytes]] = {
    "cmyk-tagged": lambda name: cmyk_jpeg(name, tagged=True),
    "cmyk-untagged": lambda name: cmyk_jpeg(name, tagged=False),
    "photoshop-ycck-tagged": lambda name: photoshop_ycck_jpeg(name, tagged=True),
    "photoshop-ycck-untagged": lambda name: photoshop_ycck_jpeg(name, tagged=False),
    "pillow-cmyk-untagged": pillow_cmyk_jpeg,
    "srgb-control": srgb_jpeg,
    "p3-tagged-control": p3_jpeg,
}


def load(tmp_path: Path, data: bytes, name: str = "source.jpg") -> pyvips.Image:
    """Decode ``data`` as the tool does: probe the file, then SourceImage's single decode."""
    path = tmp_path / name
    path.write_bytes(data)
    return SourceImage(probe(str(path), len(data), 0)).raw


def delta_e(a: pyvips.Image, b: pyvips.Image) -> float:
    """Mean CIE76 colour difference of two sRGB images of one size."""
    return a.colourspace("lab").dE76(b.colourspace("lab")).avg()


def solid(width: int, height: int, values: list[int], interpretation: str) -> pyvips.Image:
    """An 8-bit image of one colour."""
    image = pyvips.Image.black(width, height, bands=len(values)) + values
    return image.cast("uchar").copy(interpretation=interpretation)


# --- the material is what it claims to be ---------------------------------------------------


def test_libvips_writes_cmyk_jpegs_with_the_adobe_marker_transform_0() -> None:
    marker = adobe_marker(cmyk_jpeg("coffee", tagged=False))
    assert (len(marker), marker[11]) == (12, 0)


def test_photoshop_material_is_ycck_by_its_adobe_marker() -> None:
    assert adobe_marker(photoshop_ycck_jpeg("coffee", tagged=False))[11] == 2


def test_photoshop_material_decodes_to_the_separations_ink(tmp_path: Path) -> None:
    decoded = load(tmp_path, photoshop_ycck_jpeg("chelsea", tagged=False))
    difference = (decoded.cast("float") - separation("chelsea")).abs().avg()
    assert difference < 2.0, f"mean ink difference {difference:.2f}"


def test_pillow_material_carries_no_black_ink(tmp_path: Path) -> None:
    decoded = load(tmp_path, pillow_cmyk_jpeg("coffee"))
    assert (decoded.interpretation, decoded.extract_band(3).max()) == ("cmyk", 0)


# --- the target ---------------------------------------------------------------------


@pytest.mark.parametrize("photo", PHOTOS)
@pytest.mark.parametrize("case", list(CASES))
def test_source_comes_out_within_5_delta_e_of_the_rgb_original(
    tmp_path: Path, case: str, photo: str
) -> None:
    out = colour.to_srgb(load(tmp_path, CASES[case](photo)))
    measured = delta_e(original(photo), out)
    assert measured < LIMIT, f"{case} {photo}: mean ΔE76 {measured:.2f} (limit {LIMIT})"


def test_naive_cmyk_is_still_recognised_after_downscaling(tmp_path: Path) -> None:
    # The pipeline converts colour after resizing (few pixels): lanczos keeps an empty K empty.
    source = load(tmp_path, pillow_cmyk_jpeg("astronaut")).resize(0.25)
    measured = delta_e(original("astronaut").resize(0.25), colour.to_srgb(source))
    assert measured < LIMIT, f"mean ΔE76 {measured:.2f}"


def test_real_adobe_rgb_photo_comes_out_as_its_srgb_rendering(tmp_path: Path) -> None:
    # rocket.jpg is a camera JPEG tagged Adobe RGB (1998): the non-sRGB RGB control, as shot.
    data = (SAMPLES / "rocket.jpg").read_bytes()
    measured = delta_e(original("rocket"), colour.to_srgb(load(tmp_path, data)))
    assert measured < 0.5, f"mean ΔE76 {measured:.2f}"


# --- the defaults (a change of intent, black-point compensation or naive rule fails these) --


def test_the_presss_deepest_black_comes_back_black(tmp_path: Path) -> None:
    # Relative colorimetric with black-point compensation gives L* 1.9 here; perceptual gives a
    # brown black (ΔE 5.5), no compensation a dark grey (L* 15).
    black = solid(64, 64, [0, 0, 0], "srgb")
    ink = black.icc_transform(
        "cmyk", input_profile="srgb", intent="relative", black_point_compensation=True
    )
    out = colour.to_srgb(load(tmp_path, ink.jpegsave_buffer(Q=QUALITY, keep="none")))
    measured = delta_e(black, out)
    assert measured < 3.0, f"mean ΔE76 {measured:.2f} from black"


def test_untagged_cmyk_without_black_ink_is_read_naively(tmp_path: Path) -> None:
    # Pillow separates (200, 120, 40) to C 55, M 135, Y 215, K 0; read back naively it is exact.
    rgb = Image.new("RGB", (64, 64), (200, 120, 40))
    out = io.BytesIO()
    rgb.convert("CMYK").save(out, "JPEG", quality=100)
    pixel = colour.to_srgb(load(tmp_path, out.getvalue())).getpoint(32, 32)
    assert pixel == pytest.approx([200, 120, 40], abs=1)


def test_untagged_cmyk_with_2_percent_black_ink_uses_the_builtin_profile(tmp_path: Path) -> None:
    # 2% of the pixels carry black ink: a press separation, not a naive one. Naively the patch
    # would be grey 55; through the profile it is (73, 70, 73).
    ink = solid(100, 100, [0, 0, 0, 0], "cmyk").insert(solid(14, 14, [0, 0, 0, 200], "cmyk"), 0, 0)
    out = colour.to_srgb(load(tmp_path, ink.jpegsave_buffer(Q=100, keep="none")))
    patch = solid(1, 1, [0, 0, 0, 200], "cmyk").icc_transform(
        "srgb", input_profile="cmyk", intent="relative", black_point_compensation=True
    )
    assert out.getpoint(5, 5) == pytest.approx(patch.getpoint(0, 0), abs=2)


def test_naive_reading_darkens_by_the_little_black_ink_there_is(tmp_path: Path) -> None:
    # 0.25% of the pixels carry black ink (too few for a press separation): read naively,
    # R = (255 - C)(255 - K) / 255: (215, 175, 135) x 55 / 255 = (46, 38, 29).
    background = solid(100, 100, [40, 80, 120, 0], "cmyk")
    ink = background.insert(solid(5, 5, [40, 80, 120, 200], "cmyk"), 0, 0)
    out = colour.to_srgb(load(tmp_path, ink.jpegsave_buffer(Q=100, keep="none")))
    assert out.getpoint(2, 2) == pytest.approx([46, 38, 29], abs=2)


def test_jpeg_noise_on_an_empty_black_channel_still_counts_as_no_black_ink() -> None:
    ink = solid(100, 100, [40, 80, 120, 5], "cmyk")
    assert colour.black_ink_unused(ink)


def test_an_embedded_cmyk_profile_wins_over_the_no_black_ink_rule(tmp_path: Path) -> None:
    # Pillow's naive ink, but tagged with the built-in profile: the profile says what it means.
    naive = load(tmp_path, pillow_cmyk_jpeg("chelsea"))
    tagged = naive.copy()
    tagged.set_type(
        pyvips.GValue.blob_type, "icc-profile-data", separation("chelsea").get("icc-profile-data")
    )
    expected = naive.icc_transform(
        "srgb", input_profile="cmyk", intent="relative", black_point_compensation=True
    )
    assert delta_e(expected, colour.to_srgb(tagged)) < 0.5


def test_an_unusable_cmyk_profile_is_treated_as_none(tmp_path: Path) -> None:
    untagged = load(tmp_path, cmyk_jpeg("coffee", tagged=False))
    broken = untagged.copy()
    broken.set_type(pyvips.GValue.blob_type, "icc-profile-data", b"\0" * 16 + b"CMYK" + b"\0" * 8)
    assert delta_e(colour.to_srgb(untagged), colour.to_srgb(broken)) == 0


# --- the contract: sRGB or grey, 8-bit, no profile; other inputs as before ------------------


def test_cmyk_output_is_8_bit_srgb_without_a_profile(tmp_path: Path) -> None:
    out = colour.to_srgb(load(tmp_path, cmyk_jpeg("coffee", tagged=True)))
    summary = (out.interpretation, out.format, out.bands, bool(out.get_typeof("icc-profile-data")))
    assert summary == ("srgb", "uchar", 3, False)


def test_16_bit_cmyk_with_alpha_becomes_8_bit_srgb_with_its_alpha(tmp_path: Path) -> None:
    ink = (separation("chelsea").cast("ushort") * 257).bandjoin(65535).cast("ushort")
    ink = ink.copy(interpretation="cmyk")
    ink.remove("icc-profile-data")
    source = load(tmp_path, ink.tiffsave_buffer(), "deep.tif")
    out = colour.to_srgb(source)
    assert (source.format, out.format, out.bands, out.extract_band(3).min()) == (
        "ushort",
        "uchar",
        4,
        255,
    )


def test_16_bit_cmyk_keeps_its_colours(tmp_path: Path) -> None:
    ink = (separation("chelsea").cast("ushort") * 257).cast("ushort").copy(interpretation="cmyk")
    out = colour.to_srgb(load(tmp_path, ink.tiffsave_buffer(), "deep.tif"))
    measured = delta_e(original("chelsea"), out)
    assert measured < LIMIT, f"mean ΔE76 {measured:.2f}"


def test_untagged_srgb_pixels_are_unchanged(tmp_path: Path) -> None:
    source = load(tmp_path, srgb_jpeg("rocket"))
    out = colour.to_srgb(source)
    assert (out.interpretation, (out != source).max()) == ("srgb", 0)


def test_grey_stays_8_bit_grey_with_its_pixels(tmp_path: Path) -> None:
    grey = original("astronaut").colourspace("b-w")
    source = load(tmp_path, grey.pngsave_buffer(), "grey.png")
    out = colour.to_srgb(source)
    assert (out.interpretation, out.bands, (out != grey).max()) == ("b-w", 1, 0)


def test_16_bit_rgb_becomes_its_8_bit_levels(tmp_path: Path) -> None:
    rgb = original("coffee")
    deep = (rgb.cast("ushort") * 257).cast("ushort").copy(interpretation="rgb16")
    out = colour.to_srgb(load(tmp_path, deep.pngsave_buffer(bitdepth=16), "deep.png"))
    assert (out.format, out.interpretation, (out != rgb).max()) == ("uchar", "srgb", 0)


def test_alpha_is_kept_unchanged(tmp_path: Path) -> None:
    rgba = original("coffee").bandjoin(128).cast("uchar").copy(interpretation="srgb")
    out = colour.to_srgb(load(tmp_path, rgba.pngsave_buffer(), "alpha.png"))
    assert (out.bands, (out != rgba).max()) == (4, 0)


def test_p3_source_loses_its_profile(tmp_path: Path) -> None:
    out = colour.to_srgb(load(tmp_path, p3_jpeg("coffee")))
    assert (out.interpretation, bool(out.get_typeof("icc-profile-data"))) == ("srgb", False)
