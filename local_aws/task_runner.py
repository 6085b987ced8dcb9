"""The local stand-in for Fargate: runs the ECS tasks that moto has started.

moto records a RunTask call but runs nothing. For every task that appears in moto's ECS backend, a
`LocalTaskRunner` runs the task definition's container command (with the task's overrides) using
the `iiif-process` tool installed in this project instead of the image, with the container's
environment pointed at the emulator; it writes the container's output to the task's CloudWatch Logs
stream (`PREFIX/CONTAINER/TASK_ID`, as the awslogs driver names it), then marks the task STOPPED
with the container's exit code, as Fargate would. Like Fargate it also:

- enforces the task definition's memory (see `local_aws.memory_limit`): a task over it is killed,
  exits 137, and stops with the container reason `OutOfMemoryError: Container killed due to memory
  usage` and stop code `EssentialContainerExited`;
- honours StopTask: SIGTERM to the container's main process, SIGKILL to all of the task's
  processes after the stop grace period (30 s on Fargate; `stop_grace_seconds` here), stop code
  `UserInitiated`;
- puts the "ECS Task State Change" events of each task (RUNNING, then STOPPED) on the default
  event bus (see `local_aws.ecs_events`), which moto's ECS never does.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moto.ecs.models import EC2ContainerServiceBackend, Task, ecs_backends
from moto.moto_api import state_manager

from local_aws.ecs_events import ContainerState, TaskState, put_task_state_change
from local_aws.memory_limit import OOM_REASON, Confinement, MemoryEnforcement, memory_enforcement
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
_MONITOR_SECONDS = 0.05
#: Fargate's stop timeout: SIGKILL this long after the SIGTERM of a StopTask.
FARGATE_STOP_GRACE_SECONDS = 30.0
_SHUTDOWN_GRACE_SECONDS = 3.0
USER_STOP_REASON = "Task stopped by user"
ESSENTIAL_EXITED_REASON = "Essential container in task exited"


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
    memory_limit_mib: int | None = None
    exit_code: int | None = None
    stop_code: str = ""
    stopped_reason: str = ""
    container_reason: str | None = None
    #: Signals the runner sent the task (a StopTask: "SIGTERM", then "SIGKILL" after the grace).
    signals: list[str] = field(default_factory=list)
    #: "ECS Task State Change" events put on the bus, by lastStatus.
    events: list[str] = field(default_factory=list)
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


def memory_limit_mib(definition: Any, container: dict[str, Any]) -> int | None:
    """The task's hard memory limit: the smaller of the task's and the container's memory."""
    limits = []
    for value in (getattr(definition, "memory", None), container.get("memory")):
        try:
            limit = int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if limit > 0:
            limits.append(limit)
    return min(limits) if limits else None


def exit_code_of(returncode: int) -> int:
    """A container's exit code as Docker reports it: 128 + N for a process killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def _now() -> datetime:
    return datetime.now(UTC)


class LocalTaskRunner:
    """Runs every ECS task moto starts, several at a time, in a background thread."""

    def __init__(
        self,
        aws: EmbeddedAws,
        image: ProjectImage | None = None,
        on_event: TaskListener | None = None,
        max_parallel: int = 4,
        memory: str = "auto",
        stop_grace_seconds: float = FARGATE_STOP_GRACE_SECONDS,
        emit_events: bool = True,
    ) -> None:
        """`memory`: how the task's memory is enforced (`auto`, `cgroup`, `rss`, see
        `local_aws.memory_limit`); `stop_grace_seconds`: SIGTERM to SIGKILL on StopTask;
        `emit_events`: put "ECS Task State Change" events on the default bus."""
        self._aws = aws
        #: What the task's image holds (the tool, the baked config); may be swapped between tasks.
        self.image = image or ProjectImage.from_project()
        self._on_event = on_event
        self.memory: MemoryEnforcement = memory_enforcement(memory)
        self.stop_grace_seconds = stop_grace_seconds
        self._emit_events = emit_events
        self._pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="task")
        self._seen: set[str] = set()
        self._running: dict[str, Future[TaskRun]] = {}
        self.runs: list[TaskRun] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="task-runner", daemon=True)
        self._original_stop_task = EC2ContainerServiceBackend.stop_task

    def start(self) -> None:
        # Tasks stay RUNNING however often they are described, until this runner stops them.
        state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
        EC2ContainerServiceBackend.stop_task = self._stop_task_patch()  # type: ignore[method-assign]
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True, cancel_futures=False)
        EC2ContainerServiceBackend.stop_task = self._original_stop_task  # type: ignore[method-assign]
        state_manager.unset_transition("ecs::task")

    def forget(self) -> None:
        """Drop the record of finished runs (after the emulator was reset)."""
        with self._lock:
            self.runs.clear()

    def busy(self) -> bool:
        """Whether a task is pending or running."""
        with self._lock:
            return bool(self._running) or bool(self._pending_tasks())

    def wait_until_idle(self, timeout: float = 120.0, settle: float = 0.5) -> list[TaskRun]:
        """Wait until no task is pending or running for `settle` seconds; return all runs."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            now = time.monotonic()
            if self.busy():
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= settle:
                with self._lock:
                    return list(self.runs)
            time.sleep(0.05)
        raise TimeoutError(f"ECS tasks still running after {timeout:.0f} s: {list(self._running)}")

    def _stop_task_patch(self) -> Any:
        """StopTask as ECS does it for a running task: desired STOPPED at once, last status
        DEACTIVATING until the container has exited (moto would report STOPPED at once)."""
        original = self._original_stop_task
        runner = self

        def stop_task(
            backend: EC2ContainerServiceBackend, cluster_str: str, task_str: str, reason: str
        ) -> Task:
            cluster = backend._get_cluster(cluster_str)
            task_id = task_str.split("/")[-1]
            for arn, task in list(backend.tasks.get(cluster.name, {}).items()):
                if arn.endswith(task_id) and runner.holds(arn) and task._status == "RUNNING":
                    task.stopping_at = _now()
                    task.stopped_reason = reason or USER_STOP_REASON
                    task.desired_status = "STOPPED"
                    task.last_status = "DEACTIVATING"
                    return task
            task = original(backend, cluster_str, task_str, reason)
            task.stopped_reason = reason or USER_STOP_REASON
            return task

        return stop_task

    def holds(self, task_arn: str) -> bool:
        """Whether the runner has taken up the task and not yet stopped it."""
        with self._lock:
            return task_arn in self._running

    def _backend(self) -> EC2ContainerServiceBackend:
        return ecs_backends[self._aws.account_id][self._aws.region]

    def _pending_tasks(self) -> list[Task]:
        """Tasks not yet handled: RUNNING ones to run, and ones stopped before they ran."""
        pending = []
        for cluster_tasks in list(self._backend().tasks.values()):
            for arn, task in list(cluster_tasks.items()):
                if arn not in self._seen and task._status in ("RUNNING", "STOPPED"):
                    pending.append(task)
        return pending

    def _poll(self) -> None:
        while not self._stop.is_set():
            for task in self._pending_tasks():
                with self._lock:
                    self._seen.add(task.task_arn)
                    if not hasattr(task, "created_at"):
                        task.created_at = _now()
                    future = self._pool.submit(self._run, task)
                    self._running[task.task_arn] = future
                    future.add_done_callback(lambda _f, arn=task.task_arn: self._done(arn))
            self._stop.wait(_POLL_SECONDS)

    def _done(self, task_arn: str) -> None:
        with self._lock:
            future = self._running.pop(task_arn, None)
        if future is not None and future.exception() is not None:
            print(f"local task runner: {task_arn} crashed: {future.exception()!r}", file=sys.stderr)

    def _prepare(self, task: Task) -> tuple[TaskRun, dict[str, str]]:
        definition = self._backend().describe_task_definition(task.task_definition_arn)
        container = definition.container_definitions[0]
        name = str(container.get("name"))
        command = container_command(task, container)
        mapped, notes = local_command(command, self.image)
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
            memory_limit_mib=memory_limit_mib(definition, container),
        )
        return run, env

    def _run(self, task: Task) -> TaskRun:
        run, env = self._prepare(task)
        started = time.monotonic()
        if task._status == "STOPPED" or task.desired_status == "STOPPED":
            # StopTask before the container started: nothing runs, ECS still reports the stop.
            run.stop_code = "UserInitiated"
            run.stopped_reason = task.stopped_reason or USER_STOP_REASON
        elif not run.local_command or not Path(run.local_command[0]).exists():
            if self._on_event:
                self._on_event("started", run)
            command = run.command
            run.output = [f"exec: {command[0] if command else '(no command)'}: not found"]
            self._write_logs(run, [(int(time.time() * 1000), run.output[0])])
            run.stop_code = "TaskFailedToStart"
            run.stopped_reason = "CannotStartContainerError: the container command was not found"
            run.container_reason = run.stopped_reason
        else:
            if self._on_event:
                self._on_event("started", run)
            run.exit_code = self._execute(run, env, task)
            if task.desired_status == "STOPPED" and "SIGTERM" in run.signals:
                run.stop_code = "UserInitiated"
                run.stopped_reason = task.stopped_reason or USER_STOP_REASON
            else:
                run.stop_code = "EssentialContainerExited"
                run.stopped_reason = ESSENTIAL_EXITED_REASON
        run.seconds = time.monotonic() - started
        self._mark_stopped(task, run)
        with self._lock:
            self.runs.append(run)
        self._emit(task, run)
        if self._on_event:
            self._on_event("stopped", run)
        return run

    def _confine(self, run: TaskRun) -> Confinement | None:
        if run.memory_limit_mib is None:
            run.notes.append("the task definition sets no memory: no memory limit enforced")
            return None
        return self.memory.confine(run.task_id, run.memory_limit_mib << 20)

    def _execute(self, run: TaskRun, env: dict[str, str], task: Task) -> int:
        confinement = self._confine(run)
        command = confinement.wrap(run.local_command) if confinement else run.local_command
        try:
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=container_process_env(self._aws, env),
                cwd=PROJECT_ROOT,
                start_new_session=True,  # the task's processes are one group, as in a container
            )
            if confinement:
                confinement.attach(process.pid)
            task.started_at = _now()
            # Off this thread, so that the memory is watched from the first moment.
            running_event = threading.Thread(target=self._emit, args=(task, run), daemon=True)
            running_event.start()
            try:
                return self._supervise(run, task, process, confinement)
            finally:
                running_event.join()  # RUNNING goes on the bus before STOPPED
        finally:
            if confinement:
                confinement.close()

    def _grace(self) -> float:
        # The emulator shutting down (Ctrl-C) does not wait Fargate's 30 s.
        return (
            min(self.stop_grace_seconds, _SHUTDOWN_GRACE_SECONDS)
            if self._stop.is_set()
            else (self.stop_grace_seconds)
        )

    def _supervise(
        self,
        run: TaskRun,
        task: Task,
        process: subprocess.Popen[str],
        confinement: Confinement | None,
    ) -> int:
        """Follow the task until its main process exits: logs, memory, StopTask."""
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
        flushed = time.monotonic()
        terminated_at: float | None = None
        out_of_memory = False

        def kill_task() -> None:
            if confinement:
                confinement.kill_all()
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

        while process.poll() is None:
            reader.join(_MONITOR_SECONDS)
            if not out_of_memory and confinement and confinement.over_limit():
                out_of_memory = True
                kill_task()  # every process of the task at once, as one container
            stopping = task.desired_status == "STOPPED" or self._stop.is_set()
            if stopping and terminated_at is None and not out_of_memory:
                # StopTask (or the emulator stopping): SIGTERM to the main process, as ECS does.
                with suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                run.signals.append("SIGTERM")
                terminated_at = time.monotonic()
            elif (
                terminated_at is not None
                and "SIGKILL" not in run.signals
                and time.monotonic() - terminated_at >= self._grace()
            ):
                run.signals.append("SIGKILL")
                kill_task()
            if time.monotonic() - flushed >= _LOG_FLUSH_SECONDS:
                with lock:
                    batch = lines[written:]
                    written = len(lines)
                self._write_logs(run, batch)
                flushed = time.monotonic()
        code = exit_code_of(process.wait())
        if confinement and not out_of_memory and confinement.over_limit():
            out_of_memory = True  # reached the limit as the main process ended
        # When the main process ends, the container ends: nothing of the task outlives it.
        kill_task()
        reader.join(5)
        if out_of_memory:
            run.container_reason = OOM_REASON
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
            container.reason = run.container_reason
        task.desired_status = "STOPPED"
        task.stopped_reason = run.stopped_reason
        task.stop_code = run.stop_code
        task.stopped_at = task.execution_stopped_at = _now()
        task.last_status = "STOPPED"

    def _emit(self, task: Task, run: TaskRun) -> None:
        """Put the task's "ECS Task State Change" on the default bus, as ECS does."""
        if not self._emit_events:
            return
        definition = self._backend().describe_task_definition(task.task_definition_arn)
        stopped = task._status == "STOPPED"
        state = TaskState(
            cluster_arn=task.cluster_arn,
            task_arn=task.task_arn,
            task_definition_arn=task.task_definition_arn,
            last_status="STOPPED" if stopped else "RUNNING",
            desired_status=task.desired_status,
            group=task.group,
            started_by=task.started_by or None,
            launch_type=task.launch_type or None,
            created_at=getattr(task, "created_at", None) or _now(),
            containers=[
                ContainerState(
                    name=str(c.name),
                    container_arn=c.container_arn,
                    image=c.image,
                    last_status="STOPPED" if stopped else "RUNNING",
                    exit_code=c.exitCode if stopped else None,
                    reason=c.reason if stopped else None,
                    memory=str(c.memory) if c.memory else None,
                )
                for c in task.containers
            ],
            overrides=task.overrides,
            cpu=getattr(definition, "cpu", None),
            memory=getattr(definition, "memory", None),
            started_at=getattr(task, "started_at", None),
            stopping_at=getattr(task, "stopping_at", None) if stopped else None,
            stopped_at=getattr(task, "stopped_at", None) if stopped else None,
            stop_code=run.stop_code if stopped else None,
            stopped_reason=run.stopped_reason if stopped else None,
            version=len(run.events) + 1,
        )
        try:
            put_task_state_change(self._aws.client("events"), state)
        except Exception as error:  # the task's outcome stands even if the bus refused it
            print(f"local task runner: no task state change event: {error!r}", file=sys.stderr)
            return
        run.events.append(state.last_status)

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
    aws: EmbeddedAws,
    on_event: TaskListener | None = None,
    max_parallel: int = 4,
    memory: str = "auto",
    stop_grace_seconds: float = FARGATE_STOP_GRACE_SECONDS,
) -> Iterator[LocalTaskRunner]:
    """Run ECS tasks locally for the duration of the `with` block."""
    runner = LocalTaskRunner(
        aws,
        on_event=on_event,
        max_parallel=max_parallel,
        memory=memory,
        stop_grace_seconds=stop_grace_seconds,
    )
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()
