"""A disk store's source file is read in place, not copied to a temporary file."""

from __future__ import annotations

from pathlib import Path

from iiif_process.stores import DiskStore, local_source


def test_disk_source_is_used_in_place(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"not really a jpeg")
    with local_source(DiskStore(str(tmp_path)), "a.jpg", 0) as local:
        assert Path(local.path).resolve() == (tmp_path / "a.jpg").resolve()
