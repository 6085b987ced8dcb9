"""Deep zoom through the whole pipeline (issue #11): with the stack's defaults (tiles on, Image API
3, 512-pixel tiles) every processed image is published with the info.json, tiles and manifest of
docs/contracts.md ("Deep zoom"), under the stack's `PublicBaseUrl` (here the CloudFront stand-in),
and the stand-in serves them. Expectations come from the contract (iiif_expectations.py), not
from the tool's code."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import pyvips

from local_aws.deploy import deploy_synthesized
from local_aws.emulator import LocalAws
from local_aws.sample_images import make_large_image

from .conftest import Deployed
from .iiif_expectations import level0_keys

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")

KEY = "big/large one.jpg"
SIZE = (2400, 1600)
IMAGE_TYPE = 'application/ld+json;profile="http://iiif.io/api/image/3/context.json"'
MANIFEST_TYPE = 'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"'
IMMUTABLE = "public, max-age=31536000, immutable"
A_DAY = "public, max-age=86400"


@pytest.fixture(scope="module")
def processed(
    emulator: LocalAws, assembly: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    """One deployment and one processed image for the whole module (each test only reads)."""
    emulator.reset()
    deployed = Deployed(env=emulator, stack=deploy_synthesized(emulator.aws, assembly))
    image = make_large_image(tmp_path_factory.mktemp("large") / "large.jpg", *SIZE)
    deployed.upload(KEY, image.read_bytes())
    (run,) = deployed.wait_for_tasks()
    assert run.exit_code == 0, run.output
    yield deployed


def _head(deployed: Deployed, key: str) -> dict[str, Any]:
    return deployed.client("s3").head_object(Bucket=deployed.derivatives, Key=key)


def _json(deployed: Deployed, key: str) -> dict[str, Any]:
    return json.loads(deployed.read_derivative(key))


def _base(deployed: Deployed) -> str:
    return f"{deployed.stack['PublicBaseUrl']}/{quote(KEY)}"


def test_the_public_base_url_is_the_cloudfront_stand_in(processed: Deployed) -> None:
    distribution = processed.env.distribution
    assert distribution is not None
    assert processed.stack["PublicBaseUrl"] == distribution.url


def test_info_json_names_the_image_under_the_public_base_url(processed: Deployed) -> None:
    info = _json(processed, f"{KEY}/info.json")
    assert (info["id"], info["type"], info["profile"], info["width"], info["height"]) == (
        _base(processed),
        "ImageService3",
        "level0",
        *SIZE,
    )


def test_info_json_announces_512_pixel_tiles(processed: Deployed) -> None:
    (tiles,) = _json(processed, f"{KEY}/info.json")["tiles"]
    assert tiles["width"] == 512 and tiles.get("height", 512) == 512


def test_every_announced_tile_and_size_is_published_at_its_size(processed: Deployed) -> None:
    expected = level0_keys(KEY, _json(processed, f"{KEY}/info.json"))
    keys = processed.derivative_keys()
    wrong = {}
    for key, size in expected.items():
        if key not in keys:
            wrong[key] = "missing"
            continue
        image = pyvips.Image.new_from_buffer(processed.read_derivative(key), "")
        if (image.width, image.height) != size:
            wrong[key] = f"{image.width}x{image.height}, announced {size[0]}x{size[1]}"
    assert (wrong, len(expected) > 20) == ({}, True)


def test_objects_carry_the_contracts_types_and_cache_control(processed: Deployed) -> None:
    tile = next(iter(level0_keys(KEY, _json(processed, f"{KEY}/info.json"))))
    written = {
        name: (head["ContentType"], head.get("CacheControl"))
        for name, head in (
            ("tile", _head(processed, tile)),
            ("info", _head(processed, f"{KEY}/info.json")),
            ("manifest", _head(processed, f"{KEY}/manifest.json")),
        )
    }
    assert written == {
        "tile": ("image/jpeg", IMMUTABLE),
        "info": (IMAGE_TYPE, A_DAY),
        "manifest": (MANIFEST_TYPE, A_DAY),
    }


def test_the_manifest_paints_the_image_service_on_one_canvas(processed: Deployed) -> None:
    manifest = _json(processed, f"{KEY}/manifest.json")
    (canvas,) = manifest["items"]
    body = canvas["items"][0]["items"][0]["body"]
    (service,) = body["service"]
    assert (manifest["id"], (canvas["width"], canvas["height"])) == (
        f"{_base(processed)}/manifest.json",
        SIZE,
    )
    assert (service["id"], service["type"]) == (_base(processed), "ImageService3")
    assert "large one.jpg" in json.dumps(manifest["label"])


def test_the_stand_in_serves_what_the_task_published(processed: Deployed) -> None:
    with urllib.request.urlopen(f"{_base(processed)}/info.json", timeout=10) as response:
        served = (response.status, response.headers["Content-Type"], json.loads(response.read()))
    assert served == (200, IMAGE_TYPE, _json(processed, f"{KEY}/info.json"))
