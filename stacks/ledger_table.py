"""Ledger: the DynamoDB table with one item per source key (issue #9, docs/contracts.md).

Every part writes what happened to a key there, so a stopped task, a failed image or an
unchanged re-upload is answered by a Query, never by reading task logs.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.checkov import skip_checkov
from stacks.nag import acknowledge

PARTITION_KEY = "uri"
BY_STATUS_INDEX = "by-status"
"""Partition `status`, sort `updated_at`: failures are listed with a Query."""
BY_TASK_INDEX = "by-task"
"""Partition `task_arn`, sort `uri`: the keys a stopped task held."""

_STRING = dynamodb.AttributeType.STRING


class Ledger(Construct):
    """The ledger table.

    On-demand billing (a million uploads in an hour and then nothing costs only what was
    written), point-in-time recovery, and encryption with the AWS managed key `aws/dynamodb`:
    its use shows in CloudTrail, while a customer managed key would add a monthly fee and a KMS
    grant on every writer (task role, both functions) to protect keys and statuses that are
    no secret.

    Attributes:
        table: the DynamoDB table (`uri` partition key, indexes `by-status` and `by-task`).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, removal_policy: cdk.RemovalPolicy
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=_STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=removal_policy,
        )
        for name, partition, sort in (
            (BY_STATUS_INDEX, "status", "updated_at"),
            (BY_TASK_INDEX, "task_arn", PARTITION_KEY),
        ):
            self.table.add_global_secondary_index(
                index_name=name,
                partition_key=dynamodb.Attribute(name=partition, type=_STRING),
                sort_key=dynamodb.Attribute(name=sort, type=_STRING),
                projection_type=dynamodb.ProjectionType.ALL,
            )
        skip_checkov(
            self.table,
            "CKV_AWS_119",
            "Encrypted with the AWS managed key aws/dynamodb, whose use CloudTrail records; "
            "a customer managed key would add a fee and a KMS grant on every writer to protect "
            "keys and statuses that are no secret.",
        )

    def grant_read_write(self, role: iam.IRole) -> iam.Grant:
        """Read and write items and query the indexes (the trigger and reconcile functions)."""
        grant = self.table.grant_read_write_data(role)
        policy = role.node.try_find_child("DefaultPolicy")
        assert policy is not None
        logical_id = cdk.Stack.of(self).resolve(self.table.node.default_child.logical_id)
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/index/*]",
            "The indexes of this one table: the functions query by-task for a stopped task's "
            "keys and by-status for failures.",
        )
        return grant

    def grant_update_items(self, grantee: iam.IGrantable) -> iam.Grant:
        """UpdateItem on the table's items and nothing else (no index, no other action).

        What `iiif-process` needs: it records each image's outcome with UpdateItem only.
        """
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["dynamodb:UpdateItem"],
            resource_arns=[self.table.table_arn],
        )
