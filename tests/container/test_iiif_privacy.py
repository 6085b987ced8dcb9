"""Issue #8 item 5: published derivatives carry no private metadata.

The source is a JPEG made here with a GPS position, an artist and a camera serial number in its
EXIF, a creator in its XMP, an EXIF orientation and a colour profile. Every derivative keeps the
profile (and, when its orientation was not applied, the orientation tag) and nothing else, unless
``iiif_process.keep_metadata`` asks for all of it.
"""

from __future__ import annotations

from typing import Any

import pytest
import pyvips

from . import iiif_images as gen
from .conftest import Workspace

ARTIST = "Jane Private-Artist"
SERIAL = "SN-99887766"
CREATOR = "Jane Private-Creator"
XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    f'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>{CREATOR}</dc:creator>'
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
).encode()
# Every kind of derivative: full size not autorotated (-1), resized, cropped, grey, dithered,
# and other formats.
INSTRUCTIONS = {
    "o": {"size": "full", "format": "", "rotation": "-1"},
    "b": {"size": "!60,60", "format": "jpg"},
    "s": {"size": "full", "region": "-1,-1,30,30", "quality": "crisp", "format": "jpg"},
    "g": {"size": "50,", "quality": "gray", "format": "jpg"},
    "d": {"size": "50,", "quality": "dither", "format": "png"},
    "p": {"size": "50,", "format": "png"},
    "w": {"size": "50,", "format": "webp"},
    "t": {"size": "50,", "format": "tif"},
}


def private_jpeg(profile: str = "p3", orientation: int = 6) -> bytes:
    """A JPEG with GPS, artist and serial EXIF, XMP, an orientation and a colour profile."""
    image = gen.gradient(120, 80)
    if profile:
        image = image.icc_transform(profile, input_profile="srgb")
    image = image.copy()
    text = pyvips.GValue.gstr_type
    image.set_type(text, "exif-ifd0-Artist", ARTIST)
    image.set_type(text, "exif-ifd2-BodySerialNumber", SERIAL)
    image.set_type(text, "exif-ifd3-GPSLatitudeRef", "N")
    image.set_type(text, "exif-ifd3-GPSLatitude", "51/1 30/1 1234/100")
    image.set_type(text, "exif-ifd3-GPSLongitudeRef", "W")
    image.set_type(text, "exif-ifd3-GPSLongitude", "0/1 7/1 3999/100")
    image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    image.set_type(pyvips.GValue.blob_type, "xmp-data", XMP)
    data = image.jpegsave_buffer(Q=95, keep="all")
    back = pyvips.Image.new_from_buffer(data, "")  # the test input really holds all of it
    assert ARTIST in back.get("exif-ifd0-Artist") and back.get_typeof("xmp-data")
    assert back.get_typeof("exif-ifd3-GPSLatitude") and back.get("orientation") == orientation
    assert bool(back.get_typeof("icc-profile-data")) == bool(profile)
    return data


def _derivatives(ws: Workspace, data: bytes, config: Any = None) -> dict[str, bytes]:
    key = ws.put("private.jpg", data)
    status, results = ws.run([key], INSTRUCTIONS, config=config)
    assert status == 0, results
    return {label: ws.read(path) for label, path in results[key]["uris"].items()}


def _fields(data: bytes) -> dict[str, Any]:
    image = pyvips.Image.new_from_buffer(data, "")
    return {name: image.get(name) for name in image.get_fields()}


def test_item5_no_derivative_keeps_gps_artist_serial_or_xmp(ws: Workspace) -> None:
    for label, data in _derivatives(ws, private_jpeg()).items():
        for secret in (ARTIST, SERIAL, CREATOR):
            assert secret.encode() not in data, (label, secret)
        fields = _fields(data)
        assert not [f for f in fields if f.startswith("exif-ifd3-")], label  # no GPS at all
        assert "xmp-data" not in fields, label
        assert "exif-ifd0-Artist" not in fields and "exif-ifd2-BodySerialNumber" not in fields


def test_item5_every_derivative_keeps_a_colour_profile(ws: Workspace) -> None:
    derivatives = _derivatives(ws, private_jpeg())
    assert all("icc-profile-data" in _fields(d) for d in derivatives.values() if d[:3] != b"GIF")


def test_item5_the_profile_describes_the_converted_pixels(ws: Workspace) -> None:
    # A P3 source is converted to sRGB: its derivatives carry an sRGB profile (grey ones a grey
    # one), never the P3 profile that no longer describes them.
    derivatives = _derivatives(ws, private_jpeg("p3"))
    for label, data in derivatives.items():
        image = pyvips.Image.new_from_buffer(data, "")
        description = _description(image.get("icc-profile-data"))
        assert "p3" not in description.lower(), label
        expected = "sgry" if image.bands == 1 else "srgb"  # libvips' sGry and sRGB profiles
        assert expected in description.lower(), (label, description)


def test_item5_an_srgb_source_profile_is_kept_as_it_is(ws: Workspace) -> None:
    # A camera's own sRGB profile (here libvips' with another creation date, so its bytes are
    # not those of the profile libvips would embed itself).
    image = pyvips.Image.new_from_buffer(private_jpeg("srgb"), "")
    profile = bytearray(image.get("icc-profile-data"))
    profile[24:36] = bytes([7, 226, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0])  # 2018-01-01
    profile[84:100] = bytes(16)  # no profile ID
    image = image.copy()
    image.set_type(pyvips.GValue.blob_type, "icc-profile-data", bytes(profile))
    derivatives = _derivatives(ws, image.jpegsave_buffer(keep="all"))
    kept = pyvips.Image.new_from_buffer(derivatives["b"], "").get("icc-profile-data")
    assert kept == bytes(profile)


def test_item5_a_source_without_a_profile_gets_none(ws: Workspace) -> None:
    derivatives = _derivatives(ws, private_jpeg(""))
    assert "icc-profile-data" not in _fields(derivatives["b"])


def test_item5_the_unrotated_full_size_keeps_only_the_orientation(ws: Workspace) -> None:
    fields = _fields(_derivatives(ws, private_jpeg(orientation=6))["o"])
    assert fields["orientation"] == 6
    assert (fields["width"], fields["height"]) == (120, 80)  # stored pixels, not turned


def test_item5_autorotated_derivatives_carry_no_orientation(ws: Workspace) -> None:
    fields = _fields(_derivatives(ws, private_jpeg(orientation=6))["b"])
    assert fields.get("orientation", 1) == 1
    assert (fields["width"], fields["height"]) == (40, 60)  # turned by the orientation


@pytest.mark.parametrize("label", ["o", "b"])
def test_item5_keep_metadata_keeps_the_sources_metadata(ws: Workspace, label: str) -> None:
    data = _derivatives(ws, private_jpeg(), config={"iiif_process": {"keep_metadata": True}})
    fields = _fields(data[label])
    assert ARTIST in fields["exif-ifd0-Artist"]
    assert "exif-ifd3-GPSLatitude" in fields and CREATOR.encode() in fields["xmp-data"]


def test_item5_keep_metadata_must_be_a_boolean(ws: Workspace) -> None:
    key = ws.put("private.jpg", gen.jpeg())
    status, results = ws.run([key], config={"iiif_process": {"keep_metadata": "yes"}})
    assert status == 1
    assert "iiif_process.keep_metadata must be true or false" in results[key]["error"]


def _description(profile: bytes) -> str:
    from iiif_process.transform import _icc_description

    return _icc_description(profile)
