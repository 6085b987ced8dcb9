"""What a run costs: Fargate, S3 PUTs, Lambda and SQS at list prices (issue #10).

Used by ``-mode status`` (images finished since ``-since``: measured task times) and by
``-mode backfill -dry-run`` (an estimate from ``make bench``'s seconds per image).

Prices: AWS list prices, US East (N. Virginia), on-demand, Linux, taken from the public pricing
pages aws.amazon.com/fargate/pricing, /s3/pricing, /lambda/pricing and /sqs/pricing as published
in March 2026 (unchanged since the January 2019 Fargate price cut; ARM64 Fargate since its
launch in November 2021). us-east-2 and us-west-2 list the same figures; other regions are
typically 10-30 % higher, so for them the table is used with a note and ``-prices`` (or
``IIIF_PROCESS_PRICES``) should give the region's figures. Free tiers are not subtracted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .settings import split_list

ARCHITECTURES = ("X86_64", "ARM64")
# Fargate bills each task per second from the start of its image pull to its stop, at least 60 s.
FARGATE_MINIMUM_SECONDS = 60
# SQS bills each 64 KiB chunk of a request's payload as one request.
SQS_BILLED_CHUNK_BYTES = 64 * 1024

# -- the estimate's constants (README, "Cost per run") -------------------------------------------
# make bench (README, "Benchmark"): iiif-process over 12 x 24 MP JPEGs, 2.71 images/s on 1 CPU,
# x1.61 on 2 CPUs (0.61 of a core per added core), start-up excluded; go-iiif's 9 defaults.
BENCH_IMAGES_PER_SECOND_ONE_CPU = 2.71
BENCH_GAIN_PER_ADDED_CPU = 0.61
# Assumed, not measured: a task's image pull and start before its first image (billed).
TASK_OVERHEAD_SECONDS = 30.0
# go-iiif v8's default instructions make 9 derivatives; plus one process report per image.
PUTS_PER_IMAGE = 10
# With tiles on (issue #11, the stack's default), make bench's publish part writes, for one
# 24 MP image at 512 px tiles, 131 tiles and sizes besides the derivatives, plus info.json and
# manifest.json. Other tile sizes scale the tile count by (512 / tileSize)^2 (an estimate).
BENCH_TILES_24MP = 131
BENCH_TILE_SIZE = 512
TILE_DOCUMENTS = 2  # info.json, manifest.json
# The stack's defaults: lambdaMemoryMiB 256, queueBatchSize 1000 (stacks/stack_settings.py); an
# invocation is assumed to take one second (claims and RunTask calls; the Lambda never waits).
LAMBDA_MEMORY_GB = 0.25
LAMBDA_SECONDS_PER_INVOCATION = 1.0
QUEUE_BATCH_SIZE = 1000


class PriceError(ValueError):
    """A ``-prices`` override is malformed; the message names it."""


@dataclass(frozen=True)
class Prices:
    """List prices in US dollars for one region and CPU architecture."""

    fargate_vcpu_hour: float
    fargate_gb_hour: float
    s3_put_per_1000: float
    lambda_per_request: float
    lambda_gb_second: float
    sqs_per_million: float


_US_EAST_1 = {
    "X86_64": Prices(
        fargate_vcpu_hour=0.04048,
        fargate_gb_hour=0.004445,
        s3_put_per_1000=0.005,
        lambda_per_request=0.0000002,
        lambda_gb_second=0.0000166667,
        sqs_per_million=0.40,
    ),
    "ARM64": Prices(
        fargate_vcpu_hour=0.03238,
        fargate_gb_hour=0.00356,
        s3_put_per_1000=0.005,
        lambda_per_request=0.0000002,
        lambda_gb_second=0.0000133334,
        sqs_per_million=0.40,
    ),
}
REGION_PRICES: dict[str, dict[str, Prices]] = {
    "us-east-1": _US_EAST_1,
    "us-east-2": _US_EAST_1,
    "us-west-2": _US_EAST_1,
}
DEFAULT_REGION = "us-east-1"
PRICE_NAMES = tuple(f.name for f in fields(Prices))


def parse_price_overrides(text: str) -> dict[str, float]:
    """``"fargate_vcpu_hour=0.05,s3_put_per_1000=0.0054"`` → a mapping; names as in Prices."""
    overrides: dict[str, float] = {}
    for part in split_list(text):
        name, _, raw = part.partition("=")
        name = name.strip()
        if name not in PRICE_NAMES:
            raise PriceError(f"-prices: unknown price {name!r}; known: {', '.join(PRICE_NAMES)}")
        try:
            value = float(raw)
        except ValueError:
            raise PriceError(f"-prices: {name} must be a number, not {raw.strip()!r}") from None
        if not math.isfinite(value) or value < 0:
            raise PriceError(f"-prices: {name} must be a finite number >= 0, not {raw.strip()!r}")
        overrides[name] = value
    return overrides


def prices_for(region: str, architecture: str, overrides: str = "") -> tuple[Prices, str]:
    """The price table for ``region`` and ``architecture`` with ``overrides`` applied, and a
    note saying where the figures come from."""
    if architecture not in ARCHITECTURES:
        raise PriceError(f"unknown CPU architecture {architecture!r}; known: X86_64, ARM64")
    table = REGION_PRICES.get(region)
    if table is None:
        note = f"no price table for {region or 'the region'}; us-east-1 list prices used"
        table = REGION_PRICES[DEFAULT_REGION]
    else:
        note = f"{region} list prices (March 2026)"
    changes = parse_price_overrides(overrides)
    if changes:
        note += "; overridden: " + ", ".join(sorted(changes))
    return replace(table[architecture], **changes), note


@dataclass(frozen=True)
class TaskSize:
    """A task definition's size: vCPUs, memory in GB (GiB, as Fargate bills) and architecture;
    and whether its tasks publish tiles (``IIIF_PROCESS_TILES``) at ``tile_size`` pixels."""

    vcpu: float
    memory_gb: float
    architecture: str = "X86_64"
    tiles: bool = False
    tile_size: int = BENCH_TILE_SIZE


def task_size_of(definition: Mapping[str, Any]) -> TaskSize:
    """The size of a DescribeTaskDefinition ``taskDefinition`` (task-level cpu and memory)."""
    cpu = definition.get("cpu")
    memory = definition.get("memory")
    if cpu is None or memory is None:
        raise PriceError("the task definition has no task-level cpu and memory (not Fargate?)")
    platform = definition.get("runtimePlatform") or {}
    environment = {
        str(variable.get("name")): str(variable.get("value", ""))
        for container in definition.get("containerDefinitions", [])
        for variable in container.get("environment", [])
    }
    tile_size = environment.get("IIIF_PROCESS_TILE_SIZE", "")
    return TaskSize(
        vcpu=int(cpu) / 1024,
        memory_gb=int(memory) / 1024,
        architecture=str(platform.get("cpuArchitecture") or "X86_64"),
        tiles=environment.get("IIIF_PROCESS_TILES", "").strip().lower() in ("true", "1", "yes"),
        tile_size=int(tile_size) if tile_size.isdigit() and int(tile_size) > 0 else BENCH_TILE_SIZE,
    )


def tile_puts_per_image(size: TaskSize) -> int:
    """Estimated PUTs of tiles, sizes, info.json and manifest.json for one 24 MP image (0 with
    tiles off): make bench's count, scaled by the tile size."""
    if not size.tiles:
        return 0
    return round(BENCH_TILES_24MP * (BENCH_TILE_SIZE / size.tile_size) ** 2) + TILE_DOCUMENTS


def puts_per_image(size: TaskSize) -> int:
    """Estimated PUTs for one image: derivatives and report, and tiles when they are on."""
    return PUTS_PER_IMAGE + tile_puts_per_image(size)


def task_size(ecs: Any, task_definition: str) -> TaskSize:
    """DescribeTaskDefinition → TaskSize."""
    response = ecs.describe_task_definition(taskDefinition=task_definition)
    return task_size_of(response["taskDefinition"])


def billed_seconds(duration: float) -> int:
    """Fargate's billed seconds for a task that ran ``duration`` seconds."""
    return max(FARGATE_MINIMUM_SECONDS, math.ceil(max(duration, 0.0)))


@dataclass
class Usage:
    """What a run used: the billed units of each service."""

    images: int = 0
    tasks: int = 0
    billed_task_seconds: int = 0
    vcpu_seconds: float = 0.0
    gb_seconds: float = 0.0
    s3_puts: int = 0
    lambda_requests: int = 0
    lambda_gb_seconds: float = 0.0
    sqs_requests: int = 0

    def add_task(self, seconds: float, size: TaskSize) -> None:
        """One task that ran ``seconds`` (billed with the one-minute minimum)."""
        billed = billed_seconds(seconds)
        self.tasks += 1
        self.billed_task_seconds += billed
        self.vcpu_seconds += billed * size.vcpu
        self.gb_seconds += billed * size.memory_gb

    def add_lambda(self, invocations: int) -> None:
        """``invocations`` of a function at the stack's memory, LAMBDA_SECONDS_PER_INVOCATION."""
        self.lambda_requests += invocations
        self.lambda_gb_seconds += invocations * LAMBDA_SECONDS_PER_INVOCATION * LAMBDA_MEMORY_GB


def cost_of(usage: Usage, prices: Prices) -> dict[str, float]:
    """Dollars per line item and ``total`` (not rounded)."""
    lines = {
        "fargate_vcpu": usage.vcpu_seconds / 3600 * prices.fargate_vcpu_hour,
        "fargate_memory": usage.gb_seconds / 3600 * prices.fargate_gb_hour,
        "s3_put": usage.s3_puts / 1000 * prices.s3_put_per_1000,
        "lambda": usage.lambda_requests * prices.lambda_per_request
        + usage.lambda_gb_seconds * prices.lambda_gb_second,
        "sqs": usage.sqs_requests / 1_000_000 * prices.sqs_per_million,
    }
    lines["total"] = sum(lines.values())
    return lines


def seconds_per_image(size: TaskSize) -> float:
    """Estimated seconds per 24 MP image on a task of ``size`` (make bench's figures)."""
    one_cpu = 1.0 / BENCH_IMAGES_PER_SECOND_ONE_CPU
    if size.vcpu <= 1:
        return one_cpu / size.vcpu
    return one_cpu / (1 + BENCH_GAIN_PER_ADDED_CPU * (size.vcpu - 1))


def estimate_backfill(
    images: int, max_uris_per_task: int, size: TaskSize, *, messages: int, sqs_send_requests: int
) -> Usage:
    """The usage of processing ``images`` queued keys: full tasks of ``max_uris_per_task`` and
    one part-filled, each TASK_OVERHEAD_SECONDS plus seconds_per_image per image; puts_per_image
    PUTs an image; one trigger invocation per QUEUE_BATCH_SIZE messages and one reconcile
    invocation per task; SQS: the sends, plus a receive and a delete per invocation."""
    usage = Usage(images=images)
    if images <= 0:
        return usage
    per_image = seconds_per_image(size)
    full, rest = divmod(images, max_uris_per_task)
    for _ in range(full):
        usage.add_task(TASK_OVERHEAD_SECONDS + max_uris_per_task * per_image, size)
    if rest:
        usage.add_task(TASK_OVERHEAD_SECONDS + rest * per_image, size)
    usage.s3_puts = images * puts_per_image(size)
    trigger_invocations = math.ceil(messages / QUEUE_BATCH_SIZE)
    usage.add_lambda(trigger_invocations + usage.tasks)
    usage.sqs_requests = sqs_send_requests + 2 * (trigger_invocations + usage.tasks)
    return usage


def tasks_for(images: int, max_uris_per_task: int) -> int:
    """Tasks that ``images`` keys make at ``max_uris_per_task`` a task."""
    return math.ceil(images / max_uris_per_task) if images > 0 else 0


def sqs_billed_requests(call_bytes: int) -> int:
    """Billed SQS requests of one call carrying ``call_bytes`` of message bodies."""
    return max(1, math.ceil(call_bytes / SQS_BILLED_CHUNK_BYTES))


def usage_dict(usage: Usage) -> dict[str, Any]:
    """Usage as JSON-ready numbers (seconds rounded to 0.1)."""
    plain = asdict(usage)
    for name in ("vcpu_seconds", "gb_seconds", "lambda_gb_seconds"):
        plain[name] = round(plain[name], 1)
    return plain
