"""Deep zoom: the memory a pyramid adds, and its documents restored after a failed re-run."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips
from iiif_process.config import DeepZoom
from iiif_process.deepzoom import TILE_FACTOR, Pyramid, tile_options, working_bytes
from iiif_process.errors import IIIFProcessError
from iiif_process.publish import Item, publish
from iiif_process.stores import DiskStore
from iiif_process.tiles import full_image_is_source
from iiif_process.transform import probe


def test_a_copied_source_jpeg_is_counted_twice_in_the_working_memory(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    image = pyvips.Image.black(64, 48).new_from_image([200, 120, 40]).cast("uchar")
    image.jpegsave(str(path), Q=90, strip=True)
    size = path.stat().st_size
    header = probe(str(path), size, 0)
    settings = DeepZoom(tiles=True, public_base_url="https://iiif.test")
    assert full_image_is_source(header, size, tile_options(settings))
    expected = int(header.decoded_bytes * TILE_FACTOR) + 2 * size
    assert working_bytes(header, size, settings) == expected


def test_the_previous_manifest_is_restored_when_a_later_write_fails(tmp_path: Path) -> None:
    store = DiskStore(str(tmp_path))
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "manifest.json").write_bytes(b"old manifest")
    (tmp_path / "k" / "x").write_bytes(b"")  # a file where a directory must go: a real failure
    pyramid = Pyramid("k", 3, {}, b"new info", b"new manifest")
    later = [Item(store, "k/x/y", b"", "text/plain")]
    with pytest.raises(IIIFProcessError):
        publish("k", [pyramid.document_items(store), later])
    assert (tmp_path / "k" / "manifest.json").read_bytes() == b"old manifest"
