"""What `make demo` leaves for the deep-zoom viewer (issue #11): the gallery's counts and
demo-output/viewer.json."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from local_aws.gallery import write_gallery
from local_aws.viewer import Site


def _jpeg(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pyvips.Image.black(8, 6).jpegsave(str(path))


def test_the_gallery_counts_tiles_apart_from_derivatives_and_reports(tmp_path: Path) -> None:
    derivatives = tmp_path / "derivatives"
    _jpeg(derivatives / "a.jpg" / "full" / "!320,240" / "0" / "color.jpg")
    _jpeg(derivatives / "a.jpg" / "0,0,512,512" / "512,512" / "0" / "default.jpg")
    _jpeg(derivatives / "a.jpg" / "full" / "max" / "0" / "default.jpg")
    for name in ("info.json", "manifest.json", "process.json"):
        (derivatives / "a.jpg" / name).write_text("{}")

    page, derivative_count, reports, tiles = write_gallery(
        derivatives, ["a.jpg"], tmp_path / "index.html"
    )

    assert (derivative_count, reports, tiles) == (1, 1, 2)
    assert "2 deep-zoom tiles" in page.read_text()


def test_the_viewer_site_is_saved_and_read_back(tmp_path: Path) -> None:
    site = Site(
        public_base_url="http://localhost:8182",
        images=("a.jpg", "b/c d.jpg"),
        derivatives=tmp_path / "derivatives",
    )

    assert Site.load(site.save(tmp_path / "viewer.json")) == site


def test_the_viewer_without_a_demo_says_to_run_it(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="run `make demo` first"):
        Site.load(tmp_path / "viewer.json")
