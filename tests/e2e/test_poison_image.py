"""A poison image end to end on the embedded AWS: the stack deployed with 512 MiB tasks, an image
that its task cannot hold uploaded in one batch with two photos. The task is killed (exit 137,
OutOfMemoryError), the ECS task state event reaches the reconcile function through EventBridge and
its queue, the photos are re-driven and published, and the poison is launched again until it ends
`failed` after maxAttempts (3). (Whether it is re-run alone depends on its `processing_at` write
reaching the ledger before the kill, which the tool's background writer does not guarantee.)

iiif-process refuses an image over its budget before decoding it, so the tasks here run the
project's tool with `iiif_process.memory_budget_mb` set above the task's memory (see
local_aws/poison.py): the kill itself is the kernel's, at the task's real limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local_aws.deploy import deploy_synthesized, synth
from local_aws.emulator import LocalAws
from local_aws.memory_limit import OOM_REASON
from local_aws.poison import over_budget_image
from local_aws.sample_images import make_poison_image, sample_photos
from local_aws.sqs_batches import deliver_one_batch, hold_event_source_mapping
from local_aws.task_runner import TaskRun

from .conftest import INSTRUCTIONS, Deployed
from .iiif_expectations import derivative_key

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")

POISON = "poison.jpg"
SMALL_TASK = {"cpu": "256", "memoryMiB": "512"}


@pytest.fixture(scope="module")
def assembly(emulator: LocalAws, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app synthesized with the smallest Fargate task (256 CPU units, 512 MiB), its
    `publicBaseUrl` the emulator's CloudFront stand-in (as conftest's)."""
    assert emulator.distribution is not None
    return synth(
        emulator.aws,
        tmp_path_factory.mktemp("cdk") / "assembly",
        SMALL_TASK,
        public_base_url=emulator.distribution.url,
    )


@dataclass
class Outcome:
    deployed: Deployed
    photos: list[str]
    runs: list[TaskRun]

    def item(self, uri: str) -> dict[str, Any]:
        table = self.deployed.stack["LedgerTableName"]
        found = self.deployed.client("dynamodb").get_item(
            TableName=table, Key={"uri": {"S": uri}}, ConsistentRead=True
        )
        return dict(found["Item"])

    def runs_with(self, uri: str) -> list[TaskRun]:
        return [r for r in self.runs if uri in r.command]


def uris_of(run: TaskRun) -> list[str]:
    return [run.command[i + 1] for i, a in enumerate(run.command[:-1]) if a == "-uri"]


@pytest.fixture(scope="module")
def outcome(
    emulator: LocalAws, assembly: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Outcome]:
    emulator.reset()
    deployed = Deployed(env=emulator, stack=deploy_synthesized(emulator.aws, assembly))
    work = tmp_path_factory.mktemp("poison")
    normal_image = emulator.tasks.image
    emulator.tasks.image = over_budget_image(work / "image")
    photos = [p.name for p in sample_photos()[:2]]
    queue_url, function = deployed.stack["EventQueueUrl"], deployed.stack["FunctionName"]
    try:
        # One batch, so that the photos share the poison's task.
        with hold_event_source_mapping(emulator.aws, function, queue_url):
            for photo in sample_photos()[:2]:
                deployed.upload(photo.name, photo.read_bytes())
            deployed.upload(POISON, make_poison_image(work / POISON).read_bytes())
            deliver_one_batch(emulator.aws, function, queue_url, batch_size=100)
        runs = emulator.wait_until_idle(timeout=300)
        yield Outcome(deployed, photos, runs)
    finally:
        emulator.tasks.image = normal_image


def test_the_task_holding_the_poison_is_killed_out_of_memory(outcome: Outcome) -> None:
    first = outcome.runs_with(POISON)[0]

    assert (first.exit_code, first.container_reason) == (137, OOM_REASON)
    assert sorted(uris_of(first)) == sorted([*outcome.photos, POISON])


def test_the_poisons_batch_mates_end_published(outcome: Outcome) -> None:
    keys = outcome.deployed.derivative_keys()

    for photo in outcome.photos:
        assert outcome.item(photo)["status"] == {"S": "succeeded"}
        assert {derivative_key(photo, spec) for spec in INSTRUCTIONS.values()} <= keys
        # Tiles are on by default (issue #11): the deep-zoom documents are published too.
        assert {f"{photo}/info.json", f"{photo}/manifest.json"} <= keys


def test_the_poison_ends_failed_after_max_attempts_naming_the_cause(outcome: Outcome) -> None:
    item = outcome.item(POISON)

    assert item["status"] == {"S": "failed"}
    assert item["attempts"] == {"N": "3"}
    assert "out of memory (exit 137)" in item["reason"]["S"]
    assert "3 attempts" in item["reason"]["S"]
    assert len(outcome.runs_with(POISON)) == 3
