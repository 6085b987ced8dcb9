"""Issue #12: small dithered derivatives are dithered together in one pass; each comes out as it
does alone, and the rest of the set is untouched by the order this makes things in."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import numpy as np
import pytest
from iiif_process import atkinson as atkinson_module
from iiif_process import transform
from iiif_process.atkinson import atkinson_array, atkinson_arrays
from iiif_process.defaults import DEFAULT_INSTRUCTIONS
from iiif_process.params import parse_instructions
from iiif_process.transform import Renderer, SourceImage, probe

from . import iiif_images as gen


def _grey(rng: random.Random, height: int, width: int) -> np.ndarray:
    rows = [[rng.randint(0, 255) for _ in range(width)] for _ in range(height)]
    return np.array(rows, dtype=np.uint8)


def test_images_dithered_together_are_each_as_alone() -> None:
    rng = random.Random(3)
    images = [_grey(rng, 23, 41), _grey(rng, 9, 17), _grey(rng, 30, 5)]
    together = atkinson_arrays(images)
    assert all(np.array_equal(a, atkinson_array(i)) for a, i in zip(together, images, strict=True))


def test_colour_and_grey_images_dithered_together_are_each_as_alone() -> None:
    rng = random.Random(4)
    colour = np.array(
        [[[rng.randint(0, 255) for _ in range(3)] for _ in range(13)] for _ in range(11)],
        dtype=np.uint8,
    )
    grey = _grey(rng, 7, 29)
    together = atkinson_arrays([colour, grey])
    assert np.array_equal(together[0], atkinson_array(colour))
    assert np.array_equal(together[1], atkinson_array(grey))


def test_images_of_several_strips_dithered_together_are_each_as_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(5)
    images = [_grey(rng, 19, 11), _grey(rng, 6, 23)]
    alone = [atkinson_array(image) for image in images]
    monkeypatch.setattr(atkinson_module, "STRIP", 4)  # 5 strips beside 2
    together = atkinson_arrays(images)
    assert all(np.array_equal(a, b) for a, b in zip(together, alone, strict=True))


def _render_all(path: Path) -> dict[str, str]:
    instructions = parse_instructions(DEFAULT_INSTRUCTIONS)
    renderer = Renderer(SourceImage(probe(str(path), path.stat().st_size, 0)))
    renderer.plan(instructions, 200)
    return {
        ins.label: hashlib.sha1(renderer.render(ins, "x").data).hexdigest() for ins in instructions
    }


def test_default_set_is_byte_identical_with_or_without_the_joint_dither(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ds (a smart crop) is made at dc's turn: z and n, whose copies seed its crop, come first.
    path = tmp_path / "photo.jpg"
    path.write_bytes(gen.jpeg(gen.banded(1800, 1200), Q=90))
    together = _render_all(path)
    monkeypatch.setattr(transform, "JOINT_DITHER_SIDE", 0)
    assert _render_all(path) == together
