"""The task's memory (#8 item 1): the container's real limit read from a fake /sys and /proc,
the budget made from it, admission in one process, and a real 2 GiB, 1-CPU run of the tool in a
child memory cgroup where an image that decodes to gigabytes costs only itself."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from iiif_process.memory import (
    MIN_BUDGET,
    PROCESS_BASELINE,
    MemoryGate,
    OverBudgetError,
    cgroup_memory_limit,
    describe_decoded,
    memory_budget,
    memory_limit,
)
from iiif_process.transform import STREAM_ABOVE

from . import iiif_images as gen

GIB = 1 << 30
TOOL = str(Path(sys.executable).parent / "iiif-process")


def _tree(tmp_path: Path, files: dict[str, str], own: str) -> tuple[Path, Path]:
    """A fake /sys/fs/cgroup holding ``files`` and a fake /proc/self/cgroup naming ``own``."""
    root = tmp_path / "cgroup"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(own)
    return root, proc


# --- the limit ---------------------------------------------------------------------------------


def test_cgroup_v2_memory_max_is_the_limit(tmp_path: Path) -> None:
    # Fargate on cgroup v2: the container sees its own cgroup as the root ("0::/").
    root, proc = _tree(tmp_path, {"memory.max": str(2 * GIB)}, "0::/\n")
    assert cgroup_memory_limit(root, proc) == 2 * GIB


def test_cgroup_v1_limit_in_bytes_is_the_limit(tmp_path: Path) -> None:
    root, proc = _tree(
        tmp_path,
        {"memory/memory.limit_in_bytes": str(4 * GIB)},
        "5:memory:/\n4:cpu,cpuacct:/\n0::/\n",
    )
    assert cgroup_memory_limit(root, proc) == 4 * GIB


def test_cgroup_v2_max_means_no_limit(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, {"memory.max": "max"}, "0::/\n")
    assert cgroup_memory_limit(root, proc) is None


def test_cgroup_v1_unlimited_value_means_no_limit(tmp_path: Path) -> None:
    root, proc = _tree(
        tmp_path, {"memory/memory.limit_in_bytes": "9223372036854771712"}, "3:memory:/\n"
    )
    assert cgroup_memory_limit(root, proc) is None


def test_the_own_child_cgroup_limit_is_found_below_an_unlimited_root(tmp_path: Path) -> None:
    # No cgroup namespace (a test, a host): /proc/self/cgroup names a path below the mount.
    root, proc = _tree(
        tmp_path,
        {
            "memory/memory.limit_in_bytes": "9223372036854771712",
            "memory/tasks/a1/memory.limit_in_bytes": str(2 * GIB),
        },
        "7:memory:/tasks/a1\n",
    )
    assert cgroup_memory_limit(root, proc) == 2 * GIB


def test_the_smallest_limit_along_the_path_wins(tmp_path: Path) -> None:
    root, proc = _tree(
        tmp_path,
        {"memory.max": "max", "task/memory.max": str(GIB), "task/c1/memory.max": str(3 * GIB)},
        "0::/task/c1\n",
    )
    assert cgroup_memory_limit(root, proc) == GIB


def test_no_cgroup_files_means_no_limit(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, {}, "0::/\n")
    assert cgroup_memory_limit(root, proc) is None


def test_the_limit_is_never_above_the_machines_memory(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, {"memory.max": str(1 << 50)}, "0::/\n")
    assert memory_limit(root, proc) == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def test_the_limit_of_a_container_is_below_the_machines_memory(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, {"memory.max": str(GIB)}, "0::/\n")
    assert memory_limit(root, proc) == GIB


# --- the budget -------------------------------------------------------------------------------


def test_the_budget_takes_each_process_baseline_from_the_limit() -> None:
    one, two = memory_budget(2, limit=2 * GIB), memory_budget(3, limit=2 * GIB)
    assert one - two == int(PROCESS_BASELINE * 0.85)


def test_the_budget_of_a_2_gib_task_with_one_worker() -> None:
    # The parent and one worker: (2048 - 300) MB x 0.85.
    assert memory_budget(2, limit=2 * GIB) >> 20 == 1485


def test_the_budget_never_falls_below_the_minimum() -> None:
    assert memory_budget(8, limit=512 << 20) == MIN_BUDGET


def test_decoded_size_counts_bands_and_bytes_per_sample() -> None:
    assert describe_decoded(1000, 500, 4, "float") == (
        "1000x500, 4 bands of 32-bit float = 8 MB decoded"
    )


# --- admission in one process ------------------------------------------------------------------


def test_memory_gate_refuses_an_image_larger_than_the_whole_budget() -> None:
    gate = MemoryGate(100 << 20)
    with pytest.raises(OverBudgetError, match=r"needs about 101 MB .* budget of 100 MB"):
        gate.reserve(101 << 20, "x").__enter__()


def test_memory_gate_admits_an_image_as_large_as_the_whole_budget() -> None:
    gate = MemoryGate(100)
    with gate.reserve(100):
        assert gate.used == 100


def test_memory_gate_holds_a_second_image_until_the_first_frees_its_share() -> None:
    gate = MemoryGate(100)
    entered = threading.Event()

    def second() -> None:
        with gate.reserve(50):
            entered.set()

    with gate.reserve(60):
        worker = threading.Thread(target=second)
        worker.start()
        held = not entered.wait(0.2)
    worker.join(5)
    assert held and entered.is_set()


# --- a real 2 GiB, 1-CPU run --------------------------------------------------------------------


def _own_memory_cgroup() -> Path | None:
    """The directory of this process's cgroup v1 memory controller, if it is writable."""
    base = Path("/sys/fs/cgroup/memory")
    if os.geteuid() != 0 or not (base / "memory.limit_in_bytes").exists():
        return None
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            own = base / path.strip("/")
            return own if os.access(own, os.W_OK) else None
    return None


CgroupFactory = Callable[[int], Path]


@pytest.fixture
def memory_cgroup() -> Iterator[CgroupFactory]:
    """Makes child memory cgroups (cgroup v1) with a limit; removed afterwards."""
    own = _own_memory_cgroup()
    if own is None:
        pytest.skip("needs root and a writable cgroup v1 memory controller to limit a run's memory")
    made: list[Path] = []

    def make(limit: int) -> Path:
        group = own / f"iiif-test-{uuid.uuid4().hex[:12]}"
        try:
            group.mkdir()
            made.append(group)
            (group / "memory.limit_in_bytes").write_text(str(limit))
        except OSError as exc:
            pytest.skip(f"cannot create a memory cgroup here: {exc}")
        return group

    yield make
    for group in made:
        for _ in range(50):
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)  # the last processes are still leaving it


def tiff_bomb(width: int, height: int, bands: int, sample_format: str) -> bytes:
    """A valid TIFF of about 100 KB that decodes to ``width x height x bands`` samples of zeros:
    one deflated row of zeros, which every row's strip points at."""
    bits, code = {"float": (32, 3), "uchar": (8, 1)}[sample_format]
    row = zlib.compress(bytes(width * bands * bits // 8), 9)
    row += b"\0" * (len(row) % 2)
    fields: list[tuple[int, str, list[int]]] = [
        (256, "L", [width]),
        (257, "L", [height]),
        (258, "H", [bits] * bands),
        (259, "H", [8]),  # deflate
        (262, "H", [1]),  # min-is-black
        (273, "L", [0] * height),  # strip offsets: filled in below
        (277, "H", [bands]),
        (278, "L", [1]),  # one row per strip
        (279, "L", [len(row)] * height),
        (284, "H", [1]),  # samples interleaved
        *([(338, "H", [0] * (bands - 1))] if bands > 1 else []),  # extra samples
        (339, "H", [code] * bands),
    ]
    at = 8 + 2 + 12 * len(fields) + 4  # after the header and the directory
    row_at, at = at, at + len(row)
    fields[5] = (273, "L", [row_at] * height)
    entries, arrays = b"", b""
    for tag, kind, values in fields:
        raw = struct.pack(f"<{len(values)}{kind}", *values)
        if len(raw) <= 4:
            value = raw.ljust(4, b"\0")
        else:
            value = struct.pack("<I", at + len(arrays))
            arrays += raw
        entries += struct.pack("<HHI", tag, 3 if kind == "H" else 4, len(values)) + value
    directory = struct.pack("<H", len(fields)) + entries + struct.pack("<I", 0)
    return b"II" + struct.pack("<HI", 42, 8) + directory + row + arrays


def _run_in_cgroup(
    group: Path,
    tmp_path: Path,
    uris: list[str],
    budget_mb: int = 0,
    instructions: dict[str, Any] | None = None,
) -> subprocess.CompletedProcess:
    """The tool's console script, as the image runs it, inside ``group`` on one CPU."""
    config: dict[str, Any] = {
        "images": {"source": {"name": "Disk", "path": str(tmp_path / "src")}},
        "derivatives": {"cache": {"name": "Disk", "path": str(tmp_path / "out")}},
    }
    if budget_mb:
        config["iiif_process"] = {"memory_budget_mb": budget_mb}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "instructions.json").write_text(
        json.dumps(instructions or {"b": {"size": "!64,64", "format": "jpg"}})
    )
    procs = str(group / "cgroup.procs")

    def enter() -> None:
        with open(procs, "w") as handle:
            handle.write(str(os.getpid()))
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    argv = [TOOL, "-config", str(tmp_path / "config.json")]
    argv += ["-instructions", str(tmp_path / "instructions.json")]
    for uri in uris:
        argv += ["-uri", uri]
    env = {k: v for k, v in os.environ.items() if not k.startswith("IIIF_")}
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=300, preexec_fn=enter, env=env
    )


def _batch(tmp_path: Path, poison: bytes, position: int) -> list[str]:
    """Two good images and the poison at ``position``; returns the URIs in order."""
    (tmp_path / "src").mkdir()
    (tmp_path / "out").mkdir()
    uris = ["a.jpg", "b.jpg"]
    for uri in uris:
        (tmp_path / "src" / uri).write_bytes(gen.jpeg())
    (tmp_path / "src" / "poison.tif").write_bytes(poison)
    uris.insert(position, "poison.tif")
    return uris


def _published(tmp_path: Path, results: dict[str, Any]) -> list[str]:
    return [
        uri
        for uri, entry in results.items()
        if "dimensions" in entry and (tmp_path / "out" / uri).is_dir()
    ]


@pytest.mark.parametrize("position", [0, 1, 2])
def test_item1_an_image_decoding_to_gigabytes_fails_alone_in_a_2_gib_1_cpu_run(
    memory_cgroup: CgroupFactory, tmp_path: Path, position: int
) -> None:
    # 14100 x 14100 (199 MP, within the 200 MP pixel limit) x 8 bands of 32-bit float: 100 KB on
    # disk, 6 GB decoded. Refused from its header against the budget of a 2 GiB task.
    uris = _batch(tmp_path, tiff_bomb(14100, 14100, 8, "float"), position)
    run = _run_in_cgroup(memory_cgroup(2 * GIB), tmp_path, uris)
    results = json.loads(run.stdout)
    assert (run.returncode, list(results)) == (1, uris)
    assert _published(tmp_path, results) == ["a.jpg", "b.jpg"]
    assert re.fullmatch(
        r"image needs about \d+ MB of memory \(14100x14100, 8 bands of 32-bit float = 6067 MB "
        r"decoded\), over the memory budget of 14\d\d MB .*",
        results["poison.tif"]["error"],
    )
    assert not (tmp_path / "out" / "poison.tif").exists()


@pytest.mark.parametrize("position", [0, 1, 2])
def test_item1_a_worker_killed_by_the_kernel_costs_only_its_image(
    memory_cgroup: CgroupFactory, tmp_path: Path, position: int
) -> None:
    # The kill layer, for whatever the estimate misses: a budget set far above the task's memory
    # admits an image decoded whole into memory (just under the size above which it would be
    # streamed) in a cgroup smaller than that decode; the kernel kills the worker.
    side = int((STREAM_ABOVE * 0.95 / 4) ** 0.5)
    uris = _batch(tmp_path, tiff_bomb(side, side, 4, "uchar"), position)
    # A thumbnail and a full-size copy: one sequential pass cannot make both, so the image is
    # decoded whole (a lone thumbnail is made in one pass that never holds it).
    both = {"b": {"size": "!64,64", "format": "jpg"}, "f": {"size": "full", "format": "png"}}
    run = _run_in_cgroup(
        memory_cgroup(STREAM_ABOVE), tmp_path, uris, budget_mb=100_000, instructions=both
    )
    results = json.loads(run.stdout)
    assert (run.returncode, list(results)) == (1, uris)
    assert _published(tmp_path, results) == ["a.jpg", "b.jpg"]
    assert results["poison.tif"] == {
        "origin": "poison.tif",
        "error": "worker killed by SIGKILL (out of memory?) while processing this image",
    }
    assert not (tmp_path / "out" / "poison.tif").exists()
