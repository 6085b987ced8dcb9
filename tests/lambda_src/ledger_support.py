"""Shared pieces of the ledger tests: the table exactly as docs/contracts.md defines it, and
clients that fail on cue (throttling) in front of moto."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
from botocore.exceptions import ClientError

from tests.lambda_src.conftest import REGION


def create_ledger_table(name: str | None = None) -> str:
    """The ledger table of the contract: key ``uri``; GSIs ``by-status`` (status, updated_at)
    and ``by-task`` (task_arn, uri), both projecting ALL; on-demand billing."""
    table = name or f"ledger-{uuid.uuid4().hex[:10]}"
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "uri", "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
            {"AttributeName": "updated_at", "AttributeType": "S"},
            {"AttributeName": "task_arn", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "uri", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-status",
                "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"},
                    {"AttributeName": "updated_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "by-task",
                "KeySchema": [
                    {"AttributeName": "task_arn", "KeyType": "HASH"},
                    {"AttributeName": "uri", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
    )
    return table


def dynamodb() -> Any:
    return boto3.client("dynamodb", region_name=REGION)


def throttling(operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {
                "Code": "ProvisionedThroughputExceededException",
                "Message": "The level of configured provisioned throughput for the table was "
                "exceeded.",
            }
        },
        operation,
    )


class ThrottledFirst:
    """The moto DynamoDB client, except that the first ``failures`` calls of ``operation``
    raise ProvisionedThroughputExceededException."""

    def __init__(self, operation: str, failures: int = 1) -> None:
        self.real = dynamodb()
        self.operation = operation
        self.failures = failures
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)

        def call(**kwargs: Any) -> Any:
            self.calls.append(name)
            if name == self.operation and self.failures > 0:
                self.failures -= 1
                raise throttling(name)
            return method(**kwargs)

        return call


def put_item(table: str, **attributes: Any) -> None:
    """Write an item as another part (the tool, an earlier run) would have left it."""
    from iiif_process_ecs.ledger import to_dynamodb

    dynamodb().put_item(
        TableName=table, Item={name: to_dynamodb(value) for name, value in attributes.items()}
    )


def item_of(table: str, uri: str) -> dict[str, Any] | None:
    from iiif_process_ecs.ledger import from_dynamodb

    item = dynamodb().get_item(TableName=table, Key={"uri": {"S": uri}}).get("Item")
    return from_dynamodb(item) if item else None
