"""Fixtures for the trigger's tests: moto (in-process) with a cluster ready for Fargate tasks."""

from __future__ import annotations

import importlib.util
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from iiif_process_ecs import logs
from iiif_process_ecs.settings import Settings
from moto import mock_aws
from moto.moto_api import state_manager

REGION = "us-east-1"
HANDLER_PATH = Path(__file__).resolve().parents[2] / "lambda_src" / "handler.py"


def load_handler_module() -> Any:
    """Import lambda_src/handler.py the way Lambda does (a top-level module beside the package)."""
    spec = importlib.util.spec_from_file_location("lambda_src_handler", HANDLER_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Infra:
    """Names of the moto resources a task needs."""

    cluster: str
    task_definition: str
    container: str
    subnet: str
    security_group: str
    log_group: str
    source_bucket: str
    derivatives_bucket: str

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "cluster": self.cluster,
            "task_definition": self.task_definition,
            "container": self.container,
            "subnets": (self.subnet,),
            "security_groups": (self.security_group,),
            "ecs_dsn": f"region={REGION} credentials=iam:",
        }
        values.update(overrides)
        return Settings(**values)

    def environ(self, **extra: str) -> dict[str, str]:
        env = {
            "AWS_REGION": REGION,
            "IIIF_PROCESS_MODE": "lambda",
            "IIIF_PROCESS_CLUSTER": self.cluster,
            "IIIF_PROCESS_TASK": self.task_definition,
            "IIIF_PROCESS_CONTAINER": self.container,
            "IIIF_PROCESS_SUBNET": self.subnet,
            "IIIF_PROCESS_SECURITY_GROUP": self.security_group,
        }
        env.update(extra)
        return env


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[io.StringIO]:
    """Collect the JSON log lines instead of printing them."""
    stream = io.StringIO()
    logs.configure(stream)
    yield stream
    logs.configure(None)


def logged_messages(stream: io.StringIO) -> list[str]:
    """The ``message`` of every JSON log line collected in ``stream`` (see ``quiet_logs``)."""
    return [json.loads(line)["message"] for line in stream.getvalue().splitlines()]


@pytest.fixture(scope="module")
def aws() -> Iterator[None]:
    """In-process moto with fake credentials and a region, shared by one test module.

    Module scope because starting and resetting moto costs about two seconds; tests keep apart
    by using their own cluster (see ``infra``). It ends with the module, so no other folder's
    tests run under it.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name in (
            "AWS_PROFILE",
            "AWS_ENDPOINT_URL",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
        ):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_SESSION_TOKEN", "testing")
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        patch.setenv("AWS_REGION", REGION)
        # The default AMIs cost seconds and nothing here uses them.
        patch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        with mock_aws():
            yield


@pytest.fixture(scope="module")
def network(aws: None) -> dict[str, str]:
    """A VPC with DNS hostnames (moto's awsvpc needs them), a subnet, a security group,
    a Fargate task definition with awslogs, its log group and two buckets."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="tasks", Description="tasks", VpcId=vpc)["GroupId"]
    task_definition = boto3.client("ecs", region_name=REGION).register_task_definition(
        family="iiif-process",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="1024",
        memory="2048",
        containerDefinitions=[
            {
                "name": "iiif-process",
                "image": "example/iiif-process:latest",
                "memory": 2048,  # moto needs a container-level memory
                "essential": True,
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": "/iiif/tasks",
                        "awslogs-region": REGION,
                        "awslogs-stream-prefix": "iiif-process",
                    },
                },
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    boto3.client("logs", region_name=REGION).create_log_group(logGroupName="/iiif/tasks")
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="iiif-source")
    s3.create_bucket(Bucket="iiif-derivatives")
    return {"subnet": subnet, "security_group": group, "task_definition": task_definition}


@pytest.fixture
def infra(network: dict[str, str]) -> Iterator[Infra]:
    """A fresh cluster for one test, on the module's network; task transitions reset after."""
    cluster = f"iiif-{uuid.uuid4().hex[:12]}"
    boto3.client("ecs", region_name=REGION).create_cluster(clusterName=cluster)
    yield Infra(
        cluster=cluster,
        task_definition=network["task_definition"],
        container="iiif-process",
        subnet=network["subnet"],
        security_group=network["security_group"],
        log_group="/iiif/tasks",
        source_bucket="iiif-source",
        derivatives_bucket="iiif-derivatives",
    )
    state_manager.unset_transition("ecs::task")


def s3_record(
    key: str, *, bucket: str = "iiif-source", size: int = 1234, sequencer: str = "0A1B"
) -> dict[str, Any]:
    """A real-looking S3 ObjectCreated notification record (``key`` already encoded)."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2024-01-01T00:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "iiif",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "EXAMPLE"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": {
                "key": key,
                "size": size,
                "eTag": "0123456789abcdef",
                "sequencer": sequencer,
            },
        },
    }


def command_of(ecs: Any, cluster: str, task_arn: str) -> list[str]:
    """The container command a task was started with."""
    task = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"][0]
    return task["overrides"]["containerOverrides"][0]["command"]


def uris_of(command: list[str]) -> list[str]:
    return [command[i + 1] for i, arg in enumerate(command[:-1]) if arg == "-uri"]
