"""Monitoring (issue #15): alarms on every dead-letter queue and on what stalls or fails, an
encrypted TLS-only topic they notify, a dashboard of the contract's metrics, the stack name set."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.stacks.conftest import ALARM_EMAIL, Synthesized

NAMESPACE = "IiifProcess"  # docs/contracts.md, "Metrics"


def _logical_id(value: Any) -> str | None:
    """The resource a `{"Fn::GetAtt": [id, ...]}` or `{"Ref": id}` points at."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
        if "Ref" in value:
            return value["Ref"]
    return None


def _dead_letter_queues(s: Synthesized) -> set[str]:
    """Every SQS queue some queue's redrive policy, function or rule target sends failures to."""
    found: set[str] = set()
    for queue in s.resources("AWS::SQS::Queue").values():
        policy = queue["Properties"].get("RedrivePolicy")
        if policy:
            found.add(_logical_id(policy["deadLetterTargetArn"]))
    for function in s.resources("AWS::Lambda::Function").values():
        config = function["Properties"].get("DeadLetterConfig")
        if config:
            found.add(_logical_id(config["TargetArn"]))
    for rule in s.resources("AWS::Events::Rule").values():
        for target in rule["Properties"].get("Targets", []):
            if "DeadLetterConfig" in target:
                found.add(_logical_id(target["DeadLetterConfig"]["Arn"]))
    queues = set(s.resources("AWS::SQS::Queue"))
    return {logical_id for logical_id in found if logical_id in queues}


def _alarms(s: Synthesized) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in s.resources("AWS::CloudWatch::Alarm").items()}


def _alarm_on(s: Synthesized, metric_name: str) -> dict[str, Any]:
    found = [a for a in _alarms(s).values() if a.get("MetricName") == metric_name]
    assert len(found) == 1, f"expected one alarm on {metric_name}, found {len(found)}"
    return found[0]


def _failure_rate_alarm(s: Synthesized) -> dict[str, Any]:
    found = [a for a in _alarms(s).values() if "Metrics" in a]
    assert len(found) == 1
    return found[0]


def _topic_id(s: Synthesized) -> str:
    (topic_id,) = s.resources("AWS::SNS::Topic")
    return topic_id


def _project_functions(s: Synthesized) -> dict[str, dict[str, Any]]:
    """The trigger and reconcile functions (not CDK's own custom resource handlers)."""
    return {
        k: v
        for k, v in s.resources("AWS::Lambda::Function").items()
        if "IIIF_PROCESS_MODE" in v["Properties"].get("Environment", {}).get("Variables", {})
    }


def _dashboard_body(s: Synthesized) -> str:
    dashboard = s.only("AWS::CloudWatch::Dashboard")
    return json.dumps(dashboard["Properties"]["DashboardBody"])


def test_dashboard_rows_fill_its_24_columns(default: Synthesized) -> None:
    """Two graphs of 12, two of 12, three of 8, two of 12: each row exactly as wide as the
    dashboard, so no graph wraps onto a row of its own."""
    body = _dashboard_body(default)
    widths = [int(w) for w in re.findall(r'\\"width\\":(\d+)', body)]
    assert widths == [12, 12, 12, 12, 8, 8, 8, 12, 12]


# --- dead-letter queues --------------------------------------------------------------------


def test_the_stack_has_three_dead_letter_queues(default: Synthesized) -> None:
    # Event queue's, trigger function's, reconcile queue's (also the rule target's).
    assert len(_dead_letter_queues(default)) == 3


def test_every_dead_letter_queue_has_an_alarm_on_any_visible_message(
    default: Synthesized,
) -> None:
    watched = {
        _logical_id(alarm["Dimensions"][0]["Value"])
        for alarm in _alarms(default).values()
        if alarm.get("Namespace") == "AWS/SQS"
        and alarm.get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and alarm["Threshold"] == 0
        and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    }
    assert _dead_letter_queues(default) <= watched


# --- the topic -----------------------------------------------------------------------------


def test_every_alarm_notifies_the_topic_on_alarm_and_ok(default: Synthesized) -> None:
    topic = {"Ref": _topic_id(default)}
    actions = {
        name: (alarm.get("AlarmActions"), alarm.get("OKActions"))
        for name, alarm in _alarms(default).items()
    }
    assert actions == {name: ([topic], [topic]) for name in actions}


def test_topic_is_encrypted_with_a_rotated_customer_key(default: Synthesized) -> None:
    topic = default.only("AWS::SNS::Topic")
    key_id = _logical_id(topic["Properties"]["KmsMasterKeyId"])
    key = default.resources("AWS::KMS::Key")[key_id]
    assert key["Properties"]["EnableKeyRotation"] is True


def test_cloudwatch_may_use_the_topic_key(default: Synthesized) -> None:
    topic = default.only("AWS::SNS::Topic")
    key = default.resources("AWS::KMS::Key")[_logical_id(topic["Properties"]["KmsMasterKeyId"])]
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert any(
        st["Effect"] == "Allow"
        and st["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(st["Action"])
        for st in statements
    )


def _topic_statements(s: Synthesized) -> list[dict[str, Any]]:
    policy = s.only("AWS::SNS::TopicPolicy")["Properties"]
    assert policy["Topics"] == [{"Ref": _topic_id(s)}]
    return policy["PolicyDocument"]["Statement"]


def test_topic_refuses_publishing_without_tls(default: Synthesized) -> None:
    assert any(
        st["Effect"] == "Deny"
        and st["Principal"] == "*"
        and st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for st in _topic_statements(default)
    )


def test_cloudwatch_of_this_account_may_publish_to_the_topic(default: Synthesized) -> None:
    assert any(
        st["Effect"] == "Allow"
        and st["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        and st["Action"] == "sns:Publish"
        and st["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
        for st in _topic_statements(default)
    )


def test_no_subscription_without_alarm_email(default: Synthesized) -> None:
    assert default.resources("AWS::SNS::Subscription") == {}


def test_alarm_email_is_subscribed_to_the_topic(monitored: Synthesized) -> None:
    subscription = monitored.only("AWS::SNS::Subscription")["Properties"]
    assert (subscription["Protocol"], subscription["Endpoint"], subscription["TopicArn"]) == (
        "email",
        ALARM_EMAIL,
        {"Ref": _topic_id(monitored)},
    )


# --- the other alarms ----------------------------------------------------------------------


def test_every_alarm_treats_missing_data_as_not_breaching(default: Synthesized) -> None:
    assert {a["TreatMissingData"] for a in _alarms(default).values()} == {"notBreaching"}


def test_stalled_queue_alarm_watches_the_event_queue(default: Synthesized) -> None:
    alarm = _alarm_on(default, "ApproximateAgeOfOldestMessage")
    assert _logical_id(alarm["Dimensions"][0]["Value"]) == _event_queue(default)


def _event_queue(s: Synthesized) -> str:
    """The queue whose messages the trigger function receives."""
    (trigger,) = (
        k
        for k, v in _project_functions(s).items()
        if "IIIF_PROCESS_EVENT_QUEUE_URL" not in v["Properties"]["Environment"]["Variables"]
    )
    for mapping in s.resources("AWS::Lambda::EventSourceMapping").values():
        if mapping["Properties"]["FunctionName"] == {"Ref": trigger}:
            return _logical_id(mapping["Properties"]["EventSourceArn"])
    raise AssertionError("the trigger has no event source mapping")


def test_stalled_queue_alarm_threshold_defaults_to_900_seconds(default: Synthesized) -> None:
    alarm = _alarm_on(default, "ApproximateAgeOfOldestMessage")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (900, "GreaterThanThreshold")


def test_stalled_queue_alarm_threshold_follows_the_setting(monitored: Synthesized) -> None:
    assert _alarm_on(monitored, "ApproximateAgeOfOldestMessage")["Threshold"] == 600


def test_failure_rate_alarm_divides_failed_by_finished_images(default: Synthesized) -> None:
    alarm = _failure_rate_alarm(default)
    by_id = {m["Id"]: m for m in alarm["Metrics"]}
    stats = {
        m["Id"]: (m["MetricStat"]["Metric"], m["MetricStat"]["Stat"])
        for m in alarm["Metrics"]
        if "MetricStat" in m
    }
    stack = [{"Name": "Stack", "Value": "IiifProcessStack"}]
    assert stats == {
        "s": (
            {"Dimensions": stack, "MetricName": "ImagesSucceeded", "Namespace": NAMESPACE},
            "Sum",
        ),
        "f": ({"Dimensions": stack, "MetricName": "ImagesFailed", "Namespace": NAMESPACE}, "Sum"),
    }
    (expression,) = (
        m["Expression"] for m in by_id.values() if m.get("ReturnData", True) and "Expression" in m
    )
    assert "100 * FILL(f, 0) / (FILL(s, 0) + FILL(f, 0))" in expression


def test_failure_rate_alarm_defaults_to_10_percent_in_15_minutes(default: Synthesized) -> None:
    alarm = _failure_rate_alarm(default)
    periods = {m["MetricStat"]["Period"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert (alarm["Threshold"], periods, alarm["EvaluationPeriods"]) == (10, {900}, 1)


def test_failure_rate_alarm_follows_the_settings(monitored: Synthesized) -> None:
    alarm = _failure_rate_alarm(monitored)
    periods = {m["MetricStat"]["Period"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert (alarm["Threshold"], periods) == (25, {1800})


def test_out_of_memory_and_function_error_alarms_look_at_five_minutes(
    default: Synthesized,
) -> None:
    """A killed task or a failed invocation is noticed within five minutes, not later."""
    periods = sorted(
        (alarm["MetricName"], alarm["Period"])
        for alarm in _alarms(default).values()
        if alarm.get("MetricName") in ("TasksKilledOutOfMemory", "Errors")
    )
    assert periods == [("Errors", 300), ("Errors", 300), ("TasksKilledOutOfMemory", 300)]


def test_out_of_memory_alarm_fires_on_any_killed_task(default: Synthesized) -> None:
    alarm = _alarm_on(default, "TasksKilledOutOfMemory")
    assert (
        alarm["Namespace"],
        alarm["Dimensions"],
        alarm["Statistic"],
        alarm["Threshold"],
        alarm["ComparisonOperator"],
    ) == (
        NAMESPACE,
        [{"Name": "Stack", "Value": "IiifProcessStack"}],
        "Sum",
        0,
        "GreaterThanThreshold",
    )


def test_both_functions_have_an_errors_alarm(default: Synthesized) -> None:
    watched = {
        _logical_id(alarm["Dimensions"][0]["Value"])
        for alarm in _alarms(default).values()
        if alarm.get("Namespace") == "AWS/Lambda"
        and alarm.get("MetricName") == "Errors"
        and alarm["Threshold"] == 0
    }
    assert watched == set(_project_functions(default)) and len(watched) == 2


# --- the dashboard -------------------------------------------------------------------------


def test_dashboard_graphs_the_contract_metrics(default: Synthesized) -> None:
    body = _dashboard_body(default)
    names = (
        "ImagesSucceeded",
        "ImagesFailed",
        "ImageSeconds",
        "TasksKilledOutOfMemory",
        "TasksStarted",
        "UrisSkipped",
        "Redrives",
    )
    assert [name for name in names if name not in body] == [] and NAMESPACE in body


def test_dashboard_shows_image_seconds_p50_and_p95(default: Synthesized) -> None:
    body = _dashboard_body(default)
    assert '\\"stat\\":\\"p50\\"' in body and '\\"stat\\":\\"p95\\"' in body


def test_dashboard_searches_failures_by_reason_class(default: Synthesized) -> None:
    assert "SEARCH('{IiifProcess,Stack,ReasonClass}" in _dashboard_body(default)


def test_dashboard_shows_the_clusters_container_insights(default: Synthesized) -> None:
    body = _dashboard_body(default)
    (cluster,) = default.resources("AWS::ECS::Cluster")
    metrics = ("TaskCount", "CpuUtilized", "MemoryUtilized")
    assert "ECS/ContainerInsights" in body and json.dumps({"Ref": cluster}) in body
    assert [m for m in metrics if m not in body] == []


def test_dashboard_graphs_every_dead_letter_queue(default: Synthesized) -> None:
    body = _dashboard_body(default)
    missing = [
        q
        for q in _dead_letter_queues(default)
        if json.dumps({"Fn::GetAtt": [q, "QueueName"]}) not in body
    ]
    assert missing == []


def test_dashboard_graphs_lambda_throttles(default: Synthesized) -> None:
    assert "Throttles" in _dashboard_body(default)


def test_cluster_has_container_insights_on(default: Synthesized) -> None:
    settings = default.only("AWS::ECS::Cluster")["Properties"]["ClusterSettings"]
    assert {"Name": "containerInsights", "Value": "enabled"} in settings


# --- the stack name and outputs ------------------------------------------------------------


def test_both_functions_know_the_stack_name(monitored: Synthesized) -> None:
    names = {
        k: v["Properties"]["Environment"]["Variables"].get("IIIF_PROCESS_STACK_NAME")
        for k, v in _project_functions(monitored).items()
    }
    assert len(names) == 2 and set(names.values()) == {"MonitoredStack"}


def test_the_task_knows_the_stack_name(monitored: Synthesized) -> None:
    task = monitored.only("AWS::ECS::TaskDefinition")["Properties"]
    (container,) = task["ContainerDefinitions"]
    environment = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert environment["IIIF_PROCESS_STACK_NAME"] == "MonitoredStack"


def test_outputs_name_the_dashboard_and_the_topic(default: Synthesized) -> None:
    outputs = default.template.to_json()["Outputs"]
    (dashboard,) = default.resources("AWS::CloudWatch::Dashboard")
    assert (outputs["DashboardName"]["Value"], outputs["AlarmTopicArn"]["Value"]) == (
        {"Ref": dashboard},
        {"Ref": _topic_id(default)},
    )
