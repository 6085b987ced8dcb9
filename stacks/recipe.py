"""The recipe: a short hash of everything that decides what the task writes for an image.

The ledger records it beside each key, so an image processed with other settings is processed
again while an unchanged one is skipped (docs/contracts.md, `IIIF_PROCESS_RECIPE`). It covers the
go-iiif config and instructions baked into the image and, when tiles are on, the deep-zoom
settings (issue #11): tile size, Image API version and where the base URL comes from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

CONTAINER_DIR = Path(__file__).resolve().parent.parent / "container"
"""Where `config.json` and `instructions.json` live (baked into the image from there)."""

RECIPE_HEX_DIGITS = 16


@dataclass(frozen=True, kw_only=True)
class TileRecipe:
    """The deep-zoom settings that change the objects written for an image.

    `base_url` is the `publicBaseUrl` setting when given, else the name of its source
    (`cloudfront` or `bucket`): a CloudFront domain is not known until deployment, and it only
    changes when the distribution is replaced.
    """

    tiles: bool
    iiif_api_version: int
    tile_size: int
    base_url: str

    def as_bytes(self) -> bytes:
        """Canonical JSON of the settings; empty with tiles off (then none of them matters)."""
        if not self.tiles:
            return b""
        settings = {
            "tiles": True,
            "iiifApiVersion": self.iiif_api_version,
            "tileSize": self.tile_size,
            "publicBaseUrl": self.base_url,
        }
        return json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()


def recipe_of(config: bytes, instructions: bytes, tiles: bytes = b"") -> str:
    """The first 16 hex digits of sha256(config + NUL + instructions [+ NUL + tiles]).

    Without tile settings (tiles off) the recipe is the one of issue #9, so turning tiles off
    re-processes nothing that was made before tiles existed.
    """
    data = config + b"\0" + instructions
    if tiles:
        data += b"\0" + tiles
    return hashlib.sha256(data).hexdigest()[:RECIPE_HEX_DIGITS]


def image_recipe(container_dir: Path = CONTAINER_DIR, tiles: TileRecipe | None = None) -> str:
    """The recipe of the config and instructions in `container_dir` (read at synth time) with
    the deep-zoom settings `tiles` (None = tiles off)."""
    return recipe_of(
        (container_dir / "config.json").read_bytes(),
        (container_dir / "instructions.json").read_bytes(),
        tiles.as_bytes() if tiles is not None else b"",
    )
