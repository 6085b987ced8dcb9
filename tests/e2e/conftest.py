"""The embedded AWS for the end-to-end tests: one emulator and one synthesis per module, a clean
account and a fresh deployment of the synthesized app for every test.

Module scope, not session: the emulator shares moto's in-process backends with the other folders'
`mock_aws` tests, so it must be gone (with its patches and task runner) before they start."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local_aws.deploy import DeployedStack, deploy_synthesized, synth
from local_aws.emulator import LocalAws, local_aws
from local_aws.task_runner import TaskRun

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INSTRUCTIONS = json.loads((PROJECT_ROOT / "container" / "instructions.json").read_text())


#: The local stand-ins' settings for tests: a short StopTask grace (30 s on Fargate) and batching
#: windows of at most 0.2 s (the stack's 30 s default would make every upload wait).
STOP_GRACE_SECONDS = 2.0
BATCH_WINDOW_CAP_SECONDS = 0.2


@pytest.fixture(scope="module")
def emulator() -> Iterator[LocalAws]:
    with local_aws(
        stop_grace_seconds=STOP_GRACE_SECONDS, batch_window_cap=BATCH_WINDOW_CAP_SECONDS
    ) as running:
        yield running


@pytest.fixture(scope="module")
def assembly(emulator: LocalAws, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app as deployed here: its `publicBaseUrl` is the emulator's CloudFront stand-in."""
    assert emulator.distribution is not None
    return synth(
        emulator.aws,
        tmp_path_factory.mktemp("cdk") / "assembly",
        public_base_url=emulator.distribution.url,
    )


@dataclass
class Deployed:
    """The app deployed into a clean emulator, with the helpers a test needs."""

    env: LocalAws
    stack: DeployedStack

    def client(self, service: str) -> Any:
        return self.env.aws.client(service)

    @property
    def source(self) -> str:
        return self.stack["SourceBucketName"]

    @property
    def derivatives(self) -> str:
        return self.stack["DerivativesBucketName"]

    def upload(self, key: str, body: bytes) -> None:
        """PutObject into the source bucket: S3 then notifies the trigger Lambda."""
        self.client("s3").put_object(Bucket=self.source, Key=key, Body=body)

    def invoke(self, payload: Any, invocation_type: str = "RequestResponse") -> dict[str, Any]:
        response = self.client("lambda").invoke(
            FunctionName=self.stack["FunctionName"],
            InvocationType=invocation_type,
            Payload=json.dumps(payload).encode(),
        )
        body = response["Payload"].read()
        assert "FunctionError" not in response, body
        return json.loads(body) if body else {}

    def wait_for_tasks(self) -> list[TaskRun]:
        """Wait until queues, invocations and tasks are quiet; return every task run."""
        return self.env.wait_until_idle(timeout=180)

    def derivative_keys(self) -> set[str]:
        pages = self.client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.derivatives)
        return {o["Key"] for page in pages for o in page.get("Contents", [])}

    def read_derivative(self, key: str) -> bytes:
        return self.client("s3").get_object(Bucket=self.derivatives, Key=key)["Body"].read()

    def task_arns(self) -> list[str]:
        return self.client("ecs").list_tasks(cluster=self.stack["ClusterName"])["taskArns"]

    def trigger_invocations(self) -> list[Any]:
        name = self.stack["FunctionName"]
        return [i for i in self.env.invocations if i.function_name == name]


@pytest.fixture
def deployed(emulator: LocalAws, assembly: Path) -> Deployed:
    emulator.reset()
    return Deployed(env=emulator, stack=deploy_synthesized(emulator.aws, assembly))
