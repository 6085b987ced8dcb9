"""A stand-in for ``python:3.11-slim-bookworm``, made with debootstrap and cached.

No registry serves base images here, so the base is rebuilt from Debian bookworm: minbase plus
``ca-certificates netbase tzdata python3.11 python3.11-venv``, with ``/usr/local/bin/python3`` and
``python`` pointing at Debian's Python 3.11 so ``python -m venv`` works as in the official image.
Like the official image it has no bytecode for the standard library (the Dockerfile must compile
it), ``LANG=C.UTF-8`` and the same ``PATH``. It differs in being Debian's 3.11.2 build, with no pip
outside a venv.

The result is an image in buildah's storage tagged with :data:`RECIPE`; a second call finds it and
returns at once. The downloaded ``.deb`` files stay in ``~/.cache/iiif-image/debs-bookworm-ARCH``
(``IIIF_IMAGE_CACHE`` overrides the folder), so even a rebuild does not download again.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from image_build import buildah, cache_dir, host_arch

# Change RECIPE when the steps below change, so that cached bases are rebuilt.
RECIPE = "1"
SUITE = "bookworm"
# python3-distutils provides the virtual python3.11-distutils that python3.11-venv depends on,
# which debootstrap does not resolve by itself.
PACKAGES = (
    "ca-certificates",
    "netbase",
    "tzdata",
    "python3.11",
    "python3.11-venv",
    "python3-distutils",
)
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
DEFAULT_MIRROR = "http://deb.debian.org/debian"


def base_name(arch: str) -> str:
    """The stand-in base's image name for ``arch``."""
    return f"localhost/iiif-standin-python:3.11-{SUITE}-{arch}-r{RECIPE}"


def apt_mirror() -> str:
    """The Debian mirror apt uses on this machine (``IIIF_IMAGE_MIRROR`` overrides it)."""
    if os.environ.get("IIIF_IMAGE_MIRROR"):
        return os.environ["IIIF_IMAGE_MIRROR"]
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        text = path.read_text() if path.is_file() else ""
        # deb822 ("URIs: ...") and one-line ("deb URL bookworm main") forms; security is not it.
        for url in re.findall(r"^(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s+)?)(\S+)", text, re.MULTILINE):
            if "security" not in url and "/debian" in url:
                return url
    return DEFAULT_MIRROR


def image_exists(name: str) -> bool:
    """Whether buildah's storage holds an image called ``name``."""
    result = subprocess.run(
        [*buildah(), "inspect", "--type", "image", name], capture_output=True, check=False
    )
    return result.returncode == 0


def ensure_base(arch: str | None = None, log: Callable[[str], None] = print) -> str:
    """The stand-in base image for ``arch`` (default: this machine's), built if not cached."""
    arch = arch or host_arch()
    name = base_name(arch)
    if image_exists(name):
        return name
    log(f"image_build: making the stand-in base {name} with debootstrap (once per machine)")
    with tempfile.TemporaryDirectory(prefix="iiif-standin-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        debootstrap(SUITE, rootfs, arch, PACKAGES)
        _finish_rootfs(rootfs)
        _commit(rootfs, arch, name)
    return name


def debootstrap(suite: str, rootfs: Path, arch: str, packages: Sequence[str]) -> None:
    """A minimal Debian ``suite`` for ``arch`` with ``packages``, in ``rootfs``, from the
    machine's mirror; the ``.deb`` files are kept under :func:`cache_dir` for the next time."""
    debs = cache_dir() / f"debs-{suite}-{arch}"
    debs.mkdir(parents=True, exist_ok=True)
    command = [
        "debootstrap",
        "--variant=minbase",
        f"--arch={arch}",
        f"--include={','.join(packages)}",
        f"--cache-dir={debs}",
        suite,
        str(rootfs),
        apt_mirror(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = rootfs / "debootstrap" / "debootstrap.log"
        tail = detail.read_text()[-3000:] if detail.exists() else result.stderr[-3000:]
        raise RuntimeError(f"debootstrap of {suite} failed (exit {result.returncode}):\n{tail}")


def _finish_rootfs(rootfs: Path) -> None:
    """Make the debootstrapped tree look like the official image where the Dockerfile cares."""
    for link in ("python3", "python"):
        target = rootfs / "usr/local/bin" / link
        target.unlink(missing_ok=True)
        target.symlink_to("/usr/bin/python3.11" if link == "python3" else "python3")
    # The official image deletes the standard library's bytecode; so does the stand-in, so that
    # the Dockerfile's step that compiles it is exercised here.
    subprocess.run(
        [
            "find",
            str(rootfs / "usr/lib/python3.11"),
            "-name",
            "__pycache__",
            "-prune",
            "-exec",
            "rm",
            "-rf",
            "{}",
            "+",
        ],
        check=True,
    )
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
        subprocess.run(["find", str(rootfs / leftover), "-mindepth", "1", "-delete"], check=False)


def _commit(rootfs: Path, arch: str, name: str) -> None:
    """Copy ``rootfs`` into a scratch container and commit it as ``name``."""
    container = _out([*buildah(), "from", "--arch", arch, "scratch"])
    try:
        mount = _out([*buildah(), "mount", container])
        subprocess.run(["cp", "-a", f"{rootfs}/.", mount], check=True)
        config = [*buildah(), "config", "--os", "linux", "--arch", arch, "--cmd", "python3"]
        for key, value in ENV.items():
            config += ["--env", f"{key}={value}"]
        subprocess.run([*config, container], check=True)
        commit = [*buildah(), "commit", "--quiet", container, name]
        subprocess.run(commit, check=True, stdout=subprocess.DEVNULL)
    finally:
        subprocess.run([*buildah(), "rm", container], check=False, stdout=subprocess.DEVNULL)


def _out(command: list[str]) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()
