"""The recipe: a short hash of the go-iiif config and instructions baked into the image.

The ledger records it beside each key, so an image processed with other settings is processed
again while an unchanged one is skipped (docs/contracts.md, `IIIF_PROCESS_RECIPE`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CONTAINER_DIR = Path(__file__).resolve().parent.parent / "container"
"""Where `config.json` and `instructions.json` live (baked into the image from there)."""

RECIPE_HEX_DIGITS = 16


def recipe_of(config: bytes, instructions: bytes) -> str:
    """The first 16 hex digits of sha256(config + NUL + instructions)."""
    digest = hashlib.sha256(config + b"\0" + instructions).hexdigest()
    return digest[:RECIPE_HEX_DIGITS]


def image_recipe(container_dir: Path = CONTAINER_DIR) -> str:
    """The recipe of the config and instructions in `container_dir`, read at synth time."""
    return recipe_of(
        (container_dir / "config.json").read_bytes(),
        (container_dir / "instructions.json").read_bytes(),
    )
