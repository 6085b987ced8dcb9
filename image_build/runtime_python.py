"""The Lambda's tests on the Lambda's own Python, in a cached chroot (``make test`` runs it).

The trigger Lambda runs on a newer Python (``stacks.runtime_function.RUNTIME``) than this
machine's (Debian 12: 3.11), and Lambda has retired the runtimes this machine has. Debian's
development suite carries the newer interpreter, so a minimal root filesystem of that suite is
made once with debootstrap, with a venv holding the same pins the tests use here (boto3 from
``lambda_src/requirements.txt``; moto and pytest from ``requirements-dev.txt``).
``tests/lambda_src`` then runs in it against this working tree, bind-mounted at the same path.

``python -m image_build.runtime_python [--if-available] [PYTEST ARGS]``. The root filesystem is
kept under :func:`image_build.cache_dir` (``python3.X-SUITE-ARCH-rN``) and remade when its
recipe or the pins change. It needs root, ``debootstrap``, ``unshare`` and ``chroot``; with
``--if-available`` it says what is missing and exits 0.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from image_build import cache_dir, host_arch
from image_build.base import debootstrap

ROOT = Path(__file__).resolve().parent.parent
# Change RECIPE when the steps below change, so that cached trees are remade.
RECIPE = "1"
# Debian's development suite: the first to carry a new CPython. IIIF_RUNTIME_SUITE overrides it.
DEFAULT_SUITE = "sid"
TOOLS = ("debootstrap", "unshare", "chroot", "mount")
# The Lambda's tests, less the one that drives headless Chromium through Node (it checks the
# HTML a browser renders, which the Python version does not change; it runs in the main suite).
TEST_ARGS = ("tests/lambda_src", "--ignore=tests/lambda_src/test_status_html.py")
# Host files the venv's pip needs: this machine's CA bundle (egress may go through a proxy with
# its own CA) and pip's configuration. Copied in before pip runs; the tests never need them.
PIP_FILES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pip.conf")


def runtime_version() -> str:
    """The Lambda runtime's Python as ``X.Y`` (from the stack's own ``RUNTIME``)."""
    from stacks.runtime_function import RUNTIME

    found = re.fullmatch(r"python(\d+\.\d+)", RUNTIME.name)
    if found is None:
        raise ValueError(f"the Lambda runtime {RUNTIME.name!r} is not a CPython runtime")
    return found[1]


def pins() -> list[str]:
    """The requirement lines the runtime venv installs: the tests' own pins."""
    wanted = {"boto3": ROOT / "lambda_src/requirements.txt", "moto": None, "pytest": None}
    dev = (ROOT / "requirements-dev.txt").read_text().splitlines()
    found: list[str] = []
    for name, source in wanted.items():
        lines = source.read_text().splitlines() if source else dev
        line = next((x for x in lines if re.match(rf"{name}(\[[^]]*\])?==", x.strip())), None)
        if line is None:
            raise ValueError(f"no pinned {name} in {source or 'requirements-dev.txt'}")
        found.append(line.strip())
    return found


def missing_tools() -> list[str]:
    """What making and entering the chroot needs and lacks here (empty: all set)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root")
    return missing


def tree_path(version: str, suite: str, arch: str) -> Path:
    """Where the root filesystem for ``version`` is kept."""
    return cache_dir() / f"python{version}-{suite}-{arch}-r{RECIPE}"


def ensure_tree(version: str, suite: str, log: Callable[[str], None] = print) -> Path:
    """The root filesystem with Python ``version`` and the pinned venv, made if not cached."""
    arch = host_arch()
    tree = tree_path(version, suite, arch)
    stamp = tree / "opt/venv/pins.sha256"
    wanted = hashlib.sha256("\n".join(pins()).encode()).hexdigest()
    if stamp.is_file() and stamp.read_text() == wanted:
        return tree
    if not (tree / f"usr/bin/python{version}").exists():
        _debootstrap(tree, version, suite, arch, log)
    _install_venv(tree, version, log)
    stamp.write_text(wanted)
    return tree


def _debootstrap(
    tree: Path, version: str, suite: str, arch: str, log: Callable[[str], None]
) -> None:
    log(f"runtime-python: making a Debian {suite} tree with python{version} (once per machine)")
    partial = tree.with_name(tree.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    packages = (f"python{version}", f"python{version}-venv", "ca-certificates")
    try:
        debootstrap(suite, partial, arch, packages)
    except RuntimeError as error:
        raise RuntimeError(f"{error}\n(IIIF_RUNTIME_SUITE names another suite)") from error
    shutil.rmtree(tree, ignore_errors=True)
    partial.rename(tree)


def _install_venv(tree: Path, version: str, log: Callable[[str], None]) -> None:
    log(f"runtime-python: installing {', '.join(pins())} for python{version}")
    for host_file in PIP_FILES:
        if Path(host_file).is_file():
            target = tree / host_file.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(host_file, target)
    shutil.copyfile("/etc/resolv.conf", tree / "etc/resolv.conf")
    venv = ["chroot", str(tree), f"/usr/bin/python{version}", "-m", "venv", "--clear", "/opt/venv"]
    subprocess.run(venv, check=True)
    pip = ["chroot", str(tree), *_env(), "/opt/venv/bin/pip", "install", "-q", *pins()]
    subprocess.run(pip, check=True)


def _env() -> list[str]:
    """``env -i`` with only what the chroot's processes need (none of the host's venv)."""
    return [
        "/usr/bin/env",
        "-i",
        "PATH=/opt/venv/bin:/usr/bin:/bin",
        "HOME=/tmp",
        "LANG=C.UTF-8",
        "PIP_DISABLE_PIP_VERSION_CHECK=1",
        "PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
        "PYTHONDONTWRITEBYTECODE=1",
        # The Lambda's package as Lambda loads it, the repository for ``tests.*``, and the
        # container package for the shared log and metrics contracts (stdlib-only modules).
        f"PYTHONPATH={ROOT / 'lambda_src'}:{ROOT}:{ROOT / 'container'}",
    ]


def run_tests(tree: Path, pytest_args: list[str]) -> int:
    """Run pytest in ``tree`` on this working tree; returns pytest's exit status."""
    inner = " && ".join(
        [
            f"mount -t proc proc {tree}/proc",
            f"mount --rbind /dev {tree}/dev",
            f"mount -t tmpfs tmpfs {tree}/tmp",  # noqa: S108 (the chroot's own /tmp)
            # After /tmp: a working tree under /tmp (a fresh clone in CI) must stay visible.
            f"mkdir -p {tree}{ROOT}",
            f"mount --bind {ROOT} {tree}{ROOT}",
            'exec chroot "$0" "$@"',
        ]
    )
    pytest = ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT)]
    script = f'cd "{ROOT}" && python -V && exec "$@"'
    command = [*_env(), "sh", "-c", script, "sh", *pytest, *pytest_args]
    # A private mount namespace: the mounts vanish with the process, whatever happens.
    full = ["unshare", "--mount", "--fork", "sh", "-c", inner, str(tree), *command]
    return subprocess.run(full, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    """Make (or reuse) the runtime tree and run the Lambda's tests in it."""
    parser = argparse.ArgumentParser(
        prog="python -m image_build.runtime_python", description=__doc__
    )
    parser.add_argument("--if-available", action="store_true", help="skip (exit 0) if tools lack")
    args, pytest_args = parser.parse_known_args(argv)
    version = runtime_version()
    missing = missing_tools()
    if missing:
        print(
            f"runtime-python: the Lambda's tests were not run on python{version}: "
            f"{', '.join(missing)} missing here (.ci/run installs debootstrap, as root)",
            file=sys.stderr,
        )
        return 0 if args.if_available else 2
    suite = os.environ.get("IIIF_RUNTIME_SUITE") or DEFAULT_SUITE
    tree = ensure_tree(version, suite)
    print(f"runtime-python: tests/lambda_src on python{version} (Debian {suite})", flush=True)
    return run_tests(tree, pytest_args or list(TEST_ARGS))


if __name__ == "__main__":
    sys.exit(main())
