"""The two acknowledgment helpers (stacks/nag.py for cdk-nag, stacks/checkov.py for checkov):
where an acknowledgment lands, and what they refuse."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.checkov import skip_checkov
from stacks.nag import acknowledge, bucket_arn_in_findings

REASON = "A whole sentence of reason."


def _stack() -> cdk.Stack:
    return cdk.Stack(cdk.App(), "S")


def _acknowledged(construct: Construct) -> dict[str, Any]:
    """The cdk-nag acknowledgments recorded on one construct node, by annotation id."""
    found: dict[str, Any] = {}
    for entry in construct.node.metadata:
        if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
            found.update(entry.data)
    return found


def test_acknowledgment_goes_on_the_cloudformation_resource() -> None:
    queue = sqs.Queue(_stack(), "Q")
    acknowledge(queue, "AwsSolutions-SQS3", REASON)
    assert queue.node.default_child is not None
    assert _acknowledged(queue.node.default_child) == {"Annotation::AwsSolutions-SQS3": REASON}


def test_acknowledgment_on_a_construct_without_resource_stays_on_it() -> None:
    group = Construct(_stack(), "Group")
    acknowledge(group, "AwsSolutions-IAM5[Resource::*]", REASON)
    assert _acknowledged(group) == {"Annotation::AwsSolutions-IAM5[Resource::*]": REASON}


def test_acknowledgment_without_a_sentence_is_refused() -> None:
    with pytest.raises(ValueError, match="AwsSolutions-SQS3"):
        acknowledge(sqs.Queue(_stack(), "Q"), "AwsSolutions-SQS3", "no full stop")


def test_created_bucket_arn_is_written_as_its_logical_id() -> None:
    stack = _stack()
    bucket = s3.Bucket(stack, "Images")
    cfn_bucket = bucket.node.default_child
    assert isinstance(cfn_bucket, s3.CfnBucket)
    logical_id = stack.resolve(cfn_bucket.logical_id)
    assert bucket_arn_in_findings(bucket) == f"<{logical_id}.Arn>"


def test_imported_bucket_arn_is_written_with_its_name() -> None:
    bucket = s3.Bucket.from_bucket_name(_stack(), "Imported", "my-images")
    assert bucket_arn_in_findings(bucket) == "arn:<AWS::Partition>:s3:::my-images"


def test_checkov_skip_without_a_sentence_is_refused() -> None:
    with pytest.raises(ValueError, match="CKV_AWS_27"):
        skip_checkov(sqs.Queue(_stack(), "Q"), "CKV_AWS_27", "no full stop")


def test_checkov_skip_needs_a_cloudformation_resource() -> None:
    with pytest.raises(TypeError, match="Group"):
        skip_checkov(Construct(_stack(), "Group"), "CKV_AWS_27", REASON)


def test_checkov_skip_of_the_same_check_twice_is_refused() -> None:
    queue = sqs.Queue(_stack(), "Q")
    skip_checkov(queue, "CKV_AWS_27", REASON)
    with pytest.raises(ValueError, match="already skipped"):
        skip_checkov(queue, "CKV_AWS_27", REASON)


def test_checkov_skip_on_a_resource_itself() -> None:
    queue = sqs.CfnQueue(_stack(), "Q")
    skip_checkov(queue, "CKV_AWS_27", REASON)
    assert queue.get_metadata("checkov") == {"skip": [{"id": "CKV_AWS_27", "comment": REASON}]}
