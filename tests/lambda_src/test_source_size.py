"""Issue #8 item 2 (trigger side): objects over IIIF_PROCESS_MAX_SOURCE_BYTES cost no task."""

from __future__ import annotations

import pytest
from iiif_process_ecs.settings import DEFAULT_MAX_SOURCE_BYTES, SettingsError, load_settings

from tests.lambda_src.conftest import Infra, s3_record
from tests.lambda_src.test_ecs_trigger_cli import cli, result_of, task_flags
from tests.lambda_src.test_ecs_trigger_handler import FlakyEcs, run
from tests.lambda_src.test_ecs_trigger_sqs import batch, sqs_message

GIB4 = 4 * 1024**3


def test_the_default_limit_is_4_gib(infra: Infra) -> None:
    assert DEFAULT_MAX_SOURCE_BYTES == GIB4
    assert load_settings(infra.environ()).max_source_bytes == GIB4


def test_an_object_over_the_default_limit_is_skipped_without_a_task(infra: Infra) -> None:
    ecs = FlakyEcs()
    event = {"Records": [s3_record("huge.tif", size=GIB4 + 1), s3_record("edge.tif", size=GIB4)]}
    response = run(infra, event, ecs=ecs)
    assert response["skipped"] == [
        {"uri": "huge.tif", "reason": f"too large: {GIB4 + 1} bytes > limit {GIB4} bytes"}
    ]
    assert [entry["uri"] for entry in response["launched"]] == ["edge.tif"]
    assert len(ecs.calls) == 1
    assert ecs.calls[0]["overrides"]["containerOverrides"][0]["command"][-1] == "edge.tif"


def test_the_limit_comes_from_the_environment(infra: Infra) -> None:
    event = {"Records": [s3_record("a.jpg", size=1001), s3_record("b.jpg", size=1000)]}
    response = run(infra, event, IIIF_PROCESS_MAX_SOURCE_BYTES="1000")
    assert response["skipped"] == [
        {"uri": "a.jpg", "reason": "too large: 1001 bytes > limit 1000 bytes"}
    ]
    assert [entry["uri"] for entry in response["launched"]] == ["b.jpg"]


def test_zero_switches_the_limit_off(infra: Infra) -> None:
    event = {"Records": [s3_record("huge.tif", size=50 * GIB4)]}
    response = run(infra, event, IIIF_PROCESS_MAX_SOURCE_BYTES="0")
    assert [entry["uri"] for entry in response["launched"]] == ["huge.tif"]


def test_an_oversized_key_in_an_sqs_batch_is_not_retried(infra: Infra) -> None:
    body = {"Records": [s3_record("huge.tif", size=GIB4 + 1), s3_record("a.jpg")]}
    response = run(infra, batch(sqs_message("m1", body)))
    assert [entry["uri"] for entry in response["skipped"]] == ["huge.tif"]
    assert response["batchItemFailures"] == []


@pytest.mark.parametrize("value", ["-1", "lots", "4GB"])
def test_an_invalid_limit_is_an_error_naming_the_variable(infra: Infra, value: str) -> None:
    with pytest.raises(SettingsError, match="IIIF_PROCESS_MAX_SOURCE_BYTES"):
        load_settings(infra.environ(IIIF_PROCESS_MAX_SOURCE_BYTES=value))


def test_the_cli_flag_sets_the_limit_for_mode_lambda(infra: Infra) -> None:
    import json

    event = json.dumps({"Records": [s3_record("a.jpg", size=11), s3_record("b.jpg", size=10)]})
    status, out, _ = cli(
        ["-mode", "lambda", "-max-source-bytes", "10", *task_flags(infra)], stdin=event
    )
    assert status == 0
    result = result_of(out)
    assert result["skipped"] == [{"uri": "a.jpg", "reason": "too large: 11 bytes > limit 10 bytes"}]
    assert [entry["uri"] for entry in result["launched"]] == ["b.jpg"]
