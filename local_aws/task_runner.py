"""The local stand-in for Fargate: runs the ECS tasks that moto has started.

moto records a RunTask call but runs nothing. For every task that appears in moto's ECS backend, a
`LocalTaskRunner` runs the task definition's container command (with the task's overrides) using
the `iiif-process` tool installed in this project instead of the image, with the container's
environment pointed at the emulator; it writes the container's output to the task's CloudWatch Logs
stream (`PREFIX/CONTAINER/TASK_ID`, as the awslogs driver names it), then marks the task STOPPED
with the container's exit code, as Fargate would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto.ecs.models import Task, ecs_backends
from moto.moto_api import state_manager

from local_aws.server import EmbeddedAws

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Where the image keeps the tool and the files it bakes in (see container/Dockerfile).
IMAGE_TOOL = "/bin/iiif-process"
IMAGE_CONFIG_DIR = "/etc/go-iiif/"
# The flags whose value is a file the image bakes in; dropped when the project lacks the file.
_FILE_FLAGS = ("-config", "--config", "-instructions", "--instructions")
# What the process keeps from this one's environment: enough to run a program, nothing of AWS.
_INHERITED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
_POLL_SECONDS = 0.2
_LOG_FLUSH_SECONDS = 0.5


@dataclass(frozen=True)
class ProjectImage:
    """What the container image holds, found in this project instead."""

    tool: Path
    baked_files: Path

    @classmethod
    def from_project(cls, root: Path = PROJECT_ROOT) -> ProjectImage:
        """The tool next to this interpreter (the project's venv) and the files in container/."""
        beside_python = Path(sys.executable).parent / "iiif-process"
        tool = beside_python if beside_python.exists() else root / ".venv" / "bin" / "iiif-process"
        found = shutil.which("iiif-process")
        if not tool.exists() and found:
            tool = Path(found)
        return cls(tool=tool, baked_files=root / "container")


@dataclass(frozen=True)
class StackFacts:
    """The stack's outputs, for what moto's CloudFormation lost from the task definition."""

    environment: dict[str, str]
    log_group: str | None
    log_stream_prefix: str | None


@dataclass
class TaskRun:
    """One task as the local runner ran it."""

    task_arn: str
    task_id: str
    container: str
    command: list[str]
    local_command: list[str]
    log_group: str | None
    log_stream: str | None
    notes: list[str] = field(default_factory=list)
    exit_code: int | None = None
    stopped_reason: str = ""
    seconds: float = 0.0
    output: list[str] = field(default_factory=list)
    log_stream_created: bool = field(default=False, repr=False)


#: Called with ("started" | "stopped", run).
TaskListener = Callable[[str, TaskRun], None]


def local_command(command: list[str], image: ProjectImage) -> tuple[list[str], list[str]]:
    """Map the image's paths in a container command to this project's; return (command, notes)."""
    mapped: list[str] = []
    notes: list[str] = []
    skip_next = False
    for index, arg in enumerate(command):
        if skip_next:
            skip_next = False
            continue
        if arg == IMAGE_TOOL:
            mapped.append(str(image.tool))
        elif arg in _FILE_FLAGS and index + 1 < len(command):
            value = command[index + 1]
            local = _baked_file(value, image)
            if local is None:
                mapped.extend([arg, value])
            elif local.exists():
                mapped.extend([arg, str(local)])
            else:
                shown = (
                    local.relative_to(PROJECT_ROOT) if local.is_relative_to(PROJECT_ROOT) else local
                )
                notes.append(
                    f"{shown} does not exist yet: {arg} {value} dropped, the tool uses its defaults"
                )
            skip_next = True
        else:
            local = _baked_file(arg, image)
            mapped.append(str(local) if local is not None and local.exists() else arg)
    return mapped, notes


def _baked_file(path: str, image: ProjectImage) -> Path | None:
    if path.startswith(IMAGE_CONFIG_DIR):
        return image.baked_files / path[len(IMAGE_CONFIG_DIR) :]
    return None


def container_command(task: Task, container: dict[str, Any]) -> list[str]:
    """The container definition's command, replaced by the task's override if it has one."""
    command = list(container.get("command") or [])
    for override in (task.overrides or {}).get("containerOverrides", []) or []:
        if override.get("name") == container.get("name") and override.get("command"):
            command = list(override["command"])
    return command


def container_environment(task: Task, container: dict[str, Any]) -> dict[str, str]:
    """The container definition's environment, with the task's environment overrides."""
    env = {e["name"]: str(e["value"]) for e in container.get("environment") or []}
    for override in (task.overrides or {}).get("containerOverrides", []) or []:
        if override.get("name") == container.get("name"):
            env.update({e["name"]: str(e["value"]) for e in override.get("environment") or []})
    return env


def container_process_env(aws: EmbeddedAws, container_env: dict[str, str]) -> dict[str, str]:
    """What the container process sees: the definition's variables, the emulator, little else."""
    env = {k: os.environ[k] for k in _INHERITED_VARIABLES if k in os.environ}
    env.update(container_env)
    env.update(aws.aws_env())
    return env


def _awslogs(container: dict[str, Any]) -> tuple[str | None, str | None]:
    config = container.get("logConfiguration") or {}
    if config.get("logDriver") != "awslogs":
        return None, None
    options = config.get("options") or {}
    return options.get("awslogs-group"), options.get("awslogs-stream-prefix")


class LocalTaskRunner:
    """Runs every ECS task moto starts, several at a time, in a background thread."""

    def __init__(
        self,
        aws: EmbeddedAws,
        image: ProjectImage | None = None,
        on_event: TaskListener | None = None,
        max_parallel: int = 4,
    ) -> None:
        self._aws = aws
        self._image = image or ProjectImage.from_project()
        self._on_event = on_event
        self._pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="task")
        self._seen: set[str] = set()
        self._running: dict[str, Future[TaskRun]] = {}
        self.runs: list[TaskRun] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="task-runner", daemon=True)

    def start(self) -> None:
        # Tasks stay RUNNING however often they are described, until this runner stops them.
        state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True, cancel_futures=False)
        state_manager.unset_transition("ecs::task")

    def forget(self) -> None:
        """Drop the record of finished runs (after the emulator was reset)."""
        with self._lock:
            self.runs.clear()

    def wait_until_idle(self, timeout: float = 120.0, settle: float = 0.5) -> list[TaskRun]:
        """Wait until no task is pending or running for `settle` seconds; return all runs."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            with self._lock:
                busy = bool(self._running) or bool(self._pending_tasks())
            now = time.monotonic()
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= settle:
                with self._lock:
                    return list(self.runs)
            time.sleep(0.05)
        raise TimeoutError(f"ECS tasks still running after {timeout:.0f} s: {list(self._running)}")

    def _pending_tasks(self) -> list[Task]:
        backend = ecs_backends[self._aws.account_id][self._aws.region]
        pending = []
        for cluster_tasks in list(backend.tasks.values()):
            for arn, task in list(cluster_tasks.items()):
                if arn not in self._seen and task._status == "RUNNING":
                    pending.append(task)
        return pending

    def _poll(self) -> None:
        while not self._stop.is_set():
            for task in self._pending_tasks():
                with self._lock:
                    self._seen.add(task.task_arn)
                    future = self._pool.submit(self._run, task)
                    self._running[task.task_arn] = future
                    future.add_done_callback(lambda _f, arn=task.task_arn: self._done(arn))
            self._stop.wait(_POLL_SECONDS)

    def _done(self, task_arn: str) -> None:
        with self._lock:
            future = self._running.pop(task_arn, None)
        if future is not None and future.exception() is not None:
            print(f"local task runner: {task_arn} crashed: {future.exception()!r}", file=sys.stderr)

    def _run(self, task: Task) -> TaskRun:
        backend = ecs_backends[self._aws.account_id][self._aws.region]
        definition = backend.describe_task_definition(task.task_definition_arn)
        container = definition.container_definitions[0]
        name = str(container.get("name"))
        command = container_command(task, container)
        mapped, notes = local_command(command, self._image)
        env = container_environment(task, container)
        log_group, prefix = _awslogs(container)
        facts = None
        if not env or log_group is None:
            facts = self._stack_facts(task.cluster_name)
        if facts is not None and not env:
            env = dict(facts.environment)
            notes.append("container environment derived from the stack's outputs")
        if facts is not None and log_group is None:
            log_group, prefix = facts.log_group, facts.log_stream_prefix
            notes.append("log group derived from the stack's outputs")
        run = TaskRun(
            task_arn=task.task_arn,
            task_id=task.id,
            container=name,
            command=command,
            local_command=mapped,
            log_group=log_group,
            log_stream=f"{prefix}/{name}/{task.id}" if log_group and prefix else None,
            notes=notes,
        )
        if self._on_event:
            self._on_event("started", run)
        started = time.monotonic()
        if not mapped or not Path(mapped[0]).exists():
            run.exit_code = 127
            run.output = [f"exec: {command[0] if command else '(no command)'}: not found"]
            self._write_logs(run, [(int(time.time() * 1000), run.output[0])])
            run.stopped_reason = "CannotStartContainerError: the container command was not found"
        else:
            run.exit_code = self._execute(run, env, task)
            run.stopped_reason = (
                "Task stopped by user"
                if task.desired_status == "STOPPED"
                else "Essential container in task exited"
            )
        run.seconds = time.monotonic() - started
        self._mark_stopped(task, run)
        with self._lock:
            self.runs.append(run)
        if self._on_event:
            self._on_event("stopped", run)
        return run

    def _execute(self, run: TaskRun, env: dict[str, str], task: Task) -> int:
        process = subprocess.Popen(
            run.local_command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=container_process_env(self._aws, env),
            cwd=PROJECT_ROOT,
        )
        lines: list[tuple[int, str]] = []
        lock = threading.Lock()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                with lock:
                    lines.append((int(time.time() * 1000), line.rstrip("\n")))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        written = 0
        while reader.is_alive():
            reader.join(_LOG_FLUSH_SECONDS)
            stopping = task.desired_status == "STOPPED" or self._stop.is_set()
            if stopping and process.poll() is None:
                process.terminate()  # StopTask (or the emulator stopping): SIGTERM, as ECS sends
            with lock:
                batch = lines[written:]
                written = len(lines)
            self._write_logs(run, batch)
        code = process.wait()
        with lock:
            self._write_logs(run, lines[written:])
            run.output = [line for _, line in lines]
        return code

    def _write_logs(self, run: TaskRun, events: list[tuple[int, str]]) -> None:
        if not run.log_group or not run.log_stream or not events:
            return
        logs = self._aws.client("logs")
        if not run.log_stream_created:
            # The awslogs driver creates the stream (and, if allowed, the group) at start.
            with suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_group(logGroupName=run.log_group)
            with suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_stream(logGroupName=run.log_group, logStreamName=run.log_stream)
            run.log_stream_created = True
        logs.put_log_events(
            logGroupName=run.log_group,
            logStreamName=run.log_stream,
            logEvents=[{"timestamp": ts, "message": msg or " "} for ts, msg in events],
        )

    def _mark_stopped(self, task: Task, run: TaskRun) -> None:
        for container in task.containers:
            container.last_status = "STOPPED"
            container.exitCode = run.exit_code
            container.reason = run.stopped_reason if run.exit_code == 127 else None
        task.desired_status = "STOPPED"
        task.stopped_reason = run.stopped_reason
        task.stop_code = "EssentialContainerExited" if run.exit_code != 127 else "TaskFailedToStart"
        task.last_status = "STOPPED"

    def _stack_facts(self, cluster_name: str) -> StackFacts | None:
        cloudformation = self._aws.client("cloudformation")
        for stack in cloudformation.describe_stacks().get("Stacks", []):
            outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
            if outputs.get("ClusterName") != cluster_name:
                continue
            region = self._aws.region
            environment = {}
            if outputs.get("SourceBucketName"):
                environment["IIIF_CONFIG_IMAGES_SOURCE_URI"] = (
                    f"s3blob://{outputs['SourceBucketName']}?region={region}"
                )
            if outputs.get("DerivativesBucketName"):
                environment["IIIF_CONFIG_DERIVATIVES_CACHE_URI"] = (
                    f"s3blob://{outputs['DerivativesBucketName']}?region={region}"
                )
            return StackFacts(
                environment=environment,
                log_group=outputs.get("LogGroupName"),
                log_stream_prefix=outputs.get("LogStreamPrefix"),
            )
        return None


@contextmanager
def local_task_runner(
    aws: EmbeddedAws, on_event: TaskListener | None = None, max_parallel: int = 4
) -> Iterator[LocalTaskRunner]:
    """Run ECS tasks locally for the duration of the `with` block."""
    runner = LocalTaskRunner(aws, on_event=on_event, max_parallel=max_parallel)
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()
