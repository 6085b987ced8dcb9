"""modes.py: the flag combinations each -mode refuses, and what -stack and the flags pass on."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from iiif_process_ecs import modes

from tests.lambda_src.conftest import REGION, Infra, s3_record
from tests.lambda_src.test_ecs_trigger_cli import cli, result_of, task_flags


@pytest.mark.parametrize("flag", ["-wait-timeout", "-wait-interval"])
def test_a_wait_number_of_zero_is_refused(flag: str) -> None:
    status, _, err = cli([flag, "0", "-uri", "a.jpg"])
    assert (status, "-wait-timeout and -wait-interval must be positive" in err) == (2, True)


def test_wait_numbers_under_a_second_are_allowed(infra: Infra) -> None:
    argv = ["-wait-timeout", "0.5", "-wait-interval", "0.5", *task_flags(infra), "-uri", "a.jpg"]
    status, out, _ = cli(argv)
    assert (status, len(result_of(out)["launched"])) == (0, 1)


def test_an_unknown_mode_is_refused() -> None:
    status, _, err = cli(["-mode", "tasks", "-uri", "a.jpg"])
    assert (status, "-mode must be one of task, invoke, lambda" in err) == (2, True)


def test_an_unknown_invocation_type_is_refused() -> None:
    status, _, err = cli(["-mode", "invoke", "-lambda-type", "Async", "-uri", "a.jpg"])
    assert (status, "-lambda-type must be one of RequestResponse, Event, DryRun" in err) == (
        2,
        True,
    )


def test_html_with_another_mode_than_status_is_refused() -> None:
    status, _, err = cli(["-mode", "task", "-html", "x.html", "-uri", "a.jpg"])
    assert (status, "-html works with -mode status" in err) == (2, True)


def test_force_with_invoke_is_refused() -> None:
    status, _, err = cli(["-mode", "invoke", "-force", "-lambda-func", "f", "-uri", "a.jpg"])
    assert (status, "-force works with -mode task and -mode lambda" in err) == (2, True)


def test_invoke_needs_a_function() -> None:
    status, _, err = cli(["-mode", "invoke", "-uri", "a.jpg"])
    assert (status, "-mode invoke needs -lambda-func (or -stack)" in err) == (2, True)


def test_task_mode_needs_a_uri(infra: Infra) -> None:
    status, _, err = cli(task_flags(infra))
    assert (status, "no -uri given" in err) == (2, True)


def test_lambda_mode_refuses_another_bucket_with_source_bucket_set(infra: Infra) -> None:
    event = {"Records": [s3_record("a.jpg", bucket="elsewhere")]}
    argv = ["-mode", "lambda", "-source-bucket", "iiif-source", *task_flags(infra)]
    status, out, _ = cli(argv, stdin=json.dumps(event))
    assert (status, [e["uri"] for e in result_of(out)["failed"]]) == (1, ["a.jpg"])


def test_lambda_mode_accepts_any_bucket_without_source_bucket(infra: Infra) -> None:
    event = {"Records": [s3_record("a.jpg", bucket="elsewhere")]}
    status, out, _ = cli(["-mode", "lambda", *task_flags(infra)], stdin=json.dumps(event))
    assert (status, [e["uri"] for e in result_of(out)["launched"]]) == (0, ["a.jpg"])


def stack_with(infra: Infra, **outputs: str) -> str:
    """A CloudFormation stack (moto) with the task's outputs, changed by ``outputs``."""
    name = f"modes-{infra.cluster}"
    values = {
        "ClusterName": infra.cluster,
        "TaskDefinitionArn": infra.task_definition,
        "ContainerName": infra.container,
        "SubnetIds": infra.subnet,
        "SecurityGroupIds": infra.security_group,
        **outputs,
    }
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in values.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=name, TemplateBody=json.dumps(template)
    )
    return name


def test_a_flag_on_the_command_line_beats_the_stacks_output(infra: Infra) -> None:
    stack = stack_with(infra, ClusterName="no-such-cluster")
    status, out, _ = cli(["-stack", stack, "-cluster", infra.cluster, "-uri", "a.jpg"])
    assert (status, len(result_of(out)["launched"])) == (0, 1)


def test_the_result_is_printed_as_utf_8(infra: Infra) -> None:
    status, out, _ = cli([*task_flags(infra), "-uri", "café.jpg"])
    assert (status, '"uri": "café.jpg"' in out) == (0, True)


def test_wait_describes_tasks_in_the_cluster_flag(
    infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task ARN of ECS's old short format names no cluster: -wait must describe it in the
    -cluster given, not in the account's default cluster."""
    clusters: list[str | None] = []
    wait_for_tasks = modes.wait_for_tasks

    def spy(ecs: Any, tasks: list[str], *, cluster: str | None, **options: Any) -> Any:
        clusters.append(cluster)
        return wait_for_tasks(ecs, tasks, cluster=cluster, **options)

    monkeypatch.setattr(modes, "wait_for_tasks", spy)
    argv = [*task_flags(infra), "-uri", "a.jpg", "-wait", "-wait-timeout", "1"]
    cli([*argv, "-wait-interval", "1"])
    assert clusters == [infra.cluster]
