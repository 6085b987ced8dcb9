"""Key safety and the disk / memory stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from iiif_process.errors import SourceNotFoundError, StoreError, UnsafeURIError
from iiif_process.stores import DiskStore, MemoryStore, safe_key

from . import iiif_images as gen
from .conftest import Workspace


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("../secret.jpg", r"'\.\.' segment"),
        ("a/../../b.jpg", r"'\.\.' segment"),
        ("a/./b.jpg", r"'\.' or"),
        ("/etc/passwd", "absolute path"),
        ("\\windows\\x.jpg", "backslash"),
        ("file:///etc/passwd", "scheme"),
        ("s3://other-bucket/x.jpg", "scheme"),
        ("http://example.com/x.jpg", "scheme"),
        ("a\nb.jpg", "control characters"),
        ("a\x00b.jpg", "control characters"),
        ("", "empty"),
        ("x" * 901, "901 bytes, over 900 bytes"),
    ],
)
def test_unsafe_uris_are_refused(uri: str, reason: str) -> None:
    with pytest.raises(UnsafeURIError, match=reason):
        safe_key(uri)


@pytest.mark.parametrize("uri", ["a.jpg", "dir/sub/IMG 1.JPG", "a:b.jpg", "x..y.jpg", "ünï.png"])
def test_ordinary_keys_are_accepted(uri: str) -> None:
    assert safe_key(uri) == uri


def test_unsafe_uri_is_refused_before_any_read(ws: Workspace) -> None:
    (ws.tmp / "secret.jpg").write_bytes(gen.jpeg())
    status, results = ws.run(["../secret.jpg"])
    assert status == 1
    assert "'..' segment" in results["../secret.jpg"]["error"]


def test_symlink_out_of_the_source_is_not_followed(ws: Workspace) -> None:
    (ws.tmp / "secret.jpg").write_bytes(gen.jpeg())
    os.symlink(ws.tmp / "secret.jpg", ws.source / "link.jpg")
    with pytest.raises(UnsafeURIError, match="resolves outside"):
        DiskStore(str(ws.source)).read("link.jpg")


def test_symlinked_directory_in_the_derivatives_store_is_not_written_through(
    tmp_path: Path,
) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "store" / "a.jpg")
    with pytest.raises(UnsafeURIError, match="resolves outside"):
        DiskStore(str(tmp_path / "store")).write("a.jpg/full/full/0/color.jpg", b"x", "image/jpeg")


def test_disk_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    DiskStore(str(tmp_path)).write("a/b.jpg", b"data", "image/jpeg")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b.jpg"]


def test_disk_read_of_a_missing_key(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError):
        DiskStore(str(tmp_path)).read("none.jpg")


def test_disk_write_failure_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"file where a directory is needed")
    with pytest.raises(StoreError, match="cannot write"):
        DiskStore(str(tmp_path)).write("a.jpg/full/full/0/color.jpg", b"x", "image/jpeg")


def test_memory_store_round_trip() -> None:
    store = MemoryStore("t")
    store.write("k.jpg", b"abc", "image/jpeg")
    assert store.read("k.jpg") == b"abc"


def test_memory_store_missing_key() -> None:
    with pytest.raises(SourceNotFoundError, match=r"mem://t/k\.jpg"):
        MemoryStore("t").read("k.jpg")
