"""S3 sources and caches against moto's server, running the command exactly as the container does
(``iiif-process -config ... -instructions ... -report -uri ...``) with ``AWS_ENDPOINT_URL``."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from . import iiif_images as gen

TOOL = str(Path(sys.executable).parent / "iiif-process")
REGION = "us-east-1"
INSTRUCTIONS = {"b": {"size": "!64,64", "format": "jpg"}, "g": {"quality": "gray", "format": "png"}}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A moto S3 server on a free port."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def env(endpoint: str) -> dict[str, str]:
    """The environment of the container, pointed at moto (no real credentials anywhere)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {
        **keep,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }


@pytest.fixture
def s3(endpoint: str, env: dict[str, str]) -> Any:
    """A client of the moto server, with fresh source and derivatives buckets."""
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for bucket in ("src", "dst"):
        if bucket in [b["Name"] for b in client.list_buckets()["Buckets"]]:
            for obj in client.list_objects_v2(Bucket=bucket).get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
        else:
            client.create_bucket(Bucket=bucket)
    return client


def _keys(s3: Any, bucket: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def _run(
    tmp_path: Path, env: dict[str, str], config: dict, *uris: str
) -> subprocess.CompletedProcess:
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "instructions.json").write_text(json.dumps(INSTRUCTIONS))
    command = [
        TOOL,
        "-config", str(tmp_path / "config.json"),
        "-instructions", str(tmp_path / "instructions.json"),
        "-report", "-report-name", "process.json",
    ]  # fmt: skip
    for uri in uris:
        command += ["-uri", uri]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


SEED_CONFIG = {
    "images": {"source": {"name": "S3", "path": "src", "region": REGION, "credentials": "iam:"}},
    "derivatives": {"cache": {"name": "S3", "path": "dst", "prefix": "out", "region": REGION}},
}


def test_seed_s3_config_writes_derivatives_and_report(
    tmp_path: Path, env: dict[str, str], s3: Any
) -> None:
    s3.put_object(Bucket="src", Key="dir/a b.jpg", Body=gen.jpeg())
    done = _run(tmp_path, env, SEED_CONFIG, "dir/a b.jpg")
    assert done.returncode == 0, done.stderr
    assert _keys(s3, "dst") == {
        "out/dir/a b.jpg/full/!64,64/0/color.jpg",
        "out/dir/a b.jpg/full/full/0/gray.png",
        "out/dir/a b.jpg/process.json",
    }


def test_derivatives_have_content_types(tmp_path: Path, env: dict[str, str], s3: Any) -> None:
    s3.put_object(Bucket="src", Key="a.jpg", Body=gen.jpeg())
    _run(tmp_path, env, SEED_CONFIG, "a.jpg")
    head = s3.head_object(Bucket="dst", Key="out/a.jpg/full/full/0/gray.png")
    assert head["ContentType"] == "image/png"


def test_report_in_s3_matches_stdout(tmp_path: Path, env: dict[str, str], s3: Any) -> None:
    s3.put_object(Bucket="src", Key="a.jpg", Body=gen.jpeg())
    done = _run(tmp_path, env, SEED_CONFIG, "a.jpg")
    stored = json.loads(s3.get_object(Bucket="dst", Key="out/a.jpg/process.json")["Body"].read())
    assert stored == json.loads(done.stdout)["a.jpg"]


def test_container_environment_names_the_buckets(
    tmp_path: Path, env: dict[str, str], s3: Any
) -> None:
    s3.put_object(Bucket="src", Key="a.jpg", Body=gen.jpeg())
    baked = {  # what container/config.json could hold: placeholders replaced by the environment
        "images": {"source": {"uri": "s3blob://placeholder?region=us-east-1"}},
        "derivatives": {"cache": {"uri": "s3blob://placeholder?region=us-east-1"}},
    }
    env = {
        **env,
        "IIIF_CONFIG_IMAGES_SOURCE_URI": f"s3blob://src?region={REGION}",
        "IIIF_CONFIG_DERIVATIVES_CACHE_URI": f"s3blob://dst?region={REGION}",
    }
    done = _run(tmp_path, env, baked, "a.jpg")
    assert done.returncode == 0, done.stderr
    assert "a.jpg/process.json" in _keys(s3, "dst")


def test_missing_s3_object_is_an_error_entry(tmp_path: Path, env: dict[str, str], s3: Any) -> None:
    done = _run(tmp_path, env, SEED_CONFIG, "missing.jpg")
    assert done.returncode == 1
    assert json.loads(done.stdout)["missing.jpg"]["error"] == (
        "source object not found: s3://src/missing.jpg"
    )


def test_derivatives_bucket_refusing_writes_is_an_error_entry(
    tmp_path: Path, env: dict[str, str], s3: Any
) -> None:
    s3.put_object(Bucket="src", Key="a.jpg", Body=gen.jpeg())
    config = {**SEED_CONFIG, "derivatives": {"cache": {"uri": "s3blob://no-such-bucket"}}}
    done = _run(tmp_path, env, config, "a.jpg")
    assert done.returncode == 1
    assert "NoSuchBucket" in json.loads(done.stdout)["a.jpg"]["error"]


def test_good_and_bad_uris_in_one_run(tmp_path: Path, env: dict[str, str], s3: Any) -> None:
    s3.put_object(Bucket="src", Key="good.jpg", Body=gen.jpeg())
    s3.put_object(Bucket="src", Key="bad.jpg", Body=b"<html></html>")
    done = _run(tmp_path, env, SEED_CONFIG, "bad.jpg", "good.jpg", "../x.jpg")
    results = json.loads(done.stdout)
    assert done.returncode == 1
    assert ["error" in results[k] for k in ("bad.jpg", "good.jpg", "../x.jpg")] == [
        True,
        False,
        True,
    ]


def test_v8_config_and_instructions_from_a_bucket(env: dict[str, str], s3: Any) -> None:
    s3.put_object(Bucket="src", Key="a.jpg", Body=gen.jpeg())
    config = {
        "images": {"source": {"uri": f"s3blob://src?region={REGION}"}},
        "derivatives": {"cache": {"uri": "s3://dst/v8"}},
    }
    s3.put_object(Bucket="dst", Key="etc/config.json", Body=json.dumps(config))
    s3.put_object(Bucket="dst", Key="etc/instructions.json", Body=json.dumps(INSTRUCTIONS))
    command = [
        TOOL,
        "-config-source", "s3blob://dst?prefix=etc/",
        "-instructions-source", "s3blob://dst?prefix=etc/",
        "-report", "-report-bucket-uri", "s3blob://dst?prefix=reports/",
        "a.jpg",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    digest = hashlib.sha256(b"a.jpg").hexdigest()
    assert _keys(s3, "dst") - {"etc/config.json", "etc/instructions.json"} == {
        "v8/a.jpg/full/!64,64/0/color.jpg",
        "v8/a.jpg/full/full/0/gray.png",
        f"reports/a.jpg/process_{digest}.json",
    }
