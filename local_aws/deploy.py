"""Deploys the real CDK app into the emulator with the real CDK CLI.

`cdk bootstrap` then `cdk deploy --require-approval never`, with `AWS_ENDPOINT_URL` and test
credentials, exactly as against an AWS account. One thing cannot work here: the container image
asset is built with Docker at deploy time, and this machine has no Docker daemon. So the app is
deployed with `-c imageTag=TAG`: the task definition then points at the stack's ECR repository with
that tag and no image is built (the local task runner runs the project's `iiif-process` instead).

Two more things are emulator-only, decided here and never in the stack users deploy: the ECR
repository gets a fixed name (`-c repositoryName=...`; moto's CloudFormation needs one, on AWS
CloudFormation generates it), and the template loses the custom resource that restricts the VPC's
default security group (moto cannot run its Node.js handler;
local_aws/cfn_default_security_group.py). So the app is synthesized first, that template adapted,
and the adapted cloud assembly deployed with `cdk deploy --app ASSEMBLY`.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from iiif_process_ecs.stack import stack_outputs as read_stack_outputs

from local_aws.cfn_default_security_group import adapt_assembly
from local_aws.server import EmbeddedAws

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STACK = "IiifProcessStack"
#: The image tag the emulator's deployment references instead of building the image.
LOCAL_IMAGE_TAG = "demo"
#: The ECR repository's name here: moto's CloudFormation needs an explicit lowercase name.
LOCAL_REPOSITORY_NAME = "iiif-process-local"
IMAGE_SKIPPED_MESSAGE = (
    "The container image is not built: `cdk deploy` builds image assets with Docker and this "
    f"machine has no Docker daemon. The stack is deployed with -c imageTag={LOCAL_IMAGE_TAG}, so "
    f"the task definition names the ECR repository's '{LOCAL_IMAGE_TAG}' tag, and the local "
    "task runner runs the project's own iiif-process tool in its place."
)
EMULATOR_ONLY_MESSAGE = (
    f"For moto only, the repository is named {LOCAL_REPOSITORY_NAME!r} and the template loses the "
    "custom resource that empties the VPC's default security group (moto cannot run its Node.js "
    "handler); the stack deployed to AWS has both as CDK makes them."
)


class DeployError(RuntimeError):
    """A CDK CLI command failed; the message holds its output."""


@dataclass(frozen=True)
class DeployedStack:
    """A deployed stack's name and outputs (OutputKey -> OutputValue)."""

    name: str
    outputs: dict[str, str]

    def __getitem__(self, key: str) -> str:
        try:
            return self.outputs[key]
        except KeyError:
            raise KeyError(f"stack {self.name} has no output {key!r}") from None


def cdk_command() -> list[str]:
    """The project's pinned CDK CLI."""
    return [str(PROJECT_ROOT / "node_modules" / ".bin" / "cdk")]


def _cdk_env(aws: EmbeddedAws) -> dict[str, str]:
    python_bin = str(Path(sys.executable).parent)
    return aws.child_env(
        {
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "CDK_DISABLE_VERSION_CHECK": "1",
            # cdk.json runs `.venv/bin/python app.py`; keep this interpreter's tools first.
            "PATH": f"{python_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )


def run_cdk(aws: EmbeddedAws, args: list[str], timeout: float = 600.0) -> str:
    """Run one CDK CLI command against the emulator; raise `DeployError` if it fails.

    The CLI is stopped if it outlives `timeout` or if this process is interrupted, so that no
    `cdk` process is left behind holding the output folder.
    """
    process = subprocess.Popen(
        [*cdk_command(), *args],
        cwd=PROJECT_ROOT,
        env=_cdk_env(aws),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise DeployError(
            f"cdk {' '.join(args)} did not finish within {timeout:.0f} s "
            "(a CloudFormation custom resource that never answered keeps a stack in progress):\n"
            f"{output}"
        ) from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        raise DeployError(f"cdk {' '.join(args)} failed:\n{output}")
    return output


def bootstrap(aws: EmbeddedAws) -> None:
    """`cdk bootstrap` the emulator's account and region."""
    run_cdk(aws, ["bootstrap", f"aws://{aws.account_id}/{aws.region}"])


def local_context(
    public_base_url: str | None, extra_context: dict[str, str] | None
) -> dict[str, str]:
    """The context of a deployment here: no image build, a named repository (moto needs a name)
    and the CloudFront stand-in's URL as `publicBaseUrl`, unless `extra_context` names others
    (moto cannot create the distribution, and without a `publicBaseUrl` the template would read
    its domain name)."""
    context = {"imageTag": LOCAL_IMAGE_TAG, "repositoryName": LOCAL_REPOSITORY_NAME}
    if public_base_url is not None:
        context["publicBaseUrl"] = public_base_url
    context.update(extra_context or {})
    return context


def deploy(
    aws: EmbeddedAws,
    stack: str = DEFAULT_STACK,
    output_dir: str = "cdk.out.local",
    extra_context: dict[str, str] | None = None,
    public_base_url: str | None = None,
) -> DeployedStack:
    """`cdk synth` the app (no image build), adapt its template to the emulator, `cdk deploy`
    that cloud assembly and return the stack's outputs.

    `public_base_url`: the URL of the local CloudFront stand-in (`LocalAws.distribution.url`).
    """
    assembly = synth(aws, PROJECT_ROOT / output_dir, extra_context, public_base_url)
    args = ["deploy", stack, "--app", str(assembly), "--require-approval", "never"]
    # Create the stack directly instead of through a change set: moto's ExecuteChangeSet creates
    # the resources but never computes the stack's outputs, nor waits for custom resources.
    args += ["--method", "direct", "--progress", "events"]
    run_cdk(aws, args)
    return stack_outputs(aws, stack)


def stack_outputs(aws: EmbeddedAws, stack: str = DEFAULT_STACK) -> DeployedStack:
    """The outputs of a deployed stack, read back the way `iiif-process-ecs -stack` reads them."""
    outputs = read_stack_outputs(aws.client("cloudformation"), stack)
    return DeployedStack(name=stack, outputs=outputs)


def synth(
    aws: EmbeddedAws,
    output_dir: Path,
    extra_context: dict[str, str] | None = None,
    public_base_url: str | None = None,
) -> Path:
    """`cdk synth` the app as it is deployed here (`local_context`: `-c imageTag=demo`,
    `repositoryName`, `publicBaseUrl` and `extra_context`) into `output_dir`, and adapt every
    stack's template to the emulator (`adapt_assembly`).

    Run against the emulator, so that the CLI's account and region look-ups stay on this machine.
    """
    context = local_context(public_base_url, extra_context)
    args = ["synth", "--quiet", "--output", str(output_dir)]
    for key, value in context.items():
        args += ["-c", f"{key}={value}"]
    run_cdk(aws, args)
    for template in sorted(output_dir.glob("*.template.json")):
        adapt_assembly(output_dir, template.name.removesuffix(".template.json"))
    return output_dir


def _substitute(text: str, aws: EmbeddedAws) -> str:
    return (
        text.replace("${AWS::AccountId}", aws.account_id)
        .replace("${AWS::Region}", aws.region)
        .replace("${AWS::Partition}", "aws")
    )


def _zip_directory(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def upload_file_assets(aws: EmbeddedAws, assembly: Path, stack: str) -> int:
    """Upload the stack's file assets (zipping folders) as `cdk deploy` would; return the count."""
    manifest = json.loads((assembly / f"{stack}.assets.json").read_text(encoding="utf-8"))
    s3 = aws.client("s3")
    count = 0
    for asset in manifest.get("files", {}).values():
        source = assembly / asset["source"]["path"]
        body = (
            _zip_directory(source)
            if asset["source"].get("packaging") == "zip"
            else source.read_bytes()
        )
        for destination in asset["destinations"].values():
            s3.put_object(
                Bucket=_substitute(destination["bucketName"], aws),
                Key=_substitute(destination["objectKey"], aws),
                Body=body,
            )
            count += 1
    if manifest.get("dockerImages"):
        raise DeployError(
            f"{stack} has container image assets, which need Docker; synthesize with "
            f"-c imageTag={LOCAL_IMAGE_TAG}"
        )
    return count


def minimal_bootstrap(aws: EmbeddedAws, qualifier: str = "hnb659fds") -> None:
    """The two things of `cdk bootstrap` a synthesized template needs: the asset bucket and
    the version parameter its `CheckBootstrapVersion` rule reads. (Seconds faster than the CLI.)
    """
    aws.client("s3").create_bucket(Bucket=f"cdk-{qualifier}-assets-{aws.account_id}-{aws.region}")
    aws.client("ssm").put_parameter(
        Name=f"/cdk-bootstrap/{qualifier}/version", Value="30", Type="String", Overwrite=True
    )


def deploy_synthesized(
    aws: EmbeddedAws, assembly: Path, stack: str = DEFAULT_STACK, timeout: float = 120.0
) -> DeployedStack:
    """Create the stack from a synthesized template with CloudFormation's CreateStack.

    The fast path for tests: the same template `cdk deploy` would deploy, its assets uploaded the
    same way, without the CLI's start-up and synthesis on every deployment.
    """
    minimal_bootstrap(aws)
    upload_file_assets(aws, assembly, stack)
    cloudformation = aws.client("cloudformation")
    cloudformation.create_stack(
        StackName=stack,
        TemplateBody=(assembly / f"{stack}.template.json").read_text(encoding="utf-8"),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    deadline = time.monotonic() + timeout
    while True:
        status = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        if status == "CREATE_COMPLETE":
            return stack_outputs(aws, stack)
        if not status.endswith("IN_PROGRESS") or time.monotonic() > deadline:
            raise DeployError(f"stack {stack} is {status} (a custom resource may have failed)")
        time.sleep(0.1)


def bootstrap_and_deploy(
    aws: EmbeddedAws, stack: str = DEFAULT_STACK
) -> tuple[DeployedStack, float]:
    """Bootstrap, deploy; return the outputs and the seconds it took."""
    started = time.monotonic()
    bootstrap(aws)
    deployed = deploy(aws, stack)
    return deployed, time.monotonic() - started
