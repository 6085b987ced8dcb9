"""IIIF Level 0 static tiles: the pyramid's geometry (pure), and seeding one image into a store.

Geometry follows the Image API's tile computation for a level 0 service (Image API 3.0 §5.6 and
its implementation notes): at scale factor ``s`` a tile of size ``T`` covers ``T*s`` full-image
pixels, clipped at the right and bottom edges, and is ``ceil(region / s)`` pixels across. The path
of each tile is the one viewers request for it (OpenSeadragon's IIIF tile source, which Mirador
and Universal Viewer embed): region ``full`` when the tile is the whole image, else ``x,y,w,h``;
size ``w,`` (Image API 2) or ``w,h`` (Image API 3), except ``full`` (2) / ``max`` (3) when the
tile is at the image's full size. ``info.json`` announces exactly the tiles and sizes written.

Seeding decodes the image once, makes each level from the previous one with libvips' box shrink
(as ``dzsave`` does), and encodes and writes the objects of one image from a bounded thread pool.
``info.json`` is written last, after every other object; on any failure the objects this run
created are deleted, so a target is published whole or not at all.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import math
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pyvips

from .config import Config
from .errors import ImageRejectedError, ParameterError, SourceNotFoundError, StoreError
from .jpeg_markers import JpegLayout
from .params import FORMATS, Quality
from .publish import remove_objects
from .stores import Store, local_source, safe_key, write_object
from .transform import (
    JPEG_Q,
    _icc_description,
    apply_quality,
    browser_jpeg,
    probe,
    published_jpeg,
    to_srgb,
    vips_message,
    vips_warnings,
)

log = logging.getLogger(__name__)

API_VERSIONS = (2, 3)
DEFAULT_TILE_SIZE = 512
DEFAULT_API_VERSION = 2  # go-iiif's iiif-tile-seed writes Image API 2
QUALITIES = ("default", "color", "gray", "bitonal")
CONTEXT = {
    2: "http://iiif.io/api/image/2/context.json",
    3: "http://iiif.io/api/image/3/context.json",
}
PROTOCOL = "http://iiif.io/api/image"
LEVEL0_V2 = "http://iiif.io/api/image/2/level0.json"
INFO_NAME = "info.json"
# Tiles of a path never change content (a re-seed with other settings writes other paths, or the
# same pixels); info.json may be refreshed, so caches keep it for a day.
TILE_CACHE_CONTROL = "public, max-age=31536000, immutable"
INFO_CACHE_CONTROL = "public, max-age=86400"


def info_content_type(version: int) -> str:
    """The Content-Type of an ``info.json`` of Image API ``version`` (JSON-LD with its context
    as the profile, as the Image API asks)."""
    return f'application/ld+json;profile="{CONTEXT[version]}"'


# --- geometry (pure) --------------------------------------------------------------------------


@dataclass(frozen=True)
class TileOptions:
    """What to seed: Image API version, tile size, scale factors (empty = automatic), format,
    quality."""

    api_version: int = DEFAULT_API_VERSION
    tile_size: int = DEFAULT_TILE_SIZE
    scale_factors: tuple[int, ...] = ()
    format: str = "jpg"
    quality: str = "default"

    def __post_init__(self) -> None:
        if self.api_version not in API_VERSIONS:
            raise ParameterError(f"Image API version must be 2 or 3, not {self.api_version!r}")
        if self.tile_size < 1:
            raise ParameterError(f"tile size must be a positive integer, not {self.tile_size}")
        if any(s < 1 for s in self.scale_factors):
            raise ParameterError(f"scale factors must be positive integers: {self.scale_factors}")
        if self.format not in FORMATS:
            raise ParameterError(
                f"unsupported format {self.format!r} (one of {', '.join(FORMATS)})"
            )
        if self.quality not in QUALITIES:
            raise ParameterError(
                f"unsupported quality {self.quality!r} (one of {', '.join(QUALITIES)})"
            )


@dataclass(frozen=True)
class TileObject:
    """One image object of the pyramid: the level it is cut from, the full-image region it
    shows, its pixel size, and its path under the target."""

    scale: int
    region: tuple[int, int, int, int]  # x, y, w, h in full-image pixels
    size: tuple[int, int]  # width, height of the encoded image
    path: str


@dataclass(frozen=True)
class Plan:
    """Everything one image's seeding writes (``info`` last), derived from its size alone."""

    width: int
    height: int
    options: TileOptions
    scale_factors: tuple[int, ...]
    sizes: tuple[tuple[int, int], ...]
    objects: tuple[TileObject, ...]  # unique paths; the full-size image first

    def info(self, base_id: str) -> dict[str, Any]:
        """The ``info.json`` document whose id is ``base_id``."""
        return info_document(self, base_id)


def level_size(width: int, height: int, scale: int) -> tuple[int, int]:
    """The pixel size of the level at scale factor ``scale``: ``ceil(side / scale)``."""
    return math.ceil(width / scale), math.ceil(height / scale)


def auto_scale_factors(width: int, height: int, tile_size: int) -> tuple[int, ...]:
    """Powers of two from 1 up to the first whose level fits in one tile (what ``dzsave`` and
    viewers expect: the zoomed-out view is one tile)."""
    factors = [1]
    while any(side > tile_size for side in level_size(width, height, factors[-1])):
        factors.append(factors[-1] * 2)
    return tuple(factors)


def level_tiles(
    width: int, height: int, tile_size: int, scale: int
) -> Iterator[tuple[tuple[int, int, int, int], tuple[int, int]]]:
    """The tiles of one level, row by row: (full-image region x, y, w, h; tile pixel size).

    A tile covers ``tile_size * scale`` full-image pixels, clipped at the right and bottom
    edges; its size is ``ceil(region / scale)``.
    """
    span = tile_size * scale
    for y in range(0, height, span):
        h = min(span, height - y)
        for x in range(0, width, span):
            w = min(span, width - x)
            yield (x, y, w, h), (math.ceil(w / scale), math.ceil(h / scale))


def region_text(region: tuple[int, int, int, int], width: int, height: int) -> str:
    """The region segment: ``full`` for the whole image, else ``x,y,w,h``."""
    if region == (0, 0, width, height):
        return "full"
    return ",".join(str(v) for v in region)


def size_text(size: tuple[int, int], width: int, height: int, version: int) -> str:
    """The size segment viewers request: Image API 2 ``w,`` (``full`` at the image's width),
    Image API 3 ``w,h`` (``max`` at the image's full size)."""
    if version == 2:
        return "full" if size[0] == width else f"{size[0]},"
    return "max" if size == (width, height) else f"{size[0]},{size[1]}"


def object_path(
    region: tuple[int, int, int, int],
    size: tuple[int, int],
    width: int,
    height: int,
    options: TileOptions,
) -> str:
    """``{region}/{size}/0/{quality}.{format}`` of one object."""
    size_part = size_text(size, width, height, options.api_version)
    return f"{region_text(region, width, height)}/{size_part}/0/{options.quality}.{options.format}"


def full_image_path(options: TileOptions) -> str:
    """The full-size image Level 0 requires: ``full/full/0/...`` (2) or ``full/max/0/...`` (3)."""
    size = "full" if options.api_version == 2 else "max"
    return f"full/{size}/0/{options.quality}.{options.format}"


def plan_tiles(width: int, height: int, options: TileOptions) -> Plan:
    """Every object of the pyramid of a ``width`` x ``height`` image.

    Sizes (``info.json``'s ``sizes``) are the levels that fit in one tile (or, when none does,
    the smallest level); each is also written at its explicit size path (``full/w,`` or
    ``full/w,h``), which a level of one tile already is unless it is the full size.
    """
    if width < 1 or height < 1:
        raise ImageRejectedError(f"image is {width}x{height}: nothing to tile")
    tile = options.tile_size
    factors = tuple(sorted(set(options.scale_factors))) or auto_scale_factors(width, height, tile)
    objects: dict[str, TileObject] = {}

    def add(scale: int, region: tuple[int, int, int, int], size: tuple[int, int], path: str):
        # Two requests with one path are the same image: the first (finest level) is kept.
        objects.setdefault(path, TileObject(scale, region, size, path))

    full = (0, 0, width, height)
    add(1, full, (width, height), full_image_path(options))
    for scale in factors:
        for region, size in level_tiles(width, height, tile, scale):
            add(scale, region, size, object_path(region, size, width, height, options))
    fitting = [s for s in factors if max(level_size(width, height, s)) <= tile]
    size_scales = fitting or [max(factors)]
    sizes = []
    for scale in sorted(size_scales, reverse=True):
        size = level_size(width, height, scale)
        sizes.append(size)
        explicit = f"{size[0]}," if options.api_version == 2 else f"{size[0]},{size[1]}"
        add(scale, full, size, f"full/{explicit}/0/{options.quality}.{options.format}")
    return Plan(width, height, options, factors, tuple(sizes), tuple(objects.values()))


def info_document(plan: Plan, base_id: str) -> dict[str, Any]:
    """A Level 0 ``info.json`` of Image API 2 or 3 for ``plan``."""
    opts = plan.options
    sizes = [{"width": w, "height": h} for w, h in plan.sizes]
    tiles = [
        {
            "width": opts.tile_size,
            "height": opts.tile_size,
            "scaleFactors": list(plan.scale_factors),
        }
    ]
    if opts.api_version == 2:
        return {
            "@context": CONTEXT[2],
            "@id": base_id,
            "protocol": PROTOCOL,
            "width": plan.width,
            "height": plan.height,
            "profile": [
                LEVEL0_V2,
                {"formats": [opts.format], "qualities": [opts.quality], "supports": []},
            ],
            "sizes": sizes,
            "tiles": tiles,
        }
    info: dict[str, Any] = {
        "@context": CONTEXT[3],
        "id": base_id,
        "type": "ImageService3",
        "protocol": PROTOCOL,
        "profile": "level0",
        "width": plan.width,
        "height": plan.height,
        "sizes": sizes,
        "tiles": tiles,
    }
    # Level 0 of Image API 3 promises jpg and default; anything else is announced as extra.
    if opts.format != "jpg":
        info["extraFormats"] = [opts.format]
        info["preferredFormats"] = [opts.format]
    if opts.quality != "default":
        info["extraQualities"] = [opts.quality]
    return info


def service_id(endpoint: str, target: str) -> str:
    """``{endpoint}/{target}``, the target percent-encoded segment by segment (its ``/`` kept,
    so that the id's paths are the store's keys behind static hosting)."""
    return f"{endpoint.rstrip('/')}/{quote(target, safe='/')}"


# --- pixels -----------------------------------------------------------------------------------


def _already_srgb(image: pyvips.Image) -> bool:
    """Whether :func:`to_srgb` would leave the pixels as they are: 8-bit sRGB or grey, with no
    profile or an sRGB one (most camera and web JPEGs)."""
    if image.format != "uchar" or image.interpretation not in ("srgb", "b-w"):
        return False
    if not image.get_typeof("icc-profile-data"):
        return True
    return "srgb" in _icc_description(image.get("icc-profile-data")).lower()


def _shrink_to(image: pyvips.Image, factor: int, size: tuple[int, int]) -> pyvips.Image:
    """Box-shrink ``image`` by ``factor`` to exactly ``size`` (a level is ``ceil(side/s)``)."""
    out = image.shrink(factor, factor, ceil=True)
    if (out.width, out.height) != size:
        out = out.embed(0, 0, size[0], size[1], extend="copy")
    return out.copy_memory()


_KEEP_NONE = pyvips.enums.ForeignKeep.NONE
# Sources above this are re-encoded rather than read whole to be copied.
COPY_SOURCE_MAX_BYTES = 256 << 20


def encode_tile(image: pyvips.Image, fmt: str, jpeg_quality: int = JPEG_Q) -> bytes:
    """Encode one tile with no metadata (JPEG at ``jpeg_quality``, the tool's by default)."""
    if fmt == "jpg":
        return image.jpegsave_buffer(Q=jpeg_quality, keep=_KEEP_NONE)
    if fmt == "png":
        return image.pngsave_buffer(keep=_KEEP_NONE)
    if fmt == "webp":
        return image.webpsave_buffer(keep=_KEEP_NONE)
    if fmt == "tif":
        return image.tiffsave_buffer(keep=_KEEP_NONE, compression="deflate")
    return image.gifsave_buffer(keep=_KEEP_NONE)


# --- writing ----------------------------------------------------------------------------------


def put(store: Store, key: str, data: bytes, content_type: str, cache_control: str) -> None:
    """Write one object with its Content-Type and Cache-Control (which S3 keeps as headers;
    a disk store ignores it)."""
    write_object(store, key, data, content_type, cache_control)


@dataclass
class _Written:
    """What a seeding run has written so far (shared by the pool's threads)."""

    before: set[str]
    created: list[str] = field(default_factory=list)
    objects: int = 0
    bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str, size: int) -> None:
        with self.lock:
            self.objects += 1
            self.bytes += size
            if key not in self.before:
                self.created.append(key)


def already_seeded(store: Store, target: str) -> bool:
    """Whether ``{target}/info.json`` exists (written last, it marks a complete pyramid). An
    unreadable answer (S3 permissions) counts as not seeded: the image is seeded again."""
    try:
        store.read(f"{target}/{INFO_NAME}")
    except SourceNotFoundError:
        return False
    except StoreError as exc:
        log.warning(
            "cannot tell whether already seeded", extra={"target": target, "error": str(exc)}
        )
        return False
    return True


def seed_image(
    source_key: str,
    target: str,
    source: Store,
    store: Store,
    config: Config,
    options: TileOptions,
    endpoint: str,
    workers: int = 16,
) -> dict[str, Any]:
    """Seed the tiles, sizes, full image and ``info.json`` of one image under ``{target}/``.

    Raises an :class:`~.errors.IIIFProcessError` naming what was wrong; then nothing this run
    created is left in ``store``. Returns a summary of what was written.
    """
    started = time.monotonic()
    source_key, target = safe_key(source_key), safe_key(target)
    workers = max(1, workers)
    with (
        local_source(source, source_key, config.max_source_bytes) as local,
        vips_warnings(source_key),
    ):
        header = probe(local.path, local.size, config.max_pixels)
        plan = plan_tiles(*header.size(True), options)
        base_id = service_id(endpoint, target)
        info = json.dumps(plan.info(base_id), indent=2).encode()
        keys = [f"{target}/{obj.path}" for obj in plan.objects]
        written = _Written(store.existing([*keys, f"{target}/{INFO_NAME}"]))
        try:
            _render_and_write(header, local.path, local.size, plan, target, store, written, workers)
            put(
                store,
                f"{target}/{INFO_NAME}",
                info,
                info_content_type(options.api_version),
                INFO_CACHE_CONTROL,
            )
            written.add(f"{target}/{INFO_NAME}", len(info))
        except BaseException:
            remove_objects([(store, key) for key in written.created], workers, {"target": target})
            raise
    log.info(
        "seeded",
        extra={"uri": source_key, "target": target, "objects": written.objects},
    )
    return {
        "origin": source_key,
        "target": target,
        "id": base_id,
        "info": f"{target}/{INFO_NAME}",
        "width": plan.width,
        "height": plan.height,
        "scale_factors": list(plan.scale_factors),
        "tiles": len(plan.objects),
        "objects": written.objects,
        "bytes": written.bytes,
        "seconds": round(time.monotonic() - started, 3),
    }


def _as_is(header: Any, size: int, options: TileOptions) -> bool:
    """Whether the source's own JPEG data, metadata removed, can be the full-size image: its
    pixels are what the tiles show (an upright 8-bit sRGB or grey JPEG, default quality, JPEG
    tiles). The full image then costs no encode and loses nothing. Judged from the header."""
    image = header.image
    return (
        header.loader == "jpegload"
        and header.orientation in (0, 1)
        and options.format == "jpg"
        and options.quality in ("default", "color")
        and not image.hasalpha()
        and size <= COPY_SOURCE_MAX_BYTES
        and _already_srgb(image)
    )


def _render_and_write(
    header: Any,
    path: str,
    size: int,
    plan: Plan,
    target: str,
    store: Store,
    written: _Written,
    workers: int,
) -> None:
    """Make every object of ``plan`` from one decode and write them from a bounded pool.

    The pyramid comes from libvips' ``dzsave`` (one streaming pass that box-shrinks level by
    level) whenever the plan is its geometry (automatic scale factors, every object but the full
    image a tile); its objects are checked against the plan, path by path. Otherwise (explicit
    scale factors, an image within one tile) the levels are shrunk here, each from the previous.
    """
    options = plan.options
    full_path = full_image_path(options)
    full_data = full_image_as_is(header, size, options)
    image: pyvips.Image | None = None
    if _dzsave_geometry(plan):
        if full_data is None:
            image = _decode_header(header, options.format, options.quality)
        try:
            data = _dzsave_objects(header.image if image is None else image, plan)
        except pyvips.Error as exc:
            raise ImageRejectedError(
                f"cannot decode {header.loader} image: {vips_message(exc)}"
            ) from None
        if data is not None:
            if full_data is None:
                assert image is not None
                full_data = _encode(image, options.format)
            data[full_path] = full_data
            content_type = FORMATS[options.format]
            jobs = [
                functools.partial(_put_tile, store, f"{target}/{p}", d, content_type, written)
                for p, d in data.items()
            ]
            _run_jobs(iter([jobs]), workers)
            return
        log.warning(
            "dzsave's pyramid differs from the plan; tiling without it", extra={"target": target}
        )
        if image is None:  # the sequential source was read by dzsave: decode it again
            header = probe(path, size, 0)
    if image is None:
        image = _decode_header(header, options.format, options.quality)
    _write_pyramid(image, plan, target, store, written, workers, full_data)


def _dzsave_geometry(plan: Plan) -> bool:
    """Whether ``dzsave`` makes exactly the plan's tiles: automatic scale factors, and the
    one-tile level is not the full size (dzsave does not write the size path of that case)."""
    auto = auto_scale_factors(plan.width, plan.height, plan.options.tile_size)
    return plan.scale_factors == auto and len(auto) > 1


def _dzsave_objects(
    image: pyvips.Image, plan: Plan, jpeg_quality: int = JPEG_Q
) -> dict[str, bytes] | None:
    """Every tile of ``plan`` (all objects but the full image) from one ``dzsave`` into memory,
    by the plan's path; None when dzsave's tiles are not exactly the plan's."""
    options = plan.options
    # JPEG tiles take dzsave's own Q and no suffix: libvips (8.15+) then encodes each tile
    # straight from the strip in memory ("direct mode"); any suffix, even ".jpg", makes it build
    # a save pipeline per tile instead, about a third more CPU for byte-identical tiles.
    encoding: dict[str, Any] = (
        {"Q": jpeg_quality} if options.format == "jpg" else {"suffix": f".{options.format}"}
    )
    archive = image.dzsave_buffer(
        basename="t",
        layout="iiif3" if options.api_version == 3 else "iiif",
        tile_size=options.tile_size,
        overlap=0,
        container="zip",
        compression=0,
        keep=_KEEP_NONE,
        **encoding,
    )
    full = (0, 0, plan.width, plan.height)
    wanted: dict[tuple[tuple[int, int, int, int], int], str] = {
        (obj.region, obj.size[0]): obj.path for obj in plan.objects
    }
    found: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(archive)) as members:
        for name in members.namelist():
            parts = name.split("/")
            if len(parts) != 5 or parts[0] != "t":
                continue  # t/info.json, vips-properties.xml
            region_part, size_part = parts[1], parts[2]
            try:
                region = (
                    full if region_part == "full" else tuple(int(v) for v in region_part.split(","))
                )
                width = int(size_part.split(",")[0])
            except ValueError:
                return None
            path = wanted.get((region, width))  # type: ignore[arg-type]
            if path is None:
                return None
            found[path] = members.read(name)
    missing = {obj.path for obj in plan.objects} - set(found) - {full_image_path(options)}
    return None if missing else found


def prepare_pixels(image: pyvips.Image, fmt: str = "jpg", quality: str = "default") -> pyvips.Image:
    """The pixels tiles show, from an oriented image (lazily: nothing is computed here): 8-bit
    sRGB, alpha flattened onto white for JPEG (as the derivatives are), the quality applied."""
    image = image if _already_srgb(image) else to_srgb(image)
    if fmt == "jpg" and image.hasalpha():
        image = image.flatten(background=255)
    return apply_quality(image, Quality(quality))


def full_image_is_source(header: Any, size: int, options: TileOptions) -> bool:
    """Whether the full-size image will be the source's own JPEG data (see :func:`_as_is`)."""
    return _as_is(header, size, options)


def full_image_as_is(
    header: Any,
    size: int,
    options: TileOptions,
    read: Callable[[], tuple[bytes, JpegLayout] | None] | None = None,
) -> bytes | None:
    """The full-size image Level 0 requires as the source's own JPEG data without its metadata
    (no encode, no loss), when that is what the tiles show (:func:`_as_is`) and a browser shows
    the JPEG as it is (:func:`~.transform.browser_jpeg`: no trailer after its end, no metadata
    the stripping would leave in); else None. ``read`` gives the source's bytes and layout
    (default: read them from ``header``'s file)."""
    if not _as_is(header, size, options):
        return None
    found = read() if read is not None else browser_jpeg(header)
    if found is None:
        return None
    data, layout = found
    return published_jpeg(data, layout, keep_all=False, orientation=1)


def pyramid_objects(
    pixels: Callable[[], pyvips.Image],
    plan: Plan,
    *,
    jpeg_quality: int = JPEG_Q,
    full_data: bytes | None = None,
    workers: int = 1,
) -> dict[str, bytes]:
    """Every object of ``plan`` (tiles, sizes, the full image), encoded in memory, by path.

    ``pixels()`` gives the image's pixels as :func:`prepare_pixels` makes them: the same image
    each call for a decoded one, a fresh pass over the file for a streamed one (each pass here
    reads it once, top to bottom). The same geometry and encoding as seeding: ``dzsave`` when the
    plan is its geometry (checked path by path), else levels shrunk one from another and cropped,
    encoded on ``workers`` threads. ``full_data``, when given, is the full image (see
    :func:`full_image_as_is`).
    """
    options = plan.options
    full_path = full_image_path(options)
    if _dzsave_geometry(plan):
        try:
            data = _dzsave_objects(pixels(), plan, jpeg_quality)
        except pyvips.Error as exc:
            raise ImageRejectedError(f"tiles failed: {vips_message(exc)}") from None
        if data is not None:
            data[full_path] = full_data or _encode(pixels(), options.format, jpeg_quality)
            return data
        log.warning("dzsave's pyramid differs from the plan; tiling without it")
    out: dict[str, bytes] = {}
    lock = threading.Lock()
    levels: dict[int, pyvips.Image] = {1: pixels()}

    def job(level: pyvips.Image, obj: TileObject) -> None:
        if full_data and obj.path == full_path:
            data = full_data
        else:
            left, top = obj.region[0] // obj.scale, obj.region[1] // obj.scale
            whole = (left, top, *obj.size) == (0, 0, level.width, level.height)
            tile = level if whole else level.crop(left, top, obj.size[0], obj.size[1])
            try:
                data = encode_tile(tile, options.format, jpeg_quality)
            except pyvips.Error as exc:
                raise ImageRejectedError(f"tile {obj.path} failed: {vips_message(exc)}") from None
        with lock:
            out[obj.path] = data

    def batches() -> Iterator[list[Callable[[], None]]]:
        by_scale: dict[int, list[TileObject]] = {}
        for obj in plan.objects:
            by_scale.setdefault(obj.scale, []).append(obj)
        for scale in sorted(by_scale):
            level = _level(levels, scale, plan)
            yield [functools.partial(job, level, obj) for obj in by_scale[scale]]

    _run_jobs(batches(), max(1, workers))
    return out


def _decode_header(header: Any, fmt: str, quality: str) -> pyvips.Image:
    """The one decode of a probed source: the whole image into memory, oriented (EXIF), in
    8-bit sRGB, alpha flattened onto white for JPEG, the quality applied. (No metadata needs
    removing: every object is saved with none.)"""
    try:
        decoded = header.image.copy_memory()
        image = decoded.autorot() if header.orientation not in (0, 1) else decoded
        image = prepare_pixels(image, fmt, quality)
        return decoded if image is decoded else image.copy_memory()
    except pyvips.Error as exc:
        raise ImageRejectedError(
            f"cannot decode {header.loader} image: {vips_message(exc)}"
        ) from None


def _encode(image: pyvips.Image, fmt: str, jpeg_quality: int = JPEG_Q) -> bytes:
    try:
        return encode_tile(image, fmt, jpeg_quality)
    except pyvips.Error as exc:
        raise ImageRejectedError(f"full-size image failed: {vips_message(exc)}") from None


def _put_tile(store: Store, key: str, data: bytes, content_type: str, written: _Written) -> None:
    put(store, key, data, content_type, TILE_CACHE_CONTROL)
    written.add(key, len(data))


def _run_jobs(batches: Iterator[list[Callable[[], None]]], workers: int) -> None:
    """Run every job of every batch on a pool of ``workers`` threads (a batch is taken only
    when the previous one is queued: levels are made as their tiles are needed). The first
    failure cancels what has not started, waits for what has, and is raised."""
    futures: list[Future[None]] = []
    with ThreadPoolExecutor(workers, thread_name_prefix="iiif-tiles") as pool:
        try:
            for batch in batches:
                futures += [pool.submit(job) for job in batch]
                if any(f.done() and f.exception() for f in futures):
                    break
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                error = future.exception()
                if error is not None:
                    raise error
        except BaseException:
            for future in futures:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _write_pyramid(
    image: pyvips.Image,
    plan: Plan,
    target: str,
    store: Store,
    written: _Written,
    workers: int,
    full_data: bytes | None = None,
) -> None:
    """Make each level from the previous one and hand its objects to a bounded pool that crops,
    encodes and writes them; the first failure stops the rest and is raised."""
    fmt = plan.options.format
    content_type = FORMATS[fmt]
    by_scale: dict[int, list[TileObject]] = {}
    for obj in plan.objects:
        by_scale.setdefault(obj.scale, []).append(obj)
    levels: dict[int, pyvips.Image] = {1: image}
    full_path = full_image_path(plan.options)

    def job(level: pyvips.Image, obj: TileObject) -> None:
        x, y, _, _ = obj.region
        left, top = x // obj.scale, y // obj.scale
        if (left, top, *obj.size) == (0, 0, level.width, level.height):
            tile = level
        else:
            tile = level.crop(left, top, obj.size[0], obj.size[1])
        try:
            data = full_data if full_data and obj.path == full_path else encode_tile(tile, fmt)
        except pyvips.Error as exc:
            raise ImageRejectedError(f"tile {obj.path} failed: {vips_message(exc)}") from None
        _put_tile(store, f"{target}/{obj.path}", data, content_type, written)

    def batches() -> Iterator[list[Callable[[], None]]]:
        for scale in sorted(by_scale):
            level = _level(levels, scale, plan)
            yield [functools.partial(job, level, obj) for obj in by_scale[scale]]

    _run_jobs(batches(), workers)


def _level(levels: dict[int, pyvips.Image], scale: int, plan: Plan) -> pyvips.Image:
    """The level at ``scale``, shrunk from the coarsest level made so far that divides it."""
    if scale not in levels:
        parent = max(s for s in levels if scale % s == 0)
        size = level_size(plan.width, plan.height, scale)
        try:
            levels[scale] = _shrink_to(levels[parent], scale // parent, size)
        except pyvips.Error as exc:
            raise ImageRejectedError(f"level 1/{scale} failed: {vips_message(exc)}") from None
    return levels[scale]
