"""The stack's settings: one frozen, typed object, parsed and validated from CDK context.

Context values come either from `cdk.json` (JSON types) or from `-c key=value` (always strings),
so every parser accepts both. A bad value raises `SettingsError` naming the context key, the
value given and the values accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

RemovalPolicyName = Literal["retain", "destroy"]
CpuArchitecture = Literal["X86_64", "ARM64"]

DEFAULT_STACK_NAME = "IiifProcessStack"

# Fargate task sizes: cpu units -> accepted memory (MiB). From the ECS developer guide
# ("Task CPU and memory"), Linux platform version 1.4.0.
FARGATE_MEMORY_BY_CPU: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}

# The retention periods CloudWatch Logs (and aws_logs.RetentionDays) accept, in days.
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545,
    731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

# RunTask's awsvpcConfiguration takes at most 16 subnets and 5 security groups.
MAX_SUBNETS = 16
MAX_SECURITY_GROUPS = 5
EPHEMERAL_STORAGE_GIB = (20, 200)  # 20 is Fargate's free default; above it is billed.
LAMBDA_TIMEOUT_SECONDS = (1, 900)
LAMBDA_MEMORY_MIB = (128, 10240)
LAMBDA_RESERVED_CONCURRENCY = (1, 1000)
# RunTask overrides hold at most 8192 characters; 200 short keys already come close.
MAX_URIS_PER_TASK = (1, 200)
# SQS event source mapping: batch size 1-10000 (above 10 only with a batching window), window 0-300.
QUEUE_BATCH_SIZE = (1, 10000)
QUEUE_BATCH_SIZE_WITHOUT_WINDOW = 10
QUEUE_BATCH_WINDOW_SECONDS = (0, 300)
# Launches of one key before the ledger marks it failed (issue #9).
MAX_ATTEMPTS = (1, 10)
# Source objects larger than this are skipped (0 = no limit); S3's largest object is 5 TiB.
MAX_SOURCE_BYTES = (0, 5 * 1024**4)
# Days S3 keeps a replaced or deleted version of a source image (0 = forever); 100 years at most.
NONCURRENT_VERSION_EXPIRATION_DAYS = (0, 36500)
# Alarms (issue #15). The event queue's oldest message: from a minute to SQS's 14-day retention.
STALLED_QUEUE_SECONDS = (60, 14 * 24 * 3600)
FAILURE_RATE_PERCENT = (1, 100)
# One alarm period of this many minutes; CloudWatch alarm periods are at most one day.
FAILURE_RATE_WINDOW_MINUTES = (1, 1440)

# Deep zoom (issue #11): IIIF Image API versions the task writes, and the tile edge in pixels.
IIIF_API_VERSIONS = (2, 3)
TILE_SIZE = (64, 4096)
# Plain http is accepted only for these hosts: the local stand-in for CloudFront (local_aws/).
_LOCAL_HOSTS = ("localhost", "127.0.0.1")

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
# ECR: lowercase path components separated by "/", each component [a-z0-9] runs joined by . _ -
REPOSITORY_NAME = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
CONTAINER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
_REPORT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$")
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
# One plain address, as an SNS email subscription takes it: local@domain.tld, no spaces or lists.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
)

# Go's strconv.ParseBool words, as the seed's tools, iiif-process and iiif-process-ecs read
# booleans: one set of words everywhere. (cdk.json may also hold JSON true/false.)
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


class SettingsError(ValueError):
    """A context setting has a value the stack cannot use; the message names the key."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the stack can be configured with. Field docs name the context key."""

    stack_name: str = DEFAULT_STACK_NAME
    """`stackName`: construct id (and CloudFormation name) of the stack."""
    source_bucket_name: str | None = None
    """`sourceBucketName`: import this existing bucket as the source instead of creating one."""
    derivatives_bucket_name: str | None = None
    """`derivativesBucketName`: import this existing bucket for derivatives instead."""
    removal_policy: RemovalPolicyName = "retain"
    """`removalPolicy`: what `cdk destroy` does to created buckets, repository and logs."""
    vpc_id: str | None = None
    """`vpcId`: import this VPC (needs `subnetIds` and `securityGroupIds`)."""
    subnet_ids: tuple[str, ...] = ()
    """`subnetIds`: subnets the tasks run in (imported VPC only)."""
    security_group_ids: tuple[str, ...] = ()
    """`securityGroupIds`: security groups of the tasks (imported VPC only)."""
    assign_public_ip: bool = True
    """`assignPublicIp`: give tasks a public IP (needed without NAT to reach ECR and logs)."""
    repository_name: str | None = None
    """`repositoryName`: name of the ECR repository the stack creates; unset = a name
    CloudFormation generates (the `RepositoryUri` output tells it)."""
    image_tag: str | None = None
    """`imageTag`: run this tag from the repository instead of building `container/`."""
    cpu: int = 1024
    """`cpu`: Fargate task CPU units."""
    memory_mib: int = 2048
    """`memoryMiB`: Fargate task memory, also the container's hard memory limit."""
    ephemeral_storage_gib: int = 20
    """`ephemeralStorageGiB`: task scratch disk; 20 is Fargate's default."""
    cpu_architecture: CpuArchitecture = "X86_64"
    """`cpuArchitecture`: CPU architecture of the task (and of the built image)."""
    container_name: str = "iiif-process"
    """`containerName`: name of the container in the task definition."""
    log_retention_days: int = 30
    """`logRetentionDays`: retention of the task, Lambda and flow log groups and access logs."""
    lambda_timeout_seconds: int = 60
    """`lambdaTimeoutSeconds`: the trigger function's timeout."""
    lambda_memory_mib: int = 256
    """`lambdaMemoryMiB`: the trigger function's memory."""
    lambda_reserved_concurrency: int = 5
    """`lambdaReservedConcurrency`: cap on concurrent trigger invocations."""
    max_uris_per_task: int = 50
    """`maxUrisPerTask`: most URIs the function hands to one task."""
    s3_notifications: bool = True
    """`s3Notifications`: notify the event queue (and so the function) of new source images."""
    queue_batch_size: int = 1000
    """`queueBatchSize`: most queued S3 notifications one invocation receives."""
    queue_batch_window_seconds: int = 30
    """`queueBatchWindowSeconds`: how long Lambda gathers queued notifications into a batch."""
    report: bool = True
    """`report`: ask iiif-process to store a JSON report per URI."""
    report_name: str = "process.json"
    """`reportName`: file name of that report."""
    max_attempts: int = 3
    """`maxAttempts`: launches of one key before the ledger marks it failed."""
    max_source_bytes: int = 4 * 1024**3
    """`maxSourceBytes`: larger source objects are skipped with a reason; 0 = no limit."""
    source_versioning: bool = True
    """`sourceVersioning`: keep earlier versions of the created source bucket's masters."""
    noncurrent_version_expiration_days: int = 30
    """`noncurrentVersionExpirationDays`: days a replaced source version is kept; 0 = forever."""
    alarm_email: str | None = None
    """`alarmEmail`: subscribe this address to the alarm topic; unset = no subscription."""
    stalled_queue_seconds: int = 900
    """`stalledQueueSeconds`: alarm when the event queue's oldest message is older than this."""
    failure_rate_percent: int = 10
    """`failureRatePercent`: alarm when more than this share of images fail in the window."""
    failure_rate_window_minutes: int = 15
    """`failureRateWindowMinutes`: the window (alarm period) of that failure rate."""
    tiles: bool = True
    """`tiles`: also write IIIF Level 0 tiles, `info.json` and `manifest.json` per image."""
    iiif_api_version: int = 3
    """`iiifApiVersion`: the IIIF Image API (2 or 3) of `info.json` and the tile paths."""
    tile_size: int = 512
    """`tileSize`: tile width and height in pixels."""
    public_base_url: str | None = None
    """`publicBaseUrl`: where viewers read the derivatives bucket (https, no trailing slash);
    unset = the CloudFront distribution's address, or the bucket's own without `cloudfront`."""
    cloudfront: bool = True
    """`cloudfront`: serve the derivatives bucket over HTTPS through a CloudFront distribution."""

    def __post_init__(self) -> None:
        _validate(self)


# --- parsers: JSON value or `-c` string -> typed value ---------------------------------------


def _describe(raw: Any) -> str:
    return repr(raw)


def _as_str(key: str, raw: Any) -> str:
    if not isinstance(raw, str):
        raise SettingsError(f"setting {key!r} must be a string, got {_describe(raw)}")
    return raw.strip()


def _as_optional_str(key: str, raw: Any) -> str | None:
    value = _as_str(key, raw)
    return value or None  # "" (e.g. `-c imageTag=`) means unset


def _as_lower_str(key: str, raw: Any) -> str:
    return _as_str(key, raw).lower()


def _as_upper_str(key: str, raw: Any) -> str:
    return _as_str(key, raw).upper()


def _as_int(key: str, raw: Any) -> int:
    if isinstance(raw, bool):
        raise SettingsError(f"setting {key!r} must be a whole number, got {_describe(raw)}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and re.fullmatch(r"\s*-?\d+\s*", raw):
        return int(raw)
    raise SettingsError(f"setting {key!r} must be a whole number, got {_describe(raw)}")


def _as_bool(key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip() in _TRUE | _FALSE:
        return raw.strip() in _TRUE
    raise SettingsError(
        f"setting {key!r} must be true or false (Go's strconv.ParseBool words: "
        f"1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False), got {_describe(raw)}"
    )


def _as_str_tuple(key: str, raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        items: Iterable[Any] = raw.split(",")
    elif isinstance(raw, list):
        items = raw
    else:
        raise SettingsError(
            f"setting {key!r} must be a comma-separated string or a list of strings, "
            f"got {_describe(raw)}"
        )
    values = []
    for item in items:
        if not isinstance(item, str):
            raise SettingsError(f"setting {key!r} must hold strings only, got {_describe(item)}")
        if item.strip():
            values.append(item.strip())
    return tuple(values)


# context key -> (dataclass field, parser). The parser turns a JSON or string value into the
# field's type; range and format checks happen in `_validate`, on the typed object.
def _context_keys() -> dict[str, tuple[str, Callable[[str, Any], Any]]]:
    return {
        "stackName": ("stack_name", _as_str),
        "sourceBucketName": ("source_bucket_name", _as_optional_str),
        "derivativesBucketName": ("derivatives_bucket_name", _as_optional_str),
        "removalPolicy": ("removal_policy", _as_lower_str),
        "vpcId": ("vpc_id", _as_optional_str),
        "subnetIds": ("subnet_ids", _as_str_tuple),
        "securityGroupIds": ("security_group_ids", _as_str_tuple),
        "assignPublicIp": ("assign_public_ip", _as_bool),
        "repositoryName": ("repository_name", _as_optional_str),
        "imageTag": ("image_tag", _as_optional_str),
        "cpu": ("cpu", _as_int),
        "memoryMiB": ("memory_mib", _as_int),
        "ephemeralStorageGiB": ("ephemeral_storage_gib", _as_int),
        "cpuArchitecture": ("cpu_architecture", _as_upper_str),
        "containerName": ("container_name", _as_str),
        "logRetentionDays": ("log_retention_days", _as_int),
        "lambdaTimeoutSeconds": ("lambda_timeout_seconds", _as_int),
        "lambdaMemoryMiB": ("lambda_memory_mib", _as_int),
        "lambdaReservedConcurrency": ("lambda_reserved_concurrency", _as_int),
        "maxUrisPerTask": ("max_uris_per_task", _as_int),
        "s3Notifications": ("s3_notifications", _as_bool),
        "queueBatchSize": ("queue_batch_size", _as_int),
        "queueBatchWindowSeconds": ("queue_batch_window_seconds", _as_int),
        "report": ("report", _as_bool),
        "reportName": ("report_name", _as_str),
        "maxAttempts": ("max_attempts", _as_int),
        "maxSourceBytes": ("max_source_bytes", _as_int),
        "sourceVersioning": ("source_versioning", _as_bool),
        "noncurrentVersionExpirationDays": ("noncurrent_version_expiration_days", _as_int),
        "alarmEmail": ("alarm_email", _as_optional_str),
        "stalledQueueSeconds": ("stalled_queue_seconds", _as_int),
        "failureRatePercent": ("failure_rate_percent", _as_int),
        "failureRateWindowMinutes": ("failure_rate_window_minutes", _as_int),
        "tiles": ("tiles", _as_bool),
        "iiifApiVersion": ("iiif_api_version", _as_int),
        "tileSize": ("tile_size", _as_int),
        "publicBaseUrl": ("public_base_url", _as_optional_str),
        "cloudfront": ("cloudfront", _as_bool),
    }


SETTING_KEYS: tuple[str, ...] = tuple(_context_keys())
"""Every context key the stack reads."""

_FIELD_TO_KEY = {field: key for key, (field, _) in _context_keys().items()}


def settings_from_context(values: Mapping[str, Any]) -> Settings:
    """Build `Settings` from context values keyed by their camelCase context key.

    Keys that are absent or `None` keep their defaults. Raises `SettingsError` naming the key.
    """
    parsers = _context_keys()
    kwargs: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in parsers:
            raise SettingsError(
                f"unknown setting {key!r}; accepted keys: {', '.join(SETTING_KEYS)}"
            )
        if raw is None:
            continue
        field, parse = parsers[key]
        kwargs[field] = parse(key, raw)
    return Settings(**kwargs)


def context_key(field: str) -> str:
    """The context key of a `Settings` field name."""
    return _FIELD_TO_KEY[field]


# --- validation of the typed object ----------------------------------------------------------


def _fail(field: str, value: Any, accepted: str) -> SettingsError:
    return SettingsError(
        f"setting {context_key(field)!r} has the invalid value {value!r}; accepted: {accepted}"
    )


def _check_range(settings: Settings, field: str, bounds: tuple[int, int], unit: str) -> None:
    value = getattr(settings, field)
    low, high = bounds
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _fail(field, value, f"a whole number of {unit} from {low} to {high}")


def _check_pattern(settings: Settings, field: str, pattern: re.Pattern[str], accepted: str) -> None:
    value = getattr(settings, field)
    if value is not None and (not isinstance(value, str) or not pattern.fullmatch(value)):
        raise _fail(field, value, accepted)


def _check_choice(settings: Settings, field: str, choices: Iterable[Any]) -> None:
    value = getattr(settings, field)
    choices = tuple(choices)
    if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
        raise _fail(field, value, ", ".join(str(c) for c in choices))


def _check_bucket_name(settings: Settings, field: str) -> None:
    value = getattr(settings, field)
    if value is None:
        return
    accepted = (
        "the name of one existing S3 bucket: 3-63 characters of a-z, 0-9, '.' and '-', "
        "starting and ending with a letter or digit, no wildcards, not an IP address"
    )
    if (
        not isinstance(value, str)
        or not _BUCKET_NAME.fullmatch(value)
        or ".." in value
        or _IP_ADDRESS.fullmatch(value)
    ):
        raise _fail(field, value, accepted)


def _validate(s: Settings) -> None:
    _check_pattern(
        s,
        "stack_name",
        _STACK_NAME,
        "a CloudFormation stack name: a letter, then up to 127 letters, digits or '-'",
    )
    _check_bucket_name(s, "source_bucket_name")
    _check_bucket_name(s, "derivatives_bucket_name")
    if s.source_bucket_name is not None and s.source_bucket_name == s.derivatives_bucket_name:
        raise SettingsError(
            f"settings 'sourceBucketName' and 'derivativesBucketName' are both "
            f"{s.source_bucket_name!r}; accepted: two different buckets (derivatives written to "
            "the source bucket would trigger processing again)"
        )
    _check_choice(s, "removal_policy", ("retain", "destroy"))
    _check_network(s)
    _check_choice(s, "assign_public_ip", (True, False))
    _check_pattern(
        s,
        "repository_name",
        REPOSITORY_NAME,
        "an ECR repository name: lowercase letters, digits and . _ - / (2-256 characters)",
    )
    if s.repository_name is not None and not 2 <= len(s.repository_name) <= 256:
        raise _fail("repository_name", s.repository_name, "2 to 256 characters")
    _check_pattern(
        s,
        "image_tag",
        IMAGE_TAG,
        "an image tag: up to 128 letters, digits, '_', '.', '-', not starting with '.' or '-'",
    )
    _check_choice(s, "cpu", FARGATE_MEMORY_BY_CPU)
    allowed_memory = FARGATE_MEMORY_BY_CPU[s.cpu]
    if s.memory_mib not in allowed_memory or isinstance(s.memory_mib, bool):
        raise _fail(
            "memory_mib",
            s.memory_mib,
            f"with cpu {s.cpu}: {', '.join(str(m) for m in allowed_memory)}",
        )
    _check_range(s, "ephemeral_storage_gib", EPHEMERAL_STORAGE_GIB, "GiB")
    _check_choice(s, "cpu_architecture", ("X86_64", "ARM64"))
    _check_pattern(
        s,
        "container_name",
        CONTAINER_NAME,
        "up to 255 letters, digits, '_' and '-', starting with a letter or digit",
    )
    _check_choice(s, "log_retention_days", LOG_RETENTION_DAYS)
    _check_range(s, "lambda_timeout_seconds", LAMBDA_TIMEOUT_SECONDS, "seconds")
    _check_range(s, "lambda_memory_mib", LAMBDA_MEMORY_MIB, "MiB")
    _check_range(s, "lambda_reserved_concurrency", LAMBDA_RESERVED_CONCURRENCY, "executions")
    _check_range(s, "max_uris_per_task", MAX_URIS_PER_TASK, "URIs")
    _check_choice(s, "s3_notifications", (True, False))
    _check_queue_batching(s)
    _check_choice(s, "report", (True, False))
    _check_pattern(
        s,
        "report_name",
        _REPORT_NAME,
        "a plain file name (letters, digits, '_', '.', '-'; no '/'), e.g. process.json",
    )
    _check_range(s, "max_attempts", MAX_ATTEMPTS, "launches")
    _check_range(s, "max_source_bytes", MAX_SOURCE_BYTES, "bytes (0 = no limit)")
    _check_choice(s, "source_versioning", (True, False))
    _check_range(
        s, "noncurrent_version_expiration_days", NONCURRENT_VERSION_EXPIRATION_DAYS, "days"
    )
    _check_pattern(s, "alarm_email", _EMAIL, "one email address like ops@example.org, or empty")
    _check_range(s, "stalled_queue_seconds", STALLED_QUEUE_SECONDS, "seconds")
    _check_range(s, "failure_rate_percent", FAILURE_RATE_PERCENT, "percent")
    _check_range(s, "failure_rate_window_minutes", FAILURE_RATE_WINDOW_MINUTES, "minutes")
    _check_deep_zoom(s)


def _check_deep_zoom(s: Settings) -> None:
    _check_choice(s, "tiles", (True, False))
    _check_choice(s, "iiif_api_version", IIIF_API_VERSIONS)
    _check_range(s, "tile_size", TILE_SIZE, "pixels")
    _check_choice(s, "cloudfront", (True, False))
    if s.public_base_url is not None and not _is_base_url(s.public_base_url):
        raise _fail(
            "public_base_url",
            s.public_base_url,
            "an https:// URL without a trailing slash, query or fragment, such as "
            "https://images.example.org or https://example.org/iiif (http:// only for "
            "localhost, the local stand-in), or empty for the default",
        )


def _is_base_url(value: Any) -> bool:
    if not isinstance(value, str) or value != value.strip() or value.endswith("/"):
        return False
    if any(c.isspace() or ord(c) < 0x20 for c in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return False
    if parts.query or parts.fragment or "?" in value or "#" in value or parts.username:
        return False
    if not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS


def _check_queue_batching(s: Settings) -> None:
    _check_range(s, "queue_batch_size", QUEUE_BATCH_SIZE, "messages")
    _check_range(s, "queue_batch_window_seconds", QUEUE_BATCH_WINDOW_SECONDS, "seconds")
    if s.queue_batch_size > QUEUE_BATCH_SIZE_WITHOUT_WINDOW and s.queue_batch_window_seconds == 0:
        raise _fail(
            "queue_batch_size",
            s.queue_batch_size,
            f"at most {QUEUE_BATCH_SIZE_WITHOUT_WINDOW} when 'queueBatchWindowSeconds' is 0 "
            "(Lambda needs a batching window for larger SQS batches)",
        )


def _check_network(s: Settings) -> None:
    _check_pattern(s, "vpc_id", _VPC_ID, "a VPC id like vpc-0123456789abcdef0")
    for field, pattern, example, most in (
        ("subnet_ids", _SUBNET_ID, "subnet-0123456789abcdef0", MAX_SUBNETS),
        ("security_group_ids", _SECURITY_GROUP_ID, "sg-0123456789abcdef0", MAX_SECURITY_GROUPS),
    ):
        values = getattr(s, field)
        if not isinstance(values, tuple):
            raise _fail(field, values, f"a tuple of ids like {example}")
        for value in values:
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise _fail(field, value, f"comma-separated ids like {example}")
        if s.vpc_id is None and values:
            raise _fail(field, ",".join(values), "empty unless 'vpcId' is set")
        if s.vpc_id is not None and not values:
            raise _fail(field, "", f"at least one id like {example} when 'vpcId' is set")
        if len(values) > most or len(set(values)) != len(values):
            raise _fail(field, ",".join(values), f"1 to {most} distinct ids")
