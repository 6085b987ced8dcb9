"""iiif-tile-seed as users run it: flags, the IIIF validator on what it writes, safety (unsafe
identifiers, bombs, nothing partial published, info.json last), Content-Type and Cache-Control,
bounded concurrent writes."""

from __future__ import annotations

import functools
import http.server
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import pyvips
from iiif_process import tiles
from iiif_process.config import parse_config
from iiif_process.errors import StoreError
from iiif_process.stores import MemoryStore, S3Store
from iiif_process.tile_seed_cli import main, run
from iiif_validator.validator import ValidationInfo
from moto import mock_aws

from . import iiif_images as gen

VALIDATOR = str(Path(sys.executable).parent / "iiif-validate.py")
TOOL = str(Path(sys.executable).parent / "iiif-tile-seed")
V3_TYPE = 'application/ld+json;profile="http://iiif.io/api/image/3/context.json"'
V2_TYPE = 'application/ld+json;profile="http://iiif.io/api/image/2/context.json"'


class Dirs:
    """A source folder and a tiles folder, and the command run on them in-process."""

    def __init__(self, root: Path) -> None:
        self.source, self.out = root / "src", root / "out"
        self.source.mkdir()
        self.out.mkdir()

    def put(self, key: str, data: bytes) -> str:
        path = self.source / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return key

    def argv(self, *args: str) -> list[str]:
        return [
            "-config-images-source-uri",
            self.source.as_uri(),
            "-config-derivatives-cache-uri",
            self.out.as_uri(),
            *args,
        ]

    def run(self, *args: str) -> tuple[int, dict[str, Any]]:
        return run(self.argv(*args), {})

    def files(self) -> set[str]:
        return {str(p.relative_to(self.out)) for p in self.out.rglob("*") if p.is_file()}


@pytest.fixture
def dirs(tmp_path: Path) -> Dirs:
    return Dirs(tmp_path)


# --- the IIIF Image API validator -------------------------------------------------------------


def validator_image() -> pyvips.Image:
    """The validator's test image, made from its own table: 10x10 squares of 100 pixels, the
    square at column x, row y of colour colorInfo[x][y]."""
    colours = ValidationInfo().colorInfo
    rows = []
    for y in range(10):
        row = [
            (pyvips.Image.black(100, 100, bands=3) + list(colours[x][y])).cast("uchar")
            for x in range(10)
        ]
        rows.append(pyvips.Image.arrayjoin(row, across=10))
    return pyvips.Image.arrayjoin(rows, across=1).copy(interpretation="srgb")


class _Handler(http.server.SimpleHTTPRequestHandler):
    def guess_type(self, path: Any) -> str:
        # What the stack serves: info.json with its Image API profile; tiles as JPEG.
        if str(path).endswith("info.json"):
            return self.server.info_type  # type: ignore[attr-defined]
        return super().guess_type(path)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str, Any]]:
    """A folder served over HTTP on a free port (a static host, as CloudFront will be)."""
    root = tmp_path / "site"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"127.0.0.1:{server.server_address[1]}", server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("version", "api"), [("2.0", "2"), ("3.0", "3")])
def test_iiif_validator_level0_passes(
    tmp_path: Path, http_root: tuple[Path, str, Any], version: str, api: str
) -> None:
    root, host, server = http_root
    server.info_type = V2_TYPE if api == "2" else V3_TYPE
    source = tmp_path / "source"
    source.mkdir()
    validator_image().pngsave(str(source / "validator.png"))
    status, result = run(
        [
            "-config-images-source-uri",
            source.as_uri(),
            "-config-derivatives-cache-uri",
            root.as_uri(),
            "-endpoint",
            f"http://{host}",
            "-api-version",
            api,
            "validator.png,squares",
        ],
        {},
    )
    assert status == 0, result
    done = subprocess.run(
        [
            sys.executable,
            VALIDATOR,
            "-s",
            host,
            "-i",
            "squares",
            "--version",
            version,
            "--level",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    tests_run = int(re.search(r"Done \((\d+) tests, 0 failures\)", done.stderr)[1])
    assert tests_run >= 4  # info_json, id_basic, id_squares, format_jpg (+ size_nofull in 3.0)


# --- the command line ---------------------------------------------------------------------------


def test_installed_command_prints_help() -> None:
    done = subprocess.run([TOOL, "-h"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for flag in ("-api-version", "-tile-size", "-scale-factors", "-refresh", "-mode", "-endpoint"):
        assert flag in done.stdout


def test_bad_api_version_is_a_usage_error() -> None:
    done = subprocess.run([TOOL, "-api-version", "4", "x.jpg"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "-api-version must be 2 or 3" in done.stderr


def test_unknown_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-tiles", "9", "x.jpg"]) == 2
    assert "flag provided but not defined: -tiles" in capsys.readouterr().err


def test_default_is_image_api_2_with_512_pixel_tiles(dirs: Dirs) -> None:
    dirs.put("a.jpg", gen.jpeg(gen.gradient(1200, 700)))
    assert dirs.run("a.jpg")[0] == 0
    info = json.loads((dirs.out / "a.jpg/info.json").read_text())
    assert info["@context"] == "http://iiif.io/api/image/2/context.json"
    assert info["@id"] == "http://localhost:8080/a.jpg"
    assert info["tiles"][0]["width"] == 512


def test_source_comma_target_writes_under_target(dirs: Dirs) -> None:
    dirs.put("in/a.jpg", gen.jpeg())
    status, result = dirs.run(
        "-api-version", "3", "-endpoint", "https://x.org/iiif/", "in/a.jpg,out/b"
    )
    assert status == 0
    assert result["in/a.jpg"]["id"] == "https://x.org/iiif/out/b"
    assert (dirs.out / "out/b/info.json").exists()


def test_no_extension_drops_the_targets_extension(dirs: Dirs) -> None:
    dirs.put("photo.jpg", gen.jpeg())
    assert dirs.run("-no-extension", "photo.jpg")[0] == 0
    assert (dirs.out / "photo/info.json").exists()


def test_csv_mode_reads_source_and_target_columns(dirs: Dirs, tmp_path: Path) -> None:
    dirs.put("a,1.jpg", gen.jpeg())
    listing = tmp_path / "list.csv"
    listing.write_text('source_filename,target_filename\n"a,1.jpg",first\n')
    status, result = dirs.run("-mode", "csv", str(listing))
    assert status == 0, result
    assert (dirs.out / "first/info.json").exists()


def test_explicit_scale_factors_are_announced(dirs: Dirs) -> None:
    dirs.put("a.jpg", gen.jpeg(gen.gradient(1200, 700)))
    assert dirs.run("-scale-factors", "4,2,1", "-tile-size", "256", "a.jpg")[0] == 0
    info = json.loads((dirs.out / "a.jpg/info.json").read_text())
    assert info["tiles"] == [{"width": 256, "height": 256, "scaleFactors": [1, 2, 4]}]


def test_seeded_image_is_skipped(dirs: Dirs) -> None:
    dirs.put("a.jpg", gen.jpeg())
    dirs.run("a.jpg")
    (dirs.out / "a.jpg/full/full/0/default.jpg").unlink()
    status, result = dirs.run("a.jpg")
    assert status == 0 and "skipped" in result["a.jpg"]
    assert not (dirs.out / "a.jpg/full/full/0/default.jpg").exists()


def test_refresh_seeds_a_seeded_image_again(dirs: Dirs) -> None:
    dirs.put("a.jpg", gen.jpeg())
    dirs.run("a.jpg")
    (dirs.out / "a.jpg/full/full/0/default.jpg").unlink()
    assert dirs.run("-refresh", "a.jpg")[0] == 0
    assert (dirs.out / "a.jpg/full/full/0/default.jpg").exists()


def test_exif_orientation_is_applied(dirs: Dirs) -> None:
    dirs.put("turned.jpg", gen.with_orientation(gen.gradient(120, 80), 6))
    dirs.run("turned.jpg")
    info = json.loads((dirs.out / "turned.jpg/info.json").read_text())
    assert (info["width"], info["height"]) == (80, 120)
    full = pyvips.Image.new_from_file(str(dirs.out / "turned.jpg/full/full/0/default.jpg"))
    assert (full.width, full.height) == (80, 120)


def test_no_object_carries_exif(dirs: Dirs) -> None:
    # An upright JPEG with EXIF: the full image is its source data with the metadata removed.
    tagged = gen.gradient(700, 600).copy()
    tagged.set_type(pyvips.GValue.gint_type, "orientation", 1)
    data = tagged.jpegsave_buffer(Q=90, keep="exif")
    assert b"Exif" in data
    dirs.put("e.jpg", data)
    dirs.run("e.jpg")
    images = [p for p in (dirs.out / "e.jpg").rglob("*.jpg")]
    assert len(images) >= 4
    assert not [p for p in images if b"Exif" in p.read_bytes()]


def test_full_image_of_an_upright_srgb_jpeg_is_its_source_pixels(dirs: Dirs) -> None:
    dirs.put("s.jpg", gen.jpeg(gen.gradient(700, 600), Q=95))
    dirs.run("s.jpg")
    full = pyvips.Image.new_from_file(str(dirs.out / "s.jpg/full/full/0/default.jpg"))
    source = pyvips.Image.new_from_file(str(dirs.source / "s.jpg"))
    assert (full - source).abs().max() == 0


# --- safety ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("identifier", ["../x.jpg", "a.jpg,../escape", "/etc/passwd", "s3://b/k"])
def test_unsafe_identifier_is_refused_and_nothing_written(dirs: Dirs, identifier: str) -> None:
    dirs.put("a.jpg", gen.jpeg())
    status, result = dirs.run(identifier)
    assert status == 1
    (entry,) = result.values()
    assert "URI" in entry["error"]
    assert dirs.files() == set()


def test_bomb_is_refused_from_its_header(dirs: Dirs) -> None:
    dirs.put("bomb.png", gen.png_bomb())
    status, result = dirs.run("bomb.png")
    assert status == 1
    assert "over the limit" in result["bomb.png"]["error"]
    assert dirs.files() == set()


def test_corrupt_image_fails_naming_it(dirs: Dirs) -> None:
    dirs.put("bad.jpg", gen.jpeg()[:400])
    status, result = dirs.run("bad.jpg")
    assert status == 1 and "bad.jpg" in result
    assert result["bad.jpg"]["error"]
    assert dirs.files() == set()


class RecordingStore(MemoryStore):
    """A memory store that records each write (order, Content-Type, concurrency) and can fail
    its Nth write."""

    def __init__(self, fail_at: int = 0, delay: float = 0.0) -> None:
        super().__init__("recording")
        self.fail_at, self.delay = fail_at, delay
        self.order: list[tuple[str, str]] = []
        self.active = self.peak = 0
        self.guard = threading.Lock()

    def write(self, key: str, data: bytes, content_type: str) -> None:
        with self.guard:
            self.active += 1
            self.peak = max(self.peak, self.active)
            count = len(self.order) + 1
            self.order.append((key, content_type))
        try:
            time.sleep(self.delay)
            if count == self.fail_at:
                raise StoreError(f"injected failure at write {count}")
            super().write(key, data, content_type)
        finally:
            with self.guard:
                self.active -= 1


def _seed(store: MemoryStore, workers: int = 4, version: int = 3, size=(2000, 1500)) -> dict:
    source = MemoryStore("src")
    source.write("big.jpg", gen.jpeg(gen.gradient(*size)), "image/jpeg")
    config = parse_config(
        {"images": {"source": {"uri": "mem://"}}, "derivatives": {"cache": {"uri": "mem://"}}}
    )
    return tiles.seed_image(
        "big.jpg",
        "big",
        source,
        store,
        config,
        tiles.TileOptions(api_version=version),
        "https://x.org",
        workers,
    )


def test_info_json_is_written_last() -> None:
    store = RecordingStore()
    _seed(store)
    assert store.order[-1][0] == "big/info.json"
    assert len(store.order) > 10


def test_failure_mid_write_leaves_nothing() -> None:
    store = RecordingStore(fail_at=7)
    with pytest.raises(StoreError, match="injected failure at write 7"):
        _seed(store)
    assert store.objects == {}


def test_failure_keeps_what_an_earlier_complete_run_wrote() -> None:
    store = RecordingStore()
    _seed(store)
    before = dict(store.objects)
    store.fail_at, store.order = 5, []
    with pytest.raises(StoreError):
        _seed(store)
    assert set(store.objects) == set(before)


@pytest.mark.parametrize(("version", "info_type"), [(2, V2_TYPE), (3, V3_TYPE)])
def test_every_object_has_its_content_type(version: int, info_type: str) -> None:
    store = RecordingStore()
    _seed(store, version=version)
    types = dict(store.order)
    assert types.pop("big/info.json") == info_type
    assert set(types.values()) == {"image/jpeg"}


def test_writes_of_one_image_are_concurrent_and_bounded() -> None:
    store = RecordingStore(delay=0.02)
    _seed(store, workers=3)
    assert store.peak == 3


def test_s3_objects_carry_content_type_and_long_cache_control() -> None:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="tiles")
        store = S3Store("tiles", "pfx/", "us-east-1", client)
        summary = _seed(store, size=(700, 600))  # type: ignore[arg-type]
        tile = client.head_object(Bucket="tiles", Key="pfx/big/512,0,188,512/188,512/0/default.jpg")
        info = client.head_object(Bucket="tiles", Key="pfx/big/info.json")
        assert summary["objects"] == len(client.list_objects_v2(Bucket="tiles")["Contents"])
    assert tile["ContentType"] == "image/jpeg"
    assert tile["CacheControl"] == "public, max-age=31536000, immutable"
    assert info["ContentType"] == V3_TYPE
    assert "max-age" in info["CacheControl"]
