"""Trigger: the Lambda that turns S3 events into RunTask calls, with its DLQ and logs.

S3 notifications reach it through the event queue (`stacks/event_queue.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.checkov import skip_checkov
from stacks.nag import acknowledge, bucket_arn_in_findings
from stacks.props import check_range
from stacks.queues import secure_queue
from stacks.runtime_function import check_function_size, runtime_function
from stacks.stack_settings import LAMBDA_RESERVED_CONCURRENCY

HANDLER = "handler.handler"
CONFIG_PATH = "/etc/go-iiif/config.json"
INSTRUCTIONS_PATH = "/etc/go-iiif/instructions.json"


@dataclass(frozen=True, kw_only=True)
class TriggerProps:
    """The trigger function's size (settings `lambdaTimeoutSeconds`, `lambdaMemoryMiB`,
    `lambdaReservedConcurrency`)."""

    timeout_seconds: int
    memory_mib: int
    reserved_concurrency: int
    """Cap on concurrent invocations (and so on concurrent RunTask callers)."""

    def __post_init__(self) -> None:
        check_function_size(self)
        check_range(self, "reserved_concurrency", LAMBDA_RESERVED_CONCURRENCY)


class Trigger(Construct):
    """The trigger function with its dead-letter queue and log group.

    Attributes:
        function: the Lambda function (`handler.handler`).
        dead_letter_queue: where asynchronous (direct) invocations that failed every retry end
            up; the event queue has its own.
        log_group: the function's log group.
        role: the function's role.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: TriggerProps,
        environment: dict[str, str],
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = secure_queue(self, "DeadLetterQueue")
        made = runtime_function(
            self,
            handler=HANDLER,
            description="Starts iiif-process Fargate tasks for images put in the source bucket.",
            role_description="iiif-process trigger: writes its logs, runs the iiif-process task.",
            environment=environment,
            timeout_seconds=props.timeout_seconds,
            memory_mib=props.memory_mib,
            reserved_concurrency=props.reserved_concurrency,
            log_retention=log_retention,
            removal_policy=removal_policy,
            dead_letter_queue=self.dead_letter_queue,
        )
        self.function, self.role, self.log_group = made.function, made.role, made.log_group
        self._acknowledge()

    def grant_head_source_objects(self, source: s3.IBucket) -> iam.Grant:
        """s3:GetObject (which authorizes HeadObject) on the source bucket's objects.

        The function HeadObjects keys given directly to learn their ETag and size.
        """
        grant = iam.Grant.add_to_principal(
            grantee=self.function,
            actions=["s3:GetObject"],
            resource_arns=[source.arn_for_objects("*")],
        )
        policy = self.role.node.try_find_child("DefaultPolicy")
        assert policy is not None
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{bucket_arn_in_findings(source)}/*]",
            "Keys given directly can be any key of the source bucket; the function only "
            "reads their metadata (ETag and size) there.",
        )
        return grant

    def _acknowledge(self) -> None:
        acknowledge(
            self.dead_letter_queue,
            "Serverless-SQSRedrivePolicy",
            "This queue is itself the function's dead-letter queue; nothing consumes it "
            "automatically, so a queue behind it would never receive anything.",
        )
        acknowledge(
            self.function,
            "Serverless-LambdaTracing",
            "The function makes one RunTask call per batch and logs every task ARN and "
            "failure; X-Ray traces would add cost and permissions without more insight.",
        )
        skip_function_checks(self.function, self.log_group)


def skip_function_checks(function: lambda_.Function, log_group: logs.LogGroup) -> None:
    """checkov acknowledgments shared by this app's functions and their log groups."""
    skip_checkov(
        function,
        "CKV_AWS_117",
        "The function calls only AWS APIs (ECS, DynamoDB, SQS, S3) over HTTPS; inside a VPC "
        "it would need a NAT gateway or interface endpoints for no gain.",
    )
    skip_checkov(
        function,
        "CKV_AWS_173",
        "Lambda encrypts environment variables at rest with its AWS managed key; they hold "
        "resource names and settings, no secrets.",
    )
    skip_checkov(
        log_group,
        "CKV_AWS_158",
        "CloudWatch Logs encrypts every log group at rest; a customer managed KMS key would "
        "add cost and a key policy to protect image keys and counts.",
    )
