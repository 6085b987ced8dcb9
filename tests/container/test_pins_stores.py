"""An S3 store's client (the one it was given, else one made on first use), and the store each
spec opens (issue #13)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from iiif_process.config import StoreSpec
from iiif_process.errors import StoreError, UnsafeURIError
from iiif_process.stores import DiskStore, MemoryStore, S3Store, open_store, safe_key


def test_a_store_given_a_client_uses_that_client() -> None:
    given = boto3.session.Session().client("s3", region_name="eu-west-1")
    assert S3Store("bucket", client=given).client is given


def test_a_store_without_a_client_makes_one_in_its_region() -> None:
    assert S3Store("bucket", region="ap-southeast-2").client.meta.region_name == "ap-southeast-2"


def test_a_store_makes_its_client_once() -> None:
    store = S3Store("bucket", region="eu-west-1")
    assert store.client is store.client


def test_an_s3_spec_opens_its_bucket_prefix_and_region() -> None:
    store = open_store(StoreSpec("s3", bucket="b", prefix="p/", region="eu-west-1"))
    assert (type(store), store.bucket, store.prefix, store.region) == (
        S3Store,
        "b",
        "p/",
        "eu-west-1",
    )


def test_a_disk_spec_opens_its_folder(tmp_path: Path) -> None:
    store = open_store(StoreSpec("disk", path=str(tmp_path)))
    assert (type(store), store.root) == (DiskStore, str(tmp_path))


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(StoreError, match="unsupported store kind 'ftp'"):
        open_store(StoreSpec("ftp"))


def test_a_memory_spec_opens_a_memory_store() -> None:
    assert isinstance(open_store(StoreSpec("memory", path="pins")), MemoryStore)


@pytest.mark.parametrize("surrogate", ["\ud800", "\udabc", "\udfff"])
def test_a_key_with_a_lone_surrogate_is_refused(surrogate: str) -> None:
    with pytest.raises(UnsafeURIError, match="lone surrogate"):
        safe_key(f"a{surrogate}.jpg")


def test_a_key_just_outside_the_surrogates_is_kept() -> None:
    assert safe_key("a\ue000.jpg") == "a\ue000.jpg"
