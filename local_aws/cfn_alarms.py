"""The template's CloudWatch alarms, which moto's CloudFormation does not create.

moto 5.2.5 models `AWS::CloudWatch::Dashboard` but skips `AWS::CloudWatch::Alarm` ("No Moto
CloudFormation support"), so the embedded AWS would have the stack's topic and no alarm notifying
it, and `iiif-process-ecs -mode status` would find none. While `template_alarms` is active, an
alarm resource is passed to moto's own PutMetricAlarm, as CloudFormation passes it to CloudWatch
(its properties arrive with `Ref` and `Fn::GetAtt` already resolved by moto). moto never
evaluates alarms: they keep the state moto gives a new alarm (`OK`) unless a test sets one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.cloudformation.parsing import get_model_map
from moto.cloudwatch.models import (
    Alarm,
    Dimension,
    Metric,
    MetricDataQuery,
    MetricStat,
    cloudwatch_backends,
)
from moto.core.common_models import CloudFormationModel

ALARM_TYPE = "AWS::CloudWatch::Alarm"


def _queries(metrics: list[dict[str, Any]]) -> list[MetricDataQuery] | None:
    """A metric-math alarm's `Metrics`, as moto's PutMetricAlarm builds them."""
    if not metrics:
        return None
    queries = []
    for metric in metrics:
        stat = metric.get("MetricStat")
        metric_stat = None
        if stat:
            inner = stat.get("Metric", {})
            metric_stat = MetricStat(
                metric=Metric(
                    metric_name=inner.get("MetricName"),
                    namespace=inner.get("Namespace"),
                    dimensions=[
                        Dimension(name=d.get("Name"), value=d.get("Value"))
                        for d in inner.get("Dimensions", [])
                    ],
                ),
                period=stat.get("Period"),
                stat=stat.get("Stat"),
                unit=stat.get("Unit"),
            )
        queries.append(
            MetricDataQuery(
                query_id=metric.get("Id"),
                label=metric.get("Label"),
                period=metric.get("Period"),
                return_data=metric.get("ReturnData"),
                expression=metric.get("Expression"),
                metric_stat=metric_stat,
            )
        )
    return queries


class TemplateAlarm(CloudFormationModel):
    """`AWS::CloudWatch::Alarm` for moto's CloudFormation: PutMetricAlarm with its properties
    (this object is the stack's resource; the alarm lives in moto's CloudWatch)."""

    def __init__(self, alarm: Alarm) -> None:
        self.alarm = alarm

    @property
    def physical_resource_id(self) -> str:
        return str(self.alarm.name)

    @staticmethod
    def cloudformation_type() -> str:
        return ALARM_TYPE

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> TemplateAlarm:
        p = cloudformation_json["Properties"]
        # Unnamed, moto's CloudFormation gives it a name from the stack and the logical id.
        name = p.get("AlarmName") or resource_name
        alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=name,
            namespace=p.get("Namespace"),
            metric_name=p.get("MetricName"),
            metric_data_queries=_queries(p.get("Metrics", [])),
            comparison_operator=p["ComparisonOperator"],
            evaluation_periods=int(p["EvaluationPeriods"]),
            datapoints_to_alarm=p.get("DatapointsToAlarm"),
            period=p.get("Period"),
            threshold=p.get("Threshold"),
            statistic=p.get("Statistic"),
            extended_statistic=p.get("ExtendedStatistic"),
            description=p.get("AlarmDescription", ""),
            dimensions=p.get("Dimensions", []),
            alarm_actions=p.get("AlarmActions", []),
            ok_actions=p.get("OKActions", []),
            insufficient_data_actions=p.get("InsufficientDataActions", []),
            unit=p.get("Unit"),
            actions_enabled=p.get("ActionsEnabled", True) not in (False, "false"),
            treat_missing_data=p.get("TreatMissingData"),
        )
        return cls(alarm)


@contextmanager
def template_alarms() -> Iterator[None]:
    """While active, CloudFormation creates a template's metric alarms in moto's CloudWatch."""
    models = get_model_map()
    before = models.get(ALARM_TYPE)
    models[ALARM_TYPE] = TemplateAlarm
    try:
        yield
    finally:
        if before is None:
            models.pop(ALARM_TYPE, None)
        else:
            models[ALARM_TYPE] = before
