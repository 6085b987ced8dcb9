"""Session-wide synthesized apps: each variant is built and synthesized (with cdk-nag) once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks import IiifProcessStack, Settings, add_nag_checks, settings_from_context

REPO_ROOT = Path(__file__).resolve().parents[2]

# Imported resources of the "imported" variant.
IMPORTED_SOURCE = "my-images-source"
IMPORTED_DERIVATIVES = "my-images-derivatives"
IMPORTED_VPC = "vpc-0123456789abcdef0"
IMPORTED_SUBNETS = ("subnet-0123456789abcdef0", "subnet-0fedcba9876543210")
IMPORTED_SECURITY_GROUPS = ("sg-0123456789abcdef0",)
IMAGE_TAG = "v1.2.3"
REPOSITORY_NAME = "team/iiif-process"
ALARM_EMAIL = "ops@example.org"
# Deep zoom (issue #11): the public base URLs of the variants that set one.
V2_BASE_URL = "https://images.example.org/iiif"
CUSTOM_BASE_URL = "https://iiif.example.org"


@dataclass(frozen=True)
class Synthesized:
    """One synthesized variant: its settings, stack and template."""

    settings: Settings
    stack: IiifProcessStack
    template: Template

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        """Resources of one CloudFormation type, by logical ID."""
        return self.template.find_resources(type_)

    def docker_image_assets(self) -> list[dict[str, Any]]:
        """The `dockerImages` of the stack's asset manifest: what `cdk deploy` builds."""
        assembly = cdk.Stage.of(self.stack).synth()  # type: ignore[union-attr]
        manifest = Path(assembly.directory) / f"{self.stack.artifact_id}.assets.json"
        return list(json.loads(manifest.read_text())["dockerImages"].values())

    def only(self, type_: str) -> dict[str, Any]:
        """The single resource of `type_` (fails if there is not exactly one)."""
        found = self.resources(type_)
        assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
        return next(iter(found.values()))


def cdk_json_context() -> dict[str, Any]:
    """The `context` of cdk.json: feature flags and setting defaults."""
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


def feature_flags() -> dict[str, Any]:
    return {k: v for k, v in cdk_json_context().items() if k.startswith("@")}


def cdk_json_settings() -> dict[str, Any]:
    return {k: v for k, v in cdk_json_context().items() if not k.startswith("@")}


# Variant name -> context overrides on top of cdk.json. All variants live in ONE app, so the
# session pays for a single synthesis (and a single cdk-nag pass).
VARIANTS: dict[str, dict[str, Any]] = {
    # The stack as `cdk synth` builds it with cdk.json's defaults.
    "default": {},
    # Existing buckets and network, a named repository with a CI-pushed image tag,
    # notifications off, ARM64.
    "imported": {
        "stackName": "ImportedStack",
        "sourceBucketName": IMPORTED_SOURCE,
        "derivativesBucketName": IMPORTED_DERIVATIVES,
        "vpcId": IMPORTED_VPC,
        "subnetIds": ",".join(IMPORTED_SUBNETS),
        "securityGroupIds": list(IMPORTED_SECURITY_GROUPS),
        "assignPublicIp": "false",
        "imageTag": IMAGE_TAG,
        "repositoryName": REPOSITORY_NAME,
        "s3Notifications": "false",
        "cpuArchitecture": "arm64",
        "cpu": "2048",
        "memoryMiB": "8192",
        "ephemeralStorageGiB": "50",
        "report": "false",
        "reportName": "report.json",
        "maxUrisPerTask": "20",
        "logRetentionDays": "365",
        "queueBatchSize": "10",
        "queueBatchWindowSeconds": "0",
        "maxAttempts": "5",
        "maxSourceBytes": "0",
    },
    # An imported source bucket (with notifications), a created derivatives bucket, destroy,
    # the largest task disk.
    "destroyable": {
        "stackName": "DestroyableStack",
        "sourceBucketName": IMPORTED_SOURCE,
        "removalPolicy": "destroy",
        "ephemeralStorageGiB": "200",
    },
    # ARM64 with the image built from container/ (no imageTag), a memory size of its own and the
    # smallest task disk that is declared.
    "arm64": {
        "stackName": "Arm64Stack",
        "cpuArchitecture": "ARM64",
        "memoryMiB": "3072",
        "ephemeralStorageGiB": "21",
    },
    # A created source bucket without versioning; the least reserved concurrency an event
    # source mapping's maximum concurrency accepts (2).
    "unversioned": {
        "stackName": "UnversionedStack",
        "sourceVersioning": "false",
        "lambdaReservedConcurrency": "2",
    },
    # A versioned source bucket that keeps replaced versions forever; one trigger at a time
    # (below what a mapping's maximum concurrency accepts).
    "keep-versions": {
        "stackName": "KeepVersionsStack",
        "noncurrentVersionExpirationDays": "0",
        "lambdaReservedConcurrency": "1",
    },
    # Alarm email subscribed, every monitoring threshold away from its default (issue #15).
    "monitored": {
        "stackName": "MonitoredStack",
        "alarmEmail": ALARM_EMAIL,
        "stalledQueueSeconds": "600",
        "failureRatePercent": "25",
        "failureRateWindowMinutes": "30",
    },
    # Image API 2, small tiles, a custom domain in front of the stack's distribution (#11).
    "iiif-v2": {
        "stackName": "IiifV2Stack",
        "iiifApiVersion": "2",
        "tileSize": "256",
        "publicBaseUrl": V2_BASE_URL,
    },
    # No CloudFront and no tiles: the base URL falls back to the bucket's own address.
    "no-cdn": {"stackName": "NoCdnStack", "cloudfront": "false", "tiles": "false"},
    # No CloudFront, tiles on, served from a URL of the user's own.
    "own-cdn": {
        "stackName": "OwnCdnStack",
        "cloudfront": "false",
        "publicBaseUrl": CUSTOM_BASE_URL,
    },
}


def build_app(outdir: Path, variants: dict[str, dict[str, Any]]) -> dict[str, IiifProcessStack]:
    """Build an app as app.py does (cdk.json context, cdk-nag on) with one stack per variant."""
    app = cdk.App(context=feature_flags(), outdir=str(outdir))
    add_nag_checks(app)
    stacks = {}
    for name, overrides in variants.items():
        settings = settings_from_context({**cdk_json_settings(), **overrides})
        stacks[name] = IiifProcessStack(app, settings.stack_name, settings=settings)
    return stacks


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synthesized]:
    """Every variant, synthesized once. Raises ValidationFailed on any cdk-nag finding."""
    stacks = build_app(tmp_path_factory.mktemp("cdk-out"), VARIANTS)
    return {
        name: Synthesized(stack.settings, stack, Template.from_stack(stack))
        for name, stack in stacks.items()
    }


@pytest.fixture(scope="session")
def default(synthesized: dict[str, Synthesized]) -> Synthesized:
    """The stack with cdk.json's defaults."""
    return synthesized["default"]


@pytest.fixture(scope="session")
def imported(synthesized: dict[str, Synthesized]) -> Synthesized:
    """Imported buckets and VPC, imageTag, notifications off, ARM64, no public IP."""
    return synthesized["imported"]


@pytest.fixture(scope="session")
def arm64(synthesized: dict[str, Synthesized]) -> Synthesized:
    """ARM64 with the image built from `container/`, `memoryMiB` 3072, 21 GiB of disk."""
    return synthesized["arm64"]


@pytest.fixture(scope="session")
def unversioned(synthesized: dict[str, Synthesized]) -> Synthesized:
    """A created source bucket with `sourceVersioning` off; `lambdaReservedConcurrency` 2."""
    return synthesized["unversioned"]


@pytest.fixture(scope="session")
def keep_versions(synthesized: dict[str, Synthesized]) -> Synthesized:
    """`noncurrentVersionExpirationDays` 0 (versions kept forever); reserved concurrency 1."""
    return synthesized["keep-versions"]


@pytest.fixture(scope="session")
def destroyable(synthesized: dict[str, Synthesized]) -> Synthesized:
    """Imported source bucket with notifications, created derivatives bucket, destroy."""
    return synthesized["destroyable"]


@pytest.fixture(scope="session")
def iiif_v2(synthesized: dict[str, Synthesized]) -> Synthesized:
    """`iiifApiVersion` 2, `tileSize` 256, `publicBaseUrl` set, CloudFront on."""
    return synthesized["iiif-v2"]


@pytest.fixture(scope="session")
def no_cdn(synthesized: dict[str, Synthesized]) -> Synthesized:
    """`cloudfront` and `tiles` off, no `publicBaseUrl`."""
    return synthesized["no-cdn"]


@pytest.fixture(scope="session")
def own_cdn(synthesized: dict[str, Synthesized]) -> Synthesized:
    """`cloudfront` off, tiles on, `publicBaseUrl` set."""
    return synthesized["own-cdn"]


@pytest.fixture(scope="session")
def monitored(synthesized: dict[str, Synthesized]) -> Synthesized:
    """`alarmEmail` set and every monitoring threshold away from its default."""
    return synthesized["monitored"]
