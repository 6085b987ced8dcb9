"""Storage: the source and derivatives buckets (created or imported) and their access-log bucket."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.settings import Settings

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

        imports_both = settings.source_bucket_name and settings.derivatives_bucket_name
        self.access_logs_bucket: s3.IBucket | None = (
            None if imports_both else self._access_logs_bucket()
        )
        self.source_bucket: s3.IBucket = self._bucket(
            "SourceBucket", SOURCE_BUCKET_LOGICAL_ID, settings.source_bucket_name, "source/"
        )
        self.derivatives_bucket: s3.IBucket = self._bucket(
            "DerivativesBucket",
            DERIVATIVES_BUCKET_LOGICAL_ID,
            settings.derivatives_bucket_name,
            "derivatives/",
        )

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
        self, construct_id: str, logical_id: str, import_name: str | None, log_prefix: str
    ) -> s3.IBucket:
        if import_name is not None:
            return s3.Bucket.from_bucket_name(self, construct_id, import_name)
        bucket = s3.Bucket(
            self,
            construct_id,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix=log_prefix,
            removal_policy=self._removal_policy,
            auto_delete_objects=self._auto_delete,
        )
        _pin_logical_id(bucket, logical_id)
        return bucket


def _pin_logical_id(bucket: s3.Bucket, logical_id: str) -> None:
    cfn_bucket = bucket.node.default_child
    assert isinstance(cfn_bucket, s3.CfnBucket)
    cfn_bucket.override_logical_id(logical_id)
