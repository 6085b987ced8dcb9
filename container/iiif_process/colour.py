"""Colour management of decoded sources: every derivative is made in 8-bit sRGB (or grey).

CMYK is where tools differ, and where go-iiif and our earlier pipeline were wrong (measured in
docs/colour.md):

- CMYK with an embedded CMYK profile goes through that profile with relative colorimetric
  intent and black-point compensation (what Photoshop and Acrobat use by default to show CMYK
  on screen), so the paper's white is white and the deepest black the press prints is black.
- CMYK without a profile was separated by someone: either by a colour-managed tool (a press
  profile, then the profile was stripped) or by the naive formula C = 255 - R, M = 255 - G,
  Y = 255 - B, K = 0 (Pillow's ``convert("CMYK")``, several web tools). The two are told apart by
  the black ink: every press separation prints dark tones with black ink, the naive one never
  uses it. Untagged CMYK whose black channel is practically empty is therefore read with the
  inverse of that formula (as browsers show untagged CMYK); any other untagged CMYK goes through
  libvips' built-in CMYK profile, as if it had been embedded.
- Adobe's inverted CMYK (Photoshop's JPEGs, with the APP14 "Adobe" marker, plain or YCCK) is
  un-inverted by libvips' JPEG loader, which treats every CMYK JPEG so (as browsers and Pillow
  do); nothing here needs to know.

Everything is libvips operations on the whole image (no per-pixel Python); the black-ink test
reads at most about 260,000 sampled pixels.
"""

from __future__ import annotations

import contextlib
import math
import struct

import pyvips

# How CMYK is shown on screen: Adobe's default (relative colorimetric with black-point
# compensation). Perceptual would compress in-gamut colours; no compensation would leave the
# press's black as a dark grey (L* 15 with the built-in profile).
CMYK_INTENT = "relative"
CMYK_BLACK_POINT_COMPENSATION = True
# RGB and grey profiles keep the conversion the pipeline always used (for matrix profiles,
# the usual kind, every intent gives the same pixels).
RGB_INTENT = "perceptual"

# Untagged CMYK is a naive separation when fewer than this share of its (sampled) pixels carry
# more than KEY_INK_FLOOR of black ink (of 255; JPEG noise on an empty channel stays below it).
KEY_INK_FLOOR = 8
KEY_INK_SHARE = 0.005
# The black-ink test looks at about this many pixels (every n-th pixel of every n-th line of
# larger images: 8 ms of CPU at 24 MP, against about a second for the profile conversion).
KEY_SAMPLE_PIXELS = 1 << 18


def icc_description(profile: bytes) -> str:
    """The ``desc`` text of an ICC profile (best effort, '' when unreadable)."""
    try:
        (count,) = struct.unpack_from(">I", profile, 128)
        for i in range(min(count, 64)):
            sig, offset, _size = struct.unpack_from(">4sII", profile, 132 + 12 * i)
            if sig != b"desc":
                continue
            kind = profile[offset : offset + 4]
            if kind == b"desc":
                (length,) = struct.unpack_from(">I", profile, offset + 8)
                return profile[offset + 12 : offset + 12 + length].decode("latin-1").strip("\0")
            if kind == b"mluc":
                rec_len, rec_off = struct.unpack_from(">II", profile, offset + 20)
                raw = profile[offset + rec_off : offset + rec_off + rec_len]
                return raw.decode("utf-16-be", "replace")
    except (struct.error, UnicodeDecodeError):
        return ""
    return ""


def icc_colour_space(profile: bytes) -> str:
    """The data colour space an ICC profile describes (header bytes 16-19: 'RGB', 'CMYK',
    'GRAY', ...), '' when the header is too short."""
    if len(profile) < 20:
        return ""
    return profile[16:20].decode("latin-1").strip()


def _profile(image: pyvips.Image) -> bytes | None:
    return image.get("icc-profile-data") if image.get_typeof("icc-profile-data") else None


def _full_scale(image: pyvips.Image) -> int:
    return 65535 if image.format == "ushort" else 255


def black_ink_unused(image: pyvips.Image) -> bool:
    """Whether a CMYK image practically never prints black ink (its K channel is empty): the
    mark of a naive RGB to CMYK conversion, which no press separation makes."""
    key = image.extract_band(3)
    step = max(1, math.ceil(math.sqrt(key.width * key.height / KEY_SAMPLE_PIXELS)))
    if step > 1:
        # Not point=True: libvips then fetches each sampled pixel alone, ten times slower.
        key = key.subsample(step, step)
    floor = KEY_INK_FLOOR * _full_scale(image) / 255
    inked = (key > floor).avg() / 255  # the share of sampled pixels with black ink
    return inked < KEY_INK_SHARE


def naive_cmyk_to_srgb(image: pyvips.Image) -> pyvips.Image:
    """The inverse of the naive separation: R = (1 - C)(1 - K), G = (1 - M)(1 - K),
    B = (1 - Y)(1 - K), in 8-bit sRGB (bands after the fourth, such as alpha, kept)."""
    scale = _full_scale(image)
    ink = image.extract_band(0, n=3)
    paper = (scale - image.extract_band(3)) / scale  # the light the black ink lets through
    rgb = (scale - ink) * paper
    if scale != 255:
        rgb = rgb * (255 / scale)
    out = rgb.cast("uchar")
    if image.bands > 4:
        extra = image.extract_band(4, n=image.bands - 4)
        out = out.bandjoin(extra if scale == 255 else (extra * (255 / scale)).cast("uchar"))
    out = out.copy(interpretation="srgb")
    if out.get_typeof("icc-profile-data"):
        out.remove("icc-profile-data")
    return out


def cmyk_to_srgb(image: pyvips.Image) -> pyvips.Image:
    """CMYK (8 or 16 bit, alpha kept) in sRGB: through its own CMYK profile when it carries a
    usable one, else naively when it uses no black ink, else through libvips' built-in CMYK
    profile."""
    profile = _profile(image)
    if profile is not None and icc_colour_space(profile) == "CMYK":
        # A profile lcms cannot use is treated as no profile.
        with contextlib.suppress(pyvips.Error):
            return image.icc_transform(
                "srgb",
                embedded=True,
                intent=CMYK_INTENT,
                black_point_compensation=CMYK_BLACK_POINT_COMPENSATION,
            )
    if black_ink_unused(image):
        return naive_cmyk_to_srgb(image)
    return image.icc_transform(
        "srgb",
        input_profile="cmyk",
        intent=CMYK_INTENT,
        black_point_compensation=CMYK_BLACK_POINT_COMPENSATION,
    )


def to_srgb(image: pyvips.Image) -> pyvips.Image:
    """Convert to 8-bit sRGB (or 8-bit grey), through the embedded ICC profile when present.

    CMYK is converted as the module docstring says; 16-bit and float images become 8-bit;
    alpha is kept; the result carries no ICC profile.
    """
    profile = _profile(image)
    if image.interpretation == "cmyk" and image.bands >= 4:
        image = cmyk_to_srgb(image)
    elif profile is not None and "srgb" not in icc_description(profile).lower():
        # A broken profile falls back to the plain colourspace conversion below.
        with contextlib.suppress(pyvips.Error):
            image = image.icc_transform("srgb", embedded=True, intent=RGB_INTENT)
    interpretation = image.interpretation
    if interpretation not in ("srgb", "b-w"):
        grey = interpretation == "grey16" or image.bands < 3
        try:
            image = image.colourspace("b-w" if grey else "srgb")
        except pyvips.Error:
            # An image tagged with a non-colour interpretation (multiband, ...): take it as is.
            image = image.copy(interpretation="b-w" if grey else "srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    if image.get_typeof("icc-profile-data"):
        image = image.copy()
        image.remove("icc-profile-data")
    return image
