"""Which keys the ledger can hold: pinned at the 2048-byte limit and for lone surrogates."""

from __future__ import annotations

import pytest
from iiif_process_ecs.claims import storable_key


@pytest.mark.parametrize(
    ("uri", "storable"),
    [
        ("a" * 2048, True),
        ("a" * 2049, False),
        ("é" * 1024, True),  # 2048 bytes of UTF-8
        ("é" * 1024 + "a", False),
        ("", False),
        ("bad-\udc80.jpg", False),  # a lone surrogate: S3 may send one, DynamoDB cannot hold it
    ],
)
def test_a_key_is_storable_within_2048_bytes_of_valid_utf8(uri: str, storable: bool) -> None:
    assert storable_key(uri) is storable
