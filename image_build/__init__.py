"""Build and run the iiif-process image here, without a Docker daemon (development only).

``container/Dockerfile`` is built with buildah (daemonless, ``--isolation chroot``, vfs storage)
on a stand-in for ``python:3.11-slim-bookworm`` made with debootstrap, because no registry
serves base images here. The built image is then run the way a container runtime would: its root
filesystem mounted, a new PID and mount namespace (so the tool is PID 1), ``/proc`` and ``/dev``
provided, the image's user, working directory and environment, and nothing else.

- :mod:`image_build.base`: the stand-in base, cached in buildah's storage (and its ``.deb``
  downloads under ``~/.cache/iiif-image``) so that it is made once per machine.
- :mod:`image_build.image`: ``buildah bud`` of ``container/``, the image's size, and running a
  command in it.
- ``python -m image_build``: the same from the command line (see ``--help``).

Needs root, ``buildah`` and ``debootstrap`` (``.ci/run`` installs them); arm64 also needs
``qemu-user-static`` and ``binfmt-support``. :func:`missing_tools` names what is absent.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

TOOLS = ("buildah", "debootstrap", "unshare", "chroot")


def missing_tools(arch: str | None = None) -> list[str]:
    """What building and running the image for ``arch`` needs and lacks here (empty: all set)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root")
    if arch is not None and arch != host_arch():
        qemu = QEMU_NAMES[arch]
        if shutil.which(f"qemu-{qemu}-static") is None:
            missing.append("qemu-user-static")
        elif not _binfmt_enabled(qemu):
            missing.append(f"binfmt_misc entry qemu-{qemu} (update-binfmts --enable qemu-{qemu})")
    return missing


def _binfmt_enabled(qemu: str) -> bool:
    """Whether the kernel runs ``qemu``'s binaries through qemu-user-static, also in a chroot."""
    entry = Path(f"/proc/sys/fs/binfmt_misc/qemu-{qemu}")
    text = entry.read_text() if entry.exists() else ""
    return text.startswith("enabled") and "flags: " in text and "F" in text.split("flags: ")[1]


QEMU_NAMES = {"amd64": "x86_64", "arm64": "aarch64"}


def host_arch() -> str:
    """The machine's architecture in Debian/OCI spelling (amd64, arm64)."""
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def cache_dir() -> Path:
    """Where the stand-in base, layers and downloads are kept between runs: ``IIIF_IMAGE_CACHE``
    or ``~/.cache/iiif-image``."""
    return Path(os.environ.get("IIIF_IMAGE_CACHE") or Path.home() / ".cache" / "iiif-image")


@functools.cache
def buildah() -> list[str]:
    """``buildah`` with this project's own storage under :func:`cache_dir` (so nothing else's
    images are touched): overlay when the kernel allows it (layers are cheap), else vfs, which
    works everywhere but copies the whole tree for every layer. ``STORAGE_DRIVER`` forces one."""
    driver = os.environ.get("STORAGE_DRIVER") or ("overlay" if _overlay_works() else "vfs")
    root = cache_dir() / f"storage-{driver}"
    return ["buildah", "--storage-driver", driver, "--root", str(root), "--runroot", f"{root}-run"]


def _overlay_works() -> bool:
    with tempfile.TemporaryDirectory(prefix="iiif-overlay-") as tmp:
        parts = {name: Path(tmp, name) for name in ("lower", "upper", "work", "merged")}
        for path in parts.values():
            path.mkdir()
        options = "lowerdir={lower},upperdir={upper},workdir={work}".format(**parts)
        mount = ["mount", "-t", "overlay", "overlay", "-o", options, str(parts["merged"])]
        if subprocess.run(mount, capture_output=True, check=False).returncode != 0:
            return False
        subprocess.run(["umount", str(parts["merged"])], check=False)
        return True
