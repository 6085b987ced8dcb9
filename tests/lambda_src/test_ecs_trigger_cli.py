"""The iiif-process-ecs command under moto: every mode, flag forms, -stack and -wait."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import boto3
import pytest
from iiif_process_ecs.cli import Runtime, main
from iiif_process_ecs.service import handle_event
from moto.awslambda.models import LambdaFunction
from moto.ecs.models import ecs_backends

from tests.lambda_src.conftest import REGION, Infra, command_of, uris_of

ACCOUNT = "123456789012"


class Clock:
    """Fake time for -wait; ``on_sleep`` runs at each sleep (to play the container's part)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0
        self.on_sleep: Any = None

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(self.sleeps)

    def monotonic(self) -> float:
        return self.now


def cli(
    argv: list[str],
    environ: dict[str, str] | None = None,
    stdin: str = "",
    clock: Clock | None = None,
) -> tuple[int, str, str]:
    clock = clock or Clock()
    out, err = io.StringIO(), io.StringIO()
    runtime = Runtime(
        stdout=out,
        stderr=err,
        stdin=io.StringIO(stdin),
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        rand=lambda: 0.0,
    )
    status = main(argv, environ=environ or {}, runtime=runtime)
    return status, out.getvalue(), err.getvalue()


def task_flags(infra: Infra) -> list[str]:
    return [
        "-cluster",
        infra.cluster,
        "-task",
        infra.task_definition,
        "-container",
        infra.container,
        "-subnet",
        infra.subnet,
        "-security-group",
        infra.security_group,
    ]


def result_of(stdout: str) -> dict[str, Any]:
    decoder = json.JSONDecoder()
    return decoder.raw_decode(stdout)[0]


def ecs() -> Any:
    return boto3.client("ecs", region_name=REGION)


def test_help_lists_the_seed_flags() -> None:
    status, _, err = cli(["-h"])
    assert status == 0
    for flag in (
        "-cluster",
        "-config",
        "-container",
        "-ecs-dsn",
        "-instructions",
        "-lambda-dsn",
        "-lambda-func",
        "-lambda-type",
        "-mode",
        "-security-group",
        "-strip-paths",
        "-subnet",
        "-task",
        "-uri",
        "-wait",
        "-report",
        "-report-name",
        "-stack",
    ):
        assert f"\n  {flag} " in err or f"\n  {flag}\n" in err


def test_unknown_flag_exits_2() -> None:
    status, _, err = cli(["-colour", "blue"])
    assert status == 2
    assert "flag provided but not defined: -colour" in err


def test_mode_task_starts_one_task_with_go_style_flags(infra: Infra) -> None:
    argv = [
        "--mode=task",
        f"-ecs-dsn=region={REGION} credentials=iam:",
        *task_flags(infra),
        "-uri",
        "a.jpg",
        "--uri=dir/b c.png",
        "-report",
        "-report-name=r.json",
    ]
    status, out, _ = cli(argv)
    assert status == 0
    result = result_of(out)
    assert [e["uri"] for e in result["launched"]] == ["a.jpg", "dir/b c.png"]
    command = command_of(ecs(), infra.cluster, result["tasks"][0])
    assert "-report" in command and "r.json" in command
    assert uris_of(command) == ["a.jpg", "dir/b c.png"]


def test_values_come_from_iiif_process_variables(infra: Infra) -> None:
    environ = {
        "IIIF_PROCESS_CLUSTER": infra.cluster,
        "IIIF_PROCESS_TASK": infra.task_definition,
        "IIIF_PROCESS_CONTAINER": infra.container,
        "IIIF_PROCESS_SUBNET": infra.subnet,
        "IIIF_PROCESS_SECURITY_GROUP": infra.security_group,
        "IIIF_PROCESS_ECS_DSN": f"region={REGION} credentials=env:",
    }
    status, out, _ = cli(["-uri", "a.jpg"], environ)
    assert status == 0
    assert len(result_of(out)["tasks"]) == 1


def test_each_run_of_mode_task_is_a_new_task(infra: Infra) -> None:
    cli([*task_flags(infra), "-uri", "a.jpg"])
    cli([*task_flags(infra), "-uri", "a.jpg"])
    assert len(ecs().list_tasks(cluster=infra.cluster)["taskArns"]) == 2


def test_skipped_uri_is_reported_and_failed_uri_exits_1(infra: Infra) -> None:
    status, out, err = cli([*task_flags(infra), "-uri", "notes.txt", "-uri", "../x.jpg"])
    assert status == 1
    assert "skipped: notes.txt" in err and "failed: ../x.jpg" in err
    assert result_of(out)["tasks"] == []


def test_strip_paths_collision_is_an_error(infra: Infra) -> None:
    status, _, err = cli([*task_flags(infra), "-strip-paths", "-uri", "a/x.jpg", "-uri", "b/x.jpg"])
    assert status == 2
    assert "shared with" in err
    assert ecs().list_tasks(cluster=infra.cluster)["taskArns"] == []


def test_strip_paths_passes_file_names(infra: Infra) -> None:
    status, out, _ = cli([*task_flags(infra), "-strip-paths=true", "-uri", "a/x.jpg"])
    assert status == 0
    assert uris_of(command_of(ecs(), infra.cluster, result_of(out)["tasks"][0])) == ["x.jpg"]


def test_missing_settings_are_named(infra: Infra) -> None:
    status, _, err = cli(["-uri", "a.jpg", "-cluster", infra.cluster])
    assert status == 2
    assert "-task, -container, -subnet, -security-group" in err


def test_bad_dsn_exits_2() -> None:
    status, _, err = cli(["-ecs-dsn", "region=us-east-1 credentials=anon:", "-uri", "a.jpg"])
    assert status == 2
    assert "unsupported credentials" in err


def deploy_stack(infra: Infra) -> str:
    name = f"stack-{infra.cluster}"
    outputs = {
        "ClusterName": infra.cluster,
        "TaskDefinitionArn": infra.task_definition,
        "ContainerName": infra.container,
        "SubnetIds": infra.subnet,
        "SecurityGroupIds": infra.security_group,
        "AssignPublicIp": "ENABLED",
        "FunctionName": "iiif-trigger",
        "SourceBucketName": infra.source_bucket,
        "DerivativesBucketName": infra.derivatives_bucket,
        "LogGroupName": infra.log_group,
        "LogStreamPrefix": "iiif-process",
    }
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=name, TemplateBody=json.dumps(template)
    )
    return name


def test_stack_fills_the_task_settings(infra: Infra) -> None:
    status, out, _ = cli(["-stack", deploy_stack(infra), "-uri", "a.jpg"])
    assert status == 0
    assert len(ecs().list_tasks(cluster=infra.cluster)["taskArns"]) == 1
    assert len(result_of(out)["launched"]) == 1


def test_unknown_stack_exits_2(aws: None) -> None:
    status, _, err = cli(["-stack", "NoSuchStack", "-uri", "a.jpg"])
    assert status == 2
    assert "NoSuchStack" in err


def test_mode_lambda_handles_an_event_from_stdin(infra: Infra) -> None:
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": "iiif-source"},
                    "object": {"key": "red+flower.jpg", "size": 3},
                },
            }
        ]
    }
    status, out, _ = cli(["-mode", "lambda", *task_flags(infra)], stdin=json.dumps(event))
    assert status == 0
    assert result_of(out)["launched"][0]["uri"] == "red flower.jpg"


def test_mode_lambda_reads_event_file_and_refuses_bad_events(infra: Infra, tmp_path: Any) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"uris": "a.jpg"}))
    status, _, err = cli(["-mode", "lambda", "-event", str(path), *task_flags(infra)])
    assert status == 2
    assert "'uris' must be a list" in err


@pytest.fixture
def function_environ(infra: Infra) -> dict[str, str]:
    """The environment the moto Lambda function's handler sees (tests may change it)."""
    return infra.environ()


@pytest.fixture
def function(
    infra: Infra, function_environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> str:
    """A moto Lambda function that runs the handler logic (moto only echoes without Docker)."""
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName=f"r-{infra.cluster}", AssumeRolePolicyDocument="{}")["Role"][
        "Arn"
    ]
    name = f"fn-{infra.cluster}"
    boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        Environment={"Variables": {"IIIF_PROCESS_TASK": "set-by-test"}},
    )

    def invoke(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        try:
            return json.dumps(handle_event(event, None, environ=function_environ)), False, ""
        except Exception as error:
            return (
                json.dumps({"errorMessage": str(error), "errorType": type(error).__name__}),
                True,
                "",
            )

    monkeypatch.setattr(LambdaFunction, "_invoke_lambda", invoke)
    return name


def test_mode_invoke_request_response_prints_the_lambda_response(
    infra: Infra, function: str
) -> None:
    argv = [
        "-mode",
        "invoke",
        f"-lambda-dsn=region={REGION} credentials=iam:",
        "-lambda-func",
        function,
        "-lambda-type",
        "RequestResponse",
        "-uri",
        "avocado.png",
        "-uri",
        "toast.jpg",
    ]
    status, out, _ = cli(argv)
    assert status == 0
    result = result_of(out)
    assert sorted(e["uri"] for e in result["launched"]) == ["avocado.png", "toast.jpg"]
    assert len(ecs().list_tasks(cluster=infra.cluster)["taskArns"]) == 1


def test_mode_invoke_reports_a_function_error(
    infra: Infra, function: str, function_environ: dict[str, str]
) -> None:
    function_environ["IIIF_PROCESS_CLUSTER"] = "no-such-cluster"
    status, _, err = cli(["-mode", "invoke", "-lambda-func", function, "-uri", "x.jpg"])
    assert status == 1
    assert "the function failed" in err
    assert "ClusterNotFoundException" in err


@pytest.mark.parametrize(("kind", "code"), [("Event", 202), ("DryRun", 204)])
def test_mode_invoke_event_and_dry_run(infra: Infra, function: str, kind: str, code: int) -> None:
    status, out, _ = cli(
        ["-mode", "invoke", "-lambda-func", function, "-lambda-type", kind, "-uri", "a.jpg"]
    )
    assert status == 0
    assert json.loads(out)["status"] == code


def test_wait_needs_request_response(function: str) -> None:
    status, _, err = cli(
        [
            "-mode",
            "invoke",
            "-lambda-func",
            function,
            "-lambda-type",
            "Event",
            "-wait",
            "-uri",
            "a.jpg",
        ]
    )
    assert status == 2
    assert "-wait needs -lambda-type RequestResponse" in err


def the_task(cluster: str) -> Any:
    tasks = ecs_backends[ACCOUNT][REGION].tasks[cluster]
    return next(iter(tasks.values()))


def play_container(infra: Infra, exit_code: int, log_lines: list[str], report: dict | None):
    """At the first sleep: write the task's log stream and report, and set its exit code."""

    def on_sleep(count: int) -> None:
        if count != 1:
            return
        task = the_task(infra.cluster)
        task.containers[0].exitCode = exit_code
        logs = boto3.client("logs", region_name=REGION)
        stream = f"iiif-process/iiif-process/{task.id}"
        logs.create_log_stream(logGroupName=infra.log_group, logStreamName=stream)
        logs.put_log_events(
            logGroupName=infra.log_group,
            logStreamName=stream,
            logEvents=[
                {"timestamp": int(time.time() * 1000) + i, "message": line}
                for i, line in enumerate(log_lines)
            ],
        )
        if report is not None:
            boto3.client("s3", region_name=REGION).put_object(
                Bucket=infra.derivatives_bucket,
                Key=f"{infra.cluster}.jpg/process.json",
                Body=json.dumps(report).encode(),
            )

    return on_sleep


def test_wait_on_a_task_that_succeeds_shows_exit_code_logs_and_report(infra: Infra) -> None:
    clock = Clock()
    clock.on_sleep = play_container(infra, 0, ["processing", "done"], {"origin": "x.jpg"})
    status, out, _ = cli(
        [
            "-stack",
            deploy_stack(infra),
            "-uri",
            f"{infra.cluster}.jpg",
            "-report",
            "-wait",
            "-wait-interval",
            "1",
        ],
        clock=clock,
    )
    assert status == 0
    assert "succeeded" in out
    assert "exit code 0" in out
    assert "    processing\n    done\n" in out
    assert '"origin": "x.jpg"' in out


def test_wait_on_a_task_that_fails_exits_1(infra: Infra) -> None:
    clock = Clock()
    clock.on_sleep = play_container(infra, 137, ["Killed"], None)
    status, out, _ = cli([*task_flags(infra), "-uri", "a.jpg", "-report", "-wait"], clock=clock)
    assert status == 1
    assert "exit code 137 (137: killed, usually out of memory)" in out
    # Log group found through the task definition; no bucket known for the report.
    assert "    Killed\n" in out
    assert "reports: cannot show: the derivatives bucket is unknown" in out


def test_wait_on_a_task_that_vanishes_ends_and_exits_1(infra: Infra) -> None:
    clock = Clock()

    def vanish(count: int) -> None:
        tasks = ecs_backends[ACCOUNT][REGION].tasks[infra.cluster]
        tasks.clear()

    clock.on_sleep = vanish
    status, out, _ = cli([*task_flags(infra), "-uri", "a.jpg", "-wait"], clock=clock)
    assert status == 1
    assert "vanished" in out
    assert clock.sleeps == 1


def test_wait_is_bounded_by_wait_timeout(infra: Infra) -> None:
    from moto.moto_api import state_manager

    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 1000})
    clock = Clock()
    status, out, _ = cli(
        [
            *task_flags(infra),
            "-uri",
            "a.jpg",
            "-wait",
            "-wait-timeout",
            "30",
            "-wait-interval",
            "10",
        ],
        clock=clock,
    )
    assert status == 1
    assert "when -wait-timeout ended" in out
    assert clock.now <= 30


def test_wait_after_invoke_uses_the_returned_tasks(infra: Infra, function: str) -> None:
    clock = Clock()
    clock.on_sleep = play_container(infra, 0, ["ok"], None)
    status, out, _ = cli(
        ["-mode", "invoke", "-lambda-func", function, "-uri", "a.jpg", "-wait"], clock=clock
    )
    assert status == 0
    assert "exit code 0" in out
    assert "reports: none (the task was started without -report)" in out
