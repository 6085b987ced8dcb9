"""``iiif-tile-seed``: go-iiif's tile seeder. IIIF Level 0 tiles and ``info.json`` per image.

    iiif-tile-seed [-config-source URI -config-name NAME] [-config-images-source-uri URI]
        [-config-derivatives-cache-uri URI] [-endpoint URL] [-api-version 2|3] [-tile-size N]
        [-scale-factors auto|8,4,2,1] [-format jpg] [-quality default] [-no-extension]
        [-refresh] [-processes N] [-mode cli|csv] SOURCE[,TARGET] ...

For each identifier it reads SOURCE from the images source and writes under TARGET (default
SOURCE) in the derivatives cache: the tiles, the sizes listed in info.json, the full-size image
(``full/full/0/default.jpg`` for Image API 2, ``full/max/0/default.jpg`` for 3) and, last,
``info.json`` whose id is ``{endpoint}/{TARGET}``. An image whose ``info.json`` already exists is
skipped unless ``-refresh``. With ``-mode csv`` each argument is a local CSV file with the columns
``source_filename`` and ``target_filename`` (target optional). Flags are Go-style (``-f v``,
``-f=v``, ``--f``). Stdout gets one JSON object keyed by SOURCE; logs go to stderr as JSON lines.
Exit status: 0 every image seeded or skipped, 1 some failed, 2 usage error.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import posixpath
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from . import arguments
from .arguments import Arguments, UsageError, count, environment_defaults
from .config import Config, parse_config, with_overrides
from .documents import load_config_document
from .errors import IIIFProcessError
from .logs import setup_logging
from .stores import open_store, safe_key
from .tiles import (
    DEFAULT_API_VERSION,
    DEFAULT_TILE_SIZE,
    TileOptions,
    already_seeded,
    seed_image,
)
from .transform import configure_vips

log = logging.getLogger("iiif_process.tile_seed")

DEFAULT_ENDPOINT = "http://localhost:8080"  # go-iiif's default
DEFAULT_PROCESSES = 16
MAX_TILE_SIZE = 4096

# name → (takes a value, help)
FLAGS: dict[str, tuple[bool, str]] = {
    "config-source": (
        True,
        "where the config lives: file:///DIR, s3blob://BUCKET, defaults:// (default defaults://)",
    ),
    "config-name": (True, "config file name in -config-source (default config.json)"),
    "config-images-source-uri": (
        True,
        "replaces the config's images.source (env IIIF_CONFIG_IMAGES_SOURCE_URI)",
    ),
    "config-derivatives-cache-uri": (
        True,
        "replaces the config's derivatives.cache, where tiles go "
        "(env IIIF_CONFIG_DERIVATIVES_CACHE_URI)",
    ),
    "endpoint": (
        True,
        f"public base URL of the tiles; info.json's id is ENDPOINT/TARGET "
        f"(default {DEFAULT_ENDPOINT})",
    ),
    "api-version": (
        True,
        f"IIIF Image API of info.json and tile paths: 2 or 3 (default {DEFAULT_API_VERSION})",
    ),
    "tile-size": (True, f"tile width and height in pixels (default {DEFAULT_TILE_SIZE})"),
    "scale-factors": (
        True,
        "comma-separated scale factors, or auto = 1, 2, 4, ... until the image fits one tile "
        "(default auto; go-iiif's is 8,4,2,1)",
    ),
    "format": (True, "tile format: jpg, png, webp, tif, gif (default jpg)"),
    "quality": (True, "tile quality: default, color, gray, bitonal (default default)"),
    "no-extension": (False, "drop the file extension from TARGET (photo.jpg -> photo)"),
    "refresh": (False, "seed again images whose info.json already exists"),
    "processes": (
        True,
        f"objects of one image encoded and written at once (default {DEFAULT_PROCESSES})",
    ),
    "mode": (True, "cli (identifiers as arguments) or csv (CSV files as arguments); default cli"),
    "verbose": (False, "debug logging"),
    "h": (False, "print this help"),
    "help": (False, "print this help"),
}


def usage() -> str:
    """The help text."""
    return arguments.usage(__doc__, FLAGS)


def parse_args(argv: Sequence[str]) -> Arguments:
    """This tool's command line (:func:`~.arguments.parse` with :data:`FLAGS`)."""
    return arguments.parse(argv, FLAGS)


def _int(args: Arguments, name: str, default: int, low: int, high: int) -> int:
    text = args.get(name)
    if text is None:
        return default
    try:
        number = int(text)
    except ValueError:
        raise UsageError(f"-{name} must be an integer, not {text!r}") from None
    if not low <= number <= high:
        raise UsageError(f"-{name} must be between {low} and {high}, not {number}")
    return number


def tile_options(args: Arguments) -> TileOptions:
    """The tile settings of the command line, checked."""
    version = args.get("api-version", str(DEFAULT_API_VERSION))
    if version not in ("2", "3"):
        raise UsageError(f"-api-version must be 2 or 3, not {version!r}")
    text = args.get("scale-factors", "auto").strip()
    factors: tuple[int, ...] = ()
    if text != "auto":
        try:
            factors = tuple(int(part) for part in text.split(","))
        except ValueError:
            raise UsageError(
                f"-scale-factors must be auto or integers separated by commas, not {text!r}"
            ) from None
        if not factors or any(f < 1 for f in factors):
            raise UsageError(f"-scale-factors must be positive integers, not {text!r}")
    try:
        return TileOptions(
            api_version=int(version),
            tile_size=_int(args, "tile-size", DEFAULT_TILE_SIZE, 1, MAX_TILE_SIZE),
            scale_factors=factors,
            format=args.get("format", "jpg"),
            quality=args.get("quality", "default"),
        )
    except IIIFProcessError as exc:
        raise UsageError(str(exc)) from None


def identifiers(args: Arguments) -> list[tuple[str, str]]:
    """(SOURCE, TARGET) pairs from the positional arguments (``-mode cli``) or the CSV files
    they name (``-mode csv``).

    In cli mode an argument with one comma is ``SOURCE,TARGET``; a key that itself holds a comma
    is given through a CSV file.
    """
    mode = args.get("mode", "cli")
    pairs: list[tuple[str, str]] = []
    if mode == "cli":
        for argument in args.positional:
            source, comma, target = argument.partition(",")
            if comma and "," in target:
                raise UsageError(f"identifier {argument!r} has more than one comma (use -mode csv)")
            pairs.append((source, target or source))
    elif mode == "csv":
        for path in args.positional:
            pairs += _csv_identifiers(path)
    else:
        raise UsageError(f"-mode must be cli or csv, not {mode!r}")
    if args.flag("no-extension"):
        pairs = [(source, _without_extension(target)) for source, target in pairs]
    return pairs


def _csv_identifiers(path: str) -> list[tuple[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path} is not a UTF-8 CSV file: {exc}") from None
    if rows and "source_filename" not in rows[0]:
        raise UsageError(f"{path} has no source_filename column")
    return [
        (row["source_filename"] or "", row.get("target_filename") or row["source_filename"] or "")
        for row in rows
    ]


def _without_extension(target: str) -> str:
    head, tail = posixpath.split(target)
    stem, ext = posixpath.splitext(tail)
    return posixpath.join(head, stem) if ext and stem else target


def load_config(args: Arguments, env: Mapping[str, str]) -> Config:
    """The go-iiif config named on the command line, with the store and limit overrides."""
    config = parse_config(load_config_document(args, env))
    return with_overrides(
        config,
        max_pixels=count(args, env, "max-pixels"),
        max_source_bytes=count(args, env, "max-source-bytes"),
    )


def run(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    """Run the seeder; returns the exit status and the stdout object (keyed by SOURCE)."""
    args = parse_args(argv)
    options = tile_options(args)
    workers = _int(args, "processes", DEFAULT_PROCESSES, 1, 256)
    endpoint = args.get("endpoint", DEFAULT_ENDPOINT)
    if not endpoint.startswith(("http://", "https://")):
        raise UsageError(f"-endpoint must be an http:// or https:// URL, not {endpoint!r}")
    pairs = identifiers(args)
    if not pairs:
        raise UsageError("no identifiers given")
    env = environment_defaults(environ)
    results: dict[str, Any] = {}
    try:
        config = load_config(args, env)
        source, store = open_store(config.source), open_store(config.derivatives)
    except IIIFProcessError as exc:
        log.error("cannot start", extra={"error": str(exc)})
        return 1, {src: {"origin": src, "error": str(exc)} for src, _ in pairs}
    configure_vips()
    for src, target in pairs:
        try:
            safe_key(src)
            safe_key(target)
            if not args.flag("refresh") and already_seeded(store, target):
                results[src] = {
                    "origin": src,
                    "target": target,
                    "skipped": "already seeded: info.json exists (-refresh to redo)",
                }
                continue
            results[src] = seed_image(
                src, target, source, store, config, options, endpoint, workers
            )
        except IIIFProcessError as exc:
            log.error("failed", extra={"uri": src, "target": target, "error": str(exc)})
            results[src] = {"origin": src, "target": target, "error": str(exc)}
    failed = sum(1 for r in results.values() if "error" in r)
    return (1 if failed else 0), results


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point of ``iiif-tile-seed``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(argv)
    except UsageError as exc:
        print(f"{exc}\n\n{usage()}", file=sys.stderr)
        return 2
    if args.flag("h") or args.flag("help"):
        print(usage())
        return 0
    setup_logging(args.flag("verbose"))
    try:
        status, results = run(argv, os.environ)
    except UsageError as exc:
        print(f"{exc}\n\n{usage()}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
    sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
