"""Storage: the source and derivatives buckets (created or imported) and their access-log bucket."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.checkov import skip_checkov
from stacks.props import check, check_bool, check_choice, check_range
from stacks.stack_settings import LOG_RETENTION_DAYS, NONCURRENT_VERSION_EXPIRATION_DAYS

# CDK's auto-delete-objects custom resource provider (one per stack, fixed id).
_AUTO_DELETE_PROVIDER_ID = "Custom::S3AutoDeleteObjectsCustomResourceProvider"

# Pinned logical IDs: refactoring the construct tree must never replace a bucket full of images.
SOURCE_BUCKET_LOGICAL_ID = "SourceBucket"
DERIVATIVES_BUCKET_LOGICAL_ID = "DerivativesBucket"
ACCESS_LOGS_BUCKET_LOGICAL_ID = "AccessLogsBucket"


@dataclass(frozen=True, kw_only=True)
class StorageProps:
    """What the buckets are made of (settings `sourceBucketName`, `derivativesBucketName`,
    `sourceVersioning`, `noncurrentVersionExpirationDays`, `logRetentionDays`)."""

    source_bucket_name: str | None
    """Import this bucket as the source instead of creating one."""
    derivatives_bucket_name: str | None
    """Import this bucket for derivatives instead of creating one."""
    source_versioning: bool
    """Version a created source bucket."""
    noncurrent_version_expiration_days: int
    """Days a created, versioned source bucket keeps a replaced version; 0 = forever."""
    access_log_expiration_days: int
    """Days server access logs are kept (one of CloudWatch Logs' retention periods)."""

    def __post_init__(self) -> None:
        for field in ("source_bucket_name", "derivatives_bucket_name"):
            name = getattr(self, field)
            check(self, field, name is None or bool(name), "a bucket name, or None")
        check(
            self,
            "derivatives_bucket_name",
            self.source_bucket_name is None
            or self.source_bucket_name != self.derivatives_bucket_name,
            "a bucket other than the source (derivatives there would trigger processing again)",
        )
        check_bool(self, "source_versioning")
        check_range(self, "noncurrent_version_expiration_days", NONCURRENT_VERSION_EXPIRATION_DAYS)
        check_choice(self, "access_log_expiration_days", LOG_RETENTION_DAYS)


class Storage(Construct):
    """The two buckets of the pipeline.

    Attributes:
        source_bucket: where original images are put (and notifications come from).
        derivatives_bucket: where iiif-process writes tiles, derivatives and reports.
        access_logs_bucket: server access logs of created buckets, or None if both are imported.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: StorageProps,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self._removal_policy = removal_policy
        # Destroying a bucket that still holds objects fails; CDK's custom resource empties it.
        self._auto_delete = removal_policy == cdk.RemovalPolicy.DESTROY
        self._log_expiration = cdk.Duration.days(props.access_log_expiration_days)
        self._props = props

        imports_both = props.source_bucket_name and props.derivatives_bucket_name
        self.access_logs_bucket: s3.IBucket | None = (
            None if imports_both else self._access_logs_bucket()
        )
        # The masters in the source bucket are what nothing can regenerate: a replaced or
        # deleted image stays recoverable as a noncurrent version.
        self.source_bucket: s3.IBucket = self._bucket(
            "SourceBucket",
            SOURCE_BUCKET_LOGICAL_ID,
            props.source_bucket_name,
            "source/",
            versioned=props.source_versioning,
        )
        self.derivatives_bucket: s3.IBucket = self._bucket(
            "DerivativesBucket",
            DERIVATIVES_BUCKET_LOGICAL_ID,
            props.derivatives_bucket_name,
            "derivatives/",
            versioned=False,
        )
        self._acknowledge_checkov()

    def _access_logs_bucket(self) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=self._log_expiration)],
            removal_policy=self._removal_policy,
            auto_delete_objects=self._auto_delete,
        )
        _pin_logical_id(bucket, ACCESS_LOGS_BUCKET_LOGICAL_ID)
        return bucket

    def _bucket(
        self,
        construct_id: str,
        logical_id: str,
        import_name: str | None,
        log_prefix: str,
        *,
        versioned: bool,
    ) -> s3.IBucket:
        if import_name is not None:
            return s3.Bucket.from_bucket_name(self, construct_id, import_name)
        keep_days = self._props.noncurrent_version_expiration_days
        bucket = s3.Bucket(
            self,
            construct_id,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix=log_prefix,
            versioned=versioned,
            lifecycle_rules=(
                [
                    s3.LifecycleRule(
                        id="ExpireNoncurrentVersions",
                        noncurrent_version_expiration=cdk.Duration.days(keep_days),
                    )
                ]
                if versioned and keep_days
                else None
            ),
            removal_policy=self._removal_policy,
            auto_delete_objects=self._auto_delete,
        )
        _pin_logical_id(bucket, logical_id)
        return bucket

    def _acknowledge_checkov(self) -> None:
        source, derivatives = self.source_bucket, self.derivatives_bucket
        if isinstance(source, s3.Bucket) and not self._props.source_versioning:
            skip_checkov(
                source,
                "CKV_AWS_21",
                "Versioning of the source bucket was turned off with the sourceVersioning setting.",
            )
        if isinstance(derivatives, s3.Bucket):
            skip_checkov(
                derivatives,
                "CKV_AWS_21",
                "Derivatives are regenerated from the versioned masters by running the image "
                "again; versions would keep every overwritten tile and report at full price.",
            )
        if self.access_logs_bucket is not None:
            skip_checkov(
                self.access_logs_bucket,
                "CKV_AWS_21",
                "Server access logs are written once by S3 and expire after logRetentionDays; "
                "versions would only keep deleted logs longer.",
            )
            skip_checkov(
                self.access_logs_bucket,
                "CKV_AWS_18",
                "This is the access-log bucket itself; logging it into itself would log its "
                "own log deliveries without end.",
            )
        if self._auto_delete:
            self._skip_auto_delete_handler_checks()

    def _skip_auto_delete_handler_checks(self) -> None:
        provider = cdk.Stack.of(self).node.try_find_child(_AUTO_DELETE_PROVIDER_ID)
        if provider is None:  # both buckets imported: nothing to empty
            return
        reason = (
            "CDK's own auto-delete-objects custom resource runs only when CloudFormation "
            "deletes a bucket under removalPolicy destroy, to empty it; {}"
        )
        for check_id, why in (
            ("CKV_AWS_115", "it is never invoked concurrently with itself at scale."),
            ("CKV_AWS_116", "CloudFormation reports and retries its failures."),
            ("CKV_AWS_117", "it calls only the S3 API."),
        ):
            skip_checkov(provider.node.find_child("Handler"), check_id, reason.format(why))


def _pin_logical_id(bucket: s3.Bucket, logical_id: str) -> None:
    cfn_bucket = bucket.node.default_child
    assert isinstance(cfn_bucket, s3.CfnBucket)
    cfn_bucket.override_logical_id(logical_id)
