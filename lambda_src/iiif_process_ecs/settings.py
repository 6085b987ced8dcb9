"""Typed settings of the trigger, and the one function that reads the process environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_CONFIG = "/etc/go-iiif/config.json"
DEFAULT_INSTRUCTIONS = "/etc/go-iiif/instructions.json"
DEFAULT_REPORT_NAME = "process.json"
DEFAULT_MAX_URIS_PER_TASK = 50
# Larger sources are skipped before any task is paid for (the task's disk holds the source).
DEFAULT_MAX_SOURCE_BYTES = 4 * 1024**3
DEFAULT_MAX_ATTEMPTS = 3
ASSIGN_PUBLIC_IP_VALUES = ("ENABLED", "DISABLED")

REQUIRED_VARIABLES = (
    "IIIF_PROCESS_CLUSTER",
    "IIIF_PROCESS_TASK",
    "IIIF_PROCESS_CONTAINER",
    "IIIF_PROCESS_SUBNET",
    "IIIF_PROCESS_SECURITY_GROUP",
)

# Go's strconv.ParseBool, as the seed's tools read their flags (and iiif-process its own): these
# words exactly, nothing else (no "yes", no "on", no empty value).
GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


class SettingsError(ValueError):
    """A setting is missing or has a value that cannot be used; the message names it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


_VARIABLE_OF_FIELD = {
    "cluster": "IIIF_PROCESS_CLUSTER",
    "task_definition": "IIIF_PROCESS_TASK",
    "container": "IIIF_PROCESS_CONTAINER",
    "subnets": "IIIF_PROCESS_SUBNET",
    "security_groups": "IIIF_PROCESS_SECURITY_GROUP",
    "assign_public_ip": "IIIF_PROCESS_ASSIGN_PUBLIC_IP",
    "config_path": "IIIF_PROCESS_CONFIG",
    "instructions_path": "IIIF_PROCESS_INSTRUCTIONS",
    "report_name": "IIIF_PROCESS_REPORT_NAME",
    "max_uris_per_task": "IIIF_PROCESS_MAX_URIS_PER_TASK",
    "max_source_bytes": "IIIF_PROCESS_MAX_SOURCE_BYTES",
    "max_attempts": "IIIF_PROCESS_MAX_ATTEMPTS",
}


@dataclass(frozen=True)
class Settings:
    """Everything needed to start `iiif-process` tasks (see docs/contracts.md)."""

    cluster: str
    task_definition: str
    container: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    assign_public_ip: str = "ENABLED"
    config_path: str = DEFAULT_CONFIG
    instructions_path: str = DEFAULT_INSTRUCTIONS
    report: bool = False
    report_name: str = DEFAULT_REPORT_NAME
    source_bucket: str | None = None
    max_uris_per_task: int = DEFAULT_MAX_URIS_PER_TASK
    strip_paths: bool = False
    ecs_dsn: str = ""
    max_source_bytes: int = DEFAULT_MAX_SOURCE_BYTES
    # The ledger (docs/contracts.md, issue #9): unset table = no ledger, today's behaviour.
    ledger_table: str | None = None
    recipe: str = ""
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    event_queue_url: str | None = None

    def __post_init__(self) -> None:
        for name in ("cluster", "task_definition", "container", "config_path", "instructions_path"):
            if not getattr(self, name):
                raise SettingsError(f"setting {name} must not be empty", name)
        if not self.subnets:
            raise SettingsError("setting subnets needs at least one subnet ID", "subnets")
        if not self.security_groups:
            raise SettingsError(
                "setting security_groups needs at least one security group ID", "security_groups"
            )
        if self.assign_public_ip not in ASSIGN_PUBLIC_IP_VALUES:
            raise SettingsError(
                "setting assign_public_ip must be ENABLED or DISABLED, "
                f"not {self.assign_public_ip!r}",
                "assign_public_ip",
            )
        if self.max_uris_per_task < 1:
            raise SettingsError(
                f"setting max_uris_per_task must be at least 1, not {self.max_uris_per_task}",
                "max_uris_per_task",
            )
        if self.max_attempts < 1:
            raise SettingsError(
                f"setting max_attempts must be at least 1, not {self.max_attempts}",
                "max_attempts",
            )
        if self.max_source_bytes < 0:
            raise SettingsError(
                "setting max_source_bytes must be 0 (no limit) or more, "
                f"not {self.max_source_bytes}",
                "max_source_bytes",
            )
        if not self.report_name or "/" in self.report_name:
            raise SettingsError(
                f"setting report_name must be a plain file name, not {self.report_name!r}",
                "report_name",
            )


def split_list(value: str) -> tuple[str, ...]:
    """Split a comma-separated list (the seed's form for subnets and security groups)."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def parse_bool(name: str, value: str) -> bool:
    """Parse a boolean exactly as Go's ``strconv.ParseBool`` does: ``1 t T TRUE true True`` or
    ``0 f F FALSE false False``; anything else is an error naming ``name``."""
    if value in GO_TRUE:
        return True
    if value in GO_FALSE:
        return False
    raise SettingsError(
        f"{name} must be a boolean as Go's strconv.ParseBool reads it "
        f"(1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False), not {value!r}"
    )


def parse_int(name: str, value: str) -> int:
    """Parse an integer setting, naming the setting when it is not one."""
    try:
        return int(value.strip())
    except ValueError:
        raise SettingsError(f"{name} must be an integer, not {value!r}") from None


def default_ecs_dsn(region: str | None) -> str:
    """The DSN used when IIIF_PROCESS_ECS_DSN is unset: the runtime's region, IAM credentials."""
    if not region:
        raise SettingsError(
            "IIIF_PROCESS_ECS_DSN is not set and neither is AWS_REGION (or AWS_DEFAULT_REGION)"
        )
    return f"region={region} credentials=iam:"


def read_environment() -> dict[str, str]:
    """Return a copy of the process environment.

    This is the only place in the package that reads ``os.environ``; everything else takes a
    mapping, so tests and the CLI can pass their own.
    """
    return dict(os.environ)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from ``IIIF_PROCESS_*`` variables (the process environment by default).

    Raises SettingsError naming the first missing or malformed variable.
    """
    env = read_environment() if environ is None else environ
    missing = [name for name in REQUIRED_VARIABLES if not env.get(name, "").strip()]
    if missing:
        raise SettingsError("missing required environment variable(s): " + ", ".join(missing))

    def get(name: str, default: str) -> str:
        value = env.get(name)
        return default if value is None or value.strip() == "" else value.strip()

    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    dsn = env.get("IIIF_PROCESS_ECS_DSN", "").strip() or default_ecs_dsn(region)
    source_bucket = env.get("IIIF_PROCESS_SOURCE_BUCKET", "").strip() or None
    try:
        return Settings(
            cluster=env["IIIF_PROCESS_CLUSTER"].strip(),
            task_definition=env["IIIF_PROCESS_TASK"].strip(),
            container=env["IIIF_PROCESS_CONTAINER"].strip(),
            subnets=split_list(env["IIIF_PROCESS_SUBNET"]),
            security_groups=split_list(env["IIIF_PROCESS_SECURITY_GROUP"]),
            assign_public_ip=get("IIIF_PROCESS_ASSIGN_PUBLIC_IP", "ENABLED").upper(),
            config_path=get("IIIF_PROCESS_CONFIG", DEFAULT_CONFIG),
            instructions_path=get("IIIF_PROCESS_INSTRUCTIONS", DEFAULT_INSTRUCTIONS),
            report=parse_bool("IIIF_PROCESS_REPORT", get("IIIF_PROCESS_REPORT", "false")),
            report_name=get("IIIF_PROCESS_REPORT_NAME", DEFAULT_REPORT_NAME),
            source_bucket=source_bucket,
            max_uris_per_task=parse_int(
                "IIIF_PROCESS_MAX_URIS_PER_TASK",
                get("IIIF_PROCESS_MAX_URIS_PER_TASK", str(DEFAULT_MAX_URIS_PER_TASK)),
            ),
            strip_paths=parse_bool(
                "IIIF_PROCESS_STRIP_PATHS", get("IIIF_PROCESS_STRIP_PATHS", "false")
            ),
            ecs_dsn=dsn,
            max_source_bytes=parse_int(
                "IIIF_PROCESS_MAX_SOURCE_BYTES",
                get("IIIF_PROCESS_MAX_SOURCE_BYTES", str(DEFAULT_MAX_SOURCE_BYTES)),
            ),
            ledger_table=env.get("IIIF_PROCESS_LEDGER_TABLE", "").strip() or None,
            recipe=env.get("IIIF_PROCESS_RECIPE", "").strip(),
            max_attempts=parse_int(
                "IIIF_PROCESS_MAX_ATTEMPTS",
                get("IIIF_PROCESS_MAX_ATTEMPTS", str(DEFAULT_MAX_ATTEMPTS)),
            ),
            event_queue_url=env.get("IIIF_PROCESS_EVENT_QUEUE_URL", "").strip() or None,
        )
    except SettingsError as error:
        variable = _VARIABLE_OF_FIELD.get(error.field or "")
        where = f" ({variable})" if variable else ""
        raise SettingsError(f"invalid environment{where}: {error}", error.field) from None
