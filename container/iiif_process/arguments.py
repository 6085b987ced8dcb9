"""The command line of the tools (``iiif-process``, ``iiif-tile-seed``), parsed one way: Go's
``flag`` package as go-iiif uses it, and the environment variables that give flags defaults.

Flags are ``-flag`` or ``--flag``, ``-flag value`` or ``-flag=value``; a boolean flag alone is
true, and ``-flag=VALUE`` takes Go's ``strconv.ParseBool`` words (:data:`~.config.GO_TRUE`,
:data:`~.config.GO_FALSE`). Parsing stops at the first argument that is not a flag (or after
``--``); the rest are positional.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .config import GO_FALSE, GO_TRUE
from .errors import ConfigError

# A tool's flags: name → (takes a value, help).
Flags = Mapping[str, tuple[bool, str]]


class UsageError(Exception):
    """The command line is malformed."""


@dataclass
class Arguments:
    """Parsed command line: flag values (lists for repeated flags) and positional arguments."""

    values: dict[str, list[str]] = field(default_factory=dict)
    positional: list[str] = field(default_factory=list)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The last value of a flag, or ``default``."""
        return self.values[name][-1] if name in self.values else default

    def flag(self, name: str) -> bool:
        """A boolean flag's value."""
        value = self.get(name)
        return value is not None and value in GO_TRUE


def parse(argv: Sequence[str], flags: Flags) -> Arguments:
    """Parse Go-style ``flags`` (``-f``, ``--f``, ``-f v``, ``-f=v``) then positional
    arguments; an unknown flag, a missing value or a bad boolean is a :class:`UsageError`."""
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
        if arg.startswith("---") or name not in flags:
            raise UsageError(f"flag provided but not defined: {arg.split('=', 1)[0]}")
        takes_value, _ = flags[name]
        if takes_value:
            if not has_value:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: -{name}")
                value = argv[i]
        elif not has_value:
            value = "true"
        elif value not in GO_TRUE | GO_FALSE:
            raise UsageError(f"invalid boolean value {value!r} for -{name}")
        args.values.setdefault(name, []).append(value)
        i += 1
    return args


def usage(doc: str | None, flags: Flags) -> str:
    """The help text: the tool's docstring, then every flag with its help."""
    lines = [(doc or "").strip(), "", "Flags:"]
    for name, (takes, text) in flags.items():
        lines.append(f"  -{name}{' VALUE' if takes else ''}\n        {text}")
    return "\n".join(lines)


# The environment variable behind each setting the environment may give.
ENVIRONMENT = {
    "config-images-source-uri": "IIIF_CONFIG_IMAGES_SOURCE_URI",
    "config-derivatives-cache-uri": "IIIF_CONFIG_DERIVATIVES_CACHE_URI",
    "max-pixels": "IIIF_PROCESS_MAX_PIXELS",
    "max-source-bytes": "IIIF_PROCESS_MAX_SOURCE_BYTES",
    "workers": "IIIF_PROCESS_WORKERS",
    "stop-seconds": "IIIF_PROCESS_STOP_SECONDS",
    "tiles": "IIIF_PROCESS_TILES",
    "iiif-api-version": "IIIF_PROCESS_IIIF_API_VERSION",
    "tile-size": "IIIF_PROCESS_TILE_SIZE",
    "public-base-url": "IIIF_PROCESS_PUBLIC_BASE_URL",
    "publish-concurrency": "IIIF_PROCESS_PUBLISH_CONCURRENCY",
    # Not flags: the ledger table (unset: nothing is written) and the recipe recorded there.
    "ledger-table": "IIIF_PROCESS_LEDGER_TABLE",
    "recipe": "IIIF_PROCESS_RECIPE",
}


def environment_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """The one place the environment is read: defaults for settings the command line did not
    set, keyed by flag name (an empty variable counts as unset)."""
    return {flag: environ[var] for flag, var in ENVIRONMENT.items() if environ.get(var)}


def setting(args: Arguments, env: Mapping[str, str], name: str) -> tuple[str | None, str]:
    """A setting's value, the flag winning over the environment (:func:`environment_defaults`),
    and where it came from (``-flag`` or the variable), for error messages."""
    if args.get(name) is not None:
        return args.get(name), f"-{name}"
    return env.get(name), ENVIRONMENT[name]


def count(args: Arguments, env: Mapping[str, str], name: str) -> int | None:
    """A whole number >= 0 from the flag or the environment (None: neither sets it); anything
    else is a :class:`~.errors.ConfigError` naming where it came from and the value."""
    value, origin = setting(args, env, name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{origin} must be an integer, not {value!r}") from None
    if number < 0:
        raise ConfigError(f"{origin} must not be negative, not {value!r}")
    return number
