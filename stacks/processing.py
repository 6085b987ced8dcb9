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
from stacks.stack_settings import Settings

CONTAINER_DIR = Path(__file__).resolve().parent.parent / "container"
"""The image's build context (`container/Dockerfile`)."""

LOG_STREAM_PREFIX = "iiif-process"
"""awslogs stream prefix: a task logs to `iiif-process/CONTAINER_NAME/TASK_ID`."""

# The Dockerfile's non-root user (uid:gid). Set here too so the task definition states it and
# an image built elsewhere cannot silently run as root.
CONTAINER_USER = "1000:1000"

_ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/*.egg-info"]


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
        settings: Settings,
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
        architecture = (
            ecs.CpuArchitecture.ARM64
            if settings.cpu_architecture == "ARM64"
            else ecs.CpuArchitecture.X86_64
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            cpu=settings.cpu,
            memory_limit_mib=settings.memory_mib,
            # Leaving it unset keeps Fargate's free 20 GiB; only a larger disk is declared.
            ephemeral_storage_gib=(
                settings.ephemeral_storage_gib if settings.ephemeral_storage_gib > 20 else None
            ),
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=architecture,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        region = cdk.Aws.REGION
        self.container = self.task_definition.add_container(
            settings.container_name,
            container_name=settings.container_name,
            image=_image(settings, repository),
            # A container-level hard limit equal to the task's: ECS needs none on Fargate, but
            # moto's RunTask fails without one, and it names the limit behind exit code 137.
            memory_limit_mib=settings.memory_mib,
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
                "IIIF_PROCESS_MAX_SOURCE_BYTES": str(settings.max_source_bytes),
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


def _image(settings: Settings, repository: ecr.IRepository) -> ecs.ContainerImage:
    if settings.image_tag is not None:
        return ecs.ContainerImage.from_ecr_repository(repository, settings.image_tag)
    platform = (
        ecr_assets.Platform.LINUX_ARM64
        if settings.cpu_architecture == "ARM64"
        else ecr_assets.Platform.LINUX_AMD64
    )
    # Staged at synth, built and pushed by `cdk deploy` (no Docker needed before that).
    return ecs.ContainerImage.from_asset(
        str(CONTAINER_DIR), platform=platform, exclude=_ASSET_EXCLUDES
    )
