"""Issue #8 item 2: huge source objects. Refused from their size before any read when over the
limit; otherwise streamed to a temporary file on the task's disk (removed in every case) and
decoded from it; images too big to hold decoded are streamed pass by pass."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import boto3
import pytest
import pyvips
from iiif_process import transform
from iiif_process.config import DEFAULT_MAX_SOURCE_BYTES, Config, StoreSpec, parse_config
from iiif_process.errors import ImageRejectedError
from iiif_process.params import parse_instructions
from iiif_process.process import ReportOptions, process_uri
from iiif_process.stores import DiskStore, MemoryStore, S3Store, copy_stream
from iiif_process.transform import Probe, SourceImage, probe
from moto import mock_aws

from . import iiif_images as gen
from .conftest import Workspace

DEFAULTS = {
    "o": {"size": "full", "format": "", "rotation": "-1"},
    "k": {"size": "!200,150", "format": "jpg"},
    "s": {"size": "full", "region": "-1,-1,64,64", "quality": "crisp", "format": "jpg"},
    "ds": {"size": "full", "quality": "dither", "region": "-1,-1,64,64", "format": "jpg"},
}


def _too_large(size: int, limit: int) -> str:
    return f"too large: {size} bytes > limit {limit} bytes"


def test_item2_default_source_limit_is_4_gib() -> None:
    config = parse_config(
        {"images": {"source": {"uri": "mem://"}}, "derivatives": {"cache": {}}}
        | {"derivatives": {"cache": {"uri": "mem://"}}}
    )
    assert config.max_source_bytes == DEFAULT_MAX_SOURCE_BYTES == 4294967296


def test_item2_source_over_the_flag_limit_is_refused_naming_size_and_limit(ws: Workspace) -> None:
    data = gen.jpeg()
    key = ws.put("big.jpg", data)
    status, results = ws.run([key], args=["-max-source-bytes", str(len(data) - 1)])
    assert status == 1
    assert results[key]["error"] == _too_large(len(data), len(data) - 1)
    assert ws.files() == set()


def test_item2_source_at_the_limit_is_processed(ws: Workspace) -> None:
    data = gen.jpeg()
    key = ws.put("big.jpg", data)
    status, _ = ws.run([key], args=["-max-source-bytes", str(len(data))])
    assert status == 0


def test_item2_source_limit_from_the_environment(ws: Workspace) -> None:
    data = gen.jpeg()
    key = ws.put("big.jpg", data)
    _, results = ws.run([key], env={"IIIF_PROCESS_MAX_SOURCE_BYTES": "100"})
    assert results[key]["error"] == _too_large(len(data), 100)


def test_item2_source_limit_from_the_config(ws: Workspace) -> None:
    data = gen.jpeg()
    key = ws.put("big.jpg", data)
    _, results = ws.run([key], config={"iiif_process": {"max_source_bytes": 200}})
    assert results[key]["error"] == _too_large(len(data), 200)


def test_item2_source_limit_zero_means_no_limit(ws: Workspace) -> None:
    key = ws.put("big.jpg", gen.jpeg())
    status, _ = ws.run(
        [key], config={"iiif_process": {"max_source_bytes": 1}}, args=["-max-source-bytes", "0"]
    )
    assert status == 0


@mock_aws
def test_item2_s3_object_over_the_limit_is_refused_before_its_body_is_read() -> None:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="src")
    client.put_object(Bucket="src", Key="big.tif", Body=b"x" * 5000)
    handle = io.BytesIO()
    with pytest.raises(ImageRejectedError) as raised:
        S3Store("src", client=client).download("big.tif", handle, 4999)
    assert str(raised.value) == _too_large(5000, 4999)
    assert handle.getvalue() == b""  # not one byte of the body was copied


class NoWholeReads(S3Store):
    """An S3 source that fails any attempt to read an object whole into memory."""

    def read(self, key: str) -> bytes:
        raise AssertionError(f"{key} read whole into memory")


def _config(**changes: Any) -> Config:
    return Config(source=StoreSpec("memory"), derivatives=StoreSpec("memory"), **changes)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR for the code under test: the task's scratch disk."""
    directory = tmp_path / "scratch"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


@mock_aws
@pytest.mark.parametrize("stream_above", [transform.STREAM_ABOVE, 0])  # held, then streamed
def test_item2_s3_source_is_streamed_to_a_nameless_temporary_file(
    private_tmp: Path, monkeypatch: pytest.MonkeyPatch, stream_above: int
) -> None:
    monkeypatch.setattr(transform, "STREAM_ABOVE", stream_above)
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="src")
    client.put_object(Bucket="src", Key="a.jpg", Body=gen.jpeg())
    seen: list[str] = []
    original = transform.probe

    def spy(path: str, size: int, max_pixels: int) -> Probe:
        # While it is decoded, the copy is a whole file on TMPDIR's disk that has no name there,
        # so even a killed worker leaves nothing behind.
        seen.append(path)
        with open(path, "rb") as handle:
            assert handle.read() == gen.jpeg()
        info = os.stat(path)
        assert (info.st_dev, info.st_nlink) == (os.stat(private_tmp).st_dev, 0)
        assert list(private_tmp.iterdir()) == []
        return original(path, size, max_pixels)

    derivatives = MemoryStore("item2-out")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("iiif_process.process.probe", spy)
        result = process_uri(
            "a.jpg",
            _config(),
            parse_instructions(DEFAULTS),
            NoWholeReads("src", client=client),
            derivatives,
            ReportOptions(),
        )
    assert result["dimensions"]["o"] == [120, 80]
    assert len(seen) == 1
    assert list(private_tmp.iterdir()) == []  # the temporary copy is gone


@pytest.mark.parametrize(
    ("data", "config"),
    [
        (b"not an image at all", {}),  # refused after the copy
        (gen.jpeg(), {"max_pixels": 10}),  # refused from the header
        (gen.jpeg(), {"max_source_bytes": 10}),  # refused from the size, before the copy
    ],
)
def test_item2_temporary_copy_is_removed_when_the_image_fails(
    private_tmp: Path, data: bytes, config: dict[str, int]
) -> None:
    source = MemoryStore("item2-src")
    source.write("a.jpg", data, "image/jpeg")
    open_files = len(os.listdir("/proc/self/fd"))
    with pytest.raises(ImageRejectedError):
        process_uri(
            "a.jpg",
            _config(**config),
            parse_instructions(DEFAULTS),
            source,
            MemoryStore("item2-out"),
            ReportOptions(),
        )
    assert list(private_tmp.iterdir()) == []
    assert len(os.listdir("/proc/self/fd")) == open_files  # the nameless copy is closed: freed


# Every kind of derivative, so that each operation is checked on a streamed image.
EVERY_KIND = {
    **DEFAULTS,
    "r90": {"size": "!100,100", "rotation": "90", "format": "png"},
    "r33": {"size": "!100,100", "rotation": "33", "format": "png"},
    "m": {"size": "!100,100", "rotation": "!180", "format": "png"},
    "px": {"region": "100,50,300,200", "size": "full", "rotation": "270", "format": "png"},
    "pct": {"region": "pct:10,10,50,50", "size": "50,", "format": "png"},
    "sq": {"region": "square", "size": "64,64", "quality": "gray", "format": "webp"},
    "dc": {"size": "!80,60", "quality": "dither", "format": "gif"},
    "t": {"size": "pct:10", "quality": "bitonal", "format": "tif"},
}


def _process_file(tmp_path: Path, data: bytes, name: str = "m.jpg") -> dict[str, bytes]:
    # In this process (a batch's worker process would not see the monkeypatched threshold).
    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir(parents=True, exist_ok=True)
    (source / name).write_bytes(data)
    result = process_uri(
        name,
        _config(),
        parse_instructions(EVERY_KIND),
        DiskStore(str(source)),
        DiskStore(str(out)),
        ReportOptions(),
    )
    return {label: (out / path).read_bytes() for label, path in result["uris"].items()}


SOURCES = {
    "m.jpg": lambda image: image.jpegsave_buffer(Q=95),
    "m.png": lambda image: image.pngsave_buffer(),
    "m.tif": lambda image: image.tiffsave_buffer(compression="none"),  # a master's layout
}
BINARY = {"dc", "ds", "t"}  # black-and-white outputs: a shifted threshold flips pixels


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_item2_a_streamed_image_gives_the_same_derivatives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    data = SOURCES[name](gen.gradient(900, 600))
    held = _process_file(tmp_path / "held", data, name)
    monkeypatch.setattr(transform, "STREAM_ABOVE", 0)  # every image counts as huge
    streamed = _process_file(tmp_path / "streamed", data, name)
    assert held.keys() == streamed.keys() == EVERY_KIND.keys()
    for label in held:
        a, b = (pyvips.Image.new_from_buffer(x[label], "") for x in (held, streamed))
        assert (a.width, a.height, a.bands) == (b.width, b.height, b.bands), label
        if label in BINARY:
            assert abs(a.avg() - b.avg()) < 8, label
        else:
            assert (a - b).abs().avg() < 3, label


def test_item2_a_streamed_image_is_never_decoded_whole_into_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.jpg"
    path.write_bytes(gen.jpeg(gen.gradient(900, 600)))
    monkeypatch.setattr(transform, "STREAM_ABOVE", 0)
    full_copies: list[tuple[int, int]] = []
    original = pyvips.Image.copy_memory

    def spy(image: pyvips.Image) -> pyvips.Image:
        full_copies.append((image.width, image.height))
        return original(image)

    monkeypatch.setattr(pyvips.Image, "copy_memory", spy)
    header = probe(str(path), path.stat().st_size, 0)
    assert header.streamed
    source = SourceImage(header)
    source.scaled(True, 90, 60, keep=True)
    assert (900, 600) not in full_copies


def test_item2_a_streamed_oriented_image_is_turned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = gen.with_orientation(gen.marked(600, 400), 6)
    held = _process_file(tmp_path / "held", data)
    monkeypatch.setattr(transform, "STREAM_ABOVE", 0)
    streamed = _process_file(tmp_path / "streamed", data)
    for label in ("k", "r90", "px"):
        a, b = (pyvips.Image.new_from_buffer(x[label], "") for x in (held, streamed))
        assert (a.width, a.height) == (b.width, b.height), label
        assert (a - b).abs().avg() < 3, label
    k = pyvips.Image.new_from_buffer(streamed["k"], "")
    assert k.height > k.width  # turned by the orientation


def test_item2_a_400_mp_master_is_streamed_within_a_2_gib_task(tmp_path: Path) -> None:
    # The header of a 20000 x 20000 RGB image (a few bytes on disk): streamed, and admitted with
    # far less than its 1.2 GB of pixels (the bench measures the real peak: make bench).
    path = tmp_path / "bomb.png"
    path.write_bytes(gen.png_bomb(20000, 20000))
    header = probe(str(path), path.stat().st_size, 0)
    assert header.decoded_bytes == 20000 * 20000 * 3
    assert header.streamed
    assert header.working_bytes < 512 << 20


def test_item2_a_100_mp_photo_keeps_the_faster_in_memory_path(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(gen.png_bomb(11648, 8736))
    assert not probe(str(path), path.stat().st_size, 0).streamed


@pytest.mark.parametrize(
    ("target", "shrink"), [((100, 75), 8), ((200, 150), 4), ((400, 300), 2), ((800, 600), 1)]
)
def test_item2_streamed_jpeg_shrinks_on_load_keeping_twice_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: tuple[int, int], shrink: int
) -> None:
    monkeypatch.setattr(transform, "STREAM_ABOVE", 0)
    path = tmp_path / "m.jpg"
    path.write_bytes(gen.jpeg(gen.gradient(1600, 1200)))
    source = SourceImage(probe(str(path), path.stat().st_size, 0))
    assert source._shrink_for(True, *target) == shrink


@mock_aws
def test_item2_s3_size_is_checked_from_the_response_before_the_body_is_touched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="src")
    client.put_object(Bucket="src", Key="big.tif", Body=b"x" * 5000)

    def no_body(*args: object) -> None:
        raise AssertionError("the body was read")

    monkeypatch.setattr("iiif_process.stores.copy_stream", no_body)
    with pytest.raises(ImageRejectedError, match="too large"):
        S3Store("src", client=client).download("big.tif", io.BytesIO(), 4999)


def test_item2_streamed_jpeg_is_decoded_shrunk_on_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transform, "STREAM_ABOVE", 0)
    opened: list[dict[str, object]] = []
    original = transform._open

    def spy(path: str, access: str, fail_on: str, **options: object) -> pyvips.Image:
        opened.append(options)
        return original(path, access, fail_on, **options)

    monkeypatch.setattr(transform, "_open", spy)
    path = tmp_path / "m.jpg"
    path.write_bytes(gen.jpeg(gen.gradient(1600, 1200)))
    source = SourceImage(probe(str(path), path.stat().st_size, 0))
    out = source.scaled(True, 100, 75, keep=True)
    assert (out.width, out.height) == (100, 75)
    assert opened[-1] == {"shrink": 8}


def test_item2_an_object_that_grows_past_the_limit_while_copied_is_refused() -> None:
    # Its size said it fitted; the bytes that arrive are counted too.
    with pytest.raises(ImageRejectedError, match="too large: 5000 bytes > limit 4096 bytes"):
        copy_stream(io.BytesIO(b"x" * 5000), io.BytesIO(), 4096)
