"""The config's rules, one by one: Go's booleans, store blocks and URIs, the tool's own block
and its defaults, deep zoom's check, command-line overrides (issue #13)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from iiif_process.config import (
    GO_FALSE,
    GO_TRUE,
    Config,
    DeepZoom,
    StoreSpec,
    parse_config,
    parse_go_bool,
    parse_store,
    parse_store_uri,
    with_overrides,
)
from iiif_process.errors import ConfigError


def _cfg(**extra: Any) -> dict[str, Any]:
    return {
        "images": {"source": {"uri": "mem://"}},
        "derivatives": {"cache": {"uri": "mem://"}},
        **extra,
    }


# --- Go's booleans ----------------------------------------------------------------------------


@pytest.mark.parametrize("word", sorted(GO_TRUE))
def test_gos_true_words_are_true(word: str) -> None:
    assert parse_go_bool(word, "-tiles") is True


@pytest.mark.parametrize("word", sorted(GO_FALSE))
def test_gos_false_words_are_false(word: str) -> None:
    assert parse_go_bool(word, "-tiles") is False


def test_any_other_word_is_refused_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"-tiles must be true or false .*not 'yes'"):
        parse_go_bool("yes", "-tiles")


# --- deep zoom ---------------------------------------------------------------------------------


def test_deep_zoom_is_off_with_image_api_3_and_512_pixel_tiles_by_default() -> None:
    assert DeepZoom() == DeepZoom(tiles=False, api_version=3, tile_size=512, public_base_url="")


def test_tiles_without_a_public_base_url_are_refused() -> None:
    with pytest.raises(ConfigError, match="no public base URL"):
        DeepZoom(tiles=True)


def test_tiles_with_a_public_base_url_are_accepted() -> None:
    assert DeepZoom(tiles=True, public_base_url="https://x.org").tiles is True


# --- stores --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "described"),
    [
        (StoreSpec("s3", bucket="b", prefix="p/"), "s3://b/p/"),
        (StoreSpec("disk", path="/d"), "file:///d"),
        (StoreSpec("memory", path="m"), "mem://m"),
    ],
)
def test_a_store_describes_itself_as_a_uri(spec: StoreSpec, described: str) -> None:
    assert spec.describe() == described


@pytest.mark.parametrize("uri", ["", None, 3])
def test_a_store_uri_must_be_a_non_empty_string(uri: Any) -> None:
    with pytest.raises(ConfigError, match="store URI must be a non-empty string"):
        parse_store_uri(uri)


def test_a_file_uri_must_be_absolute() -> None:
    with pytest.raises(ConfigError, match="must be file:///ABSOLUTE/DIR"):
        parse_store_uri("file:relative/dir")


def test_a_store_block_must_be_an_object() -> None:
    with pytest.raises(ConfigError, match=r"config images\.source must be an object"):
        parse_store("s3://b", "images.source")


def test_a_seed_s3_block_needs_its_bucket() -> None:
    with pytest.raises(ConfigError, match="S3 needs the bucket name"):
        parse_store({"name": "S3", "path": ""}, "images.source")


def test_a_seed_disk_block_needs_an_absolute_path() -> None:
    with pytest.raises(ConfigError, match="Disk needs an absolute directory"):
        parse_store({"name": "Disk", "path": "rel"}, "images.source")


# --- the document's shape ------------------------------------------------------------------


def test_images_and_derivatives_must_be_objects() -> None:
    with pytest.raises(ConfigError, match="config images and derivatives must be objects"):
        parse_config({"images": {"source": {"uri": "mem://"}}, "derivatives": ["mem://"]})


def test_a_config_without_a_derivatives_cache_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"config has no derivatives\.cache"):
        parse_config({"images": {"source": {"uri": "mem://"}}, "derivatives": {}})


def test_a_graphics_block_is_accepted_and_ignored() -> None:
    assert parse_config(_cfg(graphics={"source": {"name": "VIPS"}})) == parse_config(_cfg())


# --- the tool's own block and the defaults -------------------------------------------------


def test_the_tools_defaults() -> None:
    config = parse_config(_cfg())
    assert (
        config.max_pixels,
        config.max_source_bytes,
        config.workers,
        config.keep_metadata,
        config.memory_budget_mb,
        config.jpeg_quality,
        config.palette_count,
        config.palette_extruder,
        config.blurhash_size,
    ) == (200_000_000, 4 << 30, 0, False, 0, 75, 5, "vibrant", 200)


def test_keep_metadata_must_be_a_json_boolean() -> None:
    with pytest.raises(ConfigError, match="keep_metadata must be true or false, not 'yes'"):
        parse_config(_cfg(iiif_process={"keep_metadata": "yes"}))


def test_keep_metadata_true_is_kept() -> None:
    assert parse_config(_cfg(iiif_process={"keep_metadata": True})).keep_metadata is True


@pytest.mark.parametrize("rules", ["2.1", "3"])
def test_both_size_rules_are_accepted(rules: str) -> None:
    assert parse_config(_cfg(iiif_process={"size_rules": rules})).size_rules == rules


@pytest.mark.parametrize("rules", ["2", 3, None])
def test_other_size_rules_are_refused(rules: Any) -> None:
    with pytest.raises(ConfigError, match="size_rules must be"):
        parse_config(_cfg(iiif_process={"size_rules": rules}))


@pytest.mark.parametrize("quality", [1, 100])
def test_jpeg_quality_from_1_to_100_is_accepted(quality: int) -> None:
    assert parse_config(_cfg(iiif_process={"jpeg_quality": quality})).jpeg_quality == quality


@pytest.mark.parametrize("quality", [0, 101, True, 75.0, "75"])
def test_other_jpeg_qualities_are_refused(quality: Any) -> None:
    with pytest.raises(ConfigError, match="jpeg_quality must be a whole number from 1 to 100"):
        parse_config(_cfg(iiif_process={"jpeg_quality": quality}))


def test_a_palette_list_outside_the_known_ones_is_refused() -> None:
    palette = {"extruders": [{"uri": "vibrant://"}], "palettes": [{"uri": "pantone://"}]}
    with pytest.raises(ConfigError, match="unsupported colour list 'pantone://'"):
        parse_config(_cfg(palette_service=palette))


def test_palette_lists_are_read_in_order() -> None:
    palette = {"extruders": [{}], "palettes": [{"uri": "css3://"}, {"uri": "crayola://"}]}
    assert parse_config(_cfg(palette_service=palette)).palette_lists == ("css3", "crayola")


def test_a_seed_palette_extruder_without_a_name_is_vibrant() -> None:
    config = parse_config(_cfg(palette={"extruder": {"name": "", "count": 3}}))
    assert (config.palette_extruder, config.palette_count) == ("vibrant", 3)


def test_a_palette_service_without_a_count_gives_five_colours() -> None:
    config = parse_config(_cfg(palette_service={"extruders": [{"uri": "marekm4://"}]}))
    assert config.palette_count == 5


def test_a_blurhash_size_of_zero_becomes_one() -> None:
    assert parse_config(_cfg(blurhash={"size": 0})).blurhash_size == 1


# --- command-line overrides ----------------------------------------------------------------


def test_overrides_replace_only_what_they_set() -> None:
    base = Config(StoreSpec("memory"), StoreSpec("memory"))
    zoom = DeepZoom(tiles=True, public_base_url="https://x.org")
    changed = with_overrides(
        base, max_pixels=1, workers=2, max_source_bytes=3, deep_zoom=zoom, publish_concurrency=4
    )
    assert (
        changed.max_pixels,
        changed.workers,
        changed.max_source_bytes,
        changed.deep_zoom,
        changed.publish_concurrency,
    ) == (1, 2, 3, zoom, 4)


def test_no_overrides_change_nothing() -> None:
    base = Config(StoreSpec("memory"), StoreSpec("memory"), max_pixels=9, workers=3)
    assert with_overrides(base) == base


def test_a_seed_palette_without_a_count_gives_five_colours() -> None:
    assert parse_config(_cfg(palette={"extruder": {"name": "vibrant"}})).palette_count == 5


def test_a_config_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ConfigError, match="config must be a JSON object"):
        parse_config([_cfg()])


def test_a_graphics_block_is_noted_as_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="iiif_process.config"):
        parse_config(_cfg(graphics={}))
    assert "graphics block ignored: this tool always uses libvips" in caplog.messages


def test_no_graphics_block_is_noted_without_one(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="iiif_process.config"):
        parse_config(_cfg())
    assert not any("graphics" in message for message in caplog.messages)


def test_a_config_made_in_code_has_the_defaults_of_an_empty_document() -> None:
    # Config(...) as tests and library callers make it, and parse_config, agree on every
    # setting an empty document leaves out; publishing concurrency 0 means automatic.
    made = Config(StoreSpec("memory"), StoreSpec("memory"))
    parsed = parse_config(_cfg())
    names = (
        "palette_count",
        "blurhash_x",
        "blurhash_y",
        "blurhash_size",
        "keep_metadata",
        "workers",
        "memory_budget_mb",
        "max_pixels",
        "max_source_bytes",
        "jpeg_quality",
    )
    assert [getattr(made, n) for n in names] == [getattr(parsed, n) for n in names]


def test_publishing_concurrency_is_automatic_by_default() -> None:
    assert Config(StoreSpec("memory"), StoreSpec("memory")).publish_concurrency == 0
