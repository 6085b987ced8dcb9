"""The task's memory: its cgroup limit (v2 or v1, along its own cgroup's path), the images'
budget, and each image's decoded size (issue #13). The cgroup trees are fake folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from iiif_process import memory
from iiif_process.memory import (
    cgroup_memory_limit,
    decoded_size,
    describe_decoded,
    memory_budget,
    memory_limit,
)

MIB = 1 << 20


def _tree(tmp_path: Path, files: dict[str, str], own: str) -> tuple[Path, Path]:
    """A fake ``/sys/fs/cgroup`` holding ``files`` and a ``/proc/self/cgroup`` saying ``own``."""
    root = tmp_path / "cgroup"
    root.mkdir()
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(own)
    return root, proc


def test_a_v2_limit_of_the_own_cgroup_is_read(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, {"task/memory.max": "1073741824\n"}, "0::/task\n")
    assert cgroup_memory_limit(root, proc) == 1 << 30


def test_the_smallest_limit_along_the_path_wins(tmp_path: Path) -> None:
    files = {"memory.max": "max\n", "a/memory.max": "2000\n", "a/b/memory.max": "3000\n"}
    root, proc = _tree(tmp_path, files, "0::/a/b\n")
    assert cgroup_memory_limit(root, proc) == 2000


def test_max_and_an_empty_file_are_no_limit(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, {"memory.max": "max\n", "a/memory.max": "\n"}, "0::/a\n")
    assert cgroup_memory_limit(root, proc) is None


def test_a_v1_memory_controller_limit_is_read(tmp_path: Path) -> None:
    files = {"memory/docker/x/memory.limit_in_bytes": "536870912\n"}
    root, proc = _tree(tmp_path, files, "12:cpu,cpuacct:/docker/x\n4:memory:/docker/x\n")
    assert cgroup_memory_limit(root, proc) == 512 * MIB


def test_v1_no_limit_is_a_huge_number(tmp_path: Path) -> None:
    files = {"memory/memory.limit_in_bytes": str(1 << 62)}
    root, proc = _tree(tmp_path, files, "4:memory:/\n")
    assert cgroup_memory_limit(root, proc) is None


def test_v1_just_under_its_no_limit_number_is_a_limit(tmp_path: Path) -> None:
    files = {"memory/memory.limit_in_bytes": str((1 << 62) - 1)}
    root, proc = _tree(tmp_path, files, "4:memory:/\n")
    assert cgroup_memory_limit(root, proc) == (1 << 62) - 1


def test_a_limit_of_one_byte_is_a_limit(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, {"memory.max": "1\n"}, "0::/\n")
    assert cgroup_memory_limit(root, proc) == 1


def test_a_line_that_is_not_three_fields_is_skipped(tmp_path: Path) -> None:
    files = {"memory.max": "max\n", "x/memory.max": "1000\n"}
    root, proc = _tree(tmp_path, files, "0::/x:extra\nbroken\n0::/x\n")
    # "0::/x:extra" is three fields (the path keeps its colon); "broken" is skipped.
    assert cgroup_memory_limit(root, proc) == 1000


def test_v2_and_v1_together_give_the_smaller(tmp_path: Path) -> None:
    files = {"a/memory.max": "5000\n", "memory/b/memory.limit_in_bytes": "4000\n"}
    root, proc = _tree(tmp_path, files, "0::/a\n3:memory:/b\n")
    assert cgroup_memory_limit(root, proc) == 4000


def test_no_cgroup_file_at_all_is_no_limit(tmp_path: Path) -> None:
    assert cgroup_memory_limit(tmp_path / "none", tmp_path / "none-either") is None


def test_the_limit_is_the_cgroups_when_under_the_ram(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, {"memory.max": "1000\n"}, "0::/\n")
    assert memory_limit(root, proc) == 1000


def test_without_a_cgroup_limit_the_limit_is_the_ram(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, {"memory.max": "max\n"}, "0::/\n")
    assert memory_limit(root, proc) == memory.physical_memory()


def test_the_ram_is_page_size_times_pages() -> None:
    assert memory.physical_memory() == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def test_the_budget_is_85_percent_of_what_the_processes_leave() -> None:
    # 2 GiB less 150 MiB for each of 3 processes, 85 % of it.
    assert memory_budget(3, limit=2048 * MIB) == int((2048 - 450) * MIB * 0.85)


def test_one_process_is_counted_at_least() -> None:
    assert memory_budget(0, limit=2048 * MIB) == memory_budget(1, limit=2048 * MIB)


def test_the_budget_is_at_least_256_mib() -> None:
    assert memory_budget(8, limit=512 * MIB) == 256 * MIB


BYTES_PER_SAMPLE = [
    ("uchar", 1),
    ("char", 1),
    ("ushort", 2),
    ("short", 2),
    ("uint", 4),
    ("int", 4),
    ("float", 4),
    ("double", 8),
    ("complex", 8),
    ("dpcomplex", 16),
]


@pytest.mark.parametrize(("sample_format", "size"), BYTES_PER_SAMPLE)
def test_decoded_size_is_pixels_times_bands_times_sample_bytes(
    sample_format: str, size: int
) -> None:
    assert decoded_size(30, 20, 3, sample_format) == 30 * 20 * 3 * size


def test_an_unknown_sample_format_counts_8_bytes() -> None:
    assert decoded_size(10, 10, 1, "mystery") == 800


def test_a_decoded_size_is_described_for_messages() -> None:
    assert describe_decoded(14142, 14142, 4, "float") == (
        "14142x14142, 4 bands of 32-bit float = 3052 MB decoded"
    )


def test_one_band_is_singular() -> None:
    assert describe_decoded(1024, 1024, 1, "uchar") == "1024x1024, 1 band of 8-bit = 1 MB decoded"


def test_one_process_leaves_the_limit_less_one_baseline() -> None:
    assert memory_budget(1, limit=2048 * MIB) == int((2048 - 150) * MIB * 0.85)


def test_the_budget_counts_one_process_by_default() -> None:
    assert memory_budget(limit=2048 * MIB) == int((2048 - 150) * MIB * 0.85)


def test_a_cgroup_path_may_hold_a_colon(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, {"memory.max": "max\n", "x:y/memory.max": "1000\n"}, "0::/x:y\n")
    assert cgroup_memory_limit(root, proc) == 1000
