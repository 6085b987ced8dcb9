"""Pack URIs into RunTask calls: the container command, overrides size, and clientTokens."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .settings import Settings

TOOL = "/bin/iiif-process"
STARTED_BY = "iiif-process-ecs"
OVERRIDES_LIMIT = 8192
# ECS counts the overrides JSON in its own encoding; the measure below is already pessimistic
# for non-ASCII text, and the margin absorbs differences in whitespace and escaping.
OVERRIDES_MARGIN = 512
TOKEN_PREFIX = "iiif-"  # noqa: S105 (a clientToken prefix, not a secret)
TOKEN_HEX_CHARS = 59  # prefix + 59 = 64, the RunTask maximum


class BatchTooLarge(ValueError):
    """A single URI does not fit into one RunTask's overrides (a configuration problem)."""


@dataclass(frozen=True)
class Batch:
    """The URIs of one task.

    ``uris`` are the keys as received (what the response reports); ``task_uris`` are the
    `-uri` values given to the container (the same, or file names under -strip-paths).
    """

    uris: tuple[str, ...]
    task_uris: tuple[str, ...]
    overrides: dict[str, Any]
    client_token: str


def build_command(settings: Settings, task_uris: Sequence[str]) -> list[str]:
    """The seed's command line for the container (docs/contracts.md)."""
    command = [TOOL, "-config", settings.config_path, "-instructions", settings.instructions_path]
    if settings.report:
        command += ["-report", "-report-name", settings.report_name]
    for uri in task_uris:
        command += ["-uri", uri]
    return command


def build_overrides(settings: Settings, task_uris: Sequence[str]) -> dict[str, Any]:
    """RunTask ``overrides`` that run the command in the configured container."""
    return {
        "containerOverrides": [
            {"name": settings.container, "command": build_command(settings, task_uris)}
        ]
    }


def measured_length(overrides: Mapping[str, Any]) -> int:
    """A pessimistic length of ``overrides`` as JSON.

    ASCII counts one character; any other character counts as its percent-encoded UTF-8 (three
    characters per byte), which is more than its JSON escape or its raw form.
    """
    text = json.dumps(overrides, ensure_ascii=False)
    return sum(1 if ord(char) < 128 else 3 * len(char.encode("utf-8")) for char in text)


def network_configuration(settings: Settings) -> dict[str, Any]:
    """The awsvpc configuration for Fargate."""
    return {
        "awsvpcConfiguration": {
            "subnets": list(settings.subnets),
            "securityGroups": list(settings.security_groups),
            "assignPublicIp": settings.assign_public_ip,
        }
    }


def client_token(
    settings: Settings, overrides: Mapping[str, Any], identities: Sequence[str], nonce: str = ""
) -> str:
    """A clientToken that is the same for the same batch, so a retried event starts no new task.

    It covers cluster, task definition, network, the overrides (URIs included), the objects'
    identities (two uploads of one key differ) and an optional nonce (the CLI's per-run value).
    """
    material = json.dumps(
        {
            "cluster": settings.cluster,
            "task": settings.task_definition,
            "network": network_configuration(settings),
            "overrides": overrides,
            "identities": list(identities),
            "nonce": nonce,
        },
        sort_keys=True,
        ensure_ascii=True,
    )
    digest = hashlib.sha256(material.encode("ascii")).hexdigest()
    return TOKEN_PREFIX + digest[:TOKEN_HEX_CHARS]


def pack(
    settings: Settings,
    uris: Sequence[tuple[str, str, str]],
    *,
    limit: int = OVERRIDES_LIMIT - OVERRIDES_MARGIN,
    nonce: str = "",
) -> tuple[list[Batch], list[tuple[str, str]]]:
    """Pack ``(uri, task_uri, identity)`` triples into batches, in the order given.

    Each batch holds at most ``settings.max_uris_per_task`` URIs and its overrides measure at
    most ``limit``. Returns the batches and ``(uri, reason)`` for URIs that fit in no batch.
    """
    batches: list[Batch] = []
    too_large: list[tuple[str, str]] = []
    current: list[tuple[str, str, str]] = []

    def close() -> None:
        if current:
            task_uris = [task_uri for _, task_uri, _ in current]
            overrides = build_overrides(settings, task_uris)
            token = client_token(
                settings, overrides, [identity for _, _, identity in current], nonce
            )
            batches.append(
                Batch(
                    uris=tuple(uri for uri, _, _ in current),
                    task_uris=tuple(task_uris),
                    overrides=overrides,
                    client_token=token,
                )
            )
            current.clear()

    for item in uris:
        alone = measured_length(build_overrides(settings, [item[1]]))
        if alone > limit:
            too_large.append(
                (
                    item[0],
                    f"the task command for this URI alone measures {alone} > {limit} characters",
                )
            )
            continue
        candidate = [task_uri for _, task_uri, _ in current] + [item[1]]
        if current and (
            len(candidate) > settings.max_uris_per_task
            or measured_length(build_overrides(settings, candidate)) > limit
        ):
            close()
        current.append(item)
    close()
    return batches, too_large
