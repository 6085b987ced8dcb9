"""``iiif-process``: go-iiif's command line (the seed's 2019 form and v8's form).

Seed:  iiif-process -config PATH -instructions PATH [-report] [-report-name NAME] -uri URI ...
v8:    iiif-process [-config-source URI -config-name NAME] [-instructions-source URI
       -instructions-name NAME] [-config-images-source-uri URI] [-config-derivatives-cache-uri URI]
       [-report] [-report-template T] [-report-bucket-uri URI] [-verbose] URI ...

Flags are Go-style: ``-flag`` or ``--flag``, ``-flag value`` or ``-flag=value``; parsing stops at
the first argument that is not a flag (or after ``--``). Stdout gets one JSON object keyed by URI;
logs go to stderr as JSON lines. Exit status: 0 every URI succeeded, 1 some failed, 2 usage error.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .config import Config, parse_config, parse_store_uri, with_overrides
from .defaults import DEFAULTS_SCHEME, default_config, default_instructions
from .errors import ConfigError, IIIFProcessError
from .logs import setup_logging
from .params import Instruction, parse_instructions
from .process import ReportOptions, process_uris
from .report import REPORT_TEMPLATE, SEED_REPORT_NAME
from .stores import open_store

log = logging.getLogger("iiif_process.cli")

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
    "report": (False, "store a report per image"),
    "verbose": (False, "debug logging"),
    "h": (False, "print this help"),
    "help": (False, "print this help"),
}
_TRUE = {"1", "t", "true", "T", "TRUE", "True"}
_FALSE = {"0", "f", "false", "F", "FALSE", "False"}


class UsageError(Exception):
    """The command line is malformed."""


@dataclass
class Arguments:
    """Parsed command line: flag values (lists for repeated flags) and positional URIs."""

    values: dict[str, list[str]] = field(default_factory=dict)
    positional: list[str] = field(default_factory=list)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The last value of a flag, or ``default``."""
        return self.values[name][-1] if name in self.values else default

    def flag(self, name: str) -> bool:
        """A boolean flag's value."""
        value = self.get(name)
        return value is not None and value in _TRUE


def usage() -> str:
    """The help text."""
    lines = [__doc__.strip(), "", "Flags:"]
    for name, (takes, text) in FLAGS.items():
        lines.append(f"  -{name}{' VALUE' if takes else ''}\n        {text}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> Arguments:
    """Parse Go-style flags (``-f``, ``--f``, ``-f v``, ``-f=v``) then positional URIs."""
    args = Arguments()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            args.positional.extend(argv[i + 1 :])
            break
        if not arg.startswith("-") or arg == "-":
            args.positional.extend(argv[i:])
            break
        name, has_value, value = arg.lstrip("-").partition("=")
        if arg.startswith("---") or name not in FLAGS:
            raise UsageError(f"flag provided but not defined: {arg.split('=', 1)[0]}")
        takes_value, _ = FLAGS[name]
        if takes_value:
            if not has_value:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: -{name}")
                value = argv[i]
        elif not has_value:
            value = "true"
        elif value not in _TRUE | _FALSE:
            raise UsageError(f"invalid boolean value {value!r} for -{name}")
        args.values.setdefault(name, []).append(value)
        i += 1
    return args


def environment_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """The one place the environment is read: defaults for flags the command line did not set."""
    names = {
        "config-images-source-uri": "IIIF_CONFIG_IMAGES_SOURCE_URI",
        "config-derivatives-cache-uri": "IIIF_CONFIG_DERIVATIVES_CACHE_URI",
        "max-pixels": "IIIF_PROCESS_MAX_PIXELS",
        "max-source-bytes": "IIIF_PROCESS_MAX_SOURCE_BYTES",
        "workers": "IIIF_PROCESS_WORKERS",
    }
    return {flag: environ[var] for flag, var in names.items() if environ.get(var)}


def _read_json(location: str, data: bytes) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{location} is not valid JSON: {exc}") from None


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None


def load_document(source: str, name: str, defaults: Any) -> Any:
    """Load a JSON document from ``defaults://``, a directory (``file:///DIR`` or a path) or a
    bucket (``s3blob://BUCKET?region=R&prefix=P``, ``s3://BUCKET/PREFIX``)."""
    if source.startswith(DEFAULTS_SCHEME):
        return defaults
    scheme = urlsplit(source).scheme
    if scheme in ("s3", "s3blob"):
        try:
            data = open_store(parse_store_uri(source)).read(name)
        except IIIFProcessError as exc:
            raise ConfigError(f"cannot read {name} from {source}: {exc}") from None
        return _read_json(f"{source} {name}", data)
    if scheme == "file":
        source = urlsplit(source).path
    elif scheme:
        raise ConfigError(f"unsupported source {source!r} for {name}")
    path = os.path.join(source, name)
    return _read_json(path, _read_file(path))


def _int_option(args: Arguments, env: Mapping[str, str], name: str) -> int | None:
    value = args.get(name, env.get(name))
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"-{name} must be an integer, not {value!r}") from None
    if number < 0:
        raise ConfigError(f"-{name} must not be negative, not {value!r}")
    return number


def load_settings(
    args: Arguments, env: Mapping[str, str]
) -> tuple[Config, tuple[Instruction, ...], ReportOptions]:
    """Read the config and instructions named on the command line, with every override."""
    if args.get("config"):
        config_data = _read_json(args.get("config") or "", _read_file(args.get("config") or ""))
    else:
        config_data = load_document(
            args.get("config-source", DEFAULTS_SCHEME) or DEFAULTS_SCHEME,
            args.get("config-name", "config.json") or "config.json",
            default_config(),
        )
    if args.get("instructions"):
        path = args.get("instructions") or ""
        instruction_data = _read_json(path, _read_file(path))
    else:
        instruction_data = load_document(
            args.get("instructions-source", DEFAULTS_SCHEME) or DEFAULTS_SCHEME,
            args.get("instructions-name", "instructions.json") or "instructions.json",
            default_instructions(),
        )
    source_uri = args.get("config-images-source-uri", env.get("config-images-source-uri"))
    cache_uri = args.get("config-derivatives-cache-uri", env.get("config-derivatives-cache-uri"))
    if isinstance(config_data, dict):
        # An overridden store block is replaced before parsing: a placeholder there is no error.
        config_data = dict(config_data)
        if source_uri:
            config_data["images"] = {
                **(config_data.get("images") or {}),
                "source": {"uri": source_uri},
            }
        if cache_uri:
            config_data["derivatives"] = {
                **(config_data.get("derivatives") or {}),
                "cache": {"uri": cache_uri},
            }
    config = with_overrides(
        parse_config(config_data),
        max_pixels=_int_option(args, env, "max-pixels"),
        workers=_int_option(args, env, "workers"),
        max_source_bytes=_int_option(args, env, "max-source-bytes"),
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


def run(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    """Run the tool; returns the exit status and the stdout object (keyed by URI)."""
    args = parse_args(argv)
    uris = list(args.values.get("uri", [])) + args.positional
    if not uris:
        raise UsageError("no URIs given")
    env = environment_defaults(environ)
    try:
        config, instructions, report = load_settings(args, env)
    except IIIFProcessError as exc:
        log.error("cannot start", extra={"error": str(exc)})
        return 1, {uri: {"origin": uri, "error": str(exc)} for uri in dict.fromkeys(uris)}
    log.info(
        "processing",
        extra={
            "uris": len(uris),
            "source": config.source.describe(),
            "derivatives": config.derivatives.describe(),
            "instructions": [i.label for i in instructions],
        },
    )
    results = process_uris(
        uris,
        config,
        instructions,
        open_store(config.source),
        open_store(config.derivatives),
        report,
    )
    failed = sum(1 for r in results.values() if "error" in r)
    log.info("done", extra={"succeeded": len(results) - failed, "failed": failed})
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
