"""Deep zoom in the pipeline (issue #11): the Level 0 pyramid, ``info.json`` and the
Presentation 3 manifest of one image, made from the decode its derivatives were made from.

Geometry and encoding are :mod:`iiif_process.tiles`' (the ``iiif-tile-seed`` command's): the
pyramid is one ``dzsave`` pass over the decoded pixels, checked path by path against the plan.
What is written where, with which headers, is docs/contracts.md "Deep zoom" and
docs/deep-zoom-task.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyvips

from .config import DeepZoom
from .manifest import CONTENT_TYPE as MANIFEST_CONTENT_TYPE
from .manifest import NAME as MANIFEST_NAME
from .manifest import manifest_document
from .params import FORMATS
from .publish import Item
from .stores import Store
from .tiles import (
    INFO_CACHE_CONTROL,
    INFO_NAME,
    TILE_CACHE_CONTROL,
    TileOptions,
    full_image_as_is,
    full_image_is_source,
    info_content_type,
    plan_tiles,
    prepare_pixels,
    pyramid_objects,
    service_id,
)
from .transform import Probe, SourceImage

# Memory the pyramid adds to an image's peak, per byte of decoded pixels (admission by the
# memory gate): dzsave's strips per level and its output, every tile encoded and held until
# published (copied once out of dzsave's archive). Measured: a 24 MP photograph (69 MB decoded)
# peaks 48 MB higher with tiles than without when both decode at full size; 0.6 covers that
# with the source copy counted apart.
TILE_FACTOR = 0.6


def tile_options(settings: DeepZoom) -> TileOptions:
    """The pyramid the pipeline writes: JPEG tiles of quality ``default``, automatic scale
    factors (1, 2, 4, ... until the image fits one tile)."""
    return TileOptions(api_version=settings.api_version, tile_size=settings.tile_size)


def working_bytes(header: Probe, source_size: int, settings: DeepZoom) -> int:
    """What making the pyramid adds to the image's memory reservation: :data:`TILE_FACTOR` of
    the decoded pixels, plus the source read twice when its own JPEG data becomes the full
    image (the file, then the copy without metadata)."""
    extra = int(header.decoded_bytes * TILE_FACTOR)
    if full_image_is_source(header, source_size, tile_options(settings)):
        extra += 2 * source_size
    return extra


@dataclass(frozen=True)
class Pyramid:
    """One image's deep-zoom objects, encoded: ``objects`` by path under the image's key (the
    tiles, the sizes, the full image), ``info.json`` and ``manifest.json``."""

    key: str
    api_version: int
    objects: dict[str, bytes]
    info: bytes
    manifest: bytes

    def tile_items(self, store: Store) -> list[Item]:
        """The images (published with the derivatives, before the documents)."""
        content_type = FORMATS["jpg"]
        return [
            Item(store, f"{self.key}/{path}", data, content_type, TILE_CACHE_CONTROL)
            for path, data in self.objects.items()
        ]

    def document_items(self, store: Store) -> list[Item]:
        """``info.json`` and ``manifest.json`` (published after every image)."""
        return [
            Item(
                store,
                f"{self.key}/{INFO_NAME}",
                self.info,
                info_content_type(self.api_version),
                INFO_CACHE_CONTROL,
                restore=True,
            ),
            Item(
                store,
                f"{self.key}/{MANIFEST_NAME}",
                self.manifest,
                MANIFEST_CONTENT_TYPE,
                INFO_CACHE_CONTROL,
                restore=True,
            ),
        ]


def make_pyramid(
    source: SourceImage,
    header: Probe,
    source_size: int,
    key: str,
    settings: DeepZoom,
    jpeg_quality: int,
    workers: int = 1,
) -> Pyramid:
    """The pyramid, ``info.json`` and manifest of the image at ``key`` from ``source``, the
    decode the derivatives came from (oriented as the EXIF says; a streamed source is read once
    more, as each of its derivatives is). ``header`` is the probe ``source`` was made from and
    ``source_size`` the source file's size (for the full image copied as is)."""
    options = tile_options(settings)

    def pixels() -> pyvips.Image:
        # Decoded: the same pixels every call (nothing is decoded again). Streamed: a new pass.
        return prepare_pixels(source.base(True), options.format, options.quality)

    plan = plan_tiles(*header.size(True), options)
    objects = pyramid_objects(
        pixels,
        plan,
        jpeg_quality=jpeg_quality,
        # The source's bytes, read once for this and the derivatives' own passthrough.
        full_data=full_image_as_is(header, source_size, options, source.as_published),
        workers=workers,
    )
    service = service_id(settings.public_base_url, key)
    info = json.dumps(plan.info(service), indent=2).encode()
    manifest = json.dumps(manifest_document(service, key, plan), indent=2).encode()
    return Pyramid(key, options.api_version, objects, info, manifest)
