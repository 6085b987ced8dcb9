"""go-iiif's documented default config, as the tool reads it with no config file."""

from __future__ import annotations

from iiif_process.config import parse_config
from iiif_process.defaults import default_config


def test_default_blurhash_thumbnail_is_200_pixels() -> None:
    assert parse_config(default_config()).blurhash_size == 200


def test_default_dither_quality_is_an_optional_supported_extra() -> None:
    dither = default_config()["features"]["append"]["quality"]["dither"]
    assert (dither["required"], dither["supported"]) == (False, True)


def test_default_crisp_quality_is_an_optional_supported_extra() -> None:
    crisp = default_config()["features"]["append"]["quality"]["crisp"]
    assert (crisp["required"], crisp["supported"]) == (False, True)
