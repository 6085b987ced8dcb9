"""Deep zoom in a real browser (issue #11): images processed by the pipeline on the embedded AWS
(tiles on, the stack's default) open in OpenSeadragon and in Mirador, in headless Chromium.

The page (local_aws/viewer.py) and the images (the CloudFront stand-in, the stack's
`PublicBaseUrl`) are on two ports, so two origins: every `info.json` read and every tile drawn
(OpenSeadragon with `crossOriginPolicy: "Anonymous"`) needs the distribution's CORS headers.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from local_aws.deploy import deploy_synthesized
from local_aws.emulator import LocalAws
from local_aws.sample_images import make_large_image, sample_photos
from local_aws.viewer import Site, missing_packages, viewer_page

from .conftest import PROJECT_ROOT

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")

DRIVER = Path(__file__).with_name("viewer_browser.mjs")
PUPPETEER = PROJECT_ROOT / "node_modules" / "puppeteer-core"
#: A sample photo (one tile wide) and a larger image with a space in its key (several levels).
PHOTO_KEY = "coffee.jpg"
LARGE_KEY = "big/large one.jpg"
LARGE_SIZE = (2400, 1600)
# A Level 0 tile or size: {x,y,w,h|full}/{w,h|w,|max|full}/0/default.jpg (Image API 3 or 2).
_TILE = re.compile(r"/(?:(\d+),(\d+),(\d+),(\d+)|full)/(?:(\d+),(\d*)|max|full)/0/default\.jpg$")
# Mirador 4's bundled React 19 logs this deprecation itself on every page; nothing of ours.
_MIRADOR_OWN_NOTICE = "Accessing element.ref was removed in React 19"


def _needs_browser() -> str:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no chromium (.ci/run installs Debian's chromium with apt-get)")
    if shutil.which("node") is None or not PUPPETEER.is_dir() or missing_packages():
        pytest.skip("no node or node_modules (puppeteer-core, openseadragon, mirador): npm ci")
    return chromium


@pytest.fixture(scope="module")
def published(
    emulator: LocalAws, assembly: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """Two images uploaded, processed by the pipeline, their info.json published."""
    _needs_browser()
    emulator.reset()
    stack = deploy_synthesized(emulator.aws, assembly)
    large = make_large_image(tmp_path_factory.mktemp("large") / "large.jpg", *LARGE_SIZE)
    s3 = emulator.aws.client("s3")
    for key, path in ((PHOTO_KEY, sample_photos()[0].parent / PHOTO_KEY), (LARGE_KEY, large)):
        s3.put_object(Bucket=stack["SourceBucketName"], Key=key, Body=path.read_bytes())
    runs = emulator.wait_until_idle(timeout=300)
    assert [run.exit_code for run in runs] == [0] * len(runs) and runs, [r.output for r in runs]
    for key in (PHOTO_KEY, LARGE_KEY):  # the pipeline (not a test helper) wrote them
        s3.head_object(Bucket=stack["DerivativesBucketName"], Key=f"{key}/info.json")
    yield Site(public_base_url=stack["PublicBaseUrl"], images=(PHOTO_KEY, LARGE_KEY))


@pytest.fixture(scope="module")
def browsed(published: Site, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What headless Chromium saw on the deep-zoom page and on Mirador's."""
    chromium = _needs_browser()
    with viewer_page(published) as page_url:
        manifest = f"{published.image_url(LARGE_KEY)}/manifest.json"
        mirador_url = f"{page_url}mirador.html?manifest={quote(manifest, safe='')}"
        completed = subprocess.run(
            [
                "node",
                str(DRIVER),
                chromium,
                page_url,
                mirador_url,
                str(tmp_path_factory.mktemp("chromium-profile")),
            ],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=400,
            check=False,
        )
    assert completed.returncode == 0, completed.stderr[-3000:]
    seen = json.loads(completed.stdout)
    assert "error" not in seen, json.dumps(seen, indent=1)[:6000]
    seen["page_origin"] = urlsplit(page_url).netloc
    return seen


def _tiles(responses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in responses if _TILE.search(urlsplit(r["url"]).path)]


def _of_images(seen: dict[str, Any], site: Site, page: str) -> list[dict[str, Any]]:
    return [r for r in seen[page]["responses"] if r["url"].startswith(site.public_base_url + "/")]


def test_the_images_are_read_from_another_origin_with_cors(
    browsed: dict[str, Any], published: Site
) -> None:
    infos = [r for r in _of_images(browsed, published, "index") if r["url"].endswith("/info.json")]
    assert urlsplit(published.public_base_url).netloc != browsed["page_origin"]
    assert sorted((r["status"], r["cors"]) for r in infos) == [(200, "*"), (200, "*")]


def test_every_image_opens_and_is_drawn_in_openseadragon(browsed: dict[str, Any]) -> None:
    states = browsed["index"]["states"]
    assert [(s["key"], s["opened"], s["openFailed"], s["drawn"]) for s in states] == [
        (PHOTO_KEY, True, None, True),
        (LARGE_KEY, True, None, True),
    ]


def test_tiles_load_and_none_fail(browsed: dict[str, Any], published: Site) -> None:
    tiles = _tiles(_of_images(browsed, published, "index"))
    states = browsed["index"]["states"]
    assert len(tiles) > 0 and {r["status"] for r in tiles} == {200}
    assert {r["content_type"] for r in tiles} == {"image/jpeg"}
    assert [s["tilesFailed"] for s in states] == [[], []]
    assert all(s["tilesLoaded"] > 0 for s in states)


def test_no_request_fails_and_no_response_is_an_error(browsed: dict[str, Any]) -> None:
    for page in ("index", "mirador"):
        seen = browsed[page]
        errors = [(r["status"], r["url"]) for r in seen["responses"] if r["status"] >= 400]
        assert (seen["failed_requests"], errors) == ([], []), page


def test_zooming_all_the_way_in_loads_full_resolution_tiles(
    browsed: dict[str, Any], published: Site
) -> None:
    """A tile whose region is as large as its size is a scale-factor-1 tile; the large image's
    first view (the whole image) needs none of them."""
    index = browsed["index"]
    zoomed = index["states"][index["zoomed"]]
    full_resolution = []
    large = f"{published.image_url(LARGE_KEY)}/"
    for response in _tiles(_of_images(browsed, published, "index")):
        if not response["url"].startswith(large):
            continue
        match = _TILE.search(urlsplit(response["url"]).path)
        assert match is not None
        if match.group(1) is not None and match.group(3, 4) == match.group(5, 6):
            full_resolution.append(response["url"])
    assert zoomed["key"] == LARGE_KEY
    assert zoomed["tilesLoaded"] > index["before_zoom"][index["zoomed"]]
    assert len(full_resolution) > 0


def test_mirador_opens_the_manifest_and_draws_the_canvas(
    browsed: dict[str, Any], published: Site
) -> None:
    mirador = browsed["mirador"]
    manifests = [
        r for r in _of_images(browsed, published, "mirador") if r["url"].endswith("/manifest.json")
    ]
    tiles = _tiles(_of_images(browsed, published, "mirador"))
    assert [(r["status"], r["cors"]) for r in manifests] == [(200, "*")]
    assert mirador["view"]["canvas"]["width"] > 0 and mirador["view"]["canvas"]["height"] > 0
    assert len(tiles) > 0 and {r["status"] for r in tiles} == {200}


def test_mirador_titles_the_window_with_the_manifests_label(browsed: dict[str, Any]) -> None:
    assert "large one.jpg" in browsed["mirador"]["view"]["window_titles"]


def test_neither_page_raises_or_logs_an_error(browsed: dict[str, Any]) -> None:
    for page in ("index", "mirador"):
        seen = browsed[page]
        console = [m for m in seen["console_errors"] if _MIRADOR_OWN_NOTICE not in m]
        assert (seen["page_errors"], console) == ([], []), page
