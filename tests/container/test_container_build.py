"""The container build, read statically: Dockerfile lint and layout, lock files, baked files.

What can be checked without building: hadolint, the paths the stack relies on (docs/contracts.md),
the pins and hashes, and that the image's entry point is the package's console script. The image
itself is built and run in test_image.py where buildah is available.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONTAINER = REPO / "container"
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


def test_final_stage_links_bin_iiif_process_to_the_console_script_and_defaults_to_help() -> None:
    stage = _final_stage()
    runs = " ".join(a for k, a in stage if k == "RUN")
    cmd = [json.loads(a) for k, a in stage if k == "CMD"]
    assert "ln -s /opt/venv/bin/iiif-process /bin/iiif-process" in runs
    assert cmd == [["/bin/iiif-process", "-h"]]


def test_image_and_dev_install_have_the_same_console_scripts() -> None:
    image = tomllib.loads((CONTAINER / "pyproject.toml").read_text())["project"]["scripts"]
    dev = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert image["iiif-process"] == "iiif_process.process_cli:main"
    assert image == {
        name: entry for name, entry in dev.items() if entry.startswith("iiif_process.")
    }


def test_package_is_installed_not_put_on_pythonpath() -> None:
    runs = " ".join(a for k, a in _instructions() if k == "RUN")
    envs = " ".join(a for k, a in _instructions() if k == "ENV")
    assert "/opt/venv/bin/pip install --no-deps --no-build-isolation --no-index /src" in runs
    assert "PYTHONPATH" not in envs


def test_base_image_is_pinned_by_digest() -> None:
    args = [a for k, a in _instructions() if k == "ARG" and a.startswith("PYTHON_IMAGE=")]
    assert len(args) == 1
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", args[0])


def test_every_pip_install_of_requirements_checks_hashes_of_a_lock() -> None:
    runs = [a for k, a in _instructions() if k == "RUN"]
    installs = [part for run in runs for part in run.split("&&") if "pip install" in part]
    with_files = [part for part in installs if " -r " in part]
    assert len(with_files) == 2
    assert all("--require-hashes" in part and ".lock" in part for part in with_files)


def _pins(path: Path) -> dict[str, str]:
    """name -> version of each ``name==version`` line (continuations and comments skipped)."""
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)==([^\s;\\]+)", line)
        if match:
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


@pytest.mark.parametrize(
    ("requirements", "lock"),
    [
        ("requirements.txt", "requirements.lock"),
        ("requirements-build.txt", "requirements-build.lock"),
    ],
)
def test_lock_pins_each_requirement_at_its_version(requirements: str, lock: str) -> None:
    wanted = _pins(CONTAINER / requirements)
    locked = _pins(CONTAINER / lock)
    assert {name: locked.get(name) for name in wanted} == wanted


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-build.lock"])
def test_every_locked_package_has_hashes(lock: str) -> None:
    text = re.sub(r"\\\n", " ", (CONTAINER / lock).read_text())
    entries = [line for line in text.splitlines() if "==" in line and not line.startswith("#")]
    assert entries
    assert [e.split()[0] for e in entries if "--hash=sha256:" not in e] == []


def test_lock_holds_pyvips_binary_wheels_for_both_architectures() -> None:
    # pyvips-binary 8.18.7's manylinux_2_28 wheels (x86_64, aarch64), from `pip download
    # --platform ...` and sha256sum; update with the pin.
    text = (CONTAINER / "requirements.lock").read_text()
    assert "pyvips-binary==8.18.7" in text
    for digest in (
        "312046c567abd89ce577ccb0dda8c8cbd9f37d520d5246290cdf8e114e91fbfc",
        "a30a8b22b21e3063648b11796e75845c8e1cc71b2fb22c5fb1b2dc5ac4ed723d",
    ):
        assert f"--hash=sha256:{digest}" in text


def test_build_tools_leave_the_image() -> None:
    runs = " ".join(a for k, a in _instructions() if k == "RUN")
    assert "/opt/venv/bin/pip uninstall --yes setuptools pip" in runs
    assert "python -m pip uninstall --yes --disable-pip-version-check setuptools wheel pip" in runs


def test_oci_labels_come_from_build_args() -> None:
    stage = _final_stage()
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for k, a in stage if k == "ARG" and "=" in a}
    labels = " ".join(a for k, a in stage if k == "LABEL")
    version = tomllib.loads((CONTAINER / "pyproject.toml").read_text())["project"]["version"]
    for key in ("source", "revision", "version"):
        assert f'org.opencontainers.image.{key}="${{{key.upper()}}}"' in labels
    assert (args["REVISION"], args["VERSION"]) == ("unknown", version)


def test_final_stage_runs_as_non_root_uid_1000() -> None:
    users = [a for k, a in _final_stage() if k == "USER"]
    assert users == ["1000:1000"]


def test_dockerignore_keeps_what_the_build_copies() -> None:
    ignored = {
        line.strip()
        for line in (CONTAINER / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    copied = {"requirements.lock", "requirements-build.lock", "pyproject.toml", "iiif_process"}
    assert not ignored & (copied | {"config.json", "instructions.json"})
