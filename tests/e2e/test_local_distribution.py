"""The local stand-in for the stack's CloudFront distribution (local_aws/distribution.py) on its
own: a bucket made through moto's CloudFormation, no deployment of the app."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_aws.deploy import LOCAL_IMAGE_TAG, LOCAL_REPOSITORY_NAME, local_context
from local_aws.distribution import (
    IMAGE_PROFILE,
    PRESENTATION_PROFILE,
    FolderObjects,
    LocalDistribution,
    local_distribution,
    object_key,
    port_of,
)
from local_aws.server import EmbeddedAws, moto_server
from local_aws.viewer import Site, index_page, vendor_file

INFO_TYPE = IMAGE_PROFILE.format(3)
TILE = "a b/x.jpg/0,0,512,512/512,512/0/default.jpg"


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    with moto_server() as running:
        running.reset()
        yield running


@pytest.fixture(scope="module")
def distribution(aws: EmbeddedAws) -> Iterator[LocalDistribution]:
    """The stand-in, and a stack (made with CloudFormation) naming it as its PublicBaseUrl."""
    with local_distribution(aws=aws) as running:
        template = {
            "Resources": {"Derivatives": {"Type": "AWS::S3::Bucket"}},
            "Outputs": {
                "DerivativesBucketName": {"Value": {"Ref": "Derivatives"}},
                "PublicBaseUrl": {"Value": running.url},
            },
        }
        cloudformation = aws.client("cloudformation")
        cloudformation.create_stack(StackName="Images", TemplateBody=json.dumps(template))
        (stack,) = cloudformation.describe_stacks(StackName="Images")["Stacks"]
        bucket = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        s3 = aws.client("s3")
        s3.put_object(
            Bucket=bucket["DerivativesBucketName"],
            Key=TILE,
            Body=b"tile bytes",
            ContentType="image/jpeg",
            CacheControl="public, max-age=31536000, immutable",
        )
        s3.put_object(
            Bucket=bucket["DerivativesBucketName"],
            Key="a b/x.jpg/info.json",
            Body=b"{}",
            ContentType=INFO_TYPE,
        )
        yield running


def _get(
    url: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_an_object_comes_with_its_stored_type_and_cache_control(
    distribution: LocalDistribution,
) -> None:
    status, headers, body = _get(
        f"{distribution.url}/a%20b/x.jpg/0,0,512,512/512,512/0/default.jpg"
    )
    assert (status, body, headers["Content-Type"], headers["Cache-Control"]) == (
        200,
        b"tile bytes",
        "image/jpeg",
        "public, max-age=31536000, immutable",
    )


def test_every_answer_lets_any_site_read_it(distribution: LocalDistribution) -> None:
    _, found, _ = _get(f"{distribution.url}/a%20b/x.jpg/info.json")
    _, missing, _ = _get(f"{distribution.url}/a%20b/nothing.json")
    assert (found["Access-Control-Allow-Origin"], missing["Access-Control-Allow-Origin"]) == (
        "*",
        "*",
    )


def test_info_json_keeps_its_iiif_profile(distribution: LocalDistribution) -> None:
    _, headers, _ = _get(f"{distribution.url}/a%20b/x.jpg/info.json")
    assert headers["Content-Type"] == INFO_TYPE


def test_a_missing_key_is_403_as_cloudfront_without_listing_answers(
    distribution: LocalDistribution,
) -> None:
    status, _, body = _get(f"{distribution.url}/a%20b/x.jpg/full/max/0/default.jpg")
    assert (status, b"AccessDenied" in body) == (403, True)


def test_a_cors_preflight_is_answered_with_the_policys_methods(
    distribution: LocalDistribution,
) -> None:
    status, headers, _ = _get(
        f"{distribution.url}/a%20b/x.jpg/info.json",
        method="OPTIONS",
        headers={"Origin": "https://viewer.example.org", "Access-Control-Request-Method": "GET"},
    )
    assert (status, headers["Access-Control-Allow-Methods"]) == (200, "GET, HEAD, OPTIONS")


def test_head_answers_headers_without_a_body(distribution: LocalDistribution) -> None:
    status, headers, body = _get(f"{distribution.url}/a%20b/x.jpg/info.json", method="HEAD")
    assert (status, headers["Content-Length"], body) == (200, "2", b"")


def test_a_request_path_is_decoded_once_into_the_key() -> None:
    assert object_key("/a%20b/c%2520d.jpg/info.json?x=1") == "a b/c%20d.jpg/info.json"


def test_folder_objects_type_iiif_documents_by_name_and_version(tmp_path: Path) -> None:
    v2 = b'{"@context": "http://iiif.io/api/image/2/context.json"}'
    assert (
        FolderObjects.content_type("info.json", v2),
        FolderObjects.content_type("info.json", b'{"@context": "http://iiif.io/api/image/3/"}'),
        FolderObjects.content_type("manifest.json", b"{}"),
        FolderObjects.content_type("default.jpg", b""),
    ) == (IMAGE_PROFILE.format(2), INFO_TYPE, PRESENTATION_PROFILE, "image/jpeg")


def test_folder_objects_never_leave_their_folder(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("no")
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "ok.jpg").write_bytes(b"ok")
    objects = FolderObjects(tmp_path / "served")
    assert (objects.get("../secret.txt"), objects.get("ok.jpg") is not None) == (None, True)


def test_port_of_refuses_a_url_that_is_not_local() -> None:
    with pytest.raises(ValueError, match="not a local stand-in"):
        port_of("https://d111.cloudfront.net")


def test_a_local_deployment_names_the_stand_in_as_public_base_url() -> None:
    assert local_context("http://localhost:8182", None) == {
        "imageTag": LOCAL_IMAGE_TAG,
        "repositoryName": LOCAL_REPOSITORY_NAME,
        "publicBaseUrl": "http://localhost:8182",
    }


def test_a_public_base_url_given_by_the_user_wins() -> None:
    context = local_context("http://localhost:8182", {"publicBaseUrl": "https://x.org"})
    assert context["publicBaseUrl"] == "https://x.org"


def test_the_viewer_percent_encodes_keys_except_slashes() -> None:
    site = Site(public_base_url="http://localhost:1", images=("a b/c#d.jpg",))
    assert site.image_url("a b/c#d.jpg") == "http://localhost:1/a%20b/c%23d.jpg"


def test_the_viewer_page_escapes_keys() -> None:
    page = index_page(Site(public_base_url="http://localhost:1", images=("<b>.jpg",)))
    assert "<b>.jpg" not in page and "&lt;b&gt;.jpg" in page


def test_the_viewer_serves_nothing_outside_the_packages() -> None:
    assert (
        vendor_file("/vendor/mirador/../../package.json"),
        vendor_file("/vendor/unknown/x.js"),
    ) == (None, None)
