"""Event queue: S3 notifications go into SQS, and Lambda reads them in batches.

Without the queue, S3 invokes the trigger once per object and each upload starts its own Fargate
task. Through the queue one invocation receives up to `queueBatchSize` notifications (gathered for
up to `queueBatchWindowSeconds`), so its keys are packed `maxUrisPerTask` to a task.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as lambda_event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.checkov import skip_checkov
from stacks.nag import acknowledge
from stacks.props import check, check_bool, check_range
from stacks.queues import secure_queue
from stacks.stack_settings import (
    LAMBDA_RESERVED_CONCURRENCY,
    LAMBDA_TIMEOUT_SECONDS,
    QUEUE_BATCH_SIZE,
    QUEUE_BATCH_SIZE_WITHOUT_WINDOW,
    QUEUE_BATCH_WINDOW_SECONDS,
)

IMAGE_SUFFIXES = ("jpg", "jpeg", "png", "tif", "tiff", "gif", "webp")
"""Suffixes that trigger processing, matched in lower and in UPPER case."""

# AWS: "set the source queue's visibility timeout to at least six times the timeout that you
# configure on your function"; the batching window is added because messages are already
# received (invisible) while Lambda keeps gathering the batch.
VISIBILITY_TIMEOUT_FACTOR = 6
# Receives before a message moves to the dead-letter queue. Above 1 so that throttled or
# partially failed batches get further attempts (Lambda docs suggest at least 5).
MAX_RECEIVE_COUNT = 5

# The Python handler of CDK's bucket-notification custom resource (one per stack, fixed id).
_NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"


def notification_suffixes() -> list[str]:
    """Every suffix filter, one per case: `.jpg`, `.JPG`, `.jpeg`, ..."""
    return [f".{s}" for s in IMAGE_SUFFIXES] + [f".{s.upper()}" for s in IMAGE_SUFFIXES]


@dataclass(frozen=True, kw_only=True)
class EventQueueProps:
    """How the function reads the queue (settings `queueBatchSize`, `queueBatchWindowSeconds`,
    `s3Notifications`, and the function's `lambdaTimeoutSeconds` and
    `lambdaReservedConcurrency`)."""

    batch_size: int
    """Most messages one invocation receives; above 10 only with a batching window."""
    batch_window_seconds: int
    """How long Lambda gathers messages into a batch (0 = none)."""
    function_timeout_seconds: int
    """The consuming function's timeout, which the queue's visibility timeout must outlast."""
    function_reserved_concurrency: int
    """The consuming function's reserved concurrency, which caps the pollers' concurrency."""
    s3_notifications: bool
    """Have the source bucket notify the queue of new images."""

    def __post_init__(self) -> None:
        check_range(self, "batch_size", QUEUE_BATCH_SIZE)
        check_range(self, "batch_window_seconds", QUEUE_BATCH_WINDOW_SECONDS)
        check(
            self,
            "batch_size",
            self.batch_size <= QUEUE_BATCH_SIZE_WITHOUT_WINDOW or self.batch_window_seconds > 0,
            f"at most {QUEUE_BATCH_SIZE_WITHOUT_WINDOW} without a batching window",
        )
        check_range(self, "function_timeout_seconds", LAMBDA_TIMEOUT_SECONDS)
        check_range(self, "function_reserved_concurrency", LAMBDA_RESERVED_CONCURRENCY)
        check_bool(self, "s3_notifications")

    @property
    def visibility_timeout_seconds(self) -> int:
        """How long a received message stays hidden: 6x the function timeout plus the window."""
        return VISIBILITY_TIMEOUT_FACTOR * self.function_timeout_seconds + self.batch_window_seconds


class EventQueue(Construct):
    """The queue S3 notifies, its dead-letter queue, and the function's event source mapping.

    The queue always exists (anything that sends S3 event notifications may use it);
    `s3Notifications` decides whether the source bucket sends its ObjectCreated events there.

    Attributes:
        queue: the queue of S3 event notifications the function consumes.
        dead_letter_queue: messages received `MAX_RECEIVE_COUNT` times without success.
        event_source: the SQS event source of the function.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: EventQueueProps,
        function: lambda_.IFunction,
        source_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = secure_queue(self, "DeadLetterQueue")
        self.queue = secure_queue(
            self,
            "Queue",
            visibility_timeout=cdk.Duration.seconds(props.visibility_timeout_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=MAX_RECEIVE_COUNT
            ),
        )
        window = props.batch_window_seconds
        # Lambda's pollers scale up to 1000 concurrent invocations unless capped; capped at the
        # function's reserved concurrency, they are not throttled (throttled batches return to
        # the queue and count as receives). The mapping accepts 2 to 1000.
        reserved = props.function_reserved_concurrency
        self.event_source = lambda_event_sources.SqsEventSource(
            self.queue,
            batch_size=props.batch_size,
            max_batching_window=cdk.Duration.seconds(window) if window else None,
            report_batch_item_failures=True,
            max_concurrency=reserved if reserved >= 2 else None,
        )
        function.add_event_source(self.event_source)
        self._acknowledge()
        self._acknowledge_mapping(function)
        if props.s3_notifications:
            self._notify_on_images(source_bucket)

    def _notify_on_images(self, bucket: s3.IBucket) -> None:
        destination = s3n.SqsDestination(self.queue)
        # One filter per suffix: S3 matches suffixes case-sensitively and allows one per rule.
        for suffix in notification_suffixes():
            bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED, destination, s3.NotificationKeyFilter(suffix=suffix)
            )
        self._acknowledge_notifications_handler()

    def _acknowledge(self) -> None:
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the event queue's dead-letter queue; a queue behind it "
            "would never receive anything.",
        )
        acknowledge(
            self.dead_letter_queue,
            "Serverless-SQSRedrivePolicy",
            "This queue is itself the event queue's dead-letter queue; nothing consumes it "
            "automatically, so a queue behind it would never receive anything.",
        )

    def _acknowledge_mapping(self, function: lambda_.IFunction) -> None:
        # CDK adds the mapping under the function, with an id naming the queue; find_child
        # fails loudly should CDK rename it.
        mapping = function.node.find_child(
            f"SqsEventSource:{cdk.Names.node_unique_id(self.queue.node)}"
        )
        acknowledge(
            mapping,
            "Serverless-LambdaEventSourceMappingDestination",
            "Lambda supports on-failure destinations for stream and Kafka sources only; for "
            "this SQS source the queue's redrive policy moves failed messages to its "
            "dead-letter queue.",
        )

    @staticmethod
    def _skip_notifications_handler_checks(handler: Construct) -> None:
        function = handler.node.find_child("Resource")
        reason = (
            "CDK's own bucket-notification custom resource runs only when CloudFormation "
            "creates, updates or deletes the stack, to configure the source bucket's "
            "notifications; {}"
        )
        for check_id, why in (
            ("CKV_AWS_115", "it is never invoked concurrently with itself."),
            ("CKV_AWS_116", "CloudFormation reports and retries its failures."),
            ("CKV_AWS_117", "it calls only the S3 API."),
        ):
            skip_checkov(function, check_id, reason.format(why))

    def _acknowledge_notifications_handler(self) -> None:
        # Made by the bucket's first event notification (created or imported bucket alike);
        # find_child fails loudly should CDK rename it.
        handler = cdk.Stack.of(self).node.find_child(_NOTIFICATIONS_HANDLER_ID)
        self._skip_notifications_handler_checks(handler)
        acknowledge(
            handler.node.find_child("Role"),
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "CDK's own bucket-notification custom resource uses this role only to write its "
            "logs while it configures the source bucket's notifications at deploy time.",
        )
