"""Settings from IIIF_PROCESS_* variables: defaults, required names, bad values."""

from __future__ import annotations

import pytest
from iiif_process_ecs.settings import Settings, SettingsError, load_settings

REQUIRED = {
    "IIIF_PROCESS_CLUSTER": "c",
    "IIIF_PROCESS_TASK": "iiif-process:2",
    "IIIF_PROCESS_CONTAINER": "iiif-process",
    "IIIF_PROCESS_SUBNET": "subnet-1, subnet-2,",
    "IIIF_PROCESS_SECURITY_GROUP": "sg-1",
    "AWS_REGION": "eu-west-1",
}
NEEDED = {
    "cluster": "c",
    "task_definition": "iiif-process:2",
    "container": "iiif-process",
    "subnets": ("subnet-1",),
    "security_groups": ("sg-1",),
}


def test_defaults_follow_the_contract() -> None:
    settings = load_settings(REQUIRED)
    assert settings.subnets == ("subnet-1", "subnet-2")
    assert (settings.assign_public_ip, settings.report, settings.report_name) == (
        "ENABLED",
        False,
        "process.json",
    )
    assert (settings.max_uris_per_task, settings.strip_paths, settings.source_bucket) == (
        50,
        False,
        None,
    )
    assert settings.config_path == "/etc/go-iiif/config.json"
    assert settings.instructions_path == "/etc/go-iiif/instructions.json"
    assert settings.ecs_dsn == "region=eu-west-1 credentials=iam:"


def test_a_key_is_launched_at_most_three_times_by_default() -> None:
    assert load_settings(REQUIRED).max_attempts == 3


def test_seed_readme_table_is_enough() -> None:
    env = {
        "IIIF_PROCESS_ECS_DSN": "region=us-east-1 credentials=iam:",
        "IIIF_PROCESS_MODE": "lambda",
        "IIIF_PROCESS_SECURITY_GROUP": "sg-1",
        "IIIF_PROCESS_SUBNET": "subnet-1,subnet-2,subnet-3",
        "IIIF_PROCESS_TASK": "iiif-process:2",
        "IIIF_PROCESS_CLUSTER": "go-iiif-process-ecs",
        "IIIF_PROCESS_CONTAINER": "go-iiif-process-ecs",
    }
    assert load_settings(env).ecs_dsn == "region=us-east-1 credentials=iam:"


@pytest.mark.parametrize("name", [n for n in REQUIRED if n != "AWS_REGION"])
def test_missing_required_variable_is_named(name: str) -> None:
    env = {k: v for k, v in REQUIRED.items() if k != name}
    with pytest.raises(SettingsError, match=name):
        load_settings(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IIIF_PROCESS_REPORT", "maybe"),
        ("IIIF_PROCESS_MAX_URIS_PER_TASK", "many"),
        ("IIIF_PROCESS_MAX_URIS_PER_TASK", "0"),
        ("IIIF_PROCESS_ASSIGN_PUBLIC_IP", "sometimes"),
        ("IIIF_PROCESS_STRIP_PATHS", "perhaps"),
        ("IIIF_PROCESS_SUBNET", " , "),
    ],
)
def test_bad_value_is_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({**REQUIRED, name: value})


def test_without_dsn_or_region_is_an_error() -> None:
    env = {k: v for k, v in REQUIRED.items() if k != "AWS_REGION"}
    with pytest.raises(SettingsError, match="IIIF_PROCESS_ECS_DSN"):
        load_settings(env)


def test_settings_built_without_strip_paths_keep_the_paths() -> None:
    assert Settings(**NEEDED).strip_paths is False


@pytest.mark.parametrize("report_name", ["", "reports/process.json"])
def test_a_report_name_that_is_not_a_plain_file_name_is_refused(report_name: str) -> None:
    with pytest.raises(SettingsError, match="report_name") as refused:
        Settings(**NEEDED, report_name=report_name)
    assert refused.value.field == "report_name"
