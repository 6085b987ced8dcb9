"""Tasks whose container runs a small Python program: RunTask on the embedded AWS without a
deployment, for the tests of the local task runner and its events."""

from __future__ import annotations

import sys
from typing import Any

from local_aws.server import EmbeddedAws

MEMORY_MIB = 128
#: Holds its 400 MiB for 3 s, as a decoder holds its pixels, before it would report surviving.
ALLOCATE_400_MIB = (
    "import time\nblocks = []\nfor _ in range(40):\n"
    "    blocks.append(bytearray(10 << 20)); time.sleep(0.01)\n"
    "time.sleep(3)\nprint('survived', flush=True)\n"
)
ALLOCATE_20_MIB = "x = bytearray(20 << 20)\nprint('done', flush=True)\n"


def _cluster(aws: EmbeddedAws) -> dict[str, Any]:
    """A cluster, a subnet and a security group for awsvpc tasks."""
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc)["GroupId"]
    aws.client("ecs").create_cluster(clusterName="c")
    return {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}


def run_python(aws: EmbeddedAws, code: str, memory_mib: int = MEMORY_MIB) -> str:
    """RunTask of a task definition whose container runs `code`; return the task ARN."""
    ecs = aws.client("ecs")
    network = _cluster(aws)
    definition = ecs.register_task_definition(
        family="f",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "x",
                "image": "x",
                "memory": memory_mib,
                "command": [sys.executable, "-c", code],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    return str(
        ecs.run_task(
            cluster="c",
            taskDefinition=definition,
            launchType="FARGATE",
            networkConfiguration=network,
            startedBy="tests",
        )["tasks"][0]["taskArn"]
    )


def describe(aws: EmbeddedAws, task_arn: str) -> dict[str, Any]:
    return aws.client("ecs").describe_tasks(cluster="c", tasks=[task_arn])["tasks"][0]
