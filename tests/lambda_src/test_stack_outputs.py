"""stack.py: the deployed stack's outputs, and a stack CloudFormation does not return."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from iiif_process_ecs.stack import StackError, stack_outputs


def cloudformation() -> Any:
    """A real client whose answers the test gives (botocore's Stubber): nothing is sent."""
    return boto3.client(
        "cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_an_empty_answer_is_a_stack_that_does_not_exist() -> None:
    client = cloudformation()
    with Stubber(client) as stub:
        stub.add_response("describe_stacks", {"Stacks": []}, {"StackName": "gone"})
        with pytest.raises(StackError, match="stack 'gone' does not exist"):
            stack_outputs(client, "gone")


def test_a_stack_without_outputs_has_none() -> None:
    client = cloudformation()
    stack = {
        "StackName": "s",
        "CreationTime": "2026-01-01T00:00:00Z",
        "StackStatus": "CREATE_COMPLETE",
    }
    with Stubber(client) as stub:
        stub.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "s"})
        assert stack_outputs(client, "s") == {}
