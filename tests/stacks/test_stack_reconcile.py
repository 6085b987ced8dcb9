"""Reconcile (issue #9): stopped tasks of this cluster -> EventBridge rule -> SQS -> function."""

from __future__ import annotations

from typing import Any

from tests.stacks.conftest import Synthesized
from tests.stacks.test_stack_trigger import LEDGER_READ_WRITE, ledger_variables

HANDLER = "reconcile_handler.handler"


def _function_id(synthesized: Synthesized) -> str:
    (function_id,) = synthesized.template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": HANDLER}}
    )
    return function_id


def _function(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.resources("AWS::Lambda::Function")[_function_id(synthesized)]["Properties"]


def _trigger(synthesized: Synthesized) -> dict[str, Any]:
    (function,) = synthesized.template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "handler.handler"}}
    ).values()
    return function["Properties"]


def _rule(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.only("AWS::Events::Rule")["Properties"]


def _queue_id(synthesized: Synthesized) -> str:
    (target,) = _rule(synthesized)["Targets"]
    return target["Arn"]["Fn::GetAtt"][0]


def _mapping(synthesized: Synthesized) -> dict[str, Any]:
    (mapping,) = synthesized.template.find_resources(
        "AWS::Lambda::EventSourceMapping",
        {"Properties": {"FunctionName": {"Ref": _function_id(synthesized)}}},
    ).values()
    return mapping["Properties"]


def _queue_policy(synthesized: Synthesized, queue_id: str) -> list[dict[str, Any]]:
    (policy,) = synthesized.template.find_resources(
        "AWS::SQS::QueuePolicy", {"Properties": {"Queues": [{"Ref": queue_id}]}}
    ).values()
    return policy["Properties"]["PolicyDocument"]["Statement"]


def _statements(synthesized: Synthesized) -> list[dict[str, Any]]:
    role_id = _function(synthesized)["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def _cluster_arn(synthesized: Synthesized) -> dict[str, Any]:
    cluster = next(iter(synthesized.resources("AWS::ECS::Cluster")))
    return {"Fn::GetAtt": [cluster, "Arn"]}


def test_rule_matches_stopped_tasks_of_this_cluster_only(default: Synthesized) -> None:
    assert _rule(default)["EventPattern"] == {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {"lastStatus": ["STOPPED"], "clusterArn": [_cluster_arn(default)]},
    }


def test_rule_is_on_the_default_bus(default: Synthesized) -> None:
    assert "EventBusName" not in _rule(default)


def test_rule_sends_to_the_reconcile_queue_not_the_function(default: Synthesized) -> None:
    assert _queue_id(default) in default.resources("AWS::SQS::Queue")


def test_rule_keeps_undeliverable_events_in_a_dead_letter_queue(default: Synthesized) -> None:
    (target,) = _rule(default)["Targets"]
    dead_letters = default.resources("AWS::SQS::Queue")[_queue_id(default)]["Properties"][
        "RedrivePolicy"
    ]["deadLetterTargetArn"]
    assert target["DeadLetterConfig"]["Arn"] == dead_letters


def test_queue_lets_this_rule_send(default: Synthesized) -> None:
    rule = next(iter(default.resources("AWS::Events::Rule")))
    allowed = [
        s
        for s in _queue_policy(default, _queue_id(default))
        if s["Effect"] == "Allow" and s["Principal"] == {"Service": "events.amazonaws.com"}
    ]
    assert [(s["Condition"], "sqs:SendMessage" in s["Action"]) for s in allowed] == [
        ({"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule, "Arn"]}}}, True)
    ]


def test_queue_refuses_requests_without_tls(default: Synthesized) -> None:
    queue = _queue_id(default)
    assert {
        "Action": "sqs:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": {"Fn::GetAtt": [queue, "Arn"]},
    } in _queue_policy(default, queue)


def test_queue_is_encrypted_with_sse_sqs(default: Synthesized) -> None:
    queue = default.resources("AWS::SQS::Queue")[_queue_id(default)]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True


def test_queue_has_a_dead_letter_queue_of_its_own(default: Synthesized) -> None:
    def dead_letter_of(properties: dict[str, Any]) -> str | None:
        target = properties.get("RedrivePolicy", {}).get("deadLetterTargetArn")
        return target["Fn::GetAtt"][0] if target else None

    queues = default.resources("AWS::SQS::Queue")
    own = dead_letter_of(queues[_queue_id(default)]["Properties"])
    others = [
        dead_letter_of(q["Properties"]) for q_id, q in queues.items() if q_id != _queue_id(default)
    ]
    others.append(_trigger(default)["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0])
    assert own in queues
    assert own not in others


def test_function_reads_the_queue_reporting_item_failures(default: Synthesized) -> None:
    mapping = _mapping(default)
    assert (mapping["EventSourceArn"], mapping["FunctionResponseTypes"]) == (
        {"Fn::GetAtt": [_queue_id(default), "Arn"]},
        ["ReportBatchItemFailures"],
    )


def test_function_is_arm64_with_reserved_concurrency(default: Synthesized) -> None:
    function = _function(default)
    assert (function["Architectures"], function["ReservedConcurrentExecutions"]) == (
        ["arm64"],
        2,
    )


def test_mapping_concurrency_stays_within_reserved_concurrency(default: Synthesized) -> None:
    limit = _mapping(default)["ScalingConfig"]["MaximumConcurrency"]
    assert limit <= _function(default)["ReservedConcurrentExecutions"]


def test_function_code_is_the_trigger_asset(default: Synthesized) -> None:
    assert _function(default)["Code"] == _trigger(default)["Code"]


def test_function_logs_to_its_own_log_group(default: Synthesized) -> None:
    group = _function(default)["LoggingConfig"]["LogGroup"]["Ref"]
    assert group != _trigger(default)["LoggingConfig"]["LogGroup"]["Ref"]
    assert default.resources("AWS::Logs::LogGroup")[group]["Properties"]["RetentionInDays"] == 30


def test_function_environment_is_the_triggers_plus_the_ledger_variables(
    default: Synthesized,
) -> None:
    variables = _function(default)["Environment"]["Variables"]
    trigger = _trigger(default)["Environment"]["Variables"]
    assert set(variables) == set(trigger) | ledger_variables()
    assert {k: v for k, v in variables.items() if k in trigger} == trigger


def test_function_re_queues_to_the_event_queue(default: Synthesized) -> None:
    variables = _function(default)["Environment"]["Variables"]
    default.template.has_output(
        "EventQueueUrl", {"Value": variables["IIIF_PROCESS_EVENT_QUEUE_URL"]}
    )


def test_function_may_send_to_the_event_queue(default: Synthesized) -> None:
    event_queue = default.template.to_json()["Outputs"]["EventQueueUrl"]["Value"]["Ref"]
    senders = [s["Resource"] for s in _statements(default) if "sqs:SendMessage" in _actions(s)]
    assert senders == [{"Fn::GetAtt": [event_queue, "Arn"]}]


def test_function_may_run_the_task_in_this_cluster_only(default: Synthesized) -> None:
    (statement,) = [s for s in _statements(default) if "ecs:RunTask" in _actions(s)]
    assert statement["Condition"] == {"ArnEquals": {"ecs:cluster": _cluster_arn(default)}}


def test_function_may_do_nothing_else(default: Synthesized) -> None:
    actions = {action for statement in _statements(default) for action in _actions(statement)}
    assert actions == {
        "ecs:RunTask",
        "iam:PassRole",
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        *LEDGER_READ_WRITE,
    }


def test_rule_follows_the_imported_variant_cluster(imported: Synthesized) -> None:
    detail = _rule(imported)["EventPattern"]["detail"]
    assert detail["clusterArn"] == [_cluster_arn(imported)]
