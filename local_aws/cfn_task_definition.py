"""The whole of an `AWS::ECS::TaskDefinition`, which moto's CloudFormation registers only in part.

moto 5.2.5 registers a template's task definition with its family, containers, volumes and memory
only: the task-level `cpu`, the network mode, the launch type compatibilities, the runtime
platform, the ephemeral storage and the two roles are lost, so DescribeTaskDefinition answers
differently from AWS (`iiif-process-ecs -mode status` prices tasks from their cpu and memory).
While `full_task_definitions` is active, the template's properties (all but the network mode and
the compatibilities, see below) are passed to moto's own RegisterTaskDefinition, as
CloudFormation passes them to ECS.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.core.utils import pascal_to_camelcase, remap_nested_keys
from moto.ecs.models import TaskDefinition, ecs_backends

# Template property -> RegisterTaskDefinition keyword of moto's backend. Not NetworkMode nor
# RequiresCompatibilities (FARGATE makes moto use awsvpc): with awsvpc, moto's RunTask makes an ENI
# whose DNS name a VPC made by moto's CloudFormation lacks (AttributeError: private_dns_name).
_PROPERTIES = {
    "Cpu": "cpu",
    "Memory": "memory",
    "TaskRoleArn": "task_role_arn",
    "ExecutionRoleArn": "execution_role_arn",
    "RuntimePlatform": "runtime_platform",
    "EphemeralStorage": "ephemeral_storage",
    "PlacementConstraints": "placement_constraints",
    "IpcMode": "ipc_mode",
    "PidMode": "pid_mode",
}


def _as_api(value: Any) -> Any:
    """A template value as the API takes it (PascalCase keys to camelCase)."""
    return (
        remap_nested_keys(value, pascal_to_camelcase) if isinstance(value, dict | list) else value
    )


@contextmanager
def full_task_definitions() -> Iterator[None]:
    """While active, CloudFormation registers task definitions with all their properties."""
    original = TaskDefinition.__dict__["create_from_cloudformation_json"]

    def create_from_cloudformation_json(
        cls: type[TaskDefinition],
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> TaskDefinition:
        properties = cloudformation_json["Properties"]
        family = properties.get("Family") or f"{resource_name}"
        extra = {
            keyword: _as_api(properties[name])
            for name, keyword in _PROPERTIES.items()
            if properties.get(name) is not None
        }
        for keyword in ("cpu", "memory"):
            if keyword in extra:
                extra[keyword] = str(extra[keyword])
        return ecs_backends[account_id][region_name].register_task_definition(
            family=family,
            container_definitions=_as_api(properties.get("ContainerDefinitions", [])),
            volumes=_as_api(properties.get("Volumes", [])),
            tags=_as_api(properties.get("Tags")),
            **extra,
        )

    TaskDefinition.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)  # type: ignore[method-assign,assignment,arg-type]
    try:
        yield
    finally:
        TaskDefinition.create_from_cloudformation_json = original  # type: ignore[method-assign]
