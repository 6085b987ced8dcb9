"""Which keys become -uri arguments, and the reasons for the others."""

from __future__ import annotations

import pytest
from iiif_process_ecs.keys import check_key, strip_path_collisions


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty key"),
        ("../etc/passwd.jpg", "'..' segment"),
        ("a/../b.jpg", "'..' segment"),
        ("a//b.jpg", "'//'"),
        ("/abs.jpg", "starts with '/'"),
        ("-rf.jpg", "starts with '-'"),
        ("bad\nname.jpg", "control character"),
        ("bad\x00name.jpg", "control character"),
        ("bad\x7fname.jpg", "control character"),
        ("é" * 513 + ".jpg", "bytes long"),
        ("a" * 897 + ".jpg", "901 bytes long; at most 900"),
        ("a\\b.jpg", "backslash"),
        ("./x.jpg", "'.' segment"),
        ("a/./b.jpg", "'.' segment"),
        ("s3://bucket/x.jpg", "URI scheme"),
        ("a\ud800b.jpg", "lone surrogate"),
    ],
)
def test_unsafe_key_fails_with_its_reason(key: str, reason: str) -> None:
    verdict = check_key(key)
    assert verdict is not None
    assert verdict.outcome == "failed"
    assert reason in verdict.reason


@pytest.mark.parametrize(
    ("key", "size", "reason"),
    [
        ("folder/", 0, "folder placeholder"),
        ("empty.jpg", 0, "zero-byte"),
        ("notes.txt", 10, "unsupported file type ('.txt')"),
        ("README", 10, "no extension"),
    ],
)
def test_not_an_image_is_skipped(key: str, size: int, reason: str) -> None:
    verdict = check_key(key, size)
    assert verdict is not None
    assert verdict.outcome == "skipped"
    assert reason in verdict.reason


@pytest.mark.parametrize(
    "key",
    ["a.jpg", "A.JPEG", "dir/b.png", "x.tif", "x.TIFF", "x.gif", "x.webp", "café.jpg", "a..b.jpg"],
)
def test_supported_safe_keys_pass(key: str) -> None:
    assert check_key(key, 10) is None


def test_key_of_exactly_900_bytes_passes() -> None:
    key = "a" * 896 + ".jpg"
    assert check_key(key) is None


def test_strip_path_collisions_name_both_keys() -> None:
    reasons = strip_path_collisions(["a/x.jpg", "b/x.jpg", "c/y.jpg"])
    assert set(reasons) == {"a/x.jpg", "b/x.jpg"}
    assert "'b/x.jpg'" in reasons["a/x.jpg"]


def test_same_key_twice_is_not_a_collision() -> None:
    assert strip_path_collisions(["a/x.jpg", "a/x.jpg"]) == {}
