"""A cgroup memory limit file reading 0 is no limit (a budget of zero would refuse every image)."""

from __future__ import annotations

from pathlib import Path

from iiif_process.memory import cgroup_memory_limit


def test_a_zero_cgroup_v2_limit_means_no_limit(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "memory.max").write_text("0\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("0::/\n")
    assert cgroup_memory_limit(root, proc) is None
