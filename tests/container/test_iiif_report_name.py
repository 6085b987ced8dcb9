"""Report-name templates: ``{sha256_origin}`` expands to the URI's digest, others to nothing."""

from __future__ import annotations

import hashlib

from iiif_process.report import REPORT_TEMPLATE, report_name


def test_sha256_origin_expands_to_the_uris_hex_digest() -> None:
    digest = hashlib.sha256(b"dir/photo.jpg").hexdigest()
    assert report_name("dir/photo.jpg", REPORT_TEMPLATE) == f"process_{digest}.json"


def test_unknown_variables_expand_to_nothing() -> None:
    assert report_name("dir/photo.jpg", "r_{other}.json") == "r_.json"
