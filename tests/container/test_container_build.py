"""The container build: Dockerfile lint and layout, and the baked config and instructions files.

There is no Docker daemon here, so the image itself is not built; these tests check what can be
checked without one: hadolint, the paths the stack relies on (docs/contracts.md), and that the
/bin/iiif-process launcher the Dockerfile writes really starts the tool.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

CONTAINER = Path(__file__).resolve().parents[2] / "container"
DOCKERFILE = CONTAINER / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"

# go-iiif v8's default instruction set (shared/reference/go-iiif-formats.md).
GO_IIIF_DEFAULT_INSTRUCTIONS = {
    "o": {"size": "full", "format": "", "rotation": "-1"},
    "k": {"size": "!2048,1536", "format": "jpg"},
    "b": {"size": "!1024,768", "format": "jpg"},
    "c": {"size": "!800,600", "format": "jpg"},
    "dc": {"size": "!800,600", "quality": "dither", "format": "jpg"},
    "z": {"size": "!640,480", "format": "jpg"},
    "n": {"size": "!320,240", "format": "jpg"},
    "s": {
        "size": "full",
        "region": "-1,-1,320,320",
        "quality": "crisp:2.0,0.5,0.025",
        "format": "jpg",
    },
    "ds": {"size": "full", "quality": "dither", "region": "-1,-1,320,320", "format": "jpg"},
}


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, args = stripped.partition(" ")
            result.append((keyword.upper(), args.strip()))
    return result


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [str(HADOLINT), str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_config_has_the_seed_era_shape() -> None:
    config = json.loads((CONTAINER / "config.json").read_text())
    assert (
        config["level"]["compliance"],
        "palette" in config["profile"]["services"]["enable"],
        config["graphics"]["source"]["name"],
        config["images"]["source"]["name"],
        config["images"]["cache"]["name"],
        config["derivatives"]["cache"]["name"],
    ) == ("2", True, "VIPS", "S3", "Memory", "S3")


def test_instructions_are_go_iiif_v8_defaults() -> None:
    assert json.loads((CONTAINER / "instructions.json").read_text()) == (
        GO_IIIF_DEFAULT_INSTRUCTIONS
    )


def test_final_stage_bakes_config_and_instructions_from_build_args() -> None:
    stage = _final_stage()
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for k, a in stage if k == "ARG" and "=" in a}
    copies = {tuple(shlex.split(a)) for k, a in stage if k == "COPY"}
    assert (args.get("CONFIG"), args.get("INSTRUCTIONS")) == ("config.json", "instructions.json")
    assert {
        ("${CONFIG}", "/etc/go-iiif/config.json"),
        ("${INSTRUCTIONS}", "/etc/go-iiif/instructions.json"),
    } <= copies


def test_final_stage_installs_bin_iiif_process_and_defaults_to_help() -> None:
    stage = _final_stage()
    runs = " ".join(a for k, a in stage if k == "RUN")
    cmd = [json.loads(a) for k, a in stage if k == "CMD"]
    assert "> /bin/iiif-process" in runs
    assert "chmod 0755 /bin/iiif-process" in runs
    assert cmd == [["/bin/iiif-process", "-h"]]


def test_final_stage_runs_as_non_root_uid_1000() -> None:
    users = [a for k, a in _final_stage() if k == "USER"]
    assert users == ["1000:1000"]


def test_dockerignore_keeps_what_the_build_copies() -> None:
    ignored = {
        line.strip()
        for line in (CONTAINER / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert not ignored & {"requirements.txt", "iiif_process", "config.json", "instructions.json"}


def _launcher_source() -> str:
    """The Python source the Dockerfile's printf writes to /bin/iiif-process."""
    run = next(a for k, a in _final_stage() if k == "RUN" and "> /bin/iiif-process" in a)
    printf = run.split("> /bin/iiif-process")[0]
    return "\n".join(shlex.split(printf)[2:]) + "\n"


@pytest.mark.skipif(
    importlib.util.find_spec("iiif_process.cli") is None, reason="iiif_process.cli not built yet"
)
def test_launcher_starts_the_tool_with_help(tmp_path: Path) -> None:
    launcher = tmp_path / "iiif-process"
    launcher.write_text(_launcher_source())
    result = subprocess.run(
        [sys.executable, str(launcher), "-h"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "-instructions" in result.stdout + result.stderr
