"""Reconcile: when a task of this cluster stops, account for every key it held (issue #9).

EventBridge's "ECS Task State Change" events with `lastStatus` `STOPPED` for this cluster go to
an SQS queue (moto's EventBridge, like AWS, delivers to queues; the queue also gives batching,
retries and a dead-letter queue), which feeds the reconcile function through an event source
mapping. The function queries the ledger's `by-task` index and re-queues or re-runs the keys
the task did not finish (docs/contracts.md, "The ledger").
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_event_sources as lambda_event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.checkov import skip_checkov
from stacks.event_queue import MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_FACTOR
from stacks.nag import acknowledge
from stacks.queues import secure_queue
from stacks.runtime_function import check_function_size, runtime_function
from stacks.trigger_function import skip_function_checks

HANDLER = "reconcile_handler.handler"
# A few stopped tasks at a time is plenty (each is a Query and a few writes); 2 is the least an
# SQS event source mapping's maximum concurrency accepts.
RESERVED_CONCURRENCY = 2
BATCH_SIZE = 10

EVENT_SOURCE = "aws.ecs"
EVENT_DETAIL_TYPE = "ECS Task State Change"
STOPPED = "STOPPED"


@dataclass(frozen=True, kw_only=True)
class ReconcileProps:
    """The reconcile function's size (settings `lambdaTimeoutSeconds`, `lambdaMemoryMiB`, which
    it shares with the trigger)."""

    timeout_seconds: int
    memory_mib: int

    def __post_init__(self) -> None:
        check_function_size(self)


class Reconcile(Construct):
    """The rule, queue, dead-letter queue, function and log group that reconcile stopped tasks.

    Attributes:
        rule: the EventBridge rule on the default bus (this cluster's stopped tasks).
        queue: the queue the rule sends to and the function reads.
        dead_letter_queue: events the function failed `MAX_RECEIVE_COUNT` times, and events
            EventBridge could not deliver to the queue.
        function: the reconcile function (`reconcile_handler.handler`).
        log_group: the function's log group.
        role: the function's role.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: ReconcileProps,
        cluster_arn: str,
        environment: dict[str, str],
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = secure_queue(self, "DeadLetterQueue")
        self.queue = secure_queue(
            self,
            "Queue",
            visibility_timeout=cdk.Duration.seconds(
                VISIBILITY_TIMEOUT_FACTOR * props.timeout_seconds
            ),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=MAX_RECEIVE_COUNT
            ),
        )
        self.rule = events.Rule(
            self,
            "TaskStoppedRule",
            description="Stopped iiif-process tasks of this cluster, for reconciliation.",
            event_pattern=events.EventPattern(
                source=[EVENT_SOURCE],
                detail_type=[EVENT_DETAIL_TYPE],
                detail={"lastStatus": [STOPPED], "clusterArn": [cluster_arn]},
            ),
        )
        # The target adds the queue policy that lets events.amazonaws.com (this rule only) send.
        self.rule.add_target(targets.SqsQueue(self.queue, dead_letter_queue=self.dead_letter_queue))
        made = runtime_function(
            self,
            handler=HANDLER,
            description="Re-queues or re-runs the unfinished keys of stopped iiif-process tasks.",
            role_description="iiif-process reconcile: re-queues or re-runs the keys of stopped "
            "tasks.",
            environment=environment,
            timeout_seconds=props.timeout_seconds,
            memory_mib=props.memory_mib,
            reserved_concurrency=RESERVED_CONCURRENCY,
            log_retention=log_retention,
            removal_policy=removal_policy,
        )
        self.function, self.role, self.log_group = made.function, made.role, made.log_group
        self.event_source = lambda_event_sources.SqsEventSource(
            self.queue,
            batch_size=BATCH_SIZE,
            report_batch_item_failures=True,
            max_concurrency=RESERVED_CONCURRENCY,
        )
        self.function.add_event_source(self.event_source)
        self._acknowledge()

    def _acknowledge(self) -> None:
        for rule_id in ("AwsSolutions-SQS3", "Serverless-SQSRedrivePolicy"):
            acknowledge(
                self.dead_letter_queue,
                rule_id,
                "This queue is itself the reconcile queue's dead-letter queue; a queue behind "
                "it would never receive anything.",
            )
        acknowledge(
            self.function,
            "Serverless-LambdaTracing",
            "The function makes a Query and a few writes per stopped task and logs each key's "
            "outcome; X-Ray traces would add cost and permissions without more insight.",
        )
        acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "The function is invoked only by its SQS event source mapping; the reconcile "
            "queue's redrive policy moves failed events to its dead-letter queue.",
        )
        # CDK adds the mapping under the function, with an id naming the queue; find_child
        # fails loudly should CDK rename it.
        mapping = self.function.node.find_child(
            f"SqsEventSource:{cdk.Names.node_unique_id(self.queue.node)}"
        )
        acknowledge(
            mapping,
            "Serverless-LambdaEventSourceMappingDestination",
            "Lambda supports on-failure destinations for stream and Kafka sources only; for "
            "this SQS source the queue's redrive policy moves failed events to its "
            "dead-letter queue.",
        )
        skip_function_checks(self.function, self.log_group)
        skip_checkov(
            self.function,
            "CKV_AWS_116",
            "The function is invoked only by its SQS event source mapping, where a Lambda "
            "dead-letter queue never applies; the reconcile queue's redrive policy keeps what "
            "failed.",
        )
