"""The stack's alarms exist in the embedded AWS (moto's CloudFormation skips them; the local deploy
path creates them, `local_aws/cfn_alarms.py`), so `-mode status` shows their states as on AWS."""

from __future__ import annotations

import io
import json

import pytest
from iiif_process_ecs.cli import Runtime, main

from tests.e2e.conftest import Deployed


def test_every_alarm_of_the_template_notifies_the_topic(deployed: Deployed) -> None:
    alarms = deployed.client("cloudwatch").describe_alarms()["MetricAlarms"]
    topic = deployed.stack["AlarmTopicArn"]
    assert len(alarms) == 8
    assert all(alarm["AlarmActions"] == [topic] for alarm in alarms)


def test_status_shows_the_alarms_states(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in deployed.env.aws.aws_env().items():
        monkeypatch.setenv(name, value)  # boto3 reads them from the process's environment
    out, err = io.StringIO(), io.StringIO()
    status = main(
        ["-stack", "IiifProcessStack", "-mode", "status", "-json"],
        environ=deployed.env.aws.aws_env(),
        runtime=Runtime(stdout=out, stderr=err),
    )
    assert status == 0, err.getvalue()
    alarms = json.loads(out.getvalue())["alarms"]
    assert len(alarms) == 8
    assert any("failurerate" in alarm["name"] for alarm in alarms)
