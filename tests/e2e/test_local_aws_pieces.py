"""The emulator's own pieces, each on its own (no deployment)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_aws.ecs_client_token import run_task_client_tokens
from local_aws.lambda_runner import custom_resource_event_as_aws_sends, real_lambda_handlers
from local_aws.server import EmbeddedAws, moto_server
from local_aws.task_runner import ProjectImage, local_command


@pytest.fixture
def aws() -> Iterator[EmbeddedAws]:
    with moto_server() as running:
        running.reset()  # moto's backends are per process: start from a clean account
        yield running


def _image(tmp_path: Path, with_files: bool) -> ProjectImage:
    (tmp_path / "container").mkdir()
    if with_files:
        (tmp_path / "container" / "config.json").write_text("{}")
    return ProjectImage(tool=tmp_path / "bin" / "iiif-process", baked_files=tmp_path / "container")


def test_the_image_paths_of_a_command_map_to_the_project(tmp_path: Path) -> None:
    image = _image(tmp_path, with_files=True)

    mapped, notes = local_command(
        ["/bin/iiif-process", "-config", "/etc/go-iiif/config.json", "-uri", "a.jpg"], image
    )

    config = str(image.baked_files / "config.json")
    assert mapped == [str(image.tool), "-config", config, "-uri", "a.jpg"]
    assert notes == []


def test_a_baked_file_the_project_lacks_is_dropped_with_a_note(tmp_path: Path) -> None:
    image = _image(tmp_path, with_files=False)

    mapped, notes = local_command(
        ["/bin/iiif-process", "-instructions", "/etc/go-iiif/instructions.json", "-uri", "a.jpg"],
        image,
    )

    assert mapped == [str(image.tool), "-uri", "a.jpg"]
    assert len(notes) == 1 and "-instructions /etc/go-iiif/instructions.json" in notes[0]


def test_a_custom_resource_request_looks_like_cloudformations() -> None:
    aws = EmbeddedAws(endpoint_url="http://localhost:4321", port=4321)
    event = {
        "RequestType": "Create",
        "ResponseURL": "http://host.docker.internal:4321/cloudformation_us-east-1/cfnresponse?s=1",
        "ResourceProperties": {"Managed": True, "Count": 2, "Nested": [{"On": False}]},
    }

    sent = custom_resource_event_as_aws_sends(event, aws)

    assert sent["ResponseURL"] == "http://localhost:4321/cloudformation_us-east-1/cfnresponse?s=1"
    assert sent["ResourceProperties"] == {
        "Managed": "true",
        "Count": "2",
        "Nested": [{"On": "false"}],
    }


def _function(aws: EmbeddedAws, code: str) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", code)
    role = aws.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]
    aws.client("lambda").create_function(
        FunctionName="f",
        Runtime="python3.12",
        Role=role["Arn"],
        Handler="app.handler",
        Code={"ZipFile": buffer.getvalue()},
        Environment={"Variables": {"GREETING": "hello"}},
        Timeout=30,
    )
    return "f"


def _invoke(aws: EmbeddedAws, name: str, payload: Any) -> tuple[dict[str, Any], Any]:
    response = aws.client("lambda").invoke(FunctionName=name, Payload=json.dumps(payload))
    return response, json.loads(response["Payload"].read())


def test_an_invocation_runs_the_handler_with_the_functions_environment(aws: EmbeddedAws) -> None:
    code = "import os\ndef handler(event, context):\n    return [os.environ['GREETING'], event]\n"
    with real_lambda_handlers(aws):
        _, result = _invoke(aws, _function(aws, code), {"n": 1})

    assert result == ["hello", {"n": 1}]


def test_a_handler_that_raises_returns_lambdas_error_shape(aws: EmbeddedAws) -> None:
    code = "def handler(event, context):\n    raise ValueError('bad event')\n"
    with real_lambda_handlers(aws):
        response, result = _invoke(aws, _function(aws, code), {})

    assert "FunctionError" in response
    assert (result["errorType"], result["errorMessage"]) == ("ValueError", "bad event")


def _run_task_arguments(aws: EmbeddedAws) -> dict[str, Any]:
    ec2, ecs = aws.client("ec2"), aws.client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc)["GroupId"]
    ecs.create_cluster(clusterName="c")
    task = ecs.register_task_definition(
        family="f",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "x", "image": "x", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}
    return {
        "cluster": "c",
        "taskDefinition": task,
        "launchType": "FARGATE",
        "networkConfiguration": network,
    }


def test_a_repeated_client_token_starts_no_second_task(aws: EmbeddedAws) -> None:
    arguments = _run_task_arguments(aws)
    ecs = aws.client("ecs")
    with run_task_client_tokens():
        first = ecs.run_task(clientToken="t1", **arguments)["tasks"][0]["taskArn"]
        again = ecs.run_task(clientToken="t1", **arguments)["tasks"][0]["taskArn"]

    assert again == first
    assert ecs.list_tasks(cluster="c")["taskArns"] == [first]


def test_a_client_token_reused_with_other_parameters_is_a_conflict(aws: EmbeddedAws) -> None:
    arguments = _run_task_arguments(aws)
    ecs = aws.client("ecs")
    with run_task_client_tokens():
        ecs.run_task(clientToken="t1", **arguments)
        with pytest.raises(ClientError, match="ConflictException"):
            ecs.run_task(clientToken="t1", startedBy="someone-else", **arguments)
