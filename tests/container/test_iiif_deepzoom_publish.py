"""Publishing an image with deep zoom on (issue #11): headers on S3 (the installed command against
moto's server, as the task runs it), the order (derivatives and tiles, then info.json and
manifest.json, the report last), bounded concurrency, and nothing partial after a failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from iiif_process.config import Config, DeepZoom, StoreSpec
from iiif_process.errors import StoreError
from iiif_process.params import parse_instructions
from iiif_process.process import ReportOptions, process_uri
from iiif_process.publish import DEFAULT_CONCURRENCY, Item, publish
from iiif_process.stores import MemoryStore, S3Store
from moto import mock_aws
from moto.server import ThreadedMotoServer

from . import iiif_images as gen

TOOL = str(Path(sys.executable).parent / "iiif-process")
REGION = "us-east-1"
BASE = "https://d111111abcdef8.cloudfront.net"
LONG = "public, max-age=31536000, immutable"
DAY = "public, max-age=86400"
IMAGE_3 = 'application/ld+json;profile="http://iiif.io/api/image/3/context.json"'
IMAGE_2 = 'application/ld+json;profile="http://iiif.io/api/image/2/context.json"'
PRESENTATION = 'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"'
INSTRUCTIONS = {"b": {"size": "!200,200", "format": "jpg"}, "g": {"format": "png"}}


# --- the command against moto's S3 server -------------------------------------------------------


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(endpoint: str) -> Any:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for bucket in ("dz-src", "dz-dst"):
        if bucket in [b["Name"] for b in client.list_buckets()["Buckets"]]:
            for obj in client.list_objects_v2(Bucket=bucket).get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
        else:
            client.create_bucket(Bucket=bucket)
    return client


def _run(tmp_path: Path, endpoint: str, *uris: str, api: str = "3") -> subprocess.CompletedProcess:
    """The container's command, its buckets and deep zoom settings from the environment as the
    task definition sets them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IIIF_"))}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        IIIF_CONFIG_IMAGES_SOURCE_URI=f"s3blob://dz-src?region={REGION}",
        IIIF_CONFIG_DERIVATIVES_CACHE_URI=f"s3blob://dz-dst?region={REGION}",
        IIIF_PROCESS_TILES="true",
        IIIF_PROCESS_IIIF_API_VERSION=api,
        IIIF_PROCESS_TILE_SIZE="512",
        IIIF_PROCESS_PUBLIC_BASE_URL=BASE,
    )
    (tmp_path / "instructions.json").write_text(json.dumps(INSTRUCTIONS))
    (tmp_path / "config.json").write_text(
        json.dumps(
            {"images": {"source": {"uri": "mem://"}}, "derivatives": {"cache": {"uri": "mem://"}}}
        )
    )
    command = [TOOL, "-config", str(tmp_path / "config.json")]
    command += ["-instructions", str(tmp_path / "instructions.json"), "-report"]
    for uri in uris:
        command += ["-uri", uri]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, check=False, timeout=120
    )


@pytest.fixture
def published(tmp_path: Path, endpoint: str, s3: Any) -> dict[str, dict[str, Any]]:
    """The headers of every object the command wrote for one 1300x700 JPEG, by key."""
    s3.put_object(Bucket="dz-src", Key="dir/a b.jpg", Body=gen.jpeg(gen.gradient(1300, 700)))
    done = _run(tmp_path, endpoint, "dir/a b.jpg")
    assert done.returncode == 0, done.stderr
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="dz-dst")["Contents"]]
    return {key: s3.head_object(Bucket="dz-dst", Key=key) for key in keys}


def test_s3_holds_tiles_info_manifest_derivatives_and_report(
    published: dict[str, dict[str, Any]],
) -> None:
    keys = set(published)
    assert {
        "dir/a b.jpg/info.json",
        "dir/a b.jpg/manifest.json",
        "dir/a b.jpg/process.json",
        "dir/a b.jpg/full/max/0/default.jpg",
        "dir/a b.jpg/1024,0,276,512/276,512/0/default.jpg",
        "dir/a b.jpg/full/!200,200/0/color.jpg",
        "dir/a b.jpg/full/full/0/color.png",
    } <= keys
    # 1300x700 at 512: 3x2 tiles at 1/1, 2x1 at 1/2, 1 at 1/4 (325x175, also the one size),
    # the full image; 2 derivatives; info.json, manifest.json, the report.
    assert len(keys) == 6 + 2 + 1 + 1 + 2 + 3


def test_s3_tiles_and_derivatives_are_jpeg_cached_for_a_year(
    published: dict[str, dict[str, Any]],
) -> None:
    tile = published["dir/a b.jpg/1024,0,276,512/276,512/0/default.jpg"]
    derivative = published["dir/a b.jpg/full/!200,200/0/color.jpg"]
    for head in (tile, derivative):
        assert (head["ContentType"], head["CacheControl"]) == ("image/jpeg", LONG)


def test_s3_every_image_object_has_the_long_cache_control(
    published: dict[str, dict[str, Any]],
) -> None:
    images = {k: h for k, h in published.items() if not k.endswith(".json")}
    assert len(images) > 10
    assert {h["CacheControl"] for h in images.values()} == {LONG}
    assert published["dir/a b.jpg/full/full/0/color.png"]["ContentType"] == "image/png"


def test_s3_info_json_has_the_image_api_profile_and_a_day(
    published: dict[str, dict[str, Any]],
) -> None:
    head = published["dir/a b.jpg/info.json"]
    assert (head["ContentType"], head["CacheControl"]) == (IMAGE_3, DAY)


def test_s3_manifest_has_the_presentation_profile_and_a_day(
    published: dict[str, dict[str, Any]],
) -> None:
    head = published["dir/a b.jpg/manifest.json"]
    assert (head["ContentType"], head["CacheControl"]) == (PRESENTATION, DAY)


def test_s3_report_is_json_without_cache_control(published: dict[str, dict[str, Any]]) -> None:
    head = published["dir/a b.jpg/process.json"]
    assert head["ContentType"] == "application/json"
    assert "CacheControl" not in head


def test_s3_image_api_2_info_json_content_type(tmp_path: Path, endpoint: str, s3: Any) -> None:
    s3.put_object(Bucket="dz-src", Key="a.jpg", Body=gen.jpeg(gen.gradient(700, 600)))
    assert _run(tmp_path, endpoint, "a.jpg", api="2").returncode == 0
    head = s3.head_object(Bucket="dz-dst", Key="a.jpg/info.json")
    assert head["ContentType"] == IMAGE_2
    info = json.loads(s3.get_object(Bucket="dz-dst", Key="a.jpg/info.json")["Body"].read())
    assert info["@id"] == f"{BASE}/a.jpg"


# --- order, concurrency, nothing partial (in-process, real stores) ------------------------------


class RecordingStore(MemoryStore):
    """A memory store that records when each write starts and ends, how many are under way at
    once, and fails the writes ``fail`` picks (after a delay, as a slow PUT would)."""

    def __init__(self, delay: float = 0.0, fail: Callable[[str], bool] = lambda key: False):
        super().__init__("recording")
        self.delay, self.fail = delay, fail
        self.events: list[tuple[str, str]] = []
        self.active = self.peak = 0
        self.guard = threading.Lock()

    def write(
        self, key: str, data: bytes, content_type: str, cache_control: str | None = None
    ) -> None:
        with self.guard:
            self.events.append(("start", key))
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(self.delay)
            if self.fail(key):
                raise StoreError(f"cannot write {key}: injected failure")
            super().write(key, data, content_type, cache_control)
        finally:
            with self.guard:
                self.active -= 1
                self.events.append(("end", key))

    def started(self, key: str) -> int:
        return self.events.index(("start", key))

    def ended(self, key: str) -> int:
        return self.events.index(("end", key))


def _process(
    out: MemoryStore, concurrency: int = 0, tiles: bool = True, size=(1300, 700), tile=512
) -> None:
    source = MemoryStore("dz-publish-src")
    source.write("a.jpg", gen.jpeg(gen.gradient(*size)), "image/jpeg")
    config = Config(
        source=StoreSpec("memory"),
        derivatives=StoreSpec("memory"),
        deep_zoom=DeepZoom(tiles=tiles, tile_size=tile, public_base_url=BASE),
        publish_concurrency=concurrency,
    )
    process_uri(
        "a.jpg",
        config,
        parse_instructions(INSTRUCTIONS),
        source,
        out,
        ReportOptions(enabled=True, name_template="process.json"),
    )


DOCUMENTS = ("a.jpg/info.json", "a.jpg/manifest.json")


def test_documents_start_after_every_tile_and_derivative_has_ended() -> None:
    store = RecordingStore(delay=0.005)
    _process(store, concurrency=8)
    images = [k for k in store.objects if not k.endswith(".json")]
    assert len(images) > 10
    last_image = max(store.ended(k) for k in images)
    assert min(store.started(k) for k in DOCUMENTS) > last_image


def test_report_starts_after_info_json_and_manifest_have_ended() -> None:
    store = RecordingStore(delay=0.005)
    _process(store, concurrency=8)
    assert store.started("a.jpg/process.json") > max(store.ended(k) for k in DOCUMENTS)
    assert store.events[-1] == ("end", "a.jpg/process.json")


def test_writes_are_concurrent_up_to_the_setting() -> None:
    store = RecordingStore(delay=0.02)
    _process(store, concurrency=5)
    assert store.peak == 5


def test_with_tiles_the_default_concurrency_is_16() -> None:
    store = RecordingStore(delay=0.02)
    _process(store, size=(2000, 1500), tile=256)  # about 60 objects
    assert store.peak == DEFAULT_CONCURRENCY == 16


def test_without_tiles_writes_are_one_at_a_time_in_order() -> None:
    store = RecordingStore(delay=0.005)
    _process(store, tiles=False)
    starts = [key for event, key in store.events if event == "start"]
    assert store.peak == 1
    assert starts == [
        "a.jpg/full/!200,200/0/color.jpg",
        "a.jpg/full/full/0/color.png",
        "a.jpg/process.json",
    ]


def _fails_at(suffix: str) -> Callable[[str], bool]:
    return lambda key: key.endswith(suffix)


@pytest.mark.parametrize(
    "failing",
    [
        "/512,0,512,512/512,512/0/default.jpg",  # a tile
        "/full/!200,200/0/color.jpg",  # a derivative
        "/info.json",
        "/manifest.json",
        "/process.json",  # the report, last
    ],
)
def test_a_failed_write_leaves_nothing_published(failing: str) -> None:
    store = RecordingStore(delay=0.002, fail=_fails_at(failing))
    with pytest.raises(StoreError, match="injected failure"):
        _process(store, concurrency=8)
    assert store.objects == {}


def test_a_failed_tile_stops_before_the_documents() -> None:
    store = RecordingStore(delay=0.002, fail=_fails_at("/0,0,512,512/512,512/0/default.jpg"))
    with pytest.raises(StoreError):
        _process(store, concurrency=4)
    assert not [key for _, key in store.events if key.endswith(".json")]


def test_a_failed_rerun_keeps_the_earlier_complete_set() -> None:
    store = RecordingStore()
    _process(store, concurrency=8)
    earlier = dict(store.objects)
    store.fail = _fails_at("/manifest.json")
    with pytest.raises(StoreError):
        _process(store, concurrency=8, tile=256)  # a new tile size: new tile paths
    assert store.objects == earlier


@mock_aws
def test_a_failed_write_on_s3_leaves_nothing_in_the_bucket() -> None:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket="dst")

    class Failing(S3Store):
        def write(
            self, key: str, data: bytes, content_type: str, cache_control: str | None = None
        ) -> None:
            if key.endswith("/info.json"):
                raise StoreError("cannot write info.json: injected failure")
            super().write(key, data, content_type, cache_control)

    source = MemoryStore("dz-s3-src")
    source.write("a.jpg", gen.jpeg(gen.gradient(1300, 700)), "image/jpeg")
    config = Config(
        source=StoreSpec("memory"),
        derivatives=StoreSpec("memory"),
        deep_zoom=DeepZoom(tiles=True, public_base_url=BASE),
    )
    with pytest.raises(StoreError, match="injected failure"):
        process_uri(
            "a.jpg",
            config,
            parse_instructions(INSTRUCTIONS),
            source,
            Failing("dst", "p/", client=client),
            ReportOptions(enabled=True, name_template="process.json"),
        )
    assert client.list_objects_v2(Bucket="dst").get("KeyCount") == 0


# --- publish() itself -----------------------------------------------------------------------------


def test_publish_runs_phases_in_order_with_one_writer_each() -> None:
    store = RecordingStore()
    phases = [[Item(store, "k/a", b"1", "x/y")], [Item(store, "k/b", b"2", "x/y", "c")]]
    publish("k", phases, concurrency=16)
    assert store.events == [("start", "k/a"), ("end", "k/a"), ("start", "k/b"), ("end", "k/b")]
    assert store.headers == {"k/a": ("x/y", None), "k/b": ("x/y", "c")}


class OldStore(MemoryStore):
    """A store written before Store.write took a Cache-Control."""

    def write(self, key: str, data: bytes, content_type: str) -> None:  # type: ignore[override]
        super().write(key, data, content_type)


def test_publish_writes_to_a_store_without_cache_control() -> None:
    store = OldStore()
    publish("k", [[Item(store, "k/a", b"1", "image/jpeg", LONG)]], concurrency=4)
    assert store.headers == {"k/a": ("image/jpeg", None)}
