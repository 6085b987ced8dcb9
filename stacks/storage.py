"""Storage: the source and derivatives buckets (created or imported) and their access-log bucket."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.checkov import skip_checkov
from stacks.stack_settings import Settings

# CDK's auto-delete-objects custom resource provider (one per stack, fixed id).
_AUTO_DELETE_PROVIDER_ID = "Custom::S3AutoDeleteObjectsCustomResourceProvider"

# Pinned logical IDs: refactoring the construct tree must never replace a bucket full of images.
SOURCE_BUCKET_LOGICAL_ID = "SourceBucket"
DERIVATIVES_BUCKET_LOGICAL_ID = "DerivativesBucket"
ACCESS_LOGS_BUCKET_LOGICAL_ID = "AccessLogsBucket"


class Storage(Construct):
    """The two buckets of the pipeline.

    Attributes:
        source_bucket: where original images are put (and notifications come from).
        derivatives_bucket: where iiif-process writes tiles, derivatives and reports.
        access_logs_bucket: server access logs of created buckets, or None if both are imported.
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        destroy = settings.removal_policy == "destroy"
        self._removal_policy = cdk.RemovalPolicy.DESTROY if destroy else cdk.RemovalPolicy.RETAIN
        self._auto_delete = destroy
        self._log_expiration = cdk.Duration.days(settings.log_retention_days)
        self._settings = settings

        imports_both = settings.source_bucket_name and settings.derivatives_bucket_name
        self.access_logs_bucket: s3.IBucket | None = (
            None if imports_both else self._access_logs_bucket()
        )
        # The masters in the source bucket are what nothing can regenerate: a replaced or
        # deleted image stays recoverable as a noncurrent version.
        self.source_bucket: s3.IBucket = self._bucket(
            "SourceBucket",
            SOURCE_BUCKET_LOGICAL_ID,
            settings.source_bucket_name,
            "source/",
            versioned=settings.source_versioning,
        )
        self.derivatives_bucket: s3.IBucket = self._bucket(
            "DerivativesBucket",
            DERIVATIVES_BUCKET_LOGICAL_ID,
            settings.derivatives_bucket_name,
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
        keep_days = self._settings.noncurrent_version_expiration_days
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
        if isinstance(source, s3.Bucket) and not self._settings.source_versioning:
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
