"""Config files of both go-iiif generations."""

from __future__ import annotations

import logging

import pytest
from iiif_process.arguments import environment_defaults
from iiif_process.config import StoreSpec, parse_config, parse_store_uri
from iiif_process.defaults import default_config
from iiif_process.documents import load_config_document
from iiif_process.errors import ConfigError
from iiif_process.process_cli import parse_args


def _cfg(source: dict, cache: dict | None = None, **extra: object) -> dict:
    return {
        "images": {"source": source},
        "derivatives": {"cache": cache or {"uri": "mem://"}},
        **extra,
    }


def test_seed_s3_source() -> None:
    config = parse_config(
        _cfg({"name": "S3", "path": "bucket", "prefix": "originals/", "region": "us-west-2"})
    )
    assert config.source == StoreSpec(
        "s3", bucket="bucket", prefix="originals/", region="us-west-2"
    )


def test_seed_s3_path_may_carry_a_prefix() -> None:
    config = parse_config(_cfg({"name": "S3", "path": "bucket/a", "prefix": "b"}))
    assert (config.source.bucket, config.source.prefix) == ("bucket", "a/b/")


def test_seed_disk_and_memory() -> None:
    config = parse_config(_cfg({"name": "Disk", "path": "/data"}, {"name": "Memory"}))
    assert (config.source, config.derivatives.kind) == (StoreSpec("disk", path="/data"), "memory")


def test_seed_blob_takes_a_uri_in_path() -> None:
    config = parse_config(_cfg({"name": "Blob", "path": "file:///data"}))
    assert config.source == StoreSpec("disk", path="/data")


@pytest.mark.parametrize(
    ("uri", "spec"),
    [
        (
            "s3blob://b?region=eu-west-1&prefix=in/",
            StoreSpec("s3", bucket="b", prefix="in/", region="eu-west-1"),
        ),
        ("s3blob://b?region=eu-west-1", StoreSpec("s3", bucket="b", region="eu-west-1")),
        ("s3://b/some/prefix", StoreSpec("s3", bucket="b", prefix="some/prefix/")),
        ("file:///var/derivatives", StoreSpec("disk", path="/var/derivatives")),
        ("mem://", StoreSpec("memory")),
        ("memory://", StoreSpec("memory")),
    ],
)
def test_v7_store_uris(uri: str, spec: StoreSpec) -> None:
    assert parse_store_uri(uri) == spec


@pytest.mark.parametrize("uri", ["gs://b", "file://relative/dir", "s3blob://", "", "azblob://c"])
def test_unsupported_store_uris_are_errors(uri: str) -> None:
    with pytest.raises(ConfigError, match="store URI"):
        parse_store_uri(uri)


def test_unknown_store_name_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unsupported store 'GCS'"):
        parse_config(_cfg({"name": "GCS"}))


def test_missing_source_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"no images\.source"):
        parse_config({"derivatives": {"cache": {"uri": "mem://"}}})


def test_unknown_blocks_are_ignored_with_a_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="iiif_process"):
        parse_config(_cfg({"uri": "mem://"}, custom={"x": 1}))
    assert any(getattr(r, "block", None) == "custom" for r in caplog.records)


def test_seed_example_config_is_read() -> None:
    seed = {
        "level": {"compliance": "2"},
        "profile": {"services": {"enable": ["palette"]}},
        "palette": {"extruder": {"name": "vibrant", "count": 7}, "grid": {"name": "euclidian"}},
        "graphics": {"source": {"name": "VIPS"}},
        "features": {"enable": {}, "disable": {}, "append": {}},
        "images": {
            "source": {
                "name": "S3",
                "path": "my-bucket",
                "prefix": "originals/",
                "region": "us-west-2",
                "credentials": "iam:",
            },
            "cache": {"name": "Memory", "ttl": 300, "limit": 100},
        },
        "derivatives": {
            "cache": {
                "name": "S3",
                "path": "my-derivatives",
                "prefix": "processed",
                "region": "us-west-2",
            }
        },
    }
    config = parse_config(seed)
    assert (config.services, config.palette_count, config.derivatives.prefix) == (
        ("palette",),
        7,
        "processed/",
    )


def test_defaults_enable_every_service_and_disable_bitonal() -> None:
    config = parse_config(default_config())
    assert config.services == ("palette", "blurhash", "imagehash")
    assert config.disabled_features == {"bitonal", "rotationArbitrary"}


def test_v7_service_blocks() -> None:
    config = parse_config(
        _cfg(
            {"uri": "mem://"},
            palette_service={"extruders": [{"uri": "marekm4://", "count": 3}]},
            blurhash_service={"x": 4, "y": 3, "size": 64},
        )
    )
    assert (
        config.palette_extruder,
        config.palette_count,
        config.blurhash_x,
        config.blurhash_y,
        config.blurhash_size,
    ) == (
        "marekm4",
        3,
        4,
        3,
        64,
    )


def test_the_command_line_replaces_source_and_cache() -> None:
    args = parse_args(
        [
            "-config-images-source-uri",
            "s3blob://src?region=us-east-1",
            "-config-derivatives-cache-uri",
            "file:///out",
        ]
    )
    config = parse_config(load_config_document(args, {}))
    assert (config.source.bucket, config.derivatives.path) == ("src", "/out")


def test_the_environment_replaces_source_and_cache_when_the_command_line_does_not() -> None:
    env = environment_defaults(
        {
            "IIIF_CONFIG_IMAGES_SOURCE_URI": "s3blob://src",
            "IIIF_CONFIG_DERIVATIVES_CACHE_URI": "file:///out",
        }
    )
    config = parse_config(load_config_document(parse_args([]), env))
    assert (config.source.bucket, config.derivatives.path) == ("src", "/out")


def test_pixel_limit_in_the_config() -> None:
    config = parse_config(_cfg({"uri": "mem://"}, iiif_process={"max_pixels": 1234}))
    assert config.max_pixels == 1234


def test_bad_pixel_limit_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"iiif_process\.max_pixels"):
        parse_config(_cfg({"uri": "mem://"}, iiif_process={"max_pixels": "lots"}))
