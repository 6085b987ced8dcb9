"""An S3 store's client: the one it was given, else one made on first use (issue #13)."""

from __future__ import annotations

import boto3
from iiif_process.stores import S3Store


def test_a_store_given_a_client_uses_that_client() -> None:
    given = boto3.session.Session().client("s3", region_name="eu-west-1")
    assert S3Store("bucket", client=given).client is given


def test_a_store_without_a_client_makes_one_in_its_region() -> None:
    assert S3Store("bucket", region="ap-southeast-2").client.meta.region_name == "ap-southeast-2"


def test_a_store_makes_its_client_once() -> None:
    store = S3Store("bucket", region="eu-west-1")
    assert store.client is store.client
