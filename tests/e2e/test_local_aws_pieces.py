"""The emulator's own pieces, each on its own (no deployment)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from botocore.exceptions import ClientError

from local_aws.cfn_default_security_group import (
    RESTRICT_DEFAULT_SG_TYPE,
    adapt_assembly,
    emulator_template,
)
from local_aws.deploy import LOCAL_REPOSITORY_NAME, local_context
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


# --- emulator-only template changes (local_aws/cfn_default_security_group.py, deploy.py) -------


@pytest.fixture(scope="module")
def vpc_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthesized app whose one stack holds a VPC with CDK's default-group restriction and
    a Lambda function of its own (so the adaptation must keep other functions and roles)."""
    outdir = tmp_path_factory.mktemp("vpc-assembly")
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "VpcStack")
    ec2.Vpc(stack, "Vpc", max_azs=1, nat_gateways=0, restrict_default_security_group=True)
    lambda_.Function(
        stack,
        "Other",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"),
    )
    app.synth()
    return outdir


def _template(assembly: Path) -> dict[str, Any]:
    return json.loads((assembly / "VpcStack.template.json").read_text())


def _types(template: dict[str, Any]) -> list[str]:
    return sorted(r["Type"] for r in template["Resources"].values())


def test_the_emulator_template_lacks_the_default_group_restriction(vpc_assembly: Path) -> None:
    adapted = emulator_template(_template(vpc_assembly))
    assert RESTRICT_DEFAULT_SG_TYPE not in _types(adapted)


def test_the_restrictions_handler_and_role_go_with_it(vpc_assembly: Path) -> None:
    """Exactly three resources go: the custom resource, its handler and the handler's role."""
    template = _template(vpc_assembly)
    before, after = _types(template), _types(emulator_template(template))
    for type_ in (RESTRICT_DEFAULT_SG_TYPE, "AWS::Lambda::Function", "AWS::IAM::Role"):
        before.remove(type_)
    assert after == before


def test_other_functions_and_their_roles_are_kept(vpc_assembly: Path) -> None:
    adapted = emulator_template(_template(vpc_assembly))
    functions = [r for r in adapted["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    (role,) = [r["Properties"]["Role"]["Fn::GetAtt"][0] for r in functions]
    assert adapted["Resources"][role]["Type"] == "AWS::IAM::Role"


def test_the_adapted_assembly_keys_the_template_by_its_own_hash(
    vpc_assembly: Path, tmp_path: Path
) -> None:
    """`cdk deploy --app ASSEMBLY` uploads the template under the key the manifest names."""

    assembly = Path(shutil.copytree(vpc_assembly, tmp_path / "assembly"))
    adapt_assembly(assembly, "VpcStack")
    digest = hashlib.sha256((assembly / "VpcStack.template.json").read_bytes()).hexdigest()
    manifest = json.loads((assembly / "manifest.json").read_text())
    url = manifest["artifacts"]["VpcStack"]["properties"]["stackTemplateAssetObjectUrl"]
    assert url.endswith(f"/{digest}.json")


def test_the_adapted_assembly_uploads_no_code_for_the_removed_handler(
    vpc_assembly: Path, tmp_path: Path
) -> None:

    template = _template(vpc_assembly)
    handler_keys = {
        r["Properties"]["Code"]["S3Key"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and "S3Key" in r["Properties"]["Code"]
    }
    assembly = Path(shutil.copytree(vpc_assembly, tmp_path / "assembly"))
    adapt_assembly(assembly, "VpcStack")
    assets = json.loads((assembly / "VpcStack.assets.json").read_text())["files"].values()
    uploaded = {d["objectKey"] for a in assets for d in a["destinations"].values()}
    assert (len(handler_keys), uploaded & handler_keys) == (1, set())


def test_a_template_without_the_restriction_is_left_as_it_was(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    sqs.Queue(cdk.Stack(app, "QueueStack"), "Queue")
    app.synth()
    before = (tmp_path / "manifest.json").read_bytes()
    assert (adapt_assembly(tmp_path, "QueueStack"), (tmp_path / "manifest.json").read_bytes()) == (
        set(),
        before,
    )


def test_the_local_deployment_names_the_repository() -> None:
    """moto's CloudFormation needs a repository name; the stack's default has none."""
    assert local_context(None, None)["repositoryName"] == LOCAL_REPOSITORY_NAME


def test_a_repository_name_given_for_the_local_deployment_wins() -> None:
    assert local_context(None, {"repositoryName": "mine"})["repositoryName"] == "mine"
