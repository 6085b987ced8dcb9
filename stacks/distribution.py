"""Distribution: CloudFront in front of the private derivatives bucket (issue #11, deep zoom).

The bucket stays private (Block Public Access on, no website hosting): CloudFront reads it
through origin access control, whose bucket-policy statement allows `s3:GetObject` to the
`cloudfront.amazonaws.com` service principal only for this distribution (`AWS:SourceArn`). Viewers
get HTTPS only (plain HTTP is redirected), cached with the managed caching-optimized policy, and a
CORS response-headers policy so that a IIIF viewer on any other site can read `info.json`,
`manifest.json` and the tiles. Nothing is paid while nobody looks: CloudFront bills requests and
bytes only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.checkov import skip_checkov
from stacks.nag import acknowledge

#: Any site may read the images: IIIF viewers are embedded on pages of every domain.
ANY_ORIGIN = "*"
#: What a viewer does with the images: read them, and ask (preflight) before a non-simple read.
CORS_METHODS = ("GET", "HEAD", "OPTIONS")
#: How long browsers may cache a CORS preflight answer.
CORS_MAX_AGE = cdk.Duration.days(1)
#: HSTS for the distribution's own name (one year), as every response is HTTPS anyway.
HSTS_MAX_AGE = cdk.Duration.days(365)
# scheme://host[:port], as browsers send it in `Origin`: no path, no trailing slash.
_WEB_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(?::\d{1,5})?$")


class Distribution(Construct):
    """A CloudFront distribution serving one private bucket, read-only, over HTTPS with CORS.

    Attributes:
        distribution: the CloudFront distribution.
        domain_name: its `dxxxx.cloudfront.net` name (a token until deployment).
        response_headers_policy: the CORS (and HSTS) response-headers policy.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        allowed_origins: Sequence[str] = (ANY_ORIGIN,),
        price_class: cloudfront.PriceClass = cloudfront.PriceClass.PRICE_CLASS_100,
    ) -> None:
        """`bucket`: the origin, kept private; `allowed_origins`: the sites whose pages may
        read the objects (`*` = any, else `https://host[:port]` each); `price_class`: the edge
        locations used (100 = North America and Europe, the cheapest)."""
        super().__init__(scope, construct_id)
        origins_allowed = _validated_origins(allowed_origins)
        self.response_headers_policy = cloudfront.ResponseHeadersPolicy(
            self,
            "CorsPolicy",
            comment="IIIF viewers on other sites read info.json, manifests and tiles.",
            cors_behavior=cloudfront.ResponseHeadersCorsBehavior(
                access_control_allow_origins=origins_allowed,
                access_control_allow_methods=list(CORS_METHODS),
                access_control_allow_headers=["*"],
                access_control_allow_credentials=False,
                access_control_max_age=CORS_MAX_AGE,
                # The origin is S3 without a CORS rule: CloudFront answers for it.
                origin_override=True,
            ),
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=HSTS_MAX_AGE,
                    include_subdomains=False,
                    override=True,
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="IIIF derivatives, tiles, info.json and manifests (read-only).",
            default_behavior=cloudfront.BehaviorOptions(
                # Read access only (no ListBucket): a missing key is 403, and nobody can list
                # the bucket through the distribution.
                origin=origins.S3BucketOrigin.with_origin_access_control(
                    bucket, origin_access_levels=[cloudfront.AccessLevel.READ]
                ),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
                cached_methods=cloudfront.CachedMethods.CACHE_GET_HEAD_OPTIONS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=self.response_headers_policy,
                compress=True,
            ),
            price_class=price_class,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            enable_ipv6=True,
        )
        self.domain_name: str = self.distribution.distribution_domain_name
        self._acknowledge()

    def _acknowledge(self) -> None:
        distribution = self.distribution
        for rule_id, reason in (
            (
                "AwsSolutions-CFR1",
                "The images are published for anyone to view, like a museum's web site; "
                "there is no country they must be kept from.",
            ),
            (
                "AwsSolutions-CFR2",
                "A read-only cache of static images has no application to protect; WAF would "
                "add a monthly web ACL fee to a distribution that otherwise costs nothing idle.",
            ),
            (
                "AwsSolutions-CFR3",
                "Anonymous reads of public images leave nothing to audit; CloudFront's free "
                "request and error metrics show use, and every cache miss is in the "
                "derivatives bucket's S3 server access log.",
            ),
            (
                "AwsSolutions-CFR4",
                "The distribution uses its default cloudfront.net certificate, which CloudFront "
                "serves with its own TLS policy; a custom domain with an ACM certificate (and "
                "TLS 1.2 minimum) is the publicBaseUrl setting's business.",
            ),
        ):
            acknowledge(distribution, rule_id, reason)
        for check_id, comment in (
            (
                "CKV_AWS_68",
                "A read-only cache of static images has no application to protect; WAF would "
                "add a monthly web ACL fee to a distribution that otherwise costs nothing idle.",
            ),
            (
                "CKV_AWS_86",
                "Anonymous reads of public images leave nothing to audit; CloudFront's free "
                "request and error metrics show use, and every cache miss is in the "
                "derivatives bucket's S3 server access log.",
            ),
            (
                "CKV_AWS_174",
                "The default cloudfront.net certificate is served with CloudFront's own TLS "
                "policy and takes no minimum protocol version; a custom domain is the "
                "publicBaseUrl setting's business.",
            ),
        ):
            skip_checkov(distribution, check_id, comment)


def _validated_origins(allowed: Sequence[str]) -> list[str]:
    values = list(allowed)
    if not values:
        raise ValueError("allowed_origins must name at least one origin, or '*' for any site")
    for value in values:
        if value != ANY_ORIGIN and (not isinstance(value, str) or not _WEB_ORIGIN.fullmatch(value)):
            raise ValueError(
                f"allowed_origins holds {value!r}; accepted: '*' or a web origin such as "
                "https://viewer.example.org (scheme, host and port only)"
            )
    if ANY_ORIGIN in values and len(values) > 1:
        raise ValueError(f"allowed_origins holds '*' and {len(values) - 1} more; '*' stands alone")
    return values
