"""A small command-line parser that behaves like Go's `flag` package, as the seed's tool did.

Accepted: ``-name`` and ``--name``; ``-name value`` and ``-name=value``; boolean flags as
``-name`` or ``-name=true|false``; list flags repeated (``-uri a -uri b``). Values of flags not
given on the command line may come from ``PREFIX_NAME`` environment variables (dashes become
underscores, comma-separated for lists), as the seed's ``SetFlagsFromEnvVars`` did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .settings import SettingsError, parse_bool, split_list


class FlagError(ValueError):
    """The command line is wrong; the message says how (exit status 2, like Go)."""


class HelpRequested(Exception):
    """-h / -help / --help was given."""


@dataclass(frozen=True)
class Flag:
    """One flag: its name (without dashes), kind, default and usage text; a list flag splits
    its command-line values at commas unless ``split_commas`` is False."""

    name: str
    kind: str
    default: Any
    usage: str
    split_commas: bool = True

    def env_name(self, prefix: str) -> str:
        return f"{prefix}_{self.name.upper().replace('-', '_')}"


@dataclass
class ParsedFlags:
    """Flag values, and where each came from ("command line", "environment" or "default")."""

    values: dict[str, Any]
    origin: dict[str, str]


def _convert(flag: Flag, raw: str, where: str) -> Any:
    try:
        if flag.kind == "bool":
            return parse_bool(where, raw)
        if flag.kind == "int":
            return int(raw)
        if flag.kind == "float":
            number = float(raw)
    except (ValueError, SettingsError):
        raise FlagError(f"invalid value {raw!r} for {where}: want {flag.kind}") from None
    if flag.kind == "float":
        if not math.isfinite(number):
            # nan compares false with every bound and inf is no bound: refuse both.
            raise FlagError(f"invalid value {raw!r} for {where}: want a finite number")
        return number
    return raw


def parse_flags(
    flags: Sequence[Flag],
    argv: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    env_prefix: str = "IIIF_PROCESS",
) -> ParsedFlags:
    """Parse ``argv``; fill the rest from ``environ`` and then the defaults."""
    by_name = {flag.name: flag for flag in flags}
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    args = list(argv)
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            if index < len(args):
                raise FlagError(f"unexpected argument {args[index]!r}")
            break
        if not arg.startswith("-") or arg == "-":
            raise FlagError(f"unexpected argument {arg!r} (every value needs its flag)")
        name = arg[2:] if arg.startswith("--") else arg[1:]
        name, has_value, inline = name.partition("=")
        if name in ("h", "help"):
            raise HelpRequested()
        flag = by_name.get(name)
        if flag is None:
            raise FlagError(f"flag provided but not defined: -{name}")
        if flag.kind == "bool":
            value: Any = _convert(flag, inline, f"flag -{name}") if has_value else True
        else:
            if not has_value:
                if index >= len(args):
                    raise FlagError(f"flag needs an argument: -{name}")
                inline = args[index]
                index += 1
            value = _convert(flag, inline, f"flag -{name}")
        if flag.kind == "list":
            parts = list(split_list(value)) if flag.split_commas else [value]
            values.setdefault(name, []).extend(parts)
        else:
            values[name] = value
        origin[name] = "command line"

    env = environ or {}
    for flag in flags:
        if flag.name in values:
            continue
        raw = env.get(flag.env_name(env_prefix))
        if raw is not None and raw.strip() != "":
            where = f"{flag.env_name(env_prefix)} (-{flag.name})"
            if flag.kind == "list":
                values[flag.name] = list(split_list(raw))
            else:
                values[flag.name] = _convert(flag, raw.strip(), where)
            origin[flag.name] = "environment"
        else:
            default = flag.default
            values[flag.name] = list(default) if isinstance(default, list | tuple) else default
            origin[flag.name] = "default"
    return ParsedFlags(values=values, origin=origin)


def usage(program: str, flags: Sequence[Flag]) -> str:
    """Go-style usage text."""
    lines = [f"Usage of {program}:"]
    for flag in sorted(flags, key=lambda f: f.name):
        kind = {"string": " string", "int": " int", "float": " float", "list": " value"}.get(
            flag.kind, ""
        )
        lines.append(f"  -{flag.name}{kind}")
        text = flag.usage
        if flag.default not in (None, "", False, [], ()):
            text += f" (default {flag.default!r})".replace("'", '"')
        lines.append(f"    \t{text}")
    return "\n".join(lines) + "\n"
