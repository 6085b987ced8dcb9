"""``make test`` runs the Lambda's tests a second time on the deployed runtime's Python
(image_build/runtime_python.py): that run follows the stack's runtime and the tests' own pins."""

from __future__ import annotations

from pathlib import Path

import pytest

from image_build import runtime_python
from stacks.runtime_function import RUNTIME

ROOT = Path(__file__).resolve().parents[2]


def test_the_chroot_python_is_the_deployed_runtimes() -> None:
    assert f"python{runtime_python.runtime_version()}" == RUNTIME.name


def test_the_chroot_installs_the_tests_own_pins() -> None:
    lines = {
        line.strip()
        for name in ("requirements-dev.txt", "lambda_src/requirements.txt")
        for line in (ROOT / name).read_text().splitlines()
    }
    found = runtime_python.pins()
    assert [p.split("==")[0].split("[")[0] for p in found] == ["boto3", "moto", "pytest"]
    assert set(found) <= lines


def test_a_missing_pin_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lambda_src").mkdir()
    (tmp_path / "lambda_src/requirements.txt").write_text("boto3==1.0\n")
    (tmp_path / "requirements-dev.txt").write_text("moto[server]==5.0\n")
    monkeypatch.setattr(runtime_python, "ROOT", tmp_path)
    with pytest.raises(ValueError, match=r"no pinned pytest in requirements-dev\.txt"):
        runtime_python.pins()


def test_the_tree_is_remade_when_the_recipe_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    before = runtime_python.tree_path("3.14", "sid", "amd64")
    monkeypatch.setattr(runtime_python, "RECIPE", "999")
    assert runtime_python.tree_path("3.14", "sid", "amd64") != before
