"""The task's memory: the container's real limit (cgroup v2 or v1), the budget the images may
take, each image's decoded size, and the gate that admits decodes against the budget.

On Fargate the task's memory is a cgroup limit, far below the host's RAM that ``/proc/meminfo``
and ``sysconf`` report; a budget taken from the host's RAM lets a worker decode past the limit and
be killed by the kernel. The limit is read from the process's own cgroup (``/proc/self/cgroup``)
and every ancestor up to the mount point, taking the smallest, so it is right both inside a
cgroup namespace (the container sees its cgroup as the root) and outside one (a child cgroup of a
test or a host).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ImageRejectedError

# Resident memory of one process that holds no image: the interpreter, libvips and its buffers.
PROCESS_BASELINE = 150 << 20
# Of the memory left once the processes are counted, the part images may take; the rest covers
# the page cache of streamed sources, libvips' tile caches and allocator fragmentation.
IMAGE_SHARE = 0.85
# The smallest budget ever used (a tiny limit still processes small images).
MIN_BUDGET = 256 << 20
# cgroup v1 writes "no limit" as a huge page-aligned number.
_UNLIMITED_V1 = 1 << 62

_FORMAT_NAMES = {
    "uchar": "8-bit",
    "char": "8-bit signed",
    "ushort": "16-bit",
    "short": "16-bit signed",
    "uint": "32-bit",
    "int": "32-bit signed",
    "float": "32-bit float",
    "double": "64-bit float",
    "complex": "64-bit complex",
    "dpcomplex": "128-bit complex",
}
SAMPLE_BYTES = {
    "uchar": 1,
    "char": 1,
    "ushort": 2,
    "short": 2,
    "uint": 4,
    "int": 4,
    "float": 4,
    "double": 8,
    "complex": 8,
    "dpcomplex": 16,
}


def _read_limit(path: Path) -> int | None:
    """One limit file's value in bytes, or None for "max", unlimited, absent or unreadable."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 0 < value < _UNLIMITED_V1 else None


def _own_cgroups(proc_cgroup: Path) -> tuple[str | None, str | None]:
    """This process's cgroup paths: (v2 unified path, v1 memory controller path)."""
    unified = memory = None
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            unified = path
        elif "memory" in controllers.split(","):
            memory = path
    return unified, memory


def _smallest_along(mount: Path, path: str | None, name: str) -> int | None:
    """The smallest limit ``name`` of the cgroup at ``path`` under ``mount`` and its ancestors,
    including the mount point itself (what a container sees as its own cgroup)."""
    limits: list[int] = []
    directory = mount
    candidates = [mount]
    for part in (path or "").strip("/").split("/"):
        if part:
            directory = directory / part
            candidates.append(directory)
    for candidate in candidates:
        value = _read_limit(candidate / name)
        if value is not None:
            limits.append(value)
    return min(limits) if limits else None


def cgroup_memory_limit(
    cgroup_root: str | os.PathLike[str] = "/sys/fs/cgroup",
    proc_cgroup: str | os.PathLike[str] = "/proc/self/cgroup",
) -> int | None:
    """The memory limit of this process's cgroup in bytes (cgroup v2 ``memory.max`` or v1
    ``memory.limit_in_bytes``), or None when there is none.

    ``cgroup_root`` and ``proc_cgroup`` are parameters so that a test can pass a fake tree.
    """
    root = Path(cgroup_root)
    unified, memory = _own_cgroups(Path(proc_cgroup))
    limits = [
        _smallest_along(root, unified, "memory.max"),  # v2: the unified hierarchy at the root
        _smallest_along(root / "memory", memory, "memory.limit_in_bytes"),  # v1
    ]
    found = [value for value in limits if value is not None]
    return min(found) if found else None


def physical_memory() -> int:
    """The machine's RAM in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_limit(
    cgroup_root: str | os.PathLike[str] = "/sys/fs/cgroup",
    proc_cgroup: str | os.PathLike[str] = "/proc/self/cgroup",
) -> int:
    """The memory this task may use: its cgroup limit, or the RAM when that is smaller."""
    limit = cgroup_memory_limit(cgroup_root, proc_cgroup)
    ram = physical_memory()
    return min(limit, ram) if limit else ram


def memory_budget(processes: int = 1, limit: int | None = None) -> int:
    """Bytes the images of all workers may take together: of the memory ``limit`` (default: the
    task's, :func:`memory_limit`) less a baseline per process (the parent and each worker),
    :data:`IMAGE_SHARE`; at least :data:`MIN_BUDGET`."""
    total = memory_limit() if limit is None else limit
    free = total - PROCESS_BASELINE * max(1, processes)
    return max(MIN_BUDGET, int(free * IMAGE_SHARE))


def decoded_size(width: int, height: int, bands: int, sample_format: str) -> int:
    """Bytes of the decoded pixels: width x height x bands x bytes per sample."""
    return width * height * bands * SAMPLE_BYTES.get(sample_format, 8)


def describe_decoded(width: int, height: int, bands: int, sample_format: str) -> str:
    """``14142x14142, 4 bands of 32-bit float = 3200 MB decoded``."""
    size = decoded_size(width, height, bands, sample_format)
    kind = _FORMAT_NAMES.get(sample_format, sample_format)
    plural = "s" if bands != 1 else ""
    return f"{width}x{height}, {bands} band{plural} of {kind} = {mb(size)} decoded"


def mb(amount: int) -> str:
    """Bytes as whole megabytes (MiB), for messages."""
    return f"{amount / (1 << 20):.0f} MB"


class OverBudgetError(ImageRejectedError):
    """An image needs more memory than the whole budget: it can never be admitted."""


def check_fits(amount: int, budget: int, what: str = "") -> None:
    """Raise :class:`OverBudgetError` when one image alone needs more than the whole budget."""
    if amount > budget:
        detail = f" ({what})" if what else ""
        raise OverBudgetError(
            f"image needs about {mb(amount)} of memory{detail}, over the memory budget of "
            f"{mb(budget)} (from the task's memory limit, or iiif_process.memory_budget_mb)"
        )


def admits(used: int, amount: int, budget: int) -> bool:
    """The admission rule, for threads in one process and for the parent of worker processes:
    a decode of ``amount`` bytes may start while ``used`` bytes of ``budget`` are held when it
    fits beside them, or when nothing is held (so an image of the whole budget runs, alone)."""
    return used == 0 or used + amount <= budget


class MemoryGate:
    """Admits decodes while their estimated memory fits a budget, so parallel images never
    decode more than the task holds; an image bigger than the whole budget is refused with
    :class:`OverBudgetError` instead of being decoded into an out-of-memory kill."""

    def __init__(self, budget: int) -> None:
        self.budget = max(1, budget)
        self.used = 0
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self, amount: int, what: str = "") -> Iterator[None]:
        """Hold ``amount`` bytes of the budget for the duration of the block."""
        check_fits(amount, self.budget, what)
        with self._cond:
            self._cond.wait_for(lambda: admits(self.used, amount, self.budget))
            self.used += amount
        try:
            yield
        finally:
            with self._cond:
                self.used -= amount
                self._cond.notify_all()

    def may_publish(self) -> None:
        """Called before the first write of an image; a plain gate never stops one."""
