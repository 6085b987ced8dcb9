"""`make up`'s promises that need no deployment: the export lines it prints point a shell's
aws-cli at the emulator, and its options are checked."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from local_aws.server import EmbeddedAws, moto_server
from local_aws.up import export_lines, parse_args


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    with moto_server() as running:
        running.reset()
        yield running


def test_the_export_lines_point_a_shells_aws_cli_at_the_emulator(aws: EmbeddedAws) -> None:
    aws.client("s3").create_bucket(Bucket="only-in-the-emulator")
    script = "\n".join([*export_lines(aws), "aws s3api list-buckets --query 'Buckets[].Name'"])
    # A shell configured for some real account: the export lines must win over it.
    shell_env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_PROFILE": "production",
        "AWS_REGION": "eu-west-1",
    }

    listed = subprocess.run(
        ["bash", "-c", script], env=shell_env, capture_output=True, text=True, check=False
    )

    assert listed.returncode == 0, listed.stderr
    assert "only-in-the-emulator" in listed.stdout


def test_a_context_setting_without_a_value_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["-c", "queueBatchWindowSeconds"])

    assert "-c queueBatchWindowSeconds: expected KEY=VALUE" in capsys.readouterr().err


def test_the_stop_grace_defaults_to_fargates_30_seconds() -> None:
    assert parse_args([]).stop_grace == 30.0
