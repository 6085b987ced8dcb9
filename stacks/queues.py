"""The one way this app makes an SQS queue: TLS only, SSE-SQS encrypted, messages kept 14 days."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.checkov import skip_checkov

RETENTION = cdk.Duration.days(14)
"""The longest SQS keeps a message: time to notice a dead letter and act on it."""


def secure_queue(scope: Construct, construct_id: str, **kwargs: Any) -> sqs.Queue:
    """An SQS queue that refuses plain HTTP and is encrypted with SSE-SQS.

    SSE-SQS rather than KMS because S3 event notifications cannot send to a queue encrypted with
    the AWS managed KMS key. Further queue properties pass through ``kwargs``.
    """
    queue = sqs.Queue(
        scope,
        construct_id,
        enforce_ssl=True,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        retention_period=RETENTION,
        **kwargs,
    )
    skip_checkov(
        queue,
        "CKV_AWS_27",
        "The queue is encrypted with SSE-SQS (SqsManagedSseEnabled), which this check does "
        "not recognize; S3 cannot send to a queue under the AWS managed KMS key.",
    )
    return queue
