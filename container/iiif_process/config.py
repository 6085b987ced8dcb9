"""go-iiif config files of both generations, read into one frozen :class:`Config`.

Seed era (go-iiif 2019): stores are ``{"name": "S3"|"Disk"|"Memory"|"Blob", "path", "prefix",
"region"}``. go-iiif v7+: stores are ``{"uri": "s3blob://bucket?region=R&prefix=P" |
"s3://bucket/prefix" | "file:///dir" | "mem://" | "memory://"}``. Blocks this tool has no use for
are ignored with a debug log. Our own settings live in the block ``"iiif_process"``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import ConfigError
from .params import DEFAULT_SIZE_RULES, SIZE_RULES

log = logging.getLogger(__name__)

# Default pixel limit: comfortably above 100 MP photographs, far below a decompression bomb.
DEFAULT_MAX_PIXELS = 200_000_000
# Default source size limit: 4 GiB, a large master that still fits a task's 20 GiB scratch disk
# several times over (one per worker). Kept equal to the trigger's maxSourceBytes default.
DEFAULT_MAX_SOURCE_BYTES = 4 << 30
# JPEG quality of the derivatives (iiif_process.jpeg_quality). go-iiif writes 100, which makes a
# 24 MP `o` twice the size of a typical camera JPEG for no visible gain; 75 is libvips' default and
# visually transparent at the sizes a collections site shows.
DEFAULT_JPEG_QUALITY = 75
SERVICES = ("palette", "blurhash", "imagehash")
# The named colour lists a palette entry's `closest` may come from (go-colours' palettes), and
# go-iiif's default ones.
PALETTE_LISTS = ("crayola", "css3", "css4")
PALETTE_LISTS_DEFAULT = ("crayola", "css4")
_KNOWN_BLOCKS = {
    "level",
    "profile",
    "palette",
    "palette_service",
    "blurhash",
    "blurhash_service",
    "imagehash",
    "imagehash_service",
    "graphics",
    "features",
    "images",
    "derivatives",
    "iiif_process",
}

# Go's strconv.ParseBool, which go-iiif's flags and the stack's environment values follow.
GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_go_bool(text: str, what: str) -> bool:
    """``text`` as Go's ``strconv.ParseBool`` reads it; a :class:`ConfigError` naming ``what``
    and the value otherwise."""
    if text in GO_TRUE:
        return True
    if text in GO_FALSE:
        return False
    raise ConfigError(
        f"{what} must be true or false (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, "
        f"False), not {text!r}"
    )


# Deep zoom (issue #11; docs/contracts.md "Deep zoom"): the tool's defaults when nothing is set.
DEFAULT_IIIF_API_VERSION = 3  # what current viewers and Presentation 3 manifests expect
DEFAULT_TILE_SIZE = 512
MIN_TILE_SIZE, MAX_TILE_SIZE = 64, 4096


@dataclass(frozen=True)
class DeepZoom:
    """What the task publishes for deep zoom besides the derivatives: with ``tiles`` on, a Level 0
    tile pyramid, ``info.json`` (Image API ``api_version``) and a Presentation 3 manifest, whose
    ids start with ``public_base_url`` (no trailing slash). Off by default, as go-iiif."""

    tiles: bool = False
    api_version: int = DEFAULT_IIIF_API_VERSION
    tile_size: int = DEFAULT_TILE_SIZE
    public_base_url: str = ""

    def __post_init__(self) -> None:
        if self.tiles and not self.public_base_url:
            raise ConfigError(
                "tiles are on but no public base URL is set "
                "(IIIF_PROCESS_PUBLIC_BASE_URL or -public-base-url): info.json and the manifest "
                "need the URL their ids start with"
            )


@dataclass(frozen=True)
class StoreSpec:
    """Where a store lives: ``kind`` is ``s3``, ``disk`` or ``memory``."""

    kind: str
    bucket: str = ""
    prefix: str = ""
    region: str | None = None
    path: str = ""

    def describe(self) -> str:
        """A URI-like description for logs and reports."""
        if self.kind == "s3":
            return f"s3://{self.bucket}/{self.prefix}"
        if self.kind == "disk":
            return f"file://{self.path}"
        return f"mem://{self.path}"


@dataclass(frozen=True)
class Config:
    """Everything the processor needs from a config file (plus command-line overrides)."""

    source: StoreSpec
    derivatives: StoreSpec
    services: tuple[str, ...] = ()
    disabled_features: frozenset[str] = frozenset()
    palette_count: int = 5
    palette_extruder: str = "vibrant"
    blurhash_x: int = 8
    blurhash_y: int = 8
    blurhash_size: int = 200
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_source_bytes: int = DEFAULT_MAX_SOURCE_BYTES  # 0 = no limit
    keep_metadata: bool = False  # True = derivatives keep the source's EXIF, XMP, IPTC
    workers: int = 0  # 0 = one per available CPU
    memory_budget_mb: int = 0  # 0 = 70 % of the task's (cgroup) memory
    size_rules: str = DEFAULT_SIZE_RULES  # "2.1": `!w,h` may enlarge (go-iiif); "3": only `^`
    jpeg_quality: int = DEFAULT_JPEG_QUALITY  # 1..100 (go-iiif: 100)
    palette_lists: tuple[str, ...] = PALETTE_LISTS_DEFAULT  # named colours for `closest`
    deep_zoom: DeepZoom = field(default_factory=DeepZoom)
    # Objects of one image written at once; 0 = automatic (16 with tiles on, else 1: one at a
    # time in instruction order, as go-iiif).
    publish_concurrency: int = 0


def _norm_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def parse_store_uri(uri: str) -> StoreSpec:
    """Parse a go-iiif v7+ store URI (``s3blob://``, ``s3://``, ``file://``, ``mem://``)."""
    if not isinstance(uri, str) or not uri:
        raise ConfigError(f"store URI must be a non-empty string, not {uri!r}")
    parts = urlsplit(uri)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    scheme = parts.scheme.lower()
    if scheme in ("s3blob", "s3"):
        if not parts.netloc:
            raise ConfigError(f"store URI {uri!r} names no bucket")
        prefix = query.pop("prefix", "") or unquote(parts.path)
        region = query.pop("region", None)
        for key in query:
            log.debug("ignoring store URI parameter", extra={"uri": uri, "parameter": key})
        return StoreSpec("s3", bucket=parts.netloc, prefix=_norm_prefix(prefix), region=region)
    if scheme == "file":
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not path.startswith("/"):
            raise ConfigError(f"store URI {uri!r} must be file:///ABSOLUTE/DIR")
        return StoreSpec("disk", path=path)
    if scheme in ("mem", "memory"):
        return StoreSpec("memory", path=parts.netloc + parts.path)
    raise ConfigError(f"store URI {uri!r} has an unsupported scheme {scheme!r}")


def parse_store(block: Any, where: str) -> StoreSpec:
    """Parse a store block of either generation (``uri`` or ``name``/``path``/``prefix``)."""
    if not isinstance(block, Mapping):
        raise ConfigError(f"config {where} must be an object")
    if block.get("uri"):
        return parse_store_uri(block["uri"])
    name = str(block.get("name", "")).lower()
    path = str(block.get("path", "") or "")
    if name == "s3":
        bucket, _, extra = path.partition("/")
        if not bucket:
            raise ConfigError(f"config {where}: S3 needs the bucket name in 'path'")
        prefix = "/".join(
            p for p in (extra.strip("/"), str(block.get("prefix", "")).strip("/")) if p
        )
        return StoreSpec(
            "s3", bucket=bucket, prefix=_norm_prefix(prefix), region=block.get("region")
        )
    if name == "disk":
        if not path.startswith("/"):
            raise ConfigError(f"config {where}: Disk needs an absolute directory in 'path'")
        return StoreSpec("disk", path=path)
    if name == "memory":
        return StoreSpec("memory")
    if name in ("blob", "uri"):
        return parse_store_uri(path)
    raise ConfigError(f"config {where}: unsupported store {block.get('name')!r}")


def _positive_int(value: Any, what: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be an integer, not {value!r}") from None
    if number < 0:
        raise ConfigError(f"{what} must not be negative, not {value!r}")
    return number


def _boolean(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{what} must be true or false, not {value!r}")
    return value


def _size_rules(value: Any) -> str:
    if value not in SIZE_RULES or not isinstance(value, str):
        raise ConfigError(
            'iiif_process.size_rules must be "2.1" (Image API 2.1, as go-iiif: !w,h enlarges an '
            'image smaller than the box) or "3" (Image API 3.0: only a ^ size enlarges), '
            f"not {value!r}"
        )
    return value


def _jpeg_quality(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise ConfigError(
            f"iiif_process.jpeg_quality must be a whole number from 1 to 100, not {value!r}"
        )
    return value


def _palette_lists(entries: Any, key: str, where: str) -> tuple[str, ...]:
    """The named colour lists of ``palette_service.palettes`` (``{"uri": "crayola://"}``) or the
    seed's ``palette.palette`` (``{"name": "crayola"}``)."""
    if entries is None:
        return PALETTE_LISTS_DEFAULT
    if not isinstance(entries, list):
        raise ConfigError(f"config {where} must be a list")
    names = []
    for entry in entries:
        value = entry.get(key) if isinstance(entry, Mapping) else None
        name = str(value or "").split(":", 1)[0].lower()
        if name not in PALETTE_LISTS:
            raise ConfigError(
                f"config {where}: unsupported colour list {value!r} (one of "
                f"{', '.join(PALETTE_LISTS)})"
            )
        names.append(name)
    return tuple(names)


def _disabled_features(features: Any) -> frozenset[str]:
    if not isinstance(features, Mapping):
        return frozenset()
    disable = features.get("disable") or {}
    names: set[str] = set()
    if isinstance(disable, Mapping):
        for values in disable.values():
            if isinstance(values, list):
                names.update(str(v) for v in values)
    return frozenset(names)


def _services(profile: Any) -> tuple[str, ...]:
    enabled: list[str] = []
    services = (profile or {}).get("services") if isinstance(profile, Mapping) else None
    names = (services or {}).get("enable", []) if isinstance(services, Mapping) else []
    for name in names or []:
        if name in SERVICES:
            enabled.append(name)
        else:
            log.warning("ignoring unsupported service", extra={"service": name})
    return tuple(enabled)


def parse_config(data: Any) -> Config:
    """Read a config document (already JSON-decoded) of either generation."""
    if not isinstance(data, Mapping):
        raise ConfigError("config must be a JSON object")
    for key in data:
        if key not in _KNOWN_BLOCKS:
            log.debug("ignoring unknown config block", extra={"block": key})
    if "graphics" in data:
        log.debug("graphics block ignored: this tool always uses libvips")
    images = data.get("images") or {}
    derivatives = data.get("derivatives") or {}
    if not isinstance(images, Mapping) or not isinstance(derivatives, Mapping):
        raise ConfigError("config images and derivatives must be objects")
    if "source" not in images:
        raise ConfigError("config has no images.source")
    if "cache" not in derivatives:
        raise ConfigError("config has no derivatives.cache")
    source = parse_store(images["source"], "images.source")
    cache = parse_store(derivatives["cache"], "derivatives.cache")

    palette_count, extruder, palette_lists = 5, "vibrant", PALETTE_LISTS_DEFAULT
    if isinstance(data.get("palette_service"), Mapping):
        extruders = data["palette_service"].get("extruders") or [{}]
        first = extruders[0] if isinstance(extruders[0], Mapping) else {}
        palette_count = _positive_int(first.get("count", 5), "palette_service count")
        extruder = str(first.get("uri", "vibrant://")).split(":", 1)[0] or "vibrant"
        palette_lists = _palette_lists(
            data["palette_service"].get("palettes"), "uri", "palette_service.palettes"
        )
    elif isinstance(data.get("palette"), Mapping):
        first = data["palette"].get("extruder") or {}
        palette_count = _positive_int(first.get("count", 5), "palette extruder count")
        extruder = str(first.get("name", "vibrant")) or "vibrant"
        palette_lists = _palette_lists(data["palette"].get("palette"), "name", "palette.palette")
    blurhash = data.get("blurhash_service") or data.get("blurhash") or {}
    own = data.get("iiif_process") or {}
    if not isinstance(own, Mapping) or not isinstance(blurhash, Mapping):
        raise ConfigError("config blocks iiif_process and blurhash must be objects")
    return Config(
        source=source,
        derivatives=cache,
        services=_services(data.get("profile")),
        disabled_features=_disabled_features(data.get("features")),
        palette_count=max(1, palette_count),
        palette_extruder=extruder,
        palette_lists=palette_lists,
        blurhash_x=min(9, max(1, _positive_int(blurhash.get("x", 8), "blurhash x"))),
        blurhash_y=min(9, max(1, _positive_int(blurhash.get("y", 8), "blurhash y"))),
        blurhash_size=max(1, _positive_int(blurhash.get("size", 200), "blurhash size")),
        max_pixels=_positive_int(
            own.get("max_pixels", DEFAULT_MAX_PIXELS), "iiif_process.max_pixels"
        ),
        max_source_bytes=_positive_int(
            own.get("max_source_bytes", DEFAULT_MAX_SOURCE_BYTES), "iiif_process.max_source_bytes"
        ),
        workers=_positive_int(own.get("workers", 0), "iiif_process.workers"),
        keep_metadata=_boolean(own.get("keep_metadata", False), "iiif_process.keep_metadata"),
        memory_budget_mb=_positive_int(
            own.get("memory_budget_mb", 0), "iiif_process.memory_budget_mb"
        ),
        size_rules=_size_rules(own.get("size_rules", DEFAULT_SIZE_RULES)),
        jpeg_quality=_jpeg_quality(own.get("jpeg_quality", DEFAULT_JPEG_QUALITY)),
    )


def with_overrides(
    config: Config,
    *,
    max_pixels: int | None = None,
    workers: int | None = None,
    max_source_bytes: int | None = None,
    deep_zoom: DeepZoom | None = None,
    publish_concurrency: int | None = None,
) -> Config:
    """Apply command-line / environment overrides of the tool's settings (the stores are
    replaced in the document before parsing: :func:`~.documents.load_config_document`)."""
    changes: dict[str, Any] = {}
    if max_pixels is not None:
        changes["max_pixels"] = max_pixels
    if workers is not None:
        changes["workers"] = workers
    if max_source_bytes is not None:
        changes["max_source_bytes"] = max_source_bytes
    if deep_zoom is not None:
        changes["deep_zoom"] = deep_zoom
    if publish_concurrency is not None:
        changes["publish_concurrency"] = publish_concurrency
    return replace(config, **changes)
