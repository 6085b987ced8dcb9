"""Trigger: the Lambda that turns S3 events into RunTask calls, its DLQ, logs and notifications."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.nag import acknowledge
from stacks.settings import Settings

LAMBDA_DIR = Path(__file__).resolve().parent.parent / "lambda_src"
"""The function's code: `handler.py` and the `iiif_process_ecs` package (boto3 only)."""

HANDLER = "handler.handler"
RUNTIME = lambda_.Runtime.PYTHON_3_14
IMAGE_SUFFIXES = ("jpg", "jpeg", "png", "tif", "tiff", "gif", "webp")
"""Suffixes that trigger processing, matched in lower and in UPPER case."""

CONFIG_PATH = "/etc/go-iiif/config.json"
INSTRUCTIONS_PATH = "/etc/go-iiif/instructions.json"

_CODE_EXCLUDES = ["requirements.txt", "**/__pycache__", "**/*.pyc", "**/*.egg-info"]

# The Python handler of CDK's bucket-notification custom resource (one per stack, fixed id).
_NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"


def notification_suffixes() -> list[str]:
    """Every suffix filter, one per case: `.jpg`, `.JPG`, `.jpeg`, ..."""
    return [f".{s}" for s in IMAGE_SUFFIXES] + [f".{s.upper()}" for s in IMAGE_SUFFIXES]


class Trigger(Construct):
    """The trigger function with its dead-letter queue, log group and S3 notifications.

    Attributes:
        function: the Lambda function (`handler.handler`).
        dead_letter_queue: where asynchronous invocations that failed every retry end up.
        log_group: the function's log group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        environment: dict[str, str],
        source_bucket: s3.IBucket,
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            enforce_ssl=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            retention_period=cdk.Duration.days(14),
        )
        self.log_group = logs.LogGroup(
            self, "LogGroup", retention=log_retention, removal_policy=removal_policy
        )
        # An own role instead of CDK's default one, which attaches the AWSLambdaBasicExecutionRole
        # managed policy (logs:* on every log group); this one writes to its log group only.
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="iiif-process trigger: writes its logs, runs the iiif-process task.",
        )
        self.log_group.grant_write(role)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(LAMBDA_DIR), exclude=_CODE_EXCLUDES),
            role=role,
            timeout=cdk.Duration.seconds(settings.lambda_timeout_seconds),
            memory_size=settings.lambda_memory_mib,
            reserved_concurrent_executions=settings.lambda_reserved_concurrency,
            dead_letter_queue=self.dead_letter_queue,
            log_group=self.log_group,
            environment=environment,
            description="Starts iiif-process Fargate tasks for images put in the source bucket.",
        )
        self._acknowledge()
        if settings.s3_notifications:
            self._notify_on_images(source_bucket)

    def _notify_on_images(self, bucket: s3.IBucket) -> None:
        destination = s3n.LambdaDestination(self.function)
        # One filter per suffix: S3 matches suffixes case-sensitively and allows one per rule.
        for suffix in notification_suffixes():
            bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED, destination, s3.NotificationKeyFilter(suffix=suffix)
            )
        self._acknowledge_notifications_handler()

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

    def _acknowledge_notifications_handler(self) -> None:
        handler = cdk.Stack.of(self).node.try_find_child(_NOTIFICATIONS_HANDLER_ID)
        role = handler.node.try_find_child("Role") if handler is not None else None
        if role is None:
            return
        acknowledge(
            role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "CDK's own bucket-notification custom resource uses this role only to write its "
            "logs while it configures the source bucket's notifications at deploy time.",
        )
