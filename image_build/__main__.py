"""``python -m image_build [--arch ARCH] [--if-available]``: build the image, print its size.

Used by ``make image`` (which ``make test`` runs first): builds the stand-in base if it is not
cached, then ``container/`` on it, and prints the image's name, labels and size. With
``--if-available`` it says what is missing and exits 0 when the tools are absent; without it,
that is an error (exit 2).
"""

from __future__ import annotations

import argparse
import sys
import time

from image_build import host_arch, missing_tools
from image_build.image import build, inspect, size


def main(argv: list[str] | None = None) -> int:
    """Build the image for ``--arch`` and report its size; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m image_build", description=__doc__)
    parser.add_argument("--arch", default=host_arch(), choices=["amd64", "arm64"])
    parser.add_argument("--if-available", action="store_true", help="skip (exit 0) if tools lack")
    args = parser.parse_args(argv)
    missing = missing_tools(args.arch)
    if missing:
        print(
            f"image: not built for {args.arch}: {', '.join(missing)} missing here "
            "(.ci/run installs buildah and debootstrap with apt-get, as root); "
            "the in-image tests are skipped",
            file=sys.stderr,
        )
        return 0 if args.if_available else 2
    started = time.monotonic()
    name = build(args.arch)
    labels = inspect(name).get("Labels") or {}
    print(f"image: {name} built in {time.monotonic() - started:.0f} s")
    for key in ("source", "revision", "version"):
        label = f"org.opencontainers.image.{key}"
        print(f"image:   {label}={labels.get(label)}")
    print(f"image:   size {size(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
