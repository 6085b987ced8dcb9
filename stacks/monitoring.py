"""Monitoring: the alarm topic, the alarms and the dashboard of one stack (issue #15).

Metric names and dimensions are those of docs/contracts.md, "Metrics" (namespace `IiifProcess`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.nag import acknowledge

NAMESPACE = "IiifProcess"
"""The EMF namespace the tool and the functions write (docs/contracts.md, "Metrics")."""

REASON_CLASS = "ReasonClass"
_ONE_MINUTE = cdk.Duration.minutes(1)
_FIVE_MINUTES = cdk.Duration.minutes(5)


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """The alarm thresholds (settings `stalledQueueSeconds`, `failureRatePercent`, ...)."""

    stalled_queue_seconds: int
    failure_rate_percent: int
    failure_rate_window_minutes: int


class Monitoring(Construct):
    """An encrypted, TLS-only SNS topic, the alarms that notify it, and a dashboard.

    Attributes:
        topic: the alarm topic (every alarm's alarm and OK action).
        key: the customer managed KMS key encrypting the topic.
        dashboard: the CloudWatch dashboard.
        alarms: every alarm, by a short name (`dlq-<name>`, `stalled-queue`, `failure-rate`,
            `out-of-memory`, `errors-<function>`).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stack_name: str,
        event_queue: sqs.IQueue,
        dead_letter_queues: Mapping[str, sqs.IQueue],
        functions: Mapping[str, lambda_.IFunction],
        cluster_name: str,
        thresholds: Thresholds,
        alarm_email: str | None,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        if not dead_letter_queues:
            raise ValueError("Monitoring needs the stack's dead-letter queues")
        self._stack_name = stack_name
        self._thresholds = thresholds
        self.key, self.topic = self._topic(removal_policy)
        if alarm_email is not None:
            subscription = self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
            acknowledge(
                subscription,
                "Serverless-SNSRedrivePolicy",
                "A dead-letter queue for undeliverable alarm emails could only be watched by an "
                "alarm notifying this same topic; every alarm's state stays in CloudWatch.",
            )
        self.alarms: dict[str, cw.Alarm] = {}
        for name, queue in dead_letter_queues.items():
            self._alarm(
                f"dlq-{name}",
                queue.metric_approximate_number_of_messages_visible(
                    statistic="Maximum", period=_ONE_MINUTE
                ),
                threshold=0,
                description=f"A message is in the {name} dead-letter queue: work that failed "
                "every retry waits there for a person.",
            )
        self._alarm(
            "stalled-queue",
            event_queue.metric_approximate_age_of_oldest_message(
                statistic="Maximum", period=_ONE_MINUTE
            ),
            threshold=thresholds.stalled_queue_seconds,
            description="The event queue's oldest message is older than "
            f"{thresholds.stalled_queue_seconds} s: the pipeline has stalled.",
        )
        self._alarm(
            "failure-rate",
            self.failure_rate(),
            threshold=thresholds.failure_rate_percent,
            description=f"More than {thresholds.failure_rate_percent}% of images failed in "
            f"{thresholds.failure_rate_window_minutes} minutes.",
        )
        self._alarm(
            "out-of-memory",
            self._metric("TasksKilledOutOfMemory", period=_FIVE_MINUTES),
            threshold=0,
            description="A task was stopped for running out of memory (exit 137).",
        )
        for name, function in functions.items():
            self._alarm(
                f"errors-{name}",
                function.metric_errors(statistic="Sum", period=_FIVE_MINUTES),
                threshold=0,
                description=f"The {name} function failed an invocation.",
            )
        self.dashboard = self._dashboard(event_queue, dead_letter_queues, functions, cluster_name)

    def _topic(self, removal_policy: cdk.RemovalPolicy) -> tuple[kms.Key, sns.Topic]:
        # A customer managed key, not alias/aws/sns: the AWS managed key's policy cannot be
        # changed, so CloudWatch could not use it and alarm notifications would be dropped.
        key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the iiif-process alarm topic; CloudWatch may use it to publish.",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        cloudwatch = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[cloudwatch],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
            )
        )
        topic = sns.Topic(self, "Topic", master_key=key, enforce_ssl=True)
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[cloudwatch],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
            )
        )
        return key, topic

    def _metric(
        self, name: str, *, statistic: str = "Sum", period: cdk.Duration = _FIVE_MINUTES
    ) -> cw.Metric:
        """A metric of this stack in the contract's namespace (dimension `Stack` only)."""
        return cw.Metric(
            namespace=NAMESPACE,
            metric_name=name,
            dimensions_map={"Stack": self._stack_name},
            statistic=statistic,
            period=period,
        )

    def failure_rate(self) -> cw.MathExpression:
        """Failed images in percent of finished ones, per window; no images = no data point.

        Uses the Stack-only series of `ImagesFailed` (docs/contracts.md: the tool declares both
        [Stack] and [Stack, ReasonClass]); alarms cannot evaluate SEARCH expressions.
        """
        period = cdk.Duration.minutes(self._thresholds.failure_rate_window_minutes)
        return cw.MathExpression(
            expression="IF((FILL(s, 0) + FILL(f, 0)) > 0, "
            "100 * FILL(f, 0) / (FILL(s, 0) + FILL(f, 0)))",
            using_metrics={
                "s": self._metric("ImagesSucceeded", period=period),
                "f": self._metric("ImagesFailed", period=period),
            },
            label="Failed images (%)",
            period=period,
        )

    def _alarm(
        self, name: str, metric: cw.IMetric, *, threshold: float, description: str
    ) -> cw.Alarm:
        alarm = metric.create_alarm(
            self,
            f"Alarm-{name}",
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        action = cw_actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms[name] = alarm
        return alarm

    def _dashboard(
        self,
        event_queue: sqs.IQueue,
        dead_letter_queues: Mapping[str, sqs.IQueue],
        functions: Mapping[str, lambda_.IFunction],
        cluster_name: str,
    ) -> cw.Dashboard:
        dashboard = cw.Dashboard(self, "Dashboard", default_interval=cdk.Duration.hours(6))
        reasons = cw.MathExpression(
            expression=(
                f'SEARCH(\'{{{NAMESPACE},Stack,{REASON_CLASS}}} MetricName="ImagesFailed" '
                f"Stack=\"{self._stack_name}\"', 'Sum', 300)"
            ),
            using_metrics={},
            label="",
            period=_FIVE_MINUTES,
        )

        def insights(name: str, label: str) -> cw.Metric:
            return cw.Metric(
                namespace="ECS/ContainerInsights",
                metric_name=name,
                dimensions_map={"ClusterName": cluster_name},
                statistic="Average",
                period=_ONE_MINUTE,
                label=label,
            )

        dashboard.add_widgets(
            cw.GraphWidget(
                title="Images succeeded and failed",
                left=[self._metric("ImagesSucceeded"), self._metric("ImagesFailed")],
                right=[self.failure_rate()],
                width=12,
            ),
            cw.GraphWidget(title="Failures by reason class", left=[reasons], width=12),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Event queue",
                left=[
                    event_queue.metric_approximate_number_of_messages_visible(period=_ONE_MINUTE)
                ],
                right=[
                    event_queue.metric_approximate_age_of_oldest_message(
                        statistic="Maximum", period=_ONE_MINUTE
                    )
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="Dead-letter queues (messages visible)",
                left=[
                    queue.metric_approximate_number_of_messages_visible(
                        statistic="Maximum", period=_ONE_MINUTE, label=name
                    )
                    for name, queue in dead_letter_queues.items()
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Tasks (Container Insights)",
                left=[insights("TaskCount", "running tasks")],
                right=[
                    self._metric("TasksStarted"),
                    self._metric("TasksKilledOutOfMemory"),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Task CPU (units)",
                left=[
                    insights("CpuUtilized", "CPU used"),
                    insights("CpuReserved", "CPU reserved"),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Task memory (MiB)",
                left=[
                    insights("MemoryUtilized", "memory used"),
                    insights("MemoryReserved", "memory reserved"),
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Lambda errors and throttles",
                left=[
                    metric
                    for name, function in functions.items()
                    for metric in (
                        function.metric_errors(
                            statistic="Sum", period=_FIVE_MINUTES, label=f"{name} errors"
                        ),
                        function.metric_throttles(
                            statistic="Sum", period=_FIVE_MINUTES, label=f"{name} throttles"
                        ),
                    )
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="Seconds per image",
                left=[
                    self._metric("ImageSeconds", statistic="p50"),
                    self._metric("ImageSeconds", statistic="p95"),
                ],
                # Per stack alone: the runtime declares [Stack] beside [Stack, ReasonClass].
                right=[self._metric("UrisSkipped"), self._metric("Redrives")],
                width=12,
            ),
        )
        return dashboard
