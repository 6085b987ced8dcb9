"""Issue #8 item 12: non-finite numbers for -wait-timeout / -wait-interval are usage errors."""

from __future__ import annotations

import boto3
import pytest

from tests.lambda_src.conftest import REGION, Infra
from tests.lambda_src.test_ecs_trigger_cli import cli, task_flags

NON_FINITE = ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"]


@pytest.mark.parametrize("flag", ["wait-timeout", "wait-interval"])
@pytest.mark.parametrize("value", NON_FINITE)
def test_non_finite_wait_numbers_are_refused_before_any_task(
    infra: Infra, flag: str, value: str
) -> None:
    status, out, err = cli(["-wait", f"-{flag}", value, "-uri", "a.jpg", *task_flags(infra)])
    assert status == 2
    assert f"-{flag}" in err.splitlines()[0]
    assert "finite" in err.splitlines()[0]
    assert out == ""
    ecs = boto3.client("ecs", region_name=REGION)
    assert ecs.list_tasks(cluster=infra.cluster)["taskArns"] == []


def test_non_finite_wait_numbers_from_the_environment_are_refused(infra: Infra) -> None:
    status, _, err = cli(
        ["-wait", "-uri", "a.jpg", *task_flags(infra)],
        environ={"IIIF_PROCESS_WAIT_TIMEOUT": "nan"},
    )
    assert status == 2
    assert "IIIF_PROCESS_WAIT_TIMEOUT (-wait-timeout)" in err
    assert "finite" in err
