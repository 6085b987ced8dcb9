"""Shared pieces of the backfill and cost tests: a source bucket, ledger and event queue per
test, filled quickly (10,000 objects through moto's backends, not 10,000 HTTP calls)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import boto3
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.s3.models import s3_backends

from tests.lambda_src.conftest import REGION, Infra
from tests.lambda_src.ledger_support import create_ledger_table

BODY = b"jpeg bytes"
ETAG = hashlib.md5(BODY).hexdigest()  # what S3 (and moto) make of a plain PUT


@dataclass
class Place:
    """One test's bucket, ledger table, event queue and stack."""

    bucket: str
    table: str
    queue: str
    stack: str


def new_place(infra: Infra) -> Place:
    bucket = f"src-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
    table = create_ledger_table()
    queue = boto3.client("sqs", region_name=REGION).create_queue(
        QueueName=f"events-{uuid.uuid4().hex[:8]}"
    )["QueueUrl"]
    stack = f"stack-{uuid.uuid4().hex[:8]}"
    outputs = {
        "ClusterName": infra.cluster,
        "TaskDefinitionArn": infra.task_definition,
        "ContainerName": infra.container,
        "SubnetIds": infra.subnet,
        "SecurityGroupIds": infra.security_group,
        "SourceBucketName": bucket,
        "LedgerTableName": table,
        "EventQueueUrl": queue,
    }
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=stack, TemplateBody=json.dumps(template)
    )
    return Place(bucket, table, queue, stack)


def put_objects(bucket: str, keys: list[str], body: bytes = BODY) -> None:
    """Objects straight into moto's S3 backend (what PutObject would store)."""
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    for key in keys:
        backend.put_object(bucket, key, body)


def put_ledger_items(table: str, items: list[dict[str, str]]) -> None:
    """String-valued items straight into moto's DynamoDB backend."""
    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]
    for item in items:
        backend.put_item(table, {name: {"S": value} for name, value in item.items()})


def queued_keys(queue: str) -> list[str]:
    """Every key in the queue's messages, in order received (and empties the queue)."""
    sqs = boto3.client("sqs", region_name=REGION)
    keys: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return keys
        for message in messages:
            body = json.loads(message["Body"])
            keys.extend(unquote_plus(r["s3"]["object"]["key"]) for r in body["Records"])
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


class Recording:
    """A moto client that records the calls made through it (operation name, kwargs)."""

    def __init__(self, service: str, fail: dict[str, Any] | None = None) -> None:
        self.real = boto3.client(service, region_name=REGION)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail = dict(fail or {})

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.real, name)
        if not callable(attribute) or name in ("get_paginator", "can_paginate"):
            return attribute

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            if name in self.fail:
                return self.fail[name](**kwargs)
            return attribute(**kwargs)

        return call

    def count(self, name: str) -> int:
        return sum(1 for called, _ in self.calls if called == name)
