"""Storage: created buckets are private, encrypted, TLS-only, logged and keep stable IDs."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match

from stacks.storage import Storage, StorageProps
from tests.stacks.conftest import (
    IMPORTED_DERIVATIVES,
    IMPORTED_SOURCE,
    Synthesized,
    feature_flags,
)

AUTO_DELETE_PROVIDER = "Custom::S3AutoDeleteObjectsCustomResourceProvider"

CREATED_BUCKETS = ("SourceBucket", "DerivativesBucket", "AccessLogsBucket")


def test_bucket_logical_ids_are_stable(default: Synthesized) -> None:
    assert sorted(default.resources("AWS::S3::Bucket")) == sorted(CREATED_BUCKETS)


def test_buckets_block_all_public_access(default: Synthesized) -> None:
    expected = {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    for logical_id, bucket in default.resources("AWS::S3::Bucket").items():
        config = bucket["Properties"]["PublicAccessBlockConfiguration"]
        assert config == expected, logical_id


def test_buckets_are_encrypted(default: Synthesized) -> None:
    for logical_id, bucket in default.resources("AWS::S3::Bucket").items():
        rules = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        algorithm = rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
        assert algorithm == "AES256", logical_id


def test_bucket_policies_deny_requests_without_tls(default: Synthesized) -> None:
    denied = {
        policy["Properties"]["Bucket"]["Ref"]
        for policy in default.resources("AWS::S3::BucketPolicy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement["Action"] == "s3:*"
        and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    }
    assert denied == set(CREATED_BUCKETS)


def test_source_and_derivatives_log_to_access_logs_bucket(default: Synthesized) -> None:
    for logical_id in ("SourceBucket", "DerivativesBucket"):
        logging = default.resources("AWS::S3::Bucket")[logical_id]["Properties"][
            "LoggingConfiguration"
        ]
        assert logging["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}, logical_id


def test_access_logs_expire_after_log_retention(default: Synthesized) -> None:
    bucket = default.resources("AWS::S3::Bucket")["AccessLogsBucket"]
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rules == [{"ExpirationInDays": default.settings.log_retention_days, "Status": "Enabled"}]


def test_buckets_are_retained_by_default(default: Synthesized) -> None:
    for logical_id, bucket in default.resources("AWS::S3::Bucket").items():
        assert bucket["DeletionPolicy"] == "Retain", logical_id


def test_destroy_policy_deletes_created_buckets_with_their_objects(
    destroyable: Synthesized,
) -> None:
    bucket = destroyable.resources("AWS::S3::Bucket")["DerivativesBucket"]
    assert bucket["DeletionPolicy"] == "Delete"
    destroyable.template.has_resource_properties(
        "Custom::S3AutoDeleteObjects", {"BucketName": {"Ref": "DerivativesBucket"}}
    )


def test_imported_buckets_are_not_created(imported: Synthesized) -> None:
    assert imported.resources("AWS::S3::Bucket") == {}


def test_imported_bucket_names_reach_the_container(imported: Synthesized) -> None:
    imported.template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "ContainerDefinitions": [
                Match.object_like(
                    {
                        "Environment": Match.array_with(
                            [
                                {
                                    "Name": "IIIF_CONFIG_IMAGES_SOURCE_URI",
                                    "Value": {
                                        "Fn::Join": [
                                            "",
                                            [
                                                f"s3blob://{IMPORTED_SOURCE}?region=",
                                                {"Ref": "AWS::Region"},
                                            ],
                                        ]
                                    },
                                },
                                {
                                    "Name": "IIIF_CONFIG_DERIVATIVES_CACHE_URI",
                                    "Value": {
                                        "Fn::Join": [
                                            "",
                                            [
                                                f"s3blob://{IMPORTED_DERIVATIVES}?region=",
                                                {"Ref": "AWS::Region"},
                                            ],
                                        ]
                                    },
                                },
                            ]
                        )
                    }
                )
            ]
        },
    )


def test_mixed_import_creates_only_the_derivatives_bucket(destroyable: Synthesized) -> None:
    assert sorted(destroyable.resources("AWS::S3::Bucket")) == [
        "AccessLogsBucket",
        "DerivativesBucket",
    ]


def _source(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.resources("AWS::S3::Bucket")["SourceBucket"]["Properties"]


def test_source_bucket_is_versioned_by_default(default: Synthesized) -> None:
    assert _source(default)["VersioningConfiguration"] == {"Status": "Enabled"}


def test_source_noncurrent_versions_expire_after_the_setting(default: Synthesized) -> None:
    rules = _source(default)["LifecycleConfiguration"]["Rules"]
    assert rules == [
        {
            "Id": "ExpireNoncurrentVersions",
            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
            "Status": "Enabled",
        }
    ]


def test_source_versions_kept_forever_with_zero_days(keep_versions: Synthesized) -> None:
    source = _source(keep_versions)
    assert (source["VersioningConfiguration"], "LifecycleConfiguration" in source) == (
        {"Status": "Enabled"},
        False,
    )


def test_source_versioning_can_be_turned_off(unversioned: Synthesized) -> None:
    source = _source(unversioned)
    assert ("VersioningConfiguration" in source, "LifecycleConfiguration" in source) == (
        False,
        False,
    )


def test_derivatives_bucket_is_not_versioned(default: Synthesized) -> None:
    derivatives = default.resources("AWS::S3::Bucket")["DerivativesBucket"]["Properties"]
    assert "VersioningConfiguration" not in derivatives


# --- the construct on its own: combinations no stack variant builds ---------------------------


def _storage(**changes: Any) -> Storage:
    props = {
        "source_bucket_name": None,
        "derivatives_bucket_name": None,
        "source_versioning": True,
        "noncurrent_version_expiration_days": 30,
        "access_log_expiration_days": 30,
        **changes,
    }
    return Storage(
        # cdk.json's feature flags: access logs are granted by bucket policy, as in the app.
        cdk.Stack(cdk.App(context=feature_flags()), "S"),
        "Storage",
        props=StorageProps(**props),
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )


def test_destroying_two_imported_buckets_empties_nothing() -> None:
    storage = _storage(source_bucket_name="src-images", derivatives_bucket_name="out-images")
    stack = cdk.Stack.of(storage)
    assert (storage.access_logs_bucket, stack.node.try_find_child(AUTO_DELETE_PROVIDER)) == (
        None,
        None,
    )


def test_an_imported_source_without_versioning_gets_no_checkov_skip() -> None:
    """Its versioning is the owner's: nothing of it is in this template to annotate."""
    storage = _storage(source_bucket_name="src-images", source_versioning=False)
    assert not isinstance(storage.source_bucket, s3.Bucket)


def test_destroyed_buckets_handler_skips_checkovs_lambda_checks() -> None:
    stack = cdk.Stack.of(_storage())
    handler = stack.node.find_child(AUTO_DELETE_PROVIDER).node.find_child("Handler")
    assert isinstance(handler, cdk.CfnResource)
    skipped = {skip["id"] for skip in handler.get_metadata("checkov")["skip"]}
    assert skipped == {"CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117"}
