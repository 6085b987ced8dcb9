"""The ledger table (issue #9): key, indexes, billing, recovery, encryption, removal."""

from __future__ import annotations

from typing import Any

from tests.stacks.conftest import Synthesized


def _table(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.only("AWS::DynamoDB::Table")


def _indexes(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    indexes = _table(synthesized)["Properties"]["GlobalSecondaryIndexes"]
    return {index["IndexName"]: index for index in indexes}


def test_ledger_partition_key_is_the_uri_string(default: Synthesized) -> None:
    properties = _table(default)["Properties"]
    types = {a["AttributeName"]: a["AttributeType"] for a in properties["AttributeDefinitions"]}
    assert (properties["KeySchema"], types["uri"]) == (
        [{"AttributeName": "uri", "KeyType": "HASH"}],
        "S",
    )


def test_ledger_bills_on_demand(default: Synthesized) -> None:
    assert _table(default)["Properties"]["BillingMode"] == "PAY_PER_REQUEST"


def test_ledger_has_point_in_time_recovery(default: Synthesized) -> None:
    recovery = _table(default)["Properties"]["PointInTimeRecoverySpecification"]
    assert recovery == {"PointInTimeRecoveryEnabled": True}


def test_ledger_is_encrypted_with_the_aws_managed_key(default: Synthesized) -> None:
    # SSEEnabled without a key id: KMS with the AWS managed key aws/dynamodb.
    assert _table(default)["Properties"]["SSESpecification"] == {"SSEEnabled": True}


def test_ledger_is_retained_by_default(default: Synthesized) -> None:
    table = _table(default)
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_ledger_follows_the_destroy_removal_policy(destroyable: Synthesized) -> None:
    assert _table(destroyable)["DeletionPolicy"] == "Delete"


def test_ledger_has_exactly_the_two_contract_indexes(default: Synthesized) -> None:
    assert sorted(_indexes(default)) == ["by-status", "by-task"]


def test_by_status_index_sorts_a_status_by_update_time(default: Synthesized) -> None:
    index = _indexes(default)["by-status"]
    assert (index["KeySchema"], index["Projection"]) == (
        [
            {"AttributeName": "status", "KeyType": "HASH"},
            {"AttributeName": "updated_at", "KeyType": "RANGE"},
        ],
        {"ProjectionType": "ALL"},
    )


def test_by_task_index_lists_a_tasks_uris(default: Synthesized) -> None:
    index = _indexes(default)["by-task"]
    assert (index["KeySchema"], index["Projection"]) == (
        [
            {"AttributeName": "task_arn", "KeyType": "HASH"},
            {"AttributeName": "uri", "KeyType": "RANGE"},
        ],
        {"ProjectionType": "ALL"},
    )


def test_index_keys_are_strings(default: Synthesized) -> None:
    definitions = _table(default)["Properties"]["AttributeDefinitions"]
    assert {a["AttributeName"]: a["AttributeType"] for a in definitions} == {
        "uri": "S",
        "status": "S",
        "updated_at": "S",
        "task_arn": "S",
    }
