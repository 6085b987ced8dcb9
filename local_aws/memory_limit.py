"""The task's memory limit, enforced on this machine as Fargate enforces it.

On Fargate a task's container runs in a memory cgroup capped at the task definition's memory; a
task that goes over it is killed, its container exits with 137 (SIGKILL) and ECS reports the
container's reason `OutOfMemoryError: Container killed due to memory usage`.

Two ways to do that here, chosen once per runner:
- `CgroupV1Memory`: a cgroup v1 memory cgroup per task, made under this process's own memory
  cgroup (so any limit the machine puts on this process still applies), with
  `memory.limit_in_bytes` set to the task's memory. The whole task dies as one when it reaches
  the limit (as with cgroup v2's `memory.oom.group`): the cgroup's own OOM killer is disabled, so
  the process that hits the limit is held by the kernel (`under_oom`) instead of one process being
  killed while the others carry on, and the runner then SIGKILLs every process of the cgroup. Used
  when that cgroup can be created (cgroup v1, root).
- `RssPolling`: otherwise, the resident memory of the task's process group (from /proc) is summed
  every `RSS_POLL_SECONDS` and the group is killed when the sum passes the limit. A spike shorter
  than the polling interval can escape it.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"
RSS_POLL_SECONDS = 0.1
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class Confinement(Protocol):
    """One running task's memory confinement."""

    def wrap(self, command: list[str]) -> list[str]:
        """The command that starts `command` inside the confinement."""

    def attach(self, pid: int) -> None:
        """The task's main process has started with `pid` (its own process group)."""

    def over_limit(self) -> bool:
        """Whether the task went over its limit (and was, or is now being, killed)."""

    def kill_all(self) -> None:
        """SIGKILL every process of the task."""

    def close(self) -> None:
        """Kill what is left and release the confinement."""


class MemoryEnforcement(Protocol):
    """How the runner confines tasks: one `Confinement` per task."""

    description: str

    def confine(self, name: str, limit_bytes: int) -> Confinement: ...


def _kill(pids: Iterable[int]) -> None:
    for pid in pids:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


# --- cgroup v1 ---------------------------------------------------------------------------------


def own_memory_cgroup(
    proc_cgroup: Path = Path("/proc/self/cgroup"),
    mountinfo: Path = Path("/proc/self/mountinfo"),
) -> Path | None:
    """This process's cgroup v1 memory cgroup directory, or None (cgroup v2, no controller)."""
    relative = None
    for line in proc_cgroup.read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            relative = path
    if relative is None:
        return None
    for line in mountinfo.read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, extra = left.split(), right.split()
        if len(extra) >= 3 and extra[0] == "cgroup" and "memory" in extra[2].split(","):
            root, mount_point = fields[3], fields[4]
            inside = os.path.relpath(relative, root) if relative != root else "."
            return (Path(mount_point) / inside).resolve()
    return None


@dataclass
class CgroupV1Confinement:
    """One task's memory cgroup."""

    path: Path

    def wrap(self, command: list[str]) -> list[str]:
        # The shell joins the cgroup, then becomes the command: the task's main process and all
        # it forks are charged to the cgroup from their first allocation.
        procs = str(self.path / "cgroup.procs")
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', procs, *command]

    def attach(self, pid: int) -> None:
        del pid  # the wrapper joins the cgroup itself

    def over_limit(self) -> bool:
        try:
            text = (self.path / "memory.oom_control").read_text()
        except OSError:
            return False
        counts = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
        # under_oom: a process is held at the limit; oom_kill: the kernel killed one anyway.
        return counts.get("under_oom", "0") != "0" or int(counts.get("oom_kill", "0")) > 0

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill_all(self) -> None:
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            _kill(pids)
            time.sleep(0.02)

    def close(self) -> None:
        self.kill_all()
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:  # EBUSY while the last process is being reaped
                time.sleep(0.02)


@dataclass
class CgroupV1Memory:
    """Tasks in memory cgroups made under `parent`."""

    parent: Path
    description: str = field(init=False)

    def __post_init__(self) -> None:
        self.description = f"cgroup v1 memory controller (cgroups under {self.parent})"

    @classmethod
    def available(cls) -> CgroupV1Memory | None:
        """The enforcement if a memory cgroup can be made under this process's own, else None."""
        try:
            parent = own_memory_cgroup()
        except OSError:
            return None
        if parent is None or not (parent / "cgroup.procs").exists():
            return None
        probe = parent / f"local-aws-probe-{uuid.uuid4().hex[:8]}"
        try:
            probe.mkdir()
            (probe / "memory.limit_in_bytes").write_text(str(64 << 20))
        except OSError:
            return None
        finally:
            with suppress(OSError):
                probe.rmdir()
        return cls(parent)

    def confine(self, name: str, limit_bytes: int) -> CgroupV1Confinement:
        path = self.parent / f"local-aws-task-{name}"
        path.mkdir()
        (path / "memory.limit_in_bytes").write_text(str(limit_bytes))
        # Hold, do not kill, at the limit: the runner kills the whole task (see the module doc).
        (path / "memory.oom_control").write_text("1")
        swap_limit = path / "memory.memsw.limit_in_bytes"
        if swap_limit.exists():  # Fargate has no swap: memory + swap capped at the same value
            with suppress(OSError):
                swap_limit.write_text(str(limit_bytes))
        return CgroupV1Confinement(path)


# --- RSS polling -------------------------------------------------------------------------------


def process_group_rss(group: int, proc: Path = Path("/proc")) -> int:
    """Resident bytes of every process whose process group is `group`."""
    total = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # Fields after the command name (which may hold spaces), from field 3 (state) on.
            rest = stat[stat.rindex(")") + 2 :].split()
            if int(rest[2]) != group:
                continue
            resident_pages = int((entry / "statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            continue  # the process ended while being read
        total += resident_pages * _PAGE_SIZE
    return total


@dataclass
class RssConfinement:
    """One task's process group, measured and killed as a whole."""

    limit_bytes: int
    group: int | None = None
    killed: bool = False
    peak_bytes: int = 0

    def wrap(self, command: list[str]) -> list[str]:
        return command

    def attach(self, pid: int) -> None:
        self.group = pid

    def over_limit(self) -> bool:
        if self.killed:
            return True
        if self.group is None:
            return False
        rss = process_group_rss(self.group)
        self.peak_bytes = max(self.peak_bytes, rss)
        if rss > self.limit_bytes:
            self.killed = True
            self.kill_all()
        return self.killed

    def kill_all(self) -> None:
        if self.group is not None:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.group, signal.SIGKILL)

    def close(self) -> None:
        self.kill_all()


@dataclass
class RssPolling:
    """Tasks measured by polling the resident memory of their process group."""

    description: str = f"polling the resident memory of each task every {RSS_POLL_SECONDS} s"

    def confine(self, name: str, limit_bytes: int) -> RssConfinement:
        del name
        return RssConfinement(limit_bytes)


def memory_enforcement(kind: str = "auto") -> MemoryEnforcement:
    """`cgroup`, `rss`, or `auto` (a cgroup v1 memory cgroup when one can be made, else RSS)."""
    if kind not in ("auto", "cgroup", "rss"):
        raise ValueError(f"memory enforcement must be auto, cgroup or rss, not {kind!r}")
    if kind == "rss":
        return RssPolling()
    cgroup = CgroupV1Memory.available()
    if cgroup is not None:
        return cgroup
    if kind == "cgroup":
        raise RuntimeError(
            "no writable cgroup v1 memory controller for this process (needs cgroup v1 and root)"
        )
    return RssPolling()
