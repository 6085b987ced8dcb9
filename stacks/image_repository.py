"""Image repository: the ECR repository CI pushes iiif-process images to (used with `imageTag`)."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from constructs import Construct

from stacks.checkov import skip_checkov
from stacks.props import check
from stacks.stack_settings import REPOSITORY_NAME

REPOSITORY_LOGICAL_ID = "ImageRepository"
KEEP_TAGGED_IMAGES = 20
UNTAGGED_IMAGE_DAYS = 1


@dataclass(frozen=True, kw_only=True)
class ImageRepositoryProps:
    """The repository's name (setting `repositoryName`); None lets CloudFormation choose it."""

    repository_name: str | None

    def __post_init__(self) -> None:
        name = self.repository_name
        check(
            self,
            "repository_name",
            name is None
            or (
                isinstance(name, str)
                and 2 <= len(name) <= 256
                and bool(REPOSITORY_NAME.fullmatch(name))
            ),
            "None, or an ECR repository name: lowercase letters, digits and . _ - / "
            "(2-256 characters)",
        )


class ImageRepository(Construct):
    """An ECR repository with immutable tags, scan on push and a lifecycle rule.

    Attributes:
        repository: the repository (named by the `repositoryName` setting, or by CloudFormation).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: ImageRepositoryProps,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.repository = ecr.Repository(
            self,
            "Repository",
            # None lets CloudFormation name it; `make image-push` and CI find it through the
            # stack's `RepositoryUri` output. (local_aws/ passes a name: moto needs one.)
            repository_name=props.repository_name,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            image_scan_on_push=True,
            encryption=ecr.RepositoryEncryption.AES_256,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    rule_priority=1,
                    description="Drop untagged layers left by interrupted pushes.",
                    tag_status=ecr.TagStatus.UNTAGGED,
                    max_image_age=cdk.Duration.days(UNTAGGED_IMAGE_DAYS),
                ),
                ecr.LifecycleRule(
                    rule_priority=2,
                    description=f"Keep the {KEEP_TAGGED_IMAGES} newest images.",
                    tag_status=ecr.TagStatus.ANY,
                    max_image_count=KEEP_TAGGED_IMAGES,
                ),
            ],
            removal_policy=removal_policy,
            # Deleting a repository that holds images fails unless it is emptied first.
            empty_on_delete=removal_policy == cdk.RemovalPolicy.DESTROY,
        )
        cfn_repository = self.repository.node.default_child
        assert isinstance(cfn_repository, ecr.CfnRepository)
        # Pinned so that a refactor never replaces (and orphans) the repository.
        cfn_repository.override_logical_id(REPOSITORY_LOGICAL_ID)
        skip_checkov(
            cfn_repository,
            "CKV_AWS_136",
            "Images are encrypted at rest with AES-256 by ECR; they hold the open-source "
            "tool and public go-iiif settings, nothing a KMS key would need to protect.",
        )
