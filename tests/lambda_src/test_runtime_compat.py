"""The Lambda runs on a newer Python (``stacks.runtime_function.RUNTIME``, 3.14) than this venv's
(3.11, the one Debian 12 offers; Lambda's 3.11 runtime is past deprecation, so deploying on it is
no answer). ``make test`` runs tests/lambda_src a second time on the runtime's own Python, in a
Debian chroot (image_build/runtime_python.py); where that cannot run, what can break between the
two is still checked here: the Lambda's code imports nothing that Python removed up to 3.14, needs
nothing but the runtime's boto3, and calls nothing deprecated (pytest turns a DeprecationWarning
raised from `iiif_process_ecs` into an error in every test: pyproject.toml, ``filterwarnings``)."""

from __future__ import annotations

import ast
import sys
import warnings
from pathlib import Path

import pytest

LAMBDA_DIR = Path(__file__).resolve().parents[2] / "lambda_src"
# Removed from the standard library in 3.12 (distutils, imp, asynchat, asyncore, smtpd) and 3.13
# (PEP 594's "dead batteries"); 3.14 removed no module.
REMOVED_BY_3_14 = frozenset(
    {
        "distutils", "imp", "asynchat", "asyncore", "smtpd",
        "aifc", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "mailcap", "msilib",
        "nis", "nntplib", "ossaudiodev", "pipes", "sndhdr", "spwd", "sunau", "telnetlib", "uu",
        "xdrlib", "lib2to3",
    }
)  # fmt: skip
RUNTIME_PROVIDES = frozenset({"boto3", "botocore"})


def imported_modules() -> dict[str, set[str]]:
    """Top-level modules imported by each file of the Lambda's code."""
    found: dict[str, set[str]] = {}
    for path in sorted(LAMBDA_DIR.rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(LAMBDA_DIR))] = names
    return found


def test_the_lambda_imports_no_module_removed_by_python_3_14() -> None:
    used = {f: sorted(n & REMOVED_BY_3_14) for f, n in imported_modules().items()}
    assert {f: n for f, n in used.items() if n} == {}


def test_the_lambda_needs_nothing_beyond_the_standard_library_and_boto3() -> None:
    allowed = set(sys.stdlib_module_names) | RUNTIME_PROVIDES | {"iiif_process_ecs", "__future__"}
    extra = {f: sorted(n - allowed) for f, n in imported_modules().items()}
    assert {f: n for f, n in extra.items() if n} == {}


def test_a_deprecation_raised_from_the_lambda_code_fails_the_tests() -> None:
    import iiif_process_ecs.clients as module

    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit(
            "stand-in for a deprecated call",
            DeprecationWarning,
            filename=module.__file__ or "",
            lineno=1,
            module="iiif_process_ecs.clients",
        )
