"""``iiif-process``: go-iiif's command line (the seed's 2019 form and v8's form).

Seed:  iiif-process -config PATH -instructions PATH [-report] [-report-name NAME] -uri URI ...
v8:    iiif-process [-config-source URI -config-name NAME] [-instructions-source URI
       -instructions-name NAME] [-config-images-source-uri URI] [-config-derivatives-cache-uri URI]
       [-report] [-report-template T] [-report-bucket-uri URI] [-verbose] URI ...

Flags are Go-style: ``-flag`` or ``--flag``, ``-flag value`` or ``-flag=value``; parsing stops at
the first argument that is not a flag (or after ``--``). Stdout gets one JSON object keyed by URI;
logs go to stderr as JSON lines. Exit status: 0 every URI succeeded, 1 some failed, 2 usage error,
143 stopped by SIGTERM (every URI still gets its entry; those not finished say "abandoned").

With IIIF_PROCESS_LEDGER_TABLE set, each image's outcome is also written to that DynamoDB table
as it finishes (docs/contracts.md, "The ledger").

Deep zoom (-tiles, off by default as go-iiif; docs/deep-zoom-task.md): each image also gets IIIF
Level 0 tiles, info.json and a IIIF Presentation 3 manifest.json under its key, made from the
decode its derivatives come from, with ids under -public-base-url; an image's objects are then
written -publish-concurrency at a time.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from . import arguments, metrics
from .arguments import Arguments, UsageError, count, environment_defaults, setting
from .batch import process_uris
from .config import (
    DEFAULT_IIIF_API_VERSION,
    DEFAULT_TILE_SIZE,
    MAX_TILE_SIZE,
    MIN_TILE_SIZE,
    Config,
    DeepZoom,
    parse_config,
    parse_go_bool,
    parse_store_uri,
    with_overrides,
)
from .defaults import default_instructions
from .documents import load_config_document, load_named_document
from .errors import ConfigError, IIIFProcessError
from .ledger import Ledger
from .logs import setup_logging
from .params import Instruction, parse_instructions
from .pool import DEFAULT_STOP_SECONDS, StopSignal
from .process import ReportOptions
from .publish import DEFAULT_CONCURRENCY, MAX_CONCURRENCY
from .report import REPORT_TEMPLATE, SEED_REPORT_NAME
from .stores import open_store

log = logging.getLogger("iiif_process.process_cli")

# name → (takes a value, help)
FLAGS: dict[str, tuple[bool, str]] = {
    "config": (True, "path of a go-iiif config file (seed form)"),
    "instructions": (True, "path of a go-iiif instructions file (seed form)"),
    "uri": (True, "a source key to process; repeatable (seed form)"),
    "report-name": (
        True,
        f"report file name next to the derivatives (seed; default {SEED_REPORT_NAME})",
    ),
    "config-source": (True, "where the config lives: file:///DIR, s3blob://BUCKET, defaults://"),
    "config-name": (True, "config file name in -config-source (default config.json)"),
    "instructions-source": (
        True,
        "where the instructions live: file:///DIR, s3blob://, defaults://",
    ),
    "instructions-name": (True, "instructions file name (default instructions.json)"),
    "config-images-source-uri": (
        True,
        "replaces the config's images.source (env IIIF_CONFIG_IMAGES_SOURCE_URI)",
    ),
    "config-derivatives-cache-uri": (
        True,
        "replaces the config's derivatives.cache (env IIIF_CONFIG_DERIVATIVES_CACHE_URI)",
    ),
    "report-template": (True, f"report name template (v8; default {REPORT_TEMPLATE})"),
    "report-bucket-uri": (True, "store reports here instead of next to the derivatives"),
    "max-pixels": (True, "refuse images with more pixels (env IIIF_PROCESS_MAX_PIXELS)"),
    "max-source-bytes": (
        True,
        "refuse source objects larger than this, from their size before reading "
        "(env IIIF_PROCESS_MAX_SOURCE_BYTES; default 4294967296, 0 = no limit)",
    ),
    "workers": (True, "URIs processed in parallel (env IIIF_PROCESS_WORKERS; default: CPUs)"),
    "stop-seconds": (
        True,
        "on SIGTERM, how long images in progress may go on before they are abandoned "
        f"(env IIIF_PROCESS_STOP_SECONDS; default {DEFAULT_STOP_SECONDS:g})",
    ),
    "tiles": (
        False,
        "deep zoom: also write IIIF Level 0 tiles, info.json and manifest.json per image "
        "(env IIIF_PROCESS_TILES, true/false; default false)",
    ),
    "iiif-api-version": (
        True,
        "Image API of info.json and tile paths with -tiles: 2 or 3 "
        f"(env IIIF_PROCESS_IIIF_API_VERSION; default {DEFAULT_IIIF_API_VERSION})",
    ),
    "tile-size": (
        True,
        f"tile width and height in pixels with -tiles, {MIN_TILE_SIZE}..{MAX_TILE_SIZE} "
        f"(env IIIF_PROCESS_TILE_SIZE; default {DEFAULT_TILE_SIZE})",
    ),
    "public-base-url": (
        True,
        "http(s) URL the derivatives are served under; info.json's id is URL/KEY "
        "(env IIIF_PROCESS_PUBLIC_BASE_URL; required with -tiles)",
    ),
    "publish-concurrency": (
        True,
        f"objects of one image written at once, 1..{MAX_CONCURRENCY} "
        f"(env IIIF_PROCESS_PUBLISH_CONCURRENCY; default {DEFAULT_CONCURRENCY} with -tiles, "
        "else 1: in order, as go-iiif)",
    ),
    "report": (False, "store a report per image"),
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


def _seconds_option(args: Arguments, env: Mapping[str, str], name: str, default: float) -> float:
    value = args.get(name, env.get(name))
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"-{name} must be a number of seconds, not {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"-{name} must be a finite number of seconds >= 0, not {value!r}")
    return number


def _ranged(args: Arguments, env: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    value, origin = setting(args, env, name)
    if value is None:
        return None
    try:
        number = int(value.strip())
    except ValueError:
        raise ConfigError(f"{origin} must be a whole number, not {value!r}") from None
    if not low <= number <= high:
        raise ConfigError(f"{origin} must be from {low} to {high}, not {value!r}")
    return number


def _base_url(value: str, origin: str) -> str:
    """An http(s) base URL without query, fragment or trailing slash (ids are BASE/KEY)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{origin} must be an http:// or https:// URL, not {value!r}")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ConfigError(f"{origin} must have no query or fragment, not {value!r}")
    return value.strip().rstrip("/")


def deep_zoom_settings(args: Arguments, env: Mapping[str, str]) -> tuple[DeepZoom, int | None]:
    """The deep-zoom settings (flags over the environment) and the publishing concurrency, each
    checked: a bad value is a :class:`ConfigError` naming the variable or flag and the value."""
    text, origin = setting(args, env, "tiles")
    tiles = parse_go_bool(text.strip(), origin) if text is not None else False
    version = _ranged(args, env, "iiif-api-version", 2, 3)
    size = _ranged(args, env, "tile-size", MIN_TILE_SIZE, MAX_TILE_SIZE)
    concurrency = _ranged(args, env, "publish-concurrency", 1, MAX_CONCURRENCY)
    url, origin = setting(args, env, "public-base-url")
    base = _base_url(url, origin) if url is not None else ""
    settings = DeepZoom(
        tiles=tiles,
        api_version=version or DEFAULT_IIIF_API_VERSION,
        tile_size=size or DEFAULT_TILE_SIZE,
        public_base_url=base,
    )
    return settings, concurrency


def load_settings(
    args: Arguments, env: Mapping[str, str]
) -> tuple[Config, tuple[Instruction, ...], ReportOptions]:
    """Read the config and instructions named on the command line, with every override."""
    config_data = load_config_document(args, env)
    instruction_data = load_named_document(
        args, "instructions", "instructions.json", default_instructions()
    )
    deep_zoom, concurrency = deep_zoom_settings(args, env)
    config = with_overrides(
        parse_config(config_data),
        max_pixels=count(args, env, "max-pixels"),
        workers=count(args, env, "workers"),
        max_source_bytes=count(args, env, "max-source-bytes"),
        deep_zoom=deep_zoom,
        publish_concurrency=concurrency,
    )
    try:
        instructions = parse_instructions(instruction_data, config.disabled_features)
    except IIIFProcessError as exc:
        raise ConfigError(f"invalid instructions: {exc}") from None
    if args.get("report-name"):
        template = args.get("report-name") or SEED_REPORT_NAME
    elif args.get("config"):
        template = SEED_REPORT_NAME
    else:
        template = args.get("report-template", REPORT_TEMPLATE) or REPORT_TEMPLATE
    report_store = None
    if args.get("report-bucket-uri"):
        report_store = open_store(parse_store_uri(args.get("report-bucket-uri") or ""))
    report = ReportOptions(enabled=args.flag("report"), name_template=template, store=report_store)
    return config, instructions, report


# Exit status after SIGTERM (128 + 15, what a shell reports for a process killed by it).
STOPPED = 143
# After SIGTERM, how long the ledger's last writes may take before the output is printed.
LEDGER_FLUSH_SECONDS = 3.0


def run(
    argv: Sequence[str], environ: Mapping[str, str], stop: StopSignal | None = None
) -> tuple[int, dict[str, Any]]:
    """Run the tool; returns the exit status and the stdout object (keyed by URI). ``stop`` is
    set by SIGTERM (see :func:`main`)."""
    args = parse_args(argv)
    uris = list(args.values.get("uri", [])) + args.positional
    if not uris:
        raise UsageError("no URIs given")
    env = environment_defaults(environ)
    ledger = Ledger(env["ledger-table"], env.get("recipe")) if env.get("ledger-table") else None
    try:
        config, instructions, report = load_settings(args, env)
        stop_seconds = _seconds_option(args, env, "stop-seconds", DEFAULT_STOP_SECONDS)
    except IIIFProcessError as exc:
        log.error("cannot start", extra={"error": str(exc)})
        results = {uri: {"origin": uri, "error": str(exc)} for uri in dict.fromkeys(uris)}
        # A bad config baked into a new image fails every image: the failure-rate alarm must see it.
        metrics.emit({"ImagesFailed": len(results)}, reason="other")
        if ledger is not None:
            for uri in results:
                ledger.failed(uri, f"cannot start: {exc}", retryable=False)
            ledger.close(LEDGER_FLUSH_SECONDS)
        return 1, results
    log.info(
        "processing",
        extra={
            "uris": len(uris),
            "source": config.source.describe(),
            "derivatives": config.derivatives.describe(),
            "instructions": [i.label for i in instructions],
        },
    )
    try:
        results = process_uris(
            uris,
            config,
            instructions,
            open_store(config.source),
            open_store(config.derivatives),
            report,
            stop=stop,
            ledger=ledger,
            stop_seconds=stop_seconds,
        )
    finally:
        if ledger is not None:
            ledger.close(LEDGER_FLUSH_SECONDS if stop is not None and stop.requested else None)
    failed = sum(1 for r in results.values() if "error" in r)
    stopped = stop is not None and stop.requested
    log.info("done", extra={"succeeded": len(results) - failed, "failed": failed})
    if stopped:
        log.warning("stopped by SIGTERM", extra={"exit": STOPPED})
        return STOPPED, results
    return (1 if failed else 0), results


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point of ``iiif-process``."""
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
    # Fargate stops a task with SIGTERM (then SIGKILL after its stop timeout). Installed
    # explicitly: as PID 1 in a container the kernel ignores a signal that has no handler.
    stop = StopSignal()
    stop.install()
    try:
        status, results = run(argv, os.environ, stop)
    except UsageError as exc:
        print(f"{exc}\n\n{usage()}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
    sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
