"""The local stand-in for Fargate enforces what Fargate enforces: the task's memory limit (exit
137, OutOfMemoryError) and StopTask (SIGTERM, SIGKILL after the grace period, UserInitiated).

No deployment: a task definition whose command is a small Python program, run by moto's ECS and
the local task runner, checked through DescribeTasks as a user would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_aws.memory_limit import OOM_REASON, CgroupV1Memory
from local_aws.server import EmbeddedAws, moto_server
from local_aws.task_runner import LocalTaskRunner, exit_code_of, local_task_runner

from .python_tasks import ALLOCATE_20_MIB, ALLOCATE_400_MIB, describe, run_python

GRACE_SECONDS = 1.0

IGNORE_SIGTERM = (
    "import pathlib, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "pathlib.Path({ready!r}).touch()\ntime.sleep(60)\n"
)
EXIT_ON_SIGTERM = (
    "import pathlib, signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: (print('got SIGTERM', flush=True), sys.exit(143)))\n"
    "pathlib.Path({ready!r}).touch()\ntime.sleep(60)\n"
)

needs_cgroup = pytest.mark.skipif(
    CgroupV1Memory.available() is None, reason="no writable cgroup v1 memory controller here"
)


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    with moto_server() as running:
        running.reset()  # moto's backends are per process: start from a clean account
        yield running


@pytest.fixture
def runner(aws: EmbeddedAws, request: pytest.FixtureRequest) -> Iterator[LocalTaskRunner]:
    aws.reset()
    memory = getattr(request, "param", "auto")
    with local_task_runner(aws, memory=memory, stop_grace_seconds=GRACE_SECONDS) as running:
        yield running


@pytest.mark.parametrize(
    "runner",
    [pytest.param("cgroup", marks=needs_cgroup), "rss"],
    indirect=True,
)
def test_a_task_over_its_memory_is_killed_with_137_and_fargates_reason(
    aws: EmbeddedAws, runner: LocalTaskRunner
) -> None:
    task_arn = run_python(aws, ALLOCATE_400_MIB)

    (run,) = runner.wait_until_idle(timeout=60)

    task = describe(aws, task_arn)
    (container,) = task["containers"]
    assert (container["exitCode"], container.get("reason")) == (137, OOM_REASON), run
    assert (task["lastStatus"], task["stopCode"]) == ("STOPPED", "EssentialContainerExited")
    assert "survived" not in run.output


@pytest.mark.parametrize(
    "runner",
    [pytest.param("cgroup", marks=needs_cgroup), "rss"],
    indirect=True,
)
def test_a_task_within_its_memory_exits_normally(aws: EmbeddedAws, runner: LocalTaskRunner) -> None:
    task_arn = run_python(aws, ALLOCATE_20_MIB)

    (run,) = runner.wait_until_idle(timeout=60)

    (container,) = describe(aws, task_arn)["containers"]
    assert container["exitCode"] == 0
    assert "reason" not in container
    assert run.output == ["done"]


def test_the_memory_limit_is_the_task_definitions(
    aws: EmbeddedAws, runner: LocalTaskRunner
) -> None:
    # The same 400 MiB program fits a 1 GiB container.
    task_arn = run_python(aws, ALLOCATE_400_MIB, memory_mib=1024)

    (run,) = runner.wait_until_idle(timeout=60)

    assert describe(aws, task_arn)["containers"][0]["exitCode"] == 0
    assert run.memory_limit_mib == 512  # the task's 512 MiB is below the container's 1024


def _wait_for(ready: Path, timeout: float = 30) -> None:
    """Until the task's program has written `ready` (its signal handler is installed)."""
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the task's program never got ready")
        time.sleep(0.05)


def test_stop_task_sends_sigterm_then_sigkill_after_the_grace_period(
    aws: EmbeddedAws, runner: LocalTaskRunner, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    task_arn = run_python(aws, IGNORE_SIGTERM.format(ready=str(ready)))
    _wait_for(ready)

    stopped_at = time.monotonic()
    aws.client("ecs").stop_task(cluster="c", task=task_arn, reason="no longer needed")
    (run,) = runner.wait_until_idle(timeout=30)

    assert run.signals == ["SIGTERM", "SIGKILL"]
    assert time.monotonic() - stopped_at >= GRACE_SECONDS
    task = describe(aws, task_arn)
    assert task["containers"][0]["exitCode"] == 137
    assert (task["stopCode"], task["stoppedReason"]) == ("UserInitiated", "no longer needed")


def test_a_task_that_exits_on_sigterm_gets_no_sigkill(
    aws: EmbeddedAws, runner: LocalTaskRunner, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    task_arn = run_python(aws, EXIT_ON_SIGTERM.format(ready=str(ready)))
    _wait_for(ready)

    aws.client("ecs").stop_task(cluster="c", task=task_arn)
    (run,) = runner.wait_until_idle(timeout=30)

    assert run.signals == ["SIGTERM"]
    assert "got SIGTERM" in run.output
    task = describe(aws, task_arn)
    assert task["containers"][0]["exitCode"] == 143
    assert (task["stopCode"], task["stoppedReason"]) == ("UserInitiated", "Task stopped by user")


def test_a_stopping_task_is_deactivating_until_its_container_exits(
    aws: EmbeddedAws, runner: LocalTaskRunner, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    task_arn = run_python(aws, IGNORE_SIGTERM.format(ready=str(ready)))
    _wait_for(ready)

    aws.client("ecs").stop_task(cluster="c", task=task_arn)
    during = describe(aws, task_arn)
    runner.wait_until_idle(timeout=30)

    assert (during["lastStatus"], during["desiredStatus"]) == ("DEACTIVATING", "STOPPED")
    assert describe(aws, task_arn)["lastStatus"] == "STOPPED"


def test_a_signal_death_is_reported_as_docker_does() -> None:
    assert [exit_code_of(c) for c in (0, 1, -9, -15)] == [0, 1, 137, 143]
