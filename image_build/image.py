"""Build ``container/`` with buildah, measure it, and run commands in it as a container would.

:func:`build` is ``buildah bud --isolation chroot --layers`` on the stand-in base
(:mod:`image_build.base`), with the OCI label arguments filled from git and this machine's CA
bundle and pip config mounted for the build's pip (they stay out of the image). Layers are cached,
so a rebuild after a code change takes seconds.

:func:`run` runs a command in a fresh container of the image the way a runtime does: in new PID and
mount namespaces (the command is PID 1, ``/proc`` is the container's own), with ``/dev`` and any
extra folders bound in, as the image's user, in its working directory, with exactly the image's
environment plus what the caller adds.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from image_build import buildah, host_arch
from image_build.base import ensure_base

REPO = Path(__file__).resolve().parents[1]
CONTEXT = REPO / "container"
# Mounted into the build for pip when present (the machine's TLS interception and index settings).
BUILD_MOUNTS = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pip.conf")


def image_name(arch: str) -> str:
    """The tag :func:`build` gives the image for ``arch``."""
    return f"localhost/iiif-process:test-{arch}"


def _git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def build(
    arch: str | None = None, log: Callable[[str], None] = print, context: Path = CONTEXT
) -> str:
    """Build ``context`` (``container/``) for ``arch`` (default: this machine's); returns the
    image name."""
    arch = arch or host_arch()
    name = image_name(arch)
    command = [
        *buildah(),
        "bud",
        "--isolation",
        "chroot",
        "--layers",
        "--quiet",
        "--platform",
        f"linux/{arch}",
        "--build-arg",
        f"PYTHON_IMAGE={ensure_base(arch, log)}",
        "--build-arg",
        f"REVISION={_git('rev-parse', 'HEAD') or 'unknown'}",
        "--build-arg",
        f"SOURCE={_git('remote', 'get-url', 'origin') or 'unknown'}",
        "-t",
        name,
    ]
    for path in BUILD_MOUNTS:
        if Path(path).is_file():
            command += ["-v", f"{path}:{path}:ro"]
    log(f"image_build: building {name} from {context}")
    subprocess.run([*command, str(context)], check=True, stdout=subprocess.DEVNULL)
    return name


def inspect(name: str) -> dict:
    """The image's OCI configuration (``Env``, ``User``, ``WorkingDir``, ``Labels``, ...)."""
    out = subprocess.run(
        [*buildah(), "inspect", "--type", "image", name], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)["OCIv1"]["config"]


@dataclass(frozen=True)
class Size:
    """An image's size: its files as unpacked, and its layers gzip-compressed as pushed."""

    uncompressed: int
    compressed: int

    def __str__(self) -> str:
        mb = 1e6
        return f"{self.uncompressed / mb:.0f} MB uncompressed, {self.compressed / mb:.0f} MB gzip"


def size(name: str) -> Size:
    """Measure ``name``: unpacked bytes of its files, and the gzip layers a registry would store."""
    with mounted(name) as root:
        out = subprocess.run(
            ["du", "-s", "-b", "-x", root], check=True, capture_output=True, text=True
        ).stdout
        uncompressed = int(out.split()[0])
    with tempfile.TemporaryDirectory(prefix="iiif-image-oci-") as tmp:
        subprocess.run(
            [
                *buildah(),
                "push",
                "--quiet",
                "--compression-format",
                "gzip",
                name,
                f"oci:{tmp}/layout",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        index = json.loads(Path(tmp, "layout", "index.json").read_text())
        digest = index["manifests"][0]["digest"].split(":", 1)[1]
        manifest = json.loads(Path(tmp, "layout", "blobs", "sha256", digest).read_text())
    compressed = sum(layer["size"] for layer in manifest["layers"]) + manifest["config"]["size"]
    return Size(uncompressed, compressed)


@contextmanager
def mounted(name: str) -> Iterator[str]:
    """A fresh container of image ``name``, its root filesystem mounted; removed afterwards."""
    container = subprocess.run(
        [*buildah(), "from", "--quiet", name], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        root = subprocess.run(
            [*buildah(), "mount", container], check=True, capture_output=True, text=True
        ).stdout.strip()
        yield root
    finally:
        subprocess.run([*buildah(), "rm", container], check=False, capture_output=True)


def command_in(
    root: str,
    config: Mapping,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    binds: Mapping[str, str] | None = None,
) -> list[str]:
    """The host command that runs ``argv`` in the container whose root is ``root``, as PID 1.

    ``config`` is the image's (:func:`inspect`); ``env`` is added to its ``Env``; ``binds`` maps
    host folders to paths in the container. Run it with ``subprocess``; the process it starts
    becomes the container's PID 1 after ``unshare`` forks (:func:`pid_one`).
    """
    environ = [*config.get("Env", []), *(f"{k}={v}" for k, v in (env or {}).items())]
    user = config.get("User") or "0:0"
    workdir = config.get("WorkingDir") or "/"
    mounts = [f"mount --rbind /dev {shlex.quote(root + '/dev')}"]
    for host, inside in (binds or {}).items():
        target = shlex.quote(root + inside)
        mounts.append(f"mkdir -p {target} && mount --bind {shlex.quote(host)} {target}")
    inner = [
        "chroot",
        f"--userspec={user}",
        root,
        "/bin/sh",
        "-c",
        'cd "$0" && exec /usr/bin/env -i "$@"',
        workdir,
        *environ,
        *argv,
    ]
    script = " && ".join([*mounts, "exec " + shlex.join(inner)])
    # A private mount namespace: the binds and /proc vanish with the container. --kill-child stops
    # the container if the runner is killed.
    return [
        "unshare",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount",
        "--propagation",
        "private",
        f"--mount-proc={root}/proc",
        "/bin/sh",
        "-c",
        script,
    ]


def pid_one(unshare_pid: int) -> int:
    """The host PID of the container's PID 1 started by ``unshare`` with PID ``unshare_pid``."""
    children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"unshare {unshare_pid} has children {children}, expected one")
    return int(children[0])


def run(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    binds: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in a fresh container of image ``name``; returns its exit status and output."""
    config = inspect(name)
    with mounted(name) as root:
        return subprocess.run(
            command_in(root, config, argv, env, binds),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
