"""Settings: parsing from context strings and JSON, defaults, and errors that name the key."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from stacks.stack_settings import (
    SETTING_KEYS,
    Settings,
    SettingsError,
    context_key,
    settings_from_context,
)
from tests.stacks.conftest import cdk_json_settings


def test_cdk_json_defaults_equal_the_dataclass_defaults() -> None:
    assert settings_from_context(cdk_json_settings()) == Settings()


def test_cdk_json_names_only_known_keys() -> None:
    assert set(cdk_json_settings()) <= set(SETTING_KEYS)


def test_every_field_has_a_context_key() -> None:
    fields = [field.name for field in dataclasses.fields(Settings)]
    assert sorted(context_key(field) for field in fields) == sorted(SETTING_KEYS)


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.cpu = 2048  # type: ignore[misc]


def test_command_line_strings_are_parsed() -> None:
    settings = settings_from_context(
        {
            "cpu": "2048",
            "memoryMiB": "4096",
            "s3Notifications": "false",
            "report": "F",
            "assignPublicIp": "0",
            "cpuArchitecture": "arm64",
            "removalPolicy": "DESTROY",
        }
    )
    assert (
        settings.cpu,
        settings.memory_mib,
        settings.s3_notifications,
        settings.report,
        settings.assign_public_ip,
        settings.cpu_architecture,
        settings.removal_policy,
    ) == (2048, 4096, False, False, False, "ARM64", "destroy")


def test_id_lists_are_parsed_from_comma_separated_strings() -> None:
    settings = settings_from_context(
        {
            "vpcId": "vpc-0123456789abcdef0",
            "subnetIds": "subnet-0123456789abcdef0, subnet-0fedcba9876543210",
            "securityGroupIds": "sg-0123456789abcdef0",
        }
    )
    assert settings.subnet_ids == ("subnet-0123456789abcdef0", "subnet-0fedcba9876543210")


def test_empty_string_leaves_optional_setting_unset() -> None:
    assert settings_from_context({"imageTag": ""}).image_tag is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("stackName", "1stack"),
        ("sourceBucketName", "images-*"),
        ("sourceBucketName", "Upper-Case"),
        ("derivativesBucketName", "192.168.1.1"),
        ("removalPolicy", "snapshot"),
        ("vpcId", "my-vpc"),
        ("assignPublicIp", "maybe"),
        ("repositoryName", "Go-IIIF"),
        ("imageTag", "-bad"),
        ("cpu", "300"),
        ("cpu", "one"),
        ("cpu", True),
        ("memoryMiB", "3000"),
        ("ephemeralStorageGiB", "201"),
        ("cpuArchitecture", "mips"),
        ("containerName", "iiif process"),
        ("logRetentionDays", "31"),
        ("lambdaTimeoutSeconds", "901"),
        ("lambdaMemoryMiB", "64"),
        ("lambdaReservedConcurrency", "0"),
        ("maxUrisPerTask", "0"),
        ("s3Notifications", "sometimes"),
        ("queueBatchSize", "0"),
        ("queueBatchSize", "10001"),
        ("queueBatchWindowSeconds", "301"),
        ("queueBatchWindowSeconds", "-1"),
        ("report", 2),
        ("reportName", "a/b.json"),
    ],
)
def test_bad_setting_names_its_key(key: str, value: Any) -> None:
    with pytest.raises(SettingsError, match=f"'{key}'"):
        settings_from_context({key: value})


def test_bad_memory_lists_the_accepted_values_for_the_cpu() -> None:
    with pytest.raises(SettingsError, match=r"'memoryMiB'.*with cpu 512: 1024, 2048, 3072, 4096"):
        settings_from_context({"cpu": 512, "memoryMiB": 512})


def test_bad_retention_lists_the_accepted_values() -> None:
    with pytest.raises(SettingsError, match=r"'logRetentionDays'.*accepted: 1, 3, 5, 7, 14, 30"):
        settings_from_context({"logRetentionDays": 2})


def test_same_bucket_for_source_and_derivatives_is_refused() -> None:
    with pytest.raises(SettingsError, match="'sourceBucketName' and 'derivativesBucketName'"):
        settings_from_context({"sourceBucketName": "images", "derivativesBucketName": "images"})


def test_wildcard_bucket_name_is_refused() -> None:
    with pytest.raises(SettingsError, match="no wildcards"):
        settings_from_context({"derivativesBucketName": "*"})


def test_queue_batch_above_ten_without_window_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"'queueBatchSize'.*'queueBatchWindowSeconds' is 0"):
        settings_from_context({"queueBatchSize": "11", "queueBatchWindowSeconds": "0"})


def test_queue_batch_of_ten_needs_no_window() -> None:
    settings = settings_from_context({"queueBatchSize": "10", "queueBatchWindowSeconds": "0"})
    assert (settings.queue_batch_size, settings.queue_batch_window_seconds) == (10, 0)


def test_unknown_key_is_refused() -> None:
    with pytest.raises(SettingsError, match="unknown setting 'cpus'"):
        settings_from_context({"cpus": 1024})


def test_subnets_without_vpc_are_refused() -> None:
    with pytest.raises(SettingsError, match=r"'subnetIds'.*unless 'vpcId' is set"):
        settings_from_context({"subnetIds": "subnet-0123456789abcdef0"})


def test_vpc_without_subnets_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"'subnetIds'.*when 'vpcId' is set"):
        settings_from_context({"vpcId": "vpc-0123456789abcdef0"})


def test_vpc_without_security_groups_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"'securityGroupIds'.*when 'vpcId' is set"):
        settings_from_context(
            {"vpcId": "vpc-0123456789abcdef0", "subnetIds": "subnet-0123456789abcdef0"}
        )


def test_more_than_five_security_groups_are_refused() -> None:
    groups = ",".join(f"sg-0123456789abcdef{i}" for i in range(6))
    with pytest.raises(SettingsError, match=r"'securityGroupIds'.*1 to 5 distinct ids"):
        settings_from_context(
            {
                "vpcId": "vpc-0123456789abcdef0",
                "subnetIds": "subnet-0123456789abcdef0",
                "securityGroupIds": groups,
            }
        )


def test_settings_built_directly_are_validated_too() -> None:
    with pytest.raises(SettingsError, match="'cpu'"):
        Settings(cpu=100)


def test_ledger_and_versioning_defaults() -> None:
    settings = Settings()
    assert (
        settings.max_attempts,
        settings.max_source_bytes,
        settings.source_versioning,
        settings.noncurrent_version_expiration_days,
    ) == (3, 4294967296, True, 30)


def test_ledger_and_versioning_settings_parse_strings() -> None:
    settings = settings_from_context(
        {
            "maxAttempts": "10",
            "maxSourceBytes": "0",
            "sourceVersioning": "FALSE",
            "noncurrentVersionExpirationDays": "0",
        }
    )
    assert (
        settings.max_attempts,
        settings.max_source_bytes,
        settings.source_versioning,
        settings.noncurrent_version_expiration_days,
    ) == (10, 0, False, 0)


@pytest.mark.parametrize("value", ["0", "11", "-1"])
def test_max_attempts_outside_1_to_10_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match=r"'maxAttempts'.*from 1 to 10"):
        settings_from_context({"maxAttempts": value})


@pytest.mark.parametrize("value", [1, 10])
def test_max_attempts_bounds_are_accepted(value: int) -> None:
    assert settings_from_context({"maxAttempts": value}).max_attempts == value


def test_negative_max_source_bytes_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"'maxSourceBytes'.*-1"):
        settings_from_context({"maxSourceBytes": "-1"})


def test_max_source_bytes_above_s3s_largest_object_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"'maxSourceBytes'"):
        settings_from_context({"maxSourceBytes": 5 * 1024**4 + 1})


def test_source_versioning_must_be_a_boolean() -> None:
    with pytest.raises(SettingsError, match=r"'sourceVersioning'.*true or false"):
        settings_from_context({"sourceVersioning": "maybe"})


def test_negative_noncurrent_version_expiration_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"'noncurrentVersionExpirationDays'.*from 0"):
        settings_from_context({"noncurrentVersionExpirationDays": "-1"})


def test_monitoring_defaults() -> None:
    settings = Settings()
    assert (
        settings.alarm_email,
        settings.stalled_queue_seconds,
        settings.failure_rate_percent,
        settings.failure_rate_window_minutes,
    ) == (None, 900, 10, 15)


def test_monitoring_settings_parse_strings() -> None:
    settings = settings_from_context(
        {
            "alarmEmail": " ops@example.org ",
            "stalledQueueSeconds": "600",
            "failureRatePercent": "25",
            "failureRateWindowMinutes": "30",
        }
    )
    assert (
        settings.alarm_email,
        settings.stalled_queue_seconds,
        settings.failure_rate_percent,
        settings.failure_rate_window_minutes,
    ) == ("ops@example.org", 600, 25, 30)


def test_empty_alarm_email_means_no_subscription() -> None:
    assert settings_from_context({"alarmEmail": ""}).alarm_email is None


@pytest.mark.parametrize(
    "value", ["ops", "ops@example", "ops @example.org", "a@example.org,b@example.org"]
)
def test_alarm_email_that_is_not_one_address_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match=r"'alarmEmail'.*email address"):
        settings_from_context({"alarmEmail": value})


@pytest.mark.parametrize(
    ("key", "low", "high"),
    [
        ("stalledQueueSeconds", 60, 1209600),
        ("failureRatePercent", 1, 100),
        ("failureRateWindowMinutes", 1, 1440),
    ],
)
def test_monitoring_threshold_bounds_are_accepted(key: str, low: int, high: int) -> None:
    field = {
        "stalledQueueSeconds": "stalled_queue_seconds",
        "failureRatePercent": "failure_rate_percent",
        "failureRateWindowMinutes": "failure_rate_window_minutes",
    }[key]
    assert getattr(settings_from_context({key: low}), field) == low
    assert getattr(settings_from_context({key: high}), field) == high


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("stalledQueueSeconds", 59),
        ("stalledQueueSeconds", 1209601),
        ("failureRatePercent", 0),
        ("failureRatePercent", 101),
        ("failureRateWindowMinutes", 0),
        ("failureRateWindowMinutes", 1441),
        ("failureRatePercent", "ten"),
    ],
)
def test_monitoring_threshold_out_of_range_names_its_key(key: str, value: Any) -> None:
    with pytest.raises(SettingsError, match=f"'{key}'"):
        settings_from_context({key: value})


# --- deep zoom (issue #11) --------------------------------------------------------------------


def test_deep_zoom_defaults() -> None:
    settings = Settings()
    assert (
        settings.tiles,
        settings.iiif_api_version,
        settings.tile_size,
        settings.public_base_url,
        settings.cloudfront,
    ) == (True, 3, 512, None, True)


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "", "tRuE"])
def test_booleans_are_gos_parsebool_words_only(word: str) -> None:
    with pytest.raises(SettingsError, match=r"strconv\.ParseBool"):
        settings_from_context({"tiles": word})


def test_deep_zoom_settings_parse_strings() -> None:
    settings = settings_from_context(
        {
            "tiles": "0",
            "iiifApiVersion": "2",
            "tileSize": "1024",
            "publicBaseUrl": " https://images.example.org/iiif ",
            "cloudfront": "false",
        }
    )
    assert (
        settings.tiles,
        settings.iiif_api_version,
        settings.tile_size,
        settings.public_base_url,
        settings.cloudfront,
    ) == (False, 2, 1024, "https://images.example.org/iiif", False)


def test_empty_public_base_url_means_the_default() -> None:
    assert settings_from_context({"publicBaseUrl": ""}).public_base_url is None


@pytest.mark.parametrize("value", [64, 4096])
def test_tile_size_bounds_are_accepted(value: int) -> None:
    assert settings_from_context({"tileSize": value}).tile_size == value


@pytest.mark.parametrize(
    ("key", "value", "accepted"),
    [
        ("tiles", "sometimes", "true or false"),
        ("cloudfront", 1.5, "true or false"),
        ("iiifApiVersion", "1", "accepted: 2, 3"),
        ("iiifApiVersion", "4", "accepted: 2, 3"),
        ("iiifApiVersion", "three", "whole number"),
        ("tileSize", "63", "from 64 to 4096"),
        ("tileSize", "4097", "from 64 to 4096"),
    ],
)
def test_bad_deep_zoom_setting_names_its_key(key: str, value: Any, accepted: str) -> None:
    with pytest.raises(SettingsError, match=f"'{key}'.*{accepted}"):
        settings_from_context({key: value})


@pytest.mark.parametrize(
    "value",
    [
        "http://images.example.org",
        "https://images.example.org/",
        "https://images.example.org/iiif/",
        "https://images.example.org?x=1",
        "https://images.example.org#top",
        "https://user@images.example.org",
        "https://images.example.org:99999",
        "ftp://images.example.org",
        "images.example.org",
        "https://",
        "https://images example.org",
    ],
)
def test_public_base_url_that_is_not_a_plain_https_url_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match=r"'publicBaseUrl'.*https:// URL without a trailing"):
        settings_from_context({"publicBaseUrl": value})


@pytest.mark.parametrize(
    "value",
    ["https://images.example.org", "https://example.org:8443/iiif/v3", "http://localhost:8182"],
)
def test_public_base_url_accepts_https_and_the_local_stand_in(value: str) -> None:
    assert settings_from_context({"publicBaseUrl": value}).public_base_url == value
