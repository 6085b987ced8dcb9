"""Processing: cluster, Fargate task definition, container, logs and the task's permissions."""

from __future__ import annotations

from typing import Any

from tests.stacks.conftest import IMAGE_TAG, Synthesized


def _task(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.only("AWS::ECS::TaskDefinition")["Properties"]


def _container(synthesized: Synthesized) -> dict[str, Any]:
    (container,) = _task(synthesized)["ContainerDefinitions"]
    return container


def _task_role_statements(synthesized: Synthesized) -> list[dict[str, Any]]:
    task_role_id = _task(synthesized)["TaskRoleArn"]["Fn::GetAtt"][0]
    policies = [
        policy["Properties"]
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": task_role_id} in policy["Properties"]["Roles"]
    ]
    return [s for policy in policies for s in policy["PolicyDocument"]["Statement"]]


def test_cluster_has_container_insights(default: Synthesized) -> None:
    settings = default.only("AWS::ECS::Cluster")["Properties"]["ClusterSettings"]
    assert settings == [{"Name": "containerInsights", "Value": "enabled"}]


def test_task_is_fargate_awsvpc(default: Synthesized) -> None:
    task = _task(default)
    assert (task["RequiresCompatibilities"], task["NetworkMode"]) == (["FARGATE"], "awsvpc")


def test_task_size_follows_settings(imported: Synthesized) -> None:
    task = _task(imported)
    assert (task["Cpu"], task["Memory"]) == ("2048", "8192")


def test_task_cpu_architecture_follows_settings(imported: Synthesized) -> None:
    platform = _task(imported)["RuntimePlatform"]
    assert platform == {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"}


def test_default_task_is_x86_64(default: Synthesized) -> None:
    assert _task(default)["RuntimePlatform"]["CpuArchitecture"] == "X86_64"


def test_ephemeral_storage_is_declared_above_the_free_20_gib(imported: Synthesized) -> None:
    assert _task(imported)["EphemeralStorage"] == {"SizeInGiB": 50}


def test_default_ephemeral_storage_is_fargates_default(default: Synthesized) -> None:
    assert "EphemeralStorage" not in _task(default)


def test_container_has_container_level_memory_limit(default: Synthesized) -> None:
    assert _container(default)["Memory"] == default.settings.memory_mib


def test_container_runs_as_non_root_user(default: Synthesized) -> None:
    assert _container(default)["User"] == "1000:1000"


def test_container_name_is_the_setting(default: Synthesized) -> None:
    assert _container(default)["Name"] == "iiif-process"


def test_container_logs_with_iiif_process_stream_prefix(default: Synthesized) -> None:
    logging = _container(default)["LogConfiguration"]
    assert logging["LogDriver"] == "awslogs"
    assert logging["Options"]["awslogs-stream-prefix"] == "iiif-process"


def test_container_logs_to_the_processing_log_group(default: Synthesized) -> None:
    group = _container(default)["LogConfiguration"]["Options"]["awslogs-group"]
    outputs = default.template.to_json()["Outputs"]
    assert group == outputs["LogGroupName"]["Value"]
    assert group["Ref"] in default.resources("AWS::Logs::LogGroup")


def test_container_environment_carries_bucket_uris(default: Synthesized) -> None:
    environment = {e["Name"]: e["Value"] for e in _container(default)["Environment"]}
    assert environment == {
        "IIIF_CONFIG_IMAGES_SOURCE_URI": {
            "Fn::Join": [
                "",
                ["s3blob://", {"Ref": "SourceBucket"}, "?region=", {"Ref": "AWS::Region"}],
            ]
        },
        "IIIF_CONFIG_DERIVATIVES_CACHE_URI": {
            "Fn::Join": [
                "",
                ["s3blob://", {"Ref": "DerivativesBucket"}, "?region=", {"Ref": "AWS::Region"}],
            ]
        },
    }


def test_image_is_built_from_container_folder_by_default(default: Synthesized) -> None:
    image = _container(default)["Image"]["Fn::Sub"]
    assert "container-assets" in image


def test_image_tag_setting_uses_the_repository(imported: Synthesized) -> None:
    image = _container(imported)["Image"]["Fn::Join"][1]
    repository_name = image[-2]["Ref"]
    assert (repository_name, image[-1]) == ("ImageRepository", f":{IMAGE_TAG}")


def test_log_groups_have_the_retention_setting(default: Synthesized) -> None:
    retention = {
        logical_id: group["Properties"].get("RetentionInDays")
        for logical_id, group in default.resources("AWS::Logs::LogGroup").items()
    }
    assert set(retention.values()) == {30}
    assert len(retention) == 3  # task, function and flow logs


def test_log_retention_follows_setting(imported: Synthesized) -> None:
    retention = {
        group["Properties"]["RetentionInDays"]
        for group in imported.resources("AWS::Logs::LogGroup").values()
    }
    assert retention == {365}


def test_task_role_reads_source_and_writes_derivatives_only(default: Synthesized) -> None:
    access = {
        tuple(sorted(statement["Action"])): statement["Resource"]
        for statement in _task_role_statements(default)
    }
    source_arn = {"Fn::GetAtt": ["SourceBucket", "Arn"]}
    derivatives_objects = {"Fn::Join": ["", [{"Fn::GetAtt": ["DerivativesBucket", "Arn"]}, "/*"]]}
    assert access == {
        ("s3:GetBucket*", "s3:GetObject*", "s3:List*"): [
            source_arn,
            {"Fn::Join": ["", [source_arn, "/*"]]},
        ],
        (
            "s3:Abort*",
            "s3:DeleteObject*",
            "s3:PutObject",
            "s3:PutObjectLegalHold",
            "s3:PutObjectRetention",
            "s3:PutObjectTagging",
            "s3:PutObjectVersionTagging",
        ): [{"Fn::GetAtt": ["DerivativesBucket", "Arn"]}, derivatives_objects],
    }


def test_task_role_never_writes_the_source_bucket(imported: Synthesized) -> None:
    writes = [
        statement
        for statement in _task_role_statements(imported)
        if any(action.startswith(("s3:Put", "s3:Delete")) for action in statement["Action"])
        and "my-images-source" in str(statement["Resource"])
    ]
    assert writes == []
