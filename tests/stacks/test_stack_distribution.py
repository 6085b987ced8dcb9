"""The CloudFront distribution in front of the private derivatives bucket (issue #11)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from stacks.distribution import Distribution
from tests.stacks.conftest import Synthesized

# The managed CachingOptimized cache policy (the same id in every account).
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"


def _config(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.only("AWS::CloudFront::Distribution")["Properties"]["DistributionConfig"]


def _behavior(synthesized: Synthesized) -> dict[str, Any]:
    return _config(synthesized)["DefaultCacheBehavior"]


def _distribution_id(synthesized: Synthesized) -> str:
    return next(iter(synthesized.resources("AWS::CloudFront::Distribution")))


def _derivatives_policy_statements(synthesized: Synthesized) -> list[dict[str, Any]]:
    (policy,) = [
        p
        for p in synthesized.resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": "DerivativesBucket"}
    ]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def _cors(synthesized: Synthesized) -> dict[str, Any]:
    policy = synthesized.only("AWS::CloudFront::ResponseHeadersPolicy")
    return policy["Properties"]["ResponseHeadersPolicyConfig"]["CorsConfig"]


def test_origin_is_the_derivatives_bucket(default: Synthesized) -> None:
    (origin,) = _config(default)["Origins"]
    assert origin["DomainName"] == {"Fn::GetAtt": ["DerivativesBucket", "RegionalDomainName"]}


def test_origin_reads_through_origin_access_control(default: Synthesized) -> None:
    (origin,) = _config(default)["Origins"]
    control = default.only("AWS::CloudFront::OriginAccessControl")["Properties"]
    (control_id,) = default.resources("AWS::CloudFront::OriginAccessControl")
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [control_id, "Id"]}
    assert control["OriginAccessControlConfig"]["OriginAccessControlOriginType"] == "s3"
    assert control["OriginAccessControlConfig"]["SigningBehavior"] == "always"


def test_no_origin_access_identity_is_used(default: Synthesized) -> None:
    (origin,) = _config(default)["Origins"]
    assert default.resources("AWS::CloudFront::CloudFrontOriginAccessIdentity") == {}
    assert origin["S3OriginConfig"]["OriginAccessIdentity"] == ""


def test_derivatives_bucket_stays_private(default: Synthesized) -> None:
    bucket = default.resources("AWS::S3::Bucket")["DerivativesBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert "WebsiteConfiguration" not in bucket


def test_bucket_policy_lets_only_this_distribution_read(default: Synthesized) -> None:
    (grant,) = [s for s in _derivatives_policy_statements(default) if s["Effect"] == "Allow"]
    source_arn = grant["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Join"][1]
    assert (grant["Principal"], grant["Action"]) == (
        {"Service": "cloudfront.amazonaws.com"},
        "s3:GetObject",
    )
    assert source_arn[-2:] == [":distribution/", {"Ref": _distribution_id(default)}]
    assert grant["Resource"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": ["DerivativesBucket", "Arn"]}, "/*"]]
    }


def test_bucket_policy_grants_no_listing(default: Synthesized) -> None:
    actions = [
        s["Action"] for s in _derivatives_policy_statements(default) if s["Effect"] == "Allow"
    ]
    assert actions == ["s3:GetObject"]


def test_viewers_are_redirected_to_https(default: Synthesized) -> None:
    assert _behavior(default)["ViewerProtocolPolicy"] == "redirect-to-https"


def test_only_reads_are_allowed(default: Synthesized) -> None:
    assert _behavior(default)["AllowedMethods"] == ["GET", "HEAD", "OPTIONS"]


def test_cache_policy_is_caching_optimized(default: Synthesized) -> None:
    assert _behavior(default)["CachePolicyId"] == CACHING_OPTIMIZED


def test_price_class_is_100(default: Synthesized) -> None:
    assert _config(default)["PriceClass"] == "PriceClass_100"


def test_behavior_uses_the_cors_policy(default: Synthesized) -> None:
    (policy_id,) = default.resources("AWS::CloudFront::ResponseHeadersPolicy")
    assert _behavior(default)["ResponseHeadersPolicyId"] == {"Ref": policy_id}


def test_cors_lets_any_site_read(default: Synthesized) -> None:
    cors = _cors(default)
    assert (
        cors["AccessControlAllowOrigins"]["Items"],
        cors["AccessControlAllowMethods"]["Items"],
        cors["AccessControlAllowCredentials"],
        cors["OriginOverride"],
    ) == (["*"], ["GET", "HEAD", "OPTIONS"], False, True)


def test_responses_carry_hsts(default: Synthesized) -> None:
    policy = default.only("AWS::CloudFront::ResponseHeadersPolicy")["Properties"]
    hsts = policy["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]["StrictTransportSecurity"]
    assert hsts["AccessControlMaxAgeSec"] == 365 * 24 * 3600


def test_hsts_overrides_what_the_origin_sends(default: Synthesized) -> None:
    policy = default.only("AWS::CloudFront::ResponseHeadersPolicy")["Properties"]
    security = policy["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert (
        security["StrictTransportSecurity"]["Override"],
        security["StrictTransportSecurity"]["IncludeSubdomains"],
        security["ContentTypeOptions"]["Override"],
    ) == (True, False, True)


def test_responses_are_compressed(default: Synthesized) -> None:
    """info.json and manifests are text; compressed, they reach the viewer sooner."""
    assert _behavior(default)["Compress"] is True


def test_no_distribution_without_the_cloudfront_setting(no_cdn: Synthesized) -> None:
    assert (
        no_cdn.resources("AWS::CloudFront::Distribution"),
        no_cdn.resources("AWS::CloudFront::OriginAccessControl"),
    ) == ({}, {})


def test_without_cloudfront_the_bucket_policy_grants_nothing(no_cdn: Synthesized) -> None:
    assert [s for s in _derivatives_policy_statements(no_cdn) if s["Effect"] == "Allow"] == []


def test_distribution_stays_with_a_custom_base_url(iiif_v2: Synthesized) -> None:
    assert len(iiif_v2.resources("AWS::CloudFront::Distribution")) == 1


def test_distribution_acknowledges_exactly_the_four_cloudfront_findings(
    default: Synthesized,
) -> None:
    distribution = default.stack.distribution
    assert distribution is not None
    cfn = distribution.distribution.node.default_child
    assert cfn is not None
    acknowledged = {
        rule.split("::")[-1]
        for entry in cfn.node.metadata
        if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule in entry.data
    }
    assert acknowledged == {
        "AwsSolutions-CFR1",
        "AwsSolutions-CFR2",
        "AwsSolutions-CFR3",
        "AwsSolutions-CFR4",
    }


def test_distribution_skips_exactly_three_checkov_checks(default: Synthesized) -> None:
    metadata = default.only("AWS::CloudFront::Distribution")["Metadata"]["checkov"]
    assert {skip["id"] for skip in metadata["skip"]} == {"CKV_AWS_68", "CKV_AWS_86", "CKV_AWS_174"}


def test_no_other_cloudfront_resource_skips_checks(default: Synthesized) -> None:
    others = [
        resource
        for type_ in (
            "AWS::CloudFront::ResponseHeadersPolicy",
            "AWS::CloudFront::OriginAccessControl",
        )
        for resource in default.resources(type_).values()
    ]
    assert [r.get("Metadata", {}).get("checkov") for r in others] == [None, None]


def _bucket_stack() -> tuple[cdk.Stack, s3.Bucket]:
    stack = cdk.Stack(cdk.App(), "S")
    return stack, s3.Bucket(stack, "B")


@pytest.mark.parametrize(
    "origins",
    [[], ["https://a.example.org/"], ["https://a.example.org/path"], ["*", "https://a.org"]],
)
def test_bad_allowed_origins_are_refused(origins: list[str]) -> None:
    stack, bucket = _bucket_stack()
    with pytest.raises(ValueError, match="allowed_origins"):
        Distribution(stack, "D", bucket=bucket, allowed_origins=origins)


def test_listed_origins_replace_any_origin() -> None:
    stack, bucket = _bucket_stack()
    Distribution(stack, "D", bucket=bucket, allowed_origins=["https://viewer.example.org"])
    policies = Template.from_stack(stack).find_resources("AWS::CloudFront::ResponseHeadersPolicy")
    (policy,) = policies.values()
    cors = policy["Properties"]["ResponseHeadersPolicyConfig"]["CorsConfig"]
    assert cors["AccessControlAllowOrigins"]["Items"] == ["https://viewer.example.org"]
