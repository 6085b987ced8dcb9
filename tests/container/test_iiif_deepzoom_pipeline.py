"""Deep zoom in the pipeline (issue #11): iiif-process with tiles on writes a Level 0 pyramid,
info.json and a Presentation 3 manifest per image from the decode of its derivatives; settings
from the environment and flags; what the disk holds and what the IIIF validator says.

S3 (headers, moto's server) and publishing (order, concurrency, nothing partial) are in
test_iiif_deepzoom_publish.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import pyvips
from iiif_process import deepzoom, process, transform
from iiif_process.config import Config, DeepZoom, StoreSpec
from iiif_process.errors import ConfigError
from iiif_process.memory import MemoryGate
from iiif_process.params import parse_instructions
from iiif_process.process import ReportOptions, process_uri
from iiif_process.process_cli import Arguments, deep_zoom_settings, main, parse_args
from iiif_process.stores import MemoryStore
from iiif_process.tile_seed_cli import run as seed_run

from . import iiif_images as gen
from . import test_tile_seed_cli as seed_tests
from .conftest import Workspace
from .test_tile_geometry import expected_paths

BASE = "https://d111111abcdef8.cloudfront.net"
ZOOM_ENV = {"IIIF_PROCESS_TILES": "true", "IIIF_PROCESS_PUBLIC_BASE_URL": BASE}
LEVEL0 = ("--level", "0")
ONE = {"b": {"size": "!200,200", "format": "jpg"}}
VALIDATOR = str(Path(sys.executable).parent / "iiif-validate.py")
http_root = seed_tests.http_root  # a folder served over HTTP (the fixture of the seeder's tests)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _json(ws: Workspace, key: str) -> dict[str, Any]:
    return json.loads(ws.read(key))


# --- what the command writes on disk ------------------------------------------------------------


def test_tiles_off_by_default_writes_no_tiles(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg(gen.gradient(1200, 800)))
    status, _ = ws.run([key], ONE, args=["-report"])
    assert status == 0
    assert ws.files() == {"a.jpg/full/!200,200/0/color.jpg", "a.jpg/process.json"}


def test_tiles_on_writes_every_announced_tile_beside_the_derivatives(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg(gen.gradient(1300, 700)))
    status, result = ws.run([key], ONE, args=["-report"], env=ZOOM_ENV)
    assert status == 0, result
    info = _json(ws, "a.jpg/info.json")
    others = {"full/!200,200/0/color.jpg", "process.json", "manifest.json"}
    assert _files(ws.out / "a.jpg") == expected_paths(info, 3) | others


def test_info_json_is_image_api_3_level_0_by_default(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg(gen.gradient(1300, 700)))
    ws.run([key], ONE, env=ZOOM_ENV)
    info = _json(ws, "a.jpg/info.json")
    assert (info["@context"], info["type"], info["profile"]) == (
        "http://iiif.io/api/image/3/context.json",
        "ImageService3",
        "level0",
    )
    assert (info["width"], info["height"]) == (1300, 700)
    assert info["tiles"] == [{"width": 512, "height": 512, "scaleFactors": [1, 2, 4]}]


def test_info_json_id_is_the_base_url_and_the_percent_encoded_key(ws: Workspace) -> None:
    key = ws.put("dir/my photo é+1.jpg", gen.jpeg(gen.gradient(600, 400)))
    ws.run([key], ONE, env=ZOOM_ENV)
    info = _json(ws, f"{key}/info.json")
    assert info["id"] == f"{BASE}/dir/my%20photo%20%C3%A9%2B1.jpg"


def test_base_url_trailing_slash_is_dropped(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg(gen.gradient(600, 400)))
    ws.run([key], ONE, env={**ZOOM_ENV, "IIIF_PROCESS_PUBLIC_BASE_URL": f"{BASE}/iiif/"})
    assert _json(ws, "a.jpg/info.json")["id"] == f"{BASE}/iiif/a.jpg"


def test_api_version_2_writes_image_api_2_paths_and_info(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg(gen.gradient(1300, 700)))
    ws.run([key], ONE, env={**ZOOM_ENV, "IIIF_PROCESS_IIIF_API_VERSION": "2"})
    info = _json(ws, "a.jpg/info.json")
    assert info["@context"] == "http://iiif.io/api/image/2/context.json"
    assert info["@id"] == f"{BASE}/a.jpg"
    assert (ws.out / "a.jpg/full/full/0/default.jpg").is_file()
    assert (ws.out / "a.jpg/0,0,512,512/512,/0/default.jpg").is_file()


def test_tile_size_from_the_environment(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg(gen.gradient(700, 300)))
    ws.run([key], ONE, env={**ZOOM_ENV, "IIIF_PROCESS_TILE_SIZE": "256"})
    info = _json(ws, "a.jpg/info.json")
    assert info["tiles"] == [{"width": 256, "height": 256, "scaleFactors": [1, 2, 4]}]
    assert (ws.out / "a.jpg/512,256,188,44/188,44/0/default.jpg").is_file()


def test_flags_override_the_environment(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg(gen.gradient(700, 300)))
    env = {**ZOOM_ENV, "IIIF_PROCESS_IIIF_API_VERSION": "3", "IIIF_PROCESS_TILE_SIZE": "512"}
    args = ["-iiif-api-version", "2", "-tile-size", "128", "-public-base-url", "http://h:1"]
    ws.run([key], ONE, args=args, env=env)
    info = _json(ws, "a.jpg/info.json")
    assert (info["@id"], info["tiles"][0]["width"]) == ("http://h:1/a.jpg", 128)


def test_tiles_flag_false_overrides_the_environment(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg(gen.gradient(700, 300)))
    ws.run([key], ONE, args=["-tiles=false"], env=ZOOM_ENV)
    assert ws.files() == {"a.jpg/full/!200,200/0/color.jpg"}


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])  # every orientation that turns by 90
def test_turned_exif_orientation_gives_the_upright_size(ws: Workspace, orientation: int) -> None:
    key = ws.put("r.jpg", gen.with_orientation(gen.gradient(640, 360), orientation))
    ws.run([key], ONE, env=ZOOM_ENV)
    info = _json(ws, "r.jpg/info.json")
    assert (info["width"], info["height"]) == (360, 640)
    full = ws.image("r.jpg/full/max/0/default.jpg")
    assert (full.width, full.height) == (360, 640)


def test_tiles_are_the_pixels_of_the_image(ws: Workspace) -> None:
    source = gen.gradient(1100, 600)
    key = ws.put("a.jpg", gen.png(source))
    ws.run([key], ONE, env=ZOOM_ENV)
    tile = ws.image("a.jpg/512,0,512,512/512,512/0/default.jpg")
    expected = source.crop(512, 0, 512, 512)
    assert (tile - expected).abs().avg() < 2  # JPEG at quality 75 of a smooth gradient


def test_tiles_carry_no_exif(ws: Workspace) -> None:
    tagged = gen.gradient(700, 600).copy()
    tagged.set_type(pyvips.GValue.gint_type, "orientation", 1)
    key = ws.put("e.jpg", tagged.jpegsave_buffer(Q=90, keep="exif"))
    ws.run([key], ONE, env=ZOOM_ENV)
    images = [p for p in (ws.out / "e.jpg").rglob("*default.jpg")]
    assert len(images) >= 4
    assert not [p for p in images if b"Exif" in p.read_bytes()]


def _with_tagged_trailer(image: pyvips.Image) -> bytes:
    """A JPEG followed by a second one carrying EXIF after its end of image (as cameras append
    preview images, which hold the EXIF and GPS position too)."""
    preview = image.resize(0.25).copy()
    preview.set_type(pyvips.GValue.gint_type, "orientation", 1)
    return gen.jpeg(image) + preview.jpegsave_buffer(Q=80, keep="exif")


def test_full_image_of_a_plain_jpeg_is_its_source_data(ws: Workspace) -> None:
    data = gen.jpeg(gen.gradient(700, 600), Q=95)
    key = ws.put("s.jpg", data)
    ws.run([key], ONE, env=ZOOM_ENV)
    full = ws.read("s.jpg/full/max/0/default.jpg")
    # No re-encode (no loss, no CPU): the tables and scan data are the source's, byte for byte.
    scan = b"\xff\xdb"  # from the first quantization table on
    assert full[full.index(scan) :] == data[data.index(scan) :]


def test_full_image_drops_a_trailer_after_the_jpeg(ws: Workspace) -> None:
    data = _with_tagged_trailer(gen.gradient(700, 600))
    assert b"Exif" in data
    key = ws.put("t.jpg", data)
    ws.run([key], ONE, env=ZOOM_ENV)
    full = ws.read("t.jpg/full/max/0/default.jpg")
    assert b"Exif" not in full
    assert full.endswith(b"\xff\xd9") and full.count(b"\xff\xd8") == 1


def test_seeded_full_image_drops_a_trailer_after_the_jpeg(tmp_path: Path) -> None:
    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir()
    (source / "t.jpg").write_bytes(_with_tagged_trailer(gen.gradient(700, 600)))
    argv = ["-config-images-source-uri", source.as_uri()]
    argv += ["-config-derivatives-cache-uri", out.as_uri(), "t.jpg"]
    assert seed_run(argv, {})[0] == 0
    assert b"Exif" not in (out / "t.jpg/full/full/0/default.jpg").read_bytes()


# --- the manifest ---------------------------------------------------------------------------------


@pytest.fixture
def manifest(ws: Workspace) -> dict[str, Any]:
    key = ws.put("dir/photo 1.jpg", gen.jpeg(gen.gradient(1300, 700)))
    status, result = ws.run([key], ONE, env=ZOOM_ENV)
    assert status == 0, result
    return _json(ws, f"{key}/manifest.json")


def test_manifest_is_presentation_3_with_its_own_url_as_id(manifest: dict[str, Any]) -> None:
    assert manifest["@context"] == "http://iiif.io/api/presentation/3/context.json"
    assert manifest["type"] == "Manifest"
    assert manifest["id"] == f"{BASE}/dir/photo%201.jpg/manifest.json"


def test_manifest_label_is_the_file_name(manifest: dict[str, Any]) -> None:
    assert manifest["label"] == {"none": ["photo 1.jpg"]}


def test_manifest_has_one_canvas_of_the_image_size(manifest: dict[str, Any]) -> None:
    (canvas,) = manifest["items"]
    assert (canvas["type"], canvas["width"], canvas["height"]) == ("Canvas", 1300, 700)


def test_manifest_paints_the_full_image_with_its_image_service(manifest: dict[str, Any]) -> None:
    (canvas,) = manifest["items"]
    (page,) = canvas["items"]
    (annotation,) = page["items"]
    assert page["type"] == "AnnotationPage"
    assert (annotation["type"], annotation["motivation"]) == ("Annotation", "painting")
    assert annotation["target"] == canvas["id"]
    body = annotation["body"]
    assert body["id"] == f"{BASE}/dir/photo%201.jpg/full/max/0/default.jpg"
    assert (body["type"], body["format"], body["width"], body["height"]) == (
        "Image",
        "image/jpeg",
        1300,
        700,
    )
    assert body["service"] == [
        {"id": f"{BASE}/dir/photo%201.jpg", "type": "ImageService3", "profile": "level0"}
    ]


def test_manifest_thumbnail_is_a_size_that_was_written(
    ws: Workspace, manifest: dict[str, Any]
) -> None:
    (thumbnail,) = manifest["thumbnail"]
    path = thumbnail["id"].removeprefix(f"{BASE}/dir/photo%201.jpg/")
    image = ws.image(f"dir/photo 1.jpg/{path}")
    assert (image.width, image.height) == (thumbnail["width"], thumbnail["height"])


def test_image_api_2_manifest_names_an_image_service_2(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg(gen.gradient(900, 500)))
    ws.run([key], ONE, env={**ZOOM_ENV, "IIIF_PROCESS_IIIF_API_VERSION": "2"})
    body = _json(ws, "a.jpg/manifest.json")["items"][0]["items"][0]["items"][0]["body"]
    assert body["id"] == f"{BASE}/a.jpg/full/full/0/default.jpg"
    assert body["service"] == [
        {
            "@id": f"{BASE}/a.jpg",
            "@type": "ImageService2",
            "profile": "http://iiif.io/api/image/2/level0.json",
        }
    ]


# --- the IIIF validator on what the pipeline writes ---------------------------------------------


@pytest.mark.parametrize(("version", "api"), [("2.0", "2"), ("3.0", "3")])
def test_pipeline_info_json_passes_the_iiif_validator_level_0(
    tmp_path: Path, http_root: tuple[Path, str, Any], version: str, api: str
) -> None:
    root, host, server = http_root
    server.info_type = seed_tests.V2_TYPE if api == "2" else seed_tests.V3_TYPE
    source = tmp_path / "source"
    source.mkdir()
    seed_tests.validator_image().pngsave(
        str(source / "squares")
    )  # the key is the validator's identifier
    status, result = ws_run(source, root, "squares", api, f"http://{host}")
    assert status == 0, result
    done = subprocess.run(
        [sys.executable, VALIDATOR, "-s", host, "-i", "squares", "--version", version, *LEVEL0],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    tests_run = int(re.search(r"Done \((\d+) tests, 0 failures\)", done.stderr)[1])
    assert tests_run >= 4


def ws_run(source: Path, out: Path, key: str, api: str, base: str) -> tuple[int, dict[str, Any]]:
    """iiif-process (go-iiif v8 flags) from ``source`` into ``out`` with tiles on."""
    from iiif_process.process_cli import run

    instructions = out.parent / "instructions"
    instructions.mkdir(exist_ok=True)
    (instructions / "instructions.json").write_text(json.dumps(ONE))
    argv = [
        "-config-images-source-uri", source.as_uri(),
        "-config-derivatives-cache-uri", out.as_uri(),
        "-instructions-source", instructions.as_uri(),
        "-tiles", "-iiif-api-version", api, "-public-base-url", base, key,
    ]  # fmt: skip
    return run(argv, {})


# --- settings: checked, errors name the variable and the value ---------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("IIIF_PROCESS_TILES", "yes", "must be true or false"),
        ("IIIF_PROCESS_IIIF_API_VERSION", "4", "must be from 2 to 3"),
        ("IIIF_PROCESS_IIIF_API_VERSION", "v3", "must be a whole number"),
        ("IIIF_PROCESS_TILE_SIZE", "63", "must be from 64 to 4096"),
        ("IIIF_PROCESS_TILE_SIZE", "4097", "must be from 64 to 4096"),
        ("IIIF_PROCESS_TILE_SIZE", "big", "must be a whole number"),
        ("IIIF_PROCESS_PUBLIC_BASE_URL", "ftp://x.org", "must be an http:// or https:// URL"),
        ("IIIF_PROCESS_PUBLIC_BASE_URL", "x.org/iiif", "must be an http:// or https:// URL"),
        ("IIIF_PROCESS_PUBLIC_BASE_URL", "https://x.org/?a=1", "must have no query or fragment"),
        ("IIIF_PROCESS_PUBLISH_CONCURRENCY", "0", "must be from 1 to 256"),
    ],
)
def test_bad_environment_value_is_an_error_naming_it(
    ws: Workspace, variable: str, value: str, says: str
) -> None:
    key = ws.put("a.jpg", gen.jpeg())
    status, result = ws.run([key], ONE, env={**ZOOM_ENV, variable: value})
    assert status == 1
    error = result[key]["error"]
    assert error.startswith(f"{variable} {says}")
    assert error.endswith(f"not {value!r}")
    assert ws.files() == set()


def test_tiles_on_without_a_base_url_is_an_error_naming_it(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg())
    status, result = ws.run([key], ONE, env={"IIIF_PROCESS_TILES": "1"})
    assert status == 1
    assert "IIIF_PROCESS_PUBLIC_BASE_URL" in result[key]["error"]
    assert ws.files() == set()


def test_bad_flag_value_is_an_error_naming_the_flag(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg())
    _, result = ws.run([key], ONE, args=["-tile-size", "9"], env=ZOOM_ENV)
    assert result[key]["error"] == "-tile-size must be from 64 to 4096, not '9'"


GO_TRUE = ["1", "t", "T", "TRUE", "true", "True"]
GO_FALSE = ["0", "f", "F", "FALSE", "false", "False"]


def _settings(env: dict[str, str], *argv: str) -> DeepZoom:
    return deep_zoom_settings(parse_args(argv), env)[0]


@pytest.mark.parametrize("text", GO_TRUE)
def test_tiles_accepts_go_true_values(text: str) -> None:
    assert _settings({"tiles": text, "public-base-url": BASE}).tiles is True


@pytest.mark.parametrize("text", GO_FALSE)
def test_tiles_accepts_go_false_values(text: str) -> None:
    assert _settings({"tiles": text}).tiles is False


@pytest.mark.parametrize("text", ["yes", "on", "tRUE", "2", " "])
def test_tiles_refuses_other_values(text: str) -> None:
    with pytest.raises(ConfigError, match="IIIF_PROCESS_TILES must be true or false"):
        _settings({"tiles": text, "public-base-url": BASE})


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"tile-size": "64"}, "tile_size", 64),
        ({"tile-size": "4096"}, "tile_size", 4096),
        ({"iiif-api-version": "2"}, "api_version", 2),
        ({"public-base-url": "http://localhost:8080/"}, "public_base_url", "http://localhost:8080"),
    ],
)
def test_values_at_the_limits_are_accepted(env: dict[str, str], field: str, value: Any) -> None:
    assert getattr(_settings(env), field) == value


def test_defaults_when_nothing_is_set() -> None:
    assert _settings({}) == DeepZoom(False, 3, 512, "")
    assert deep_zoom_settings(Arguments(), {})[1] is None  # concurrency: automatic


def test_help_names_the_deep_zoom_flags_and_variables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-h"]) == 0
    text = capsys.readouterr().out
    for name in ("-tiles", "-iiif-api-version", "-tile-size", "-public-base-url"):
        assert f"  {name}" in text
    for variable in ("IIIF_PROCESS_TILES", "IIIF_PROCESS_IIIF_API_VERSION"):
        assert variable in text
    assert "-publish-concurrency VALUE" in text


# --- one decode; the memory it needs ---------------------------------------------------------


def _process(config: Config, data: bytes, gate: Any = None) -> MemoryStore:
    source, out = MemoryStore("dz-src"), MemoryStore("dz-out")
    source.write("a.jpg", data, "image/jpeg")
    process_uri(
        "a.jpg",
        config,
        parse_instructions({"b": {"size": "!300,300"}, "o": {"size": "full"}}),
        source,
        out,
        ReportOptions(),
        gate,
    )
    return out


def _config(tiles: bool) -> Config:
    return Config(
        source=StoreSpec("memory"),
        derivatives=StoreSpec("memory"),
        deep_zoom=DeepZoom(tiles=tiles, public_base_url=BASE),
    )


# A loader by nickname (jpegload_source) or by type name (VipsForeignLoadJpegSource).
LOADERS = re.compile(r"load(_source|_buffer|_file)?$|^VipsForeignLoad", re.IGNORECASE)


def _loads_after_probe(monkeypatch: pytest.MonkeyPatch, tiles: bool, data: bytes) -> list[str]:
    """The libvips load operations run while one image is processed, outside the header probe
    (pyvips runs every load, of a file or a buffer, header or pixels, through Operation.call).
    None means every pixel came from the probed header's one decode: nothing re-read the
    source."""
    calls: list[str] = []
    probing = [False]
    real_call, real_probe = pyvips.Operation.call, process.probe

    def counting(name: str, *args: Any, **kwargs: Any) -> Any:
        if LOADERS.search(name) and not probing[0]:
            calls.append(name)
        return real_call(name, *args, **kwargs)

    def probe(*args: Any, **kwargs: Any) -> Any:
        probing[0] = True
        try:
            return real_probe(*args, **kwargs)
        finally:
            probing[0] = False

    with monkeypatch.context() as patch:
        patch.setattr(pyvips.Operation, "call", staticmethod(counting))
        patch.setattr(process, "probe", probe)
        out = _process(_config(tiles), data)
    assert ("a.jpg/info.json" in out.objects) is tiles
    return calls


@pytest.mark.parametrize(
    "data",
    [gen.jpeg(gen.gradient(1400, 900)), gen.png(gen.gradient(1400, 900))],
    ids=["jpeg", "png"],
)
def test_with_tiles_nothing_but_the_probe_opens_the_source(
    monkeypatch: pytest.MonkeyPatch, data: bytes
) -> None:
    assert _loads_after_probe(monkeypatch, True, data) == []


def test_the_load_counter_sees_a_second_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    # The counter works: a pyramid cut from a fresh decode of the file is seen.
    real = deepzoom.prepare_pixels

    def decoded_again(image: pyvips.Image, *args: Any) -> pyvips.Image:
        return real(pyvips.Image.new_from_buffer(gen.png(gen.gradient(1400, 900)), ""), *args)

    monkeypatch.setattr(deepzoom, "prepare_pixels", decoded_again)
    assert _loads_after_probe(monkeypatch, True, gen.png(gen.gradient(1400, 900)))


def test_tiles_are_made_from_the_derivatives_source_image(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[transform.SourceImage] = []

    class Counted(transform.SourceImage):
        def __init__(self, header: transform.Probe) -> None:
            super().__init__(header)
            made.append(self)

    monkeypatch.setattr(process, "SourceImage", Counted)
    out = _process(_config(True), gen.png(gen.gradient(1400, 900)))
    assert len(made) == 1
    assert "a.jpg/1024,0,376,512/376,512/0/default.jpg" in out.objects


@pytest.mark.parametrize("orientation", [1, 6])
def test_a_streamed_source_gets_every_tile_with_its_pixels(
    monkeypatch: pytest.MonkeyPatch, orientation: int
) -> None:
    # Sources over STREAM_ABOVE are streamed from their file for each pass, never whole in
    # memory (a huge master); lowered here so that a small image takes that path.
    monkeypatch.setattr(transform, "STREAM_ABOVE", 1 << 20)
    image = gen.gradient(1400, 900)
    out = _process(_config(True), gen.with_orientation(image, orientation))
    info = json.loads(out.objects["a.jpg/info.json"])
    width, height = (900, 1400) if orientation == 6 else (1400, 900)
    assert (info["width"], info["height"]) == (width, height)
    tiles = {k.removeprefix("a.jpg/") for k in out.objects if k.endswith("/default.jpg")}
    assert tiles | {"info.json"} == expected_paths(info, 3)
    upright = image.rot90() if orientation == 6 else image
    w = min(512, width - 512)
    tile = pyvips.Image.new_from_buffer(
        out.objects[f"a.jpg/512,0,{w},512/{w},512/0/default.jpg"], ""
    )
    assert (tile - upright.crop(512, 0, w, 512)).abs().avg() < 3


class RecordingGate(MemoryGate):
    """The real gate, recording what each image reserves."""

    def __init__(self) -> None:
        super().__init__(8 << 30)
        self.amounts: list[int] = []

    def reserve(self, amount: int, what: str = "") -> Any:
        self.amounts.append(amount)
        return super().reserve(amount, what)


def test_memory_reservation_counts_the_pyramid() -> None:
    data = gen.png(gen.gradient(1400, 900))
    off, on = RecordingGate(), RecordingGate()
    _process(_config(False), data, off)
    _process(_config(True), data, on)
    decoded = 1400 * 900 * 3
    assert on.amounts[0] - off.amounts[0] == int(decoded * 0.6)  # measured, see deepzoom


def test_tiles_of_a_cmyk_source_are_srgb(ws: Workspace) -> None:
    key = ws.put("c.jpg", gen.cmyk_jpeg())
    ws.run([key], ONE, env=ZOOM_ENV)
    tile = ws.image("c.jpg/full/120,80/0/default.jpg")  # the one tile of a 120x80 image
    assert (tile.bands, tile.interpretation) == (3, "srgb")
