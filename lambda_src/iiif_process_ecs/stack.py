"""Read the deployed stack's outputs (docs/contracts.md) for `iiif-process-ecs -stack NAME`."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

DEFAULT_STACK_NAME = "IiifProcessStack"


class StackError(RuntimeError):
    """The stack cannot be read; the message names the stack and the reason."""


def stack_outputs(cloudformation: Any, name: str) -> dict[str, str]:
    """Return ``{OutputKey: OutputValue}`` of stack ``name``."""
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", str(error))
        raise StackError(f"stack {name!r}: {message}") from None
    if not stacks:
        raise StackError(f"stack {name!r} does not exist")
    outputs = stacks[0].get("Outputs") or []
    return {output["OutputKey"]: output["OutputValue"] for output in outputs}
