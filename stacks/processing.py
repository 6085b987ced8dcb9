"""Processing: the ECS cluster, the Fargate task definition running iiif-process, and its logs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.checkov import skip_checkov
from stacks.nag import acknowledge, bucket_arn_in_findings
from stacks.props import check, check_choice, check_range
from stacks.stack_settings import (
    CONTAINER_NAME,
    EPHEMERAL_STORAGE_GIB,
    FARGATE_MEMORY_BY_CPU,
    IMAGE_TAG,
    MAX_SOURCE_BYTES,
)

CONTAINER_DIR = Path(__file__).resolve().parent.parent / "container"
"""The image's build context (`container/Dockerfile`)."""

LOG_STREAM_PREFIX = "iiif-process"
"""awslogs stream prefix: a task logs to `iiif-process/CONTAINER_NAME/TASK_ID`."""

# The Dockerfile's non-root user (uid:gid). Set here too so the task definition states it and
# an image built elsewhere cannot silently run as root.
CONTAINER_USER = "1000:1000"

_ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/*.egg-info"]

# Fargate gives every task this much disk for free; only a larger one is declared (and billed).
FREE_EPHEMERAL_STORAGE_GIB = EPHEMERAL_STORAGE_GIB[0]


@dataclass(frozen=True)
class TaskArchitecture:
    """One CPU architecture, as the task definition and the image build each name it."""

    runtime: ecs.CpuArchitecture
    image_platform: ecr_assets.Platform


X86_64 = TaskArchitecture(ecs.CpuArchitecture.X86_64, ecr_assets.Platform.LINUX_AMD64)
ARM64 = TaskArchitecture(ecs.CpuArchitecture.ARM64, ecr_assets.Platform.LINUX_ARM64)
TASK_ARCHITECTURES: dict[str, TaskArchitecture] = {"X86_64": X86_64, "ARM64": ARM64}
"""The `cpuArchitecture` setting's values."""


@dataclass(frozen=True, kw_only=True)
class ProcessingProps:
    """The task's size and image (settings `cpu`, `memoryMiB`, `ephemeralStorageGiB`,
    `cpuArchitecture`, `containerName`, `imageTag`, `maxSourceBytes`)."""

    cpu: int
    """Fargate CPU units."""
    memory_mib: int
    """Task memory, also the container's hard limit; one Fargate accepts for `cpu`."""
    ephemeral_storage_gib: int
    """Task disk; above Fargate's free 20 GiB it is declared."""
    architecture: TaskArchitecture
    """The task's CPU architecture, and so the platform the image is built for."""
    container_name: str
    """The container's name in the task definition."""
    image_tag: str | None
    """Run this tag of the repository; None builds `container/` as an image asset."""
    max_source_bytes: int
    """Larger source objects are skipped (0 = no limit)."""

    def __post_init__(self) -> None:
        check_choice(self, "cpu", FARGATE_MEMORY_BY_CPU)
        check_choice(self, "memory_mib", FARGATE_MEMORY_BY_CPU[self.cpu])
        check_range(self, "ephemeral_storage_gib", EPHEMERAL_STORAGE_GIB)
        check_choice(self, "architecture", (X86_64, ARM64))
        check(
            self,
            "container_name",
            isinstance(self.container_name, str)
            and bool(CONTAINER_NAME.fullmatch(self.container_name)),
            "a container name: a letter or digit, then up to 254 letters, digits, '_' or '-'",
        )
        check(
            self,
            "image_tag",
            self.image_tag is None
            or (isinstance(self.image_tag, str) and bool(IMAGE_TAG.fullmatch(self.image_tag))),
            "None, or an image tag of up to 128 letters, digits, '_', '.', '-'",
        )
        check_range(self, "max_source_bytes", MAX_SOURCE_BYTES)


@dataclass(frozen=True, kw_only=True)
class DeepZoom:
    """What the task needs for tiles, `info.json` and manifests (docs/contracts.md, "Deep zoom").

    `public_base_url` may be a token (the CloudFront domain); the settings that produce it are
    validated in `stacks.stack_settings`, and the tool checks the value again at run time.
    """

    tiles: bool
    iiif_api_version: int
    tile_size: int
    public_base_url: str

    def __post_init__(self) -> None:
        if self.iiif_api_version not in (2, 3):
            raise ValueError(f"iiif_api_version must be 2 or 3, got {self.iiif_api_version!r}")
        if isinstance(self.tile_size, bool) or not 64 <= self.tile_size <= 4096:
            raise ValueError(f"tile_size must be 64 to 4096 pixels, got {self.tile_size!r}")
        if not cdk.Token.is_unresolved(self.public_base_url) and (
            not self.public_base_url.startswith(("https://", "http://"))
            or self.public_base_url.endswith("/")
        ):
            raise ValueError(
                f"public_base_url must be an http(s) URL without a trailing slash, got "
                f"{self.public_base_url!r}"
            )

    def environment(self) -> dict[str, str]:
        """The container variables of the contract."""
        return {
            "IIIF_PROCESS_TILES": "true" if self.tiles else "false",
            "IIIF_PROCESS_IIIF_API_VERSION": str(self.iiif_api_version),
            "IIIF_PROCESS_TILE_SIZE": str(self.tile_size),
            "IIIF_PROCESS_PUBLIC_BASE_URL": self.public_base_url,
        }


class Processing(Construct):
    """The cluster, task definition and log group that run `/bin/iiif-process`.

    Attributes:
        cluster: the ECS cluster (Container Insights on).
        task_definition: the Fargate task definition.
        container: the iiif-process container definition.
        log_group: where the container logs (stream prefix `LOG_STREAM_PREFIX`).
        task_role: the role the container runs with.
        execution_role: the role ECS pulls the image and writes logs with.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: ProcessingProps,
        vpc: ec2.IVpc,
        repository: ecr.IRepository,
        source_bucket_name: str,
        derivatives_bucket_name: str,
        ledger_table_name: str,
        recipe: str,
        deep_zoom: DeepZoom,
        stack_name: str,
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )
        self.log_group = logs.LogGroup(
            self, "LogGroup", retention=log_retention, removal_policy=removal_policy
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            cpu=props.cpu,
            memory_limit_mib=props.memory_mib,
            # Leaving it unset keeps Fargate's free 20 GiB; only a larger disk is declared.
            ephemeral_storage_gib=(
                props.ephemeral_storage_gib
                if props.ephemeral_storage_gib > FREE_EPHEMERAL_STORAGE_GIB
                else None
            ),
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=props.architecture.runtime,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        region = cdk.Aws.REGION
        self.container = self.task_definition.add_container(
            props.container_name,
            container_name=props.container_name,
            image=_image(props, repository),
            # A container-level hard limit equal to the task's: ECS needs none on Fargate, but
            # moto's RunTask fails without one, and it names the limit behind exit code 137.
            memory_limit_mib=props.memory_mib,
            user=CONTAINER_USER,
            essential=True,
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=LOG_STREAM_PREFIX, log_group=self.log_group
            ),
            # The deployed bucket names reach iiif-process here, as the defaults of its
            # -config-images-source-uri / -config-derivatives-cache-uri flags.
            environment={
                "IIIF_CONFIG_IMAGES_SOURCE_URI": f"s3blob://{source_bucket_name}?region={region}",
                "IIIF_CONFIG_DERIVATIVES_CACHE_URI": (
                    f"s3blob://{derivatives_bucket_name}?region={region}"
                ),
                # docs/contracts.md, "The ledger": each image's outcome, as it finishes.
                "IIIF_PROCESS_LEDGER_TABLE": ledger_table_name,
                "IIIF_PROCESS_RECIPE": recipe,
                "IIIF_PROCESS_MAX_SOURCE_BYTES": str(props.max_source_bytes),
                # docs/contracts.md, "Metrics": the `Stack` dimension of every metric.
                "IIIF_PROCESS_STACK_NAME": stack_name,
                # docs/contracts.md, "Deep zoom": tiles, info.json and manifest of each image.
                **deep_zoom.environment(),
            },
        )
        self.task_role: iam.IRole = self.task_definition.task_role
        execution_role = self.task_definition.execution_role
        assert execution_role is not None  # the awslogs driver always makes one
        self.execution_role: iam.IRole = execution_role
        self._acknowledge()

    def grant_run_task(self, grantee: iam.IGrantable) -> None:
        """Let `grantee` start this task definition in this cluster, and nothing more.

        Written out rather than `task_definition.grant_run()`: RunTask only on this task
        definition and only in this cluster, PassRole only on the two task roles and only to ECS.
        """
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["ecs:RunTask"],
            resource_arns=[self.task_definition.task_definition_arn],
            conditions={"ArnEquals": {"ecs:cluster": self.cluster.cluster_arn}},
        )
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["iam:PassRole"],
            resource_arns=[self.task_role.role_arn, self.execution_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        )

    def grant_storage(self, *, source: s3.IBucket, derivatives: s3.IBucket) -> None:
        """Give the task role exactly the S3 calls iiif-process makes, on object ARNs only.

        Source: GetObject (and HeadObject, which GetObject authorizes). Derivatives: PutObject
        (single PUTs, never multipart, so no Abort*), GetObject for the HeadObject that tells
        whether a derivative existed before it is overwritten, and DeleteObject of what a
        failed run itself created. ListBucket on the derivatives bucket (the bucket, not its
        objects): without it S3 answers HeadObject of a missing key with 403 instead of 404,
        and the tool could not tell "absent" from "forbidden".
        """
        grants = (
            (["s3:GetObject"], [source.arn_for_objects("*")]),
            (
                ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                [derivatives.arn_for_objects("*")],
            ),
            (["s3:ListBucket"], [derivatives.bucket_arn]),
        )
        for actions, resources in grants:
            iam.Grant.add_to_principal(
                grantee=self.task_role, actions=actions, resource_arns=resources
            )
        policy = self.task_role.node.try_find_child("DefaultPolicy")
        assert policy is not None
        for bucket, role in ((source, "reads any image"), (derivatives, "writes derivatives")):
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{bucket_arn_in_findings(bucket)}/*]",
                f"Object keys are not known in advance: the task {role} under any key of "
                "this one bucket.",
            )

    def _acknowledge(self) -> None:
        acknowledge(
            self.task_definition,
            "AwsSolutions-ECS2",
            "The environment holds the bucket URIs, the ledger table name, the recipe hash, "
            "the size limit, the stack name and the deep-zoom settings with the public base URL: "
            "no secrets, and the names are also stack outputs.",
        )
        skip_checkov(
            self.log_group,
            "CKV_AWS_158",
            "CloudWatch Logs encrypts every log group at rest; a customer managed KMS key "
            "would add cost and a key policy to protect image keys and timings.",
        )
        policy = self.execution_role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            acknowledge(
                policy,
                "AwsSolutions-IAM5[Resource::*]",
                "ecr:GetAuthorizationToken has no resource-level permissions; CDK scopes the "
                "image pull itself to one repository.",
            )


def _image(props: ProcessingProps, repository: ecr.IRepository) -> ecs.ContainerImage:
    if props.image_tag is not None:
        return ecs.ContainerImage.from_ecr_repository(repository, props.image_tag)
    # Staged at synth, built and pushed by `cdk deploy` (no Docker needed before that).
    return ecs.ContainerImage.from_asset(
        str(CONTAINER_DIR), platform=props.architecture.image_platform, exclude=_ASSET_EXCLUDES
    )
