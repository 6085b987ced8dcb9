"""How many CPUs iiif-process believes it has: the cgroup CPU quota (a Fargate task's vCPUs),
capped by the CPUs it may run on (issue #13). The cgroup files are given by a stand-in ``open``
of the process module: the test machine's own cgroup is whatever the host made it."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping

import pytest
from iiif_process import process

V2 = "/sys/fs/cgroup/cpu.max"
V1_QUOTA = "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"
V1_PERIOD = "/sys/fs/cgroup/cpu/cpu.cfs_period_us"


def _files(contents: Mapping[str, str]) -> Callable[..., io.StringIO]:
    def fake_open(path: str, *args: object, **kwargs: object) -> io.StringIO:
        if path not in contents:
            raise FileNotFoundError(path)
        return io.StringIO(contents[path])

    return fake_open


@pytest.fixture
def eight_cpus(monkeypatch: pytest.MonkeyPatch) -> Callable[[Mapping[str, str]], int]:
    """``available_cpus`` on a machine of 8 CPUs whose cgroup files hold ``contents``."""
    # Only this process's own CPUs (pid 0) are known: asking about another process fails.
    monkeypatch.setattr(process.os, "sched_getaffinity", lambda pid: {0: set(range(8))}[pid])

    def measure(contents: Mapping[str, str]) -> int:
        monkeypatch.setattr(process, "open", _files(contents), raising=False)
        return process.available_cpus()

    return measure


def test_a_cgroup_v2_quota_gives_its_cpus(eight_cpus: Callable[[Mapping[str, str]], int]) -> None:
    assert eight_cpus({V2: "200000 100000\n"}) == 2


def test_a_cgroup_v2_without_a_quota_gives_every_cpu(
    eight_cpus: Callable[[Mapping[str, str]], int],
) -> None:
    assert eight_cpus({V2: "max 100000\n"}) == 8


def test_a_cgroup_v1_quota_gives_its_cpus(eight_cpus: Callable[[Mapping[str, str]], int]) -> None:
    assert eight_cpus({V1_QUOTA: "300000\n", V1_PERIOD: "100000\n"}) == 3


def test_a_cgroup_v1_quota_of_minus_one_is_no_limit(
    eight_cpus: Callable[[Mapping[str, str]], int],
) -> None:
    assert eight_cpus({V1_QUOTA: "-1\n", V1_PERIOD: "100000\n"}) == 8


def test_a_quota_under_one_cpu_still_gives_one(
    eight_cpus: Callable[[Mapping[str, str]], int],
) -> None:
    assert eight_cpus({V2: "25000 100000\n"}) == 1


def test_a_quota_over_the_cpus_gives_the_cpus(
    eight_cpus: Callable[[Mapping[str, str]], int],
) -> None:
    assert eight_cpus({V2: "1600000 100000\n"}) == 8


def test_a_fractional_quota_rounds_to_the_nearest_cpu(
    eight_cpus: Callable[[Mapping[str, str]], int],
) -> None:
    assert eight_cpus({V2: "260000 100000\n"}) == 3


def test_no_cgroup_files_gives_every_cpu(eight_cpus: Callable[[Mapping[str, str]], int]) -> None:
    assert eight_cpus({}) == 8


def test_an_unreadable_v2_file_falls_back_to_v1(
    eight_cpus: Callable[[Mapping[str, str]], int],
) -> None:
    assert eight_cpus({V2: "garbage\n", V1_QUOTA: "200000\n", V1_PERIOD: "100000\n"}) == 2
