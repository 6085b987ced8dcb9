"""The ledger and the reconcile path deploy into moto's CloudFormation and work there (issue #9).

The part of the synthesized template that issue #9 adds (table, rule, queues, and the cluster the
rule names) is created with CloudFormation's CreateStack (moto's CloudFormation skips
AWS::SQS::QueuePolicy, so the queue policies are asserted on the template instead); then a
stopped-task event of this cluster, shaped as ECS sends it, reaches the reconcile queue through
the rule, and one of another cluster does not. The e2e tests (tests/e2e) deploy the whole
template.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.stacks.conftest import Synthesized

REGION = "us-east-1"
TYPES = {
    "AWS::DynamoDB::Table",
    "AWS::ECS::Cluster",
    "AWS::Events::Rule",
    "AWS::SQS::Queue",
}


def _reconcile_part(synthesized: Synthesized) -> dict[str, Any]:
    """Table, cluster, rule, and the reconcile queue and its dead-letter queue."""
    resources = synthesized.template.to_json()["Resources"]
    rule = next(iter(synthesized.resources("AWS::Events::Rule")))
    (target,) = resources[rule]["Properties"]["Targets"]
    queues = {target["Arn"]["Fn::GetAtt"][0], target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]}
    keep = {
        logical_id: resource
        for logical_id, resource in resources.items()
        if resource["Type"] in TYPES
        and (resource["Type"] != "AWS::SQS::Queue" or logical_id in queues)
    }
    return {"Resources": keep, "Outputs": _outputs(keep)}


def _outputs(resources: dict[str, Any]) -> dict[str, Any]:
    def of(type_: str) -> list[str]:
        return [logical_id for logical_id, r in resources.items() if r["Type"] == type_]

    (table,) = of("AWS::DynamoDB::Table")
    (cluster,) = of("AWS::ECS::Cluster")
    rule = of("AWS::Events::Rule")[0]
    queue = resources[rule]["Properties"]["Targets"][0]["Arn"]["Fn::GetAtt"][0]
    return {
        "Table": {"Value": {"Ref": table}},
        "ClusterArn": {"Value": {"Fn::GetAtt": [cluster, "Arn"]}},
        "QueueUrl": {"Value": {"Ref": queue}},
    }


@pytest.fixture(scope="module")
def deployed(default: Synthesized) -> Iterator[dict[str, str]]:
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(
            StackName="ReconcilePart", TemplateBody=json.dumps(_reconcile_part(default))
        )
        (stack,) = cloudformation.describe_stacks(StackName="ReconcilePart")["Stacks"]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        yield {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def _stopped_task_event(cluster_arn: str) -> dict[str, Any]:
    task_arn = cluster_arn.replace(":cluster/", ":task/") + "/0123456789abcdef"
    return {
        "Source": "aws.ecs",
        "DetailType": "ECS Task State Change",
        "Detail": json.dumps(
            {
                "clusterArn": cluster_arn,
                "taskArn": task_arn,
                "lastStatus": "STOPPED",
                "stopCode": "EssentialContainerExited",
                "stoppedReason": "Essential container in task exited",
                "containers": [{"name": "iiif-process", "exitCode": 137, "reason": "OOM"}],
            }
        ),
    }


def _received(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_ledger_table_deploys_with_both_indexes(deployed: dict[str, str]) -> None:
    table = boto3.client("dynamodb", region_name=REGION).describe_table(
        TableName=deployed["Table"]
    )["Table"]
    assert sorted(index["IndexName"] for index in table["GlobalSecondaryIndexes"]) == [
        "by-status",
        "by-task",
    ]


def test_stopped_task_of_this_cluster_reaches_the_reconcile_queue(
    deployed: dict[str, str],
) -> None:
    events = boto3.client("events", region_name=REGION)
    events.put_events(Entries=[_stopped_task_event(deployed["ClusterArn"])])
    received = _received(deployed["QueueUrl"])
    assert [(e["detail-type"], e["detail"]["clusterArn"]) for e in received] == [
        ("ECS Task State Change", deployed["ClusterArn"])
    ]


def test_stopped_task_of_another_cluster_is_not_reconciled(deployed: dict[str, str]) -> None:
    other = deployed["ClusterArn"].rsplit("/", 1)[0] + "/another-cluster"
    boto3.client("events", region_name=REGION).put_events(Entries=[_stopped_task_event(other)])
    assert _received(deployed["QueueUrl"]) == []


def test_running_task_of_this_cluster_is_not_reconciled(deployed: dict[str, str]) -> None:
    event = _stopped_task_event(deployed["ClusterArn"])
    event["Detail"] = event["Detail"].replace('"STOPPED"', '"RUNNING"')
    boto3.client("events", region_name=REGION).put_events(Entries=[event])
    assert _received(deployed["QueueUrl"]) == []
