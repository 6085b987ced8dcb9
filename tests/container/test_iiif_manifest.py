"""The manifest's label and its image-service reference for Image API 2 and 3."""

from __future__ import annotations

from iiif_process import manifest, tiles


def test_label_is_the_keys_file_name() -> None:
    assert manifest.label("a/b/photo.jpg") == "photo.jpg"


def test_label_falls_back_to_the_key_when_it_has_no_file_name() -> None:
    assert manifest.label("a/b/") == "a/b/"


def test_api_2_manifest_references_an_image_service_2() -> None:
    plan = tiles.plan_tiles(1000, 700, tiles.TileOptions(api_version=2))
    doc = manifest.manifest_document("https://x.test/k", "k", plan)
    body = doc["items"][0]["items"][0]["items"][0]["body"]
    assert body["service"] == [
        {"@id": "https://x.test/k", "@type": "ImageService2", "profile": tiles.LEVEL0_V2}
    ]


def test_api_3_manifest_references_an_image_service_3() -> None:
    plan = tiles.plan_tiles(1000, 700, tiles.TileOptions(api_version=3))
    doc = manifest.manifest_document("https://x.test/k", "k", plan)
    body = doc["items"][0]["items"][0]["items"][0]["body"]
    assert body["service"] == [
        {"id": "https://x.test/k", "type": "ImageService3", "profile": "level0"}
    ]
