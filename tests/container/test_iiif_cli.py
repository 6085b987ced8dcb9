"""The command line: both go-iiif forms, Go-style flags, stdout, stderr and exit status."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from iiif_process.process_cli import UsageError, main, parse_args, run

from . import iiif_images as gen
from .conftest import Workspace

TOOL = str(Path(sys.executable).parent / "iiif-process")


@pytest.mark.parametrize(
    "argv",
    [
        ["-config", "c.json", "-report", "-uri", "a"],
        ["--config", "c.json", "--report", "--uri", "a"],
        ["-config=c.json", "-report=true", "-uri=a"],
        ["--config=c.json", "-report", "--uri=a"],
    ],
)
def test_go_flag_spellings_are_equivalent(argv: list[str]) -> None:
    args = parse_args(argv)
    assert (args.get("config"), args.flag("report"), args.values["uri"]) == ("c.json", True, ["a"])


def test_uri_flag_repeats() -> None:
    assert parse_args(["-uri", "a", "-uri", "b"]).values["uri"] == ["a", "b"]


def test_positional_uris_follow_the_flags() -> None:
    args = parse_args(["-verbose", "a.jpg", "-b.jpg"])
    assert (args.flag("verbose"), args.positional) == (True, ["a.jpg", "-b.jpg"])


def test_double_dash_ends_the_flags() -> None:
    assert parse_args(["--", "-x.jpg"]).positional == ["-x.jpg"]


def test_boolean_false_value() -> None:
    assert parse_args(["-report=false"]).flag("report") is False


def test_unknown_flag_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="flag provided but not defined: -nope"):
        parse_args(["-nope"])


def test_missing_flag_value_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="flag needs an argument: -config"):
        parse_args(["-config"])


def test_help_prints_usage_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-h"]) == 0
    assert "-config-images-source-uri" in capsys.readouterr().out


def test_bad_flag_exits_2_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-bogus", "x"]) == 2
    assert "flag provided but not defined" in capsys.readouterr().err


def test_no_uri_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-config-source", "defaults://"]) == 2
    assert "no URIs given" in capsys.readouterr().err


def _v8_argv(ws: Workspace, *extra: str) -> list[str]:
    return [
        "-config-source",
        "defaults://",
        "-instructions-source",
        "defaults://",
        "-config-images-source-uri",
        f"file://{ws.source}",
        "-config-derivatives-cache-uri",
        f"file://{ws.out}",
        *extra,
    ]


def test_v8_form_with_defaults_writes_the_default_set(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg())
    status, results = run([*_v8_argv(ws), key], {})
    assert status == 0
    assert set(results[key]["uris"]) == {"o", "k", "b", "c", "dc", "z", "n", "s", "ds"}


def test_v8_defaults_include_the_services(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg())
    _, results = run([*_v8_argv(ws), key], {})
    assert {"palette", "blurhash", "imagehash"} <= set(results[key])


def test_v8_report_name_is_sha256_of_the_uri(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg())
    run([*_v8_argv(ws, "-report"), key], {})
    digest = hashlib.sha256(b"a.jpg").hexdigest()
    assert (ws.out / "a.jpg" / f"process_{digest}.json").is_file()


def test_v8_report_template_is_honoured(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg())
    run([*_v8_argv(ws, "-report", "-report-template", "r-{sha256_origin}.json"), key], {})
    assert (ws.out / "a.jpg" / f"r-{hashlib.sha256(b'a.jpg').hexdigest()}.json").is_file()


def test_v8_report_bucket_uri_receives_the_report(ws: Workspace, tmp_path: Path) -> None:
    key = ws.put("a.jpg", gen.jpeg())
    reports = tmp_path / "reports"
    run([*_v8_argv(ws, "-report", "-report-bucket-uri", f"file://{reports}"), key], {})
    assert [p.name for p in reports.rglob("*.json")] == [
        f"process_{hashlib.sha256(b'a.jpg').hexdigest()}.json"
    ]


def test_v8_config_and_instructions_from_a_directory(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg())
    conf = ws.tmp / "etc"
    conf.mkdir()
    (conf / "c.json").write_text(
        json.dumps(
            {
                "images": {"source": {"uri": f"file://{ws.source}"}},
                "derivatives": {"cache": {"uri": f"file://{ws.out}"}},
            }
        )
    )
    (conf / "i.json").write_text(json.dumps({"t": {"size": "30,", "format": "png"}}))
    status, results = run(
        [
            "-config-source",
            f"file://{conf}",
            "-config-name",
            "c.json",
            "-instructions-source",
            str(conf),
            "-instructions-name",
            "i.json",
            key,
        ],
        {},
    )
    assert (status, results[key]["uris"]) == (0, {"t": "a.jpg/full/30,/0/color.png"})


def test_environment_gives_the_source_and_cache(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg())
    env = {
        "IIIF_CONFIG_IMAGES_SOURCE_URI": f"file://{ws.source}",
        "IIIF_CONFIG_DERIVATIVES_CACHE_URI": f"file://{ws.out}",
    }
    status, _ = run(["-config-source", "defaults://", key], env)
    assert status == 0 and (ws.out / "a.jpg" / "full" / "full" / "-1" / "color.jpg").is_file()


def test_flags_override_the_environment(ws: Workspace, tmp_path: Path) -> None:
    key = ws.put("a.jpg", gen.jpeg())
    env = {"IIIF_CONFIG_IMAGES_SOURCE_URI": f"file://{tmp_path / 'nowhere'}"}
    status, _ = run([*_v8_argv(ws), key], env)
    assert status == 0


def test_unreadable_config_gives_every_uri_an_error(tmp_path: Path) -> None:
    status, results = run(["-config", str(tmp_path / "none.json"), "-uri", "a", "-uri", "b"], {})
    assert status == 1
    assert all(r["error"].startswith("cannot read") for r in results.values())
    assert list(results) == ["a", "b"]


def test_invalid_config_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text("{nope")
    _, results = run(["-config", str(tmp_path / "c.json"), "-uri", "a"], {})
    assert "c.json is not valid JSON" in results["a"]["error"]


def test_stdout_is_one_json_object_and_stderr_json_lines(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg())
    done = subprocess.run([TOOL, *_v8_argv(ws), key], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert list(json.loads(done.stdout)) == [key]
    assert all(json.loads(line)["level"] for line in done.stderr.splitlines())


def test_seed_command_as_the_container_runs_it(ws: Workspace) -> None:
    key = ws.put("photos/IMG 1.JPG", gen.jpeg())
    ins = ws.tmp / "instructions.json"
    ins.write_text(json.dumps({"b": {"size": "!64,64", "format": "jpg"}}))
    done = subprocess.run(
        [
            TOOL,
            "-config",
            str(ws.config()),
            "-instructions",
            str(ins),
            "-report",
            "-report-name",
            "process.json",
            "-uri",
            key,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert ws.files() == {
        "photos/IMG 1.JPG/full/!64,64/0/color.jpg",
        "photos/IMG 1.JPG/process.json",
    }


def test_failure_exit_status_from_the_command(ws: Workspace) -> None:
    done = subprocess.run(
        [TOOL, *_v8_argv(ws), "missing.jpg"], capture_output=True, text=True, check=False
    )
    assert (done.returncode, "error" in json.loads(done.stdout)["missing.jpg"]) == (1, True)


def test_overridden_store_blocks_may_be_placeholders(ws: Workspace) -> None:
    key = ws.put("a.jpg", gen.jpeg())
    (ws.tmp / "c.json").write_text(
        json.dumps({"images": {"source": {"name": "S3"}}, "derivatives": {"cache": {"name": "S3"}}})
    )
    env = {
        "IIIF_CONFIG_IMAGES_SOURCE_URI": f"file://{ws.source}",
        "IIIF_CONFIG_DERIVATIVES_CACHE_URI": f"file://{ws.out}",
    }
    status, _ = run(["-config", str(ws.tmp / "c.json"), "-uri", key], env)
    assert status == 0
