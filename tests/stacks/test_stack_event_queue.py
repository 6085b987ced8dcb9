"""Event queue: S3 notifies the queue, Lambda reads it in batches, failures end in its DLQ."""

from __future__ import annotations

from typing import Any

from tests.stacks.conftest import IMPORTED_SOURCE, Synthesized

SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".gif", ".webp"}


def _function_id(synthesized: Synthesized) -> str:
    (function_id,) = synthesized.template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "handler.handler"}}
    )
    return function_id


def _mapping(synthesized: Synthesized) -> dict[str, Any]:
    """The trigger's event source mapping (the reconcile function has its own)."""
    (mapping,) = synthesized.template.find_resources(
        "AWS::Lambda::EventSourceMapping",
        {"Properties": {"FunctionName": {"Ref": _function_id(synthesized)}}},
    ).values()
    return mapping["Properties"]


def _event_queue_id(synthesized: Synthesized) -> str:
    return _mapping(synthesized)["EventSourceArn"]["Fn::GetAtt"][0]


def _event_queue(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.resources("AWS::SQS::Queue")[_event_queue_id(synthesized)]["Properties"]


def _queue_policy_statements(synthesized: Synthesized, queue_id: str) -> list[dict[str, Any]]:
    (policy,) = synthesized.template.find_resources(
        "AWS::SQS::QueuePolicy", {"Properties": {"Queues": [{"Ref": queue_id}]}}
    ).values()
    return policy["Properties"]["PolicyDocument"]["Statement"]


def _tls_only(queue_id: str) -> dict[str, Any]:
    return {
        "Action": "sqs:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
    }


def _configurations(synthesized: Synthesized) -> list[dict[str, Any]]:
    notifications = synthesized.only("Custom::S3BucketNotifications")["Properties"]
    return notifications["NotificationConfiguration"]["QueueConfigurations"]


def test_notifications_target_the_event_queue_only(default: Synthesized) -> None:
    notifications = default.only("Custom::S3BucketNotifications")["Properties"]
    targets = {str(c["QueueArn"]) for c in _configurations(default)}
    assert set(notifications["NotificationConfiguration"]) == {"QueueConfigurations"}
    assert targets == {str({"Fn::GetAtt": [_event_queue_id(default), "Arn"]})}


def test_s3_no_longer_invokes_the_function_directly(default: Synthesized) -> None:
    assert default.resources("AWS::Lambda::Permission") == {}


def test_notifications_cover_suffixes_in_both_cases(default: Synthesized) -> None:
    expected = SUFFIXES | {suffix.upper() for suffix in SUFFIXES}
    suffixes = [
        rule["Value"]
        for configuration in _configurations(default)
        for rule in configuration["Filter"]["Key"]["FilterRules"]
        if rule["Name"] == "suffix"
    ]
    assert (sorted(suffixes), len(suffixes)) == (sorted(expected), 14)


def test_notifications_are_for_object_created_events(default: Synthesized) -> None:
    events = {event for c in _configurations(default) for event in c["Events"]}
    assert events == {"s3:ObjectCreated:*"}


def test_only_the_source_bucket_may_send_to_the_queue(default: Synthesized) -> None:
    statements = _queue_policy_statements(default, _event_queue_id(default))
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert (allow["Principal"], allow["Condition"]) == (
        {"Service": "s3.amazonaws.com"},
        {"ArnLike": {"aws:SourceArn": {"Fn::GetAtt": ["SourceBucket", "Arn"]}}},
    )


def test_event_source_mapping_feeds_the_function_from_the_queue(default: Synthesized) -> None:
    mapping = _mapping(default)
    assert mapping["FunctionName"] == {"Ref": _function_id(default)}
    assert _event_queue_id(default) in default.resources("AWS::SQS::Queue")


def test_event_source_mapping_batches_by_settings(default: Synthesized) -> None:
    mapping = _mapping(default)
    assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"]) == (1000, 30)


def test_small_batches_need_no_window(imported: Synthesized) -> None:
    mapping = _mapping(imported)
    assert (mapping["BatchSize"], "MaximumBatchingWindowInSeconds" in mapping) == (10, False)
    assert _event_queue(imported)["VisibilityTimeout"] == 6 * 60


def test_event_source_mapping_reports_batch_item_failures(default: Synthesized) -> None:
    assert _mapping(default)["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_event_source_mapping_concurrency_stays_within_reserved(default: Synthesized) -> None:
    assert _mapping(default)["ScalingConfig"] == {"MaximumConcurrency": 5}


def test_event_source_mapping_concurrency_of_two_is_capped(unversioned: Synthesized) -> None:
    assert _mapping(unversioned)["ScalingConfig"] == {"MaximumConcurrency": 2}


def test_event_source_mapping_below_two_is_left_uncapped(keep_versions: Synthesized) -> None:
    """A mapping's maximum concurrency is 2 at least; one reserved execution caps it anyway."""
    assert "ScalingConfig" not in _mapping(keep_versions)


def test_event_queue_redrives_to_its_own_dead_letter_queue(default: Synthesized) -> None:
    redrive = _event_queue(default)["RedrivePolicy"]
    dead_letter_id = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
    function = default.resources("AWS::Lambda::Function")[_function_id(default)]["Properties"]
    function_dlq = function["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
    assert redrive["maxReceiveCount"] == 5
    assert dead_letter_id in default.resources("AWS::SQS::Queue")
    assert dead_letter_id not in {function_dlq, _event_queue_id(default)}


def test_event_queue_denies_requests_without_tls(default: Synthesized) -> None:
    queue_id = _event_queue_id(default)
    assert _tls_only(queue_id) in _queue_policy_statements(default, queue_id)


def test_event_dead_letter_queue_denies_requests_without_tls(default: Synthesized) -> None:
    dlq_id = _event_queue(default)["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert _tls_only(dlq_id) in _queue_policy_statements(default, dlq_id)


def test_event_queue_is_encrypted_with_sqs_managed_keys(default: Synthesized) -> None:
    assert _event_queue(default)["SqsManagedSseEnabled"] is True


def test_visibility_timeout_is_six_lambda_timeouts_plus_the_window(default: Synthesized) -> None:
    function = default.resources("AWS::Lambda::Function")[_function_id(default)]["Properties"]
    visibility = _event_queue(default)["VisibilityTimeout"]
    assert visibility >= 6 * function["Timeout"]
    assert visibility == 6 * 60 + 30


def test_function_reads_only_the_event_queue(default: Synthesized) -> None:
    role_id = default.resources("AWS::Lambda::Function")[_function_id(default)]["Properties"][
        "Role"
    ]["Fn::GetAtt"][0]
    receiving = [
        statement
        for policy in default.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "sqs:ReceiveMessage" in statement["Action"]
    ]
    assert [s["Resource"] for s in receiving] == [{"Fn::GetAtt": [_event_queue_id(default), "Arn"]}]


def test_event_queue_url_is_an_output(default: Synthesized) -> None:
    default.template.has_output("EventQueueUrl", {"Value": {"Ref": _event_queue_id(default)}})


def test_notifications_can_be_turned_off(imported: Synthesized) -> None:
    assert imported.resources("Custom::S3BucketNotifications") == {}


def test_queue_and_mapping_remain_without_notifications(imported: Synthesized) -> None:
    assert _event_queue_id(imported) in imported.resources("AWS::SQS::Queue")


def test_imported_source_bucket_gets_notifications(destroyable: Synthesized) -> None:
    notifications = destroyable.only("Custom::S3BucketNotifications")["Properties"]
    assert (notifications["BucketName"], notifications["Managed"]) == (IMPORTED_SOURCE, False)
