"""Fixtures of the iiif-process tests: a source folder, a derivatives folder, and a runner."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pyvips
from iiif_process.process_cli import run

ONE_JPG = {"a": {"size": "full", "format": "jpg"}}


@dataclass
class Workspace:
    """A source directory and a derivatives directory on disk, and the tool run on them."""

    tmp: Path
    source: Path
    out: Path

    def put(self, key: str, data: bytes) -> str:
        """Store a source object; returns its key."""
        path = self.source / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return key

    def config(self, extra: Mapping[str, Any] | None = None) -> Path:
        """A seed-era config file for the two directories (plus ``extra`` blocks)."""
        data: dict[str, Any] = {
            "images": {"source": {"name": "Disk", "path": str(self.source)}},
            "derivatives": {"cache": {"name": "Disk", "path": str(self.out)}},
        }
        data.update(extra or {})
        path = self.tmp / "config.json"
        path.write_text(json.dumps(data))
        return path

    def run(
        self,
        uris: Sequence[str],
        instructions: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Run the tool in-process in the seed form; returns (exit status, stdout object)."""
        ins_path = self.tmp / "instructions.json"
        ins_path.write_text(json.dumps(instructions or ONE_JPG))
        argv = ["-config", str(self.config(config)), "-instructions", str(ins_path), *args]
        for uri in uris:
            argv += ["-uri", uri]
        return run(argv, env or {})

    def read(self, key: str) -> bytes:
        """A derivative's bytes."""
        return (self.out / key).read_bytes()

    def image(self, key: str) -> pyvips.Image:
        """A derivative, decoded."""
        return pyvips.Image.new_from_buffer(self.read(key), "")

    def files(self) -> set[str]:
        """Every file under the derivatives directory, relative to it."""
        return {str(p.relative_to(self.out)) for p in self.out.rglob("*") if p.is_file()}


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A fresh workspace."""
    (tmp_path / "src").mkdir()
    (tmp_path / "out").mkdir()
    return Workspace(tmp_path, tmp_path / "src", tmp_path / "out")
