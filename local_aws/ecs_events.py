"""The "ECS Task State Change" events that ECS puts on the default event bus, which moto's ECS
never emits.

The local task runner calls `put_task_state_change` when a task starts running and when it has
stopped; the event goes through the emulator's EventBridge (`PutEvents` on the default bus), so
that moto matches it against the deployed rules and delivers it to their SQS targets, as AWS
does. The shape follows the ECS developer guide ("Amazon ECS task state change events").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SOURCE = "aws.ecs"
DETAIL_TYPE = "ECS Task State Change"


def iso(moment: datetime | None) -> str | None:
    """ECS's timestamp form in events: `2026-01-31T12:34:56.789Z`."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class ContainerState:
    """One container of the task as the event reports it."""

    name: str
    container_arn: str
    image: str | None
    last_status: str
    exit_code: int | None = None
    reason: str | None = None
    memory: str | None = None


@dataclass
class TaskState:
    """What the event says about the task."""

    cluster_arn: str
    task_arn: str
    task_definition_arn: str
    last_status: str
    desired_status: str
    group: str | None
    started_by: str | None
    launch_type: str | None
    created_at: datetime
    containers: list[ContainerState]
    overrides: dict[str, Any] = field(default_factory=dict)
    cpu: str | None = None
    memory: str | None = None
    started_at: datetime | None = None
    stopping_at: datetime | None = None
    stopped_at: datetime | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    version: int = 1


def task_state_change_detail(state: TaskState) -> dict[str, Any]:
    """The event's `detail`: the task as DescribeTasks would show it, timestamps as ISO 8601."""
    containers = []
    for c in state.containers:
        container: dict[str, Any] = {
            "containerArn": c.container_arn,
            "lastStatus": c.last_status,
            "name": c.name,
            "image": c.image,
            "taskArn": state.task_arn,
        }
        if c.exit_code is not None:
            container["exitCode"] = c.exit_code
        if c.reason:
            container["reason"] = c.reason
        if c.memory:
            container["memory"] = c.memory
        containers.append(container)
    detail: dict[str, Any] = {
        "clusterArn": state.cluster_arn,
        "taskArn": state.task_arn,
        "taskDefinitionArn": state.task_definition_arn,
        "lastStatus": state.last_status,
        "desiredStatus": state.desired_status,
        "group": state.group,
        "startedBy": state.started_by,
        "launchType": state.launch_type,
        "containers": containers,
        "overrides": state.overrides or {"containerOverrides": []},
        "createdAt": iso(state.created_at),
        "updatedAt": iso(datetime.now(UTC)),
        "version": state.version,
    }
    optional = {
        "cpu": state.cpu,
        "memory": state.memory,
        "startedAt": iso(state.started_at),
        "stoppingAt": iso(state.stopping_at),
        "executionStoppedAt": iso(state.stopped_at),
        "stoppedAt": iso(state.stopped_at),
        "stopCode": state.stop_code,
        "stoppedReason": state.stopped_reason,
    }
    detail.update({k: v for k, v in optional.items() if v is not None})
    return detail


def task_state_change_entry(state: TaskState) -> dict[str, Any]:
    """The `PutEvents` entry ECS's own event would be."""
    return {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Resources": [state.task_arn],
        "Detail": json.dumps(task_state_change_detail(state)),
        "EventBusName": "default",
    }


class EventNotDelivered(RuntimeError):
    """EventBridge refused the event."""


def put_task_state_change(events_client: Any, state: TaskState) -> None:
    """Put the task's state change on the default bus; raise if EventBridge refused it."""
    response = events_client.put_events(Entries=[task_state_change_entry(state)])
    if response.get("FailedEntryCount"):
        raise EventNotDelivered(f"PutEvents refused the task state change: {response['Entries']}")
