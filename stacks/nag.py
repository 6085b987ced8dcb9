"""cdk-nag 3 wiring: the rule packs every app runs, and one-finding-at-a-time acknowledgments."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct


def add_nag_checks(app: cdk.App) -> None:
    """Register the AwsSolutions and Serverless packs; any unacknowledged finding fails synth."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one finding (`rule_id`, e.g. ``AwsSolutions-IAM5[Action::s3:List*]``).

    The acknowledgment goes on the construct's CloudFormation resource (its default child)
    when it has one, i.e. on exactly the resource cdk-nag reports. `reason` is a sentence
    saying why the finding is safe here.
    """
    if not reason.strip().endswith("."):
        raise ValueError(f"the reason for acknowledging {rule_id} must be a full sentence")
    target = construct.node.default_child or construct
    cdk.Validations.of(target).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))


def bucket_arn_in_findings(bucket: s3.IBucket) -> str:
    """How cdk-nag writes `bucket`'s ARN inside an IAM5 finding id."""
    cfn_bucket = bucket.node.default_child
    if isinstance(cfn_bucket, s3.CfnBucket):
        logical_id = cdk.Stack.of(bucket).resolve(cfn_bucket.logical_id)
        return f"<{logical_id}.Arn>"
    return f"arn:<AWS::Partition>:s3:::{bucket.bucket_name}"
