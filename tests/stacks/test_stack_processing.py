"""Processing: cluster, Fargate task definition, container, logs and the task's permissions."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.processing import DeepZoom
from stacks.recipe import TileRecipe, image_recipe
from stacks.stack_settings import Settings, SettingsError
from tests.stacks.conftest import CUSTOM_BASE_URL, IMAGE_TAG, V2_BASE_URL, Synthesized


def _task(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.only("AWS::ECS::TaskDefinition")["Properties"]


def _container(synthesized: Synthesized) -> dict[str, Any]:
    (container,) = _task(synthesized)["ContainerDefinitions"]
    return container


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


def test_smallest_declared_ephemeral_storage_is_21_gib(arm64: Synthesized) -> None:
    assert _task(arm64)["EphemeralStorage"] == {"SizeInGiB": 21}


def test_largest_ephemeral_storage_is_declared(destroyable: Synthesized) -> None:
    assert _task(destroyable)["EphemeralStorage"] == {"SizeInGiB": 200}


def test_ephemeral_storage_above_200_gib_is_refused() -> None:
    with pytest.raises(SettingsError, match="ephemeralStorageGiB"):
        Settings(ephemeral_storage_gib=201)


def test_container_memory_limit_follows_the_memory_setting(arm64: Synthesized) -> None:
    assert (_container(arm64)["Memory"], _task(arm64)["Memory"]) == (3072, "3072")


def test_arm64_image_asset_is_built_for_arm64(arm64: Synthesized) -> None:
    """The image `cdk deploy` builds, not only the task's runtime platform, is arm64."""
    (image,) = arm64.docker_image_assets()
    assert image["source"]["platform"] == "linux/arm64"


def test_arm64_task_runs_on_arm64(arm64: Synthesized) -> None:
    assert _task(arm64)["RuntimePlatform"]["CpuArchitecture"] == "ARM64"


def test_default_image_asset_is_built_for_amd64(default: Synthesized) -> None:
    (image,) = default.docker_image_assets()
    assert image["source"]["platform"] == "linux/amd64"


def test_an_image_tag_builds_no_image_asset(imported: Synthesized) -> None:
    assert imported.docker_image_assets() == []


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


def _environment(synthesized: Synthesized) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in _container(synthesized)["Environment"]}


def test_container_environment_carries_bucket_uris(default: Synthesized) -> None:
    environment = _environment(default)
    uris = ("IIIF_CONFIG_IMAGES_SOURCE_URI", "IIIF_CONFIG_DERIVATIVES_CACHE_URI")
    assert {name: environment[name] for name in uris} == {
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


def test_container_environment_names_the_ledger_table(default: Synthesized) -> None:
    table = next(iter(default.resources("AWS::DynamoDB::Table")))
    assert _environment(default)["IIIF_PROCESS_LEDGER_TABLE"] == {"Ref": table}


def test_container_environment_carries_the_recipe(default: Synthesized) -> None:
    tiles = TileRecipe(tiles=True, iiif_api_version=3, tile_size=512, base_url="cloudfront")
    assert _environment(default)["IIIF_PROCESS_RECIPE"] == image_recipe(tiles=tiles)


def test_container_environment_carries_the_source_size_limit(default: Synthesized) -> None:
    assert _environment(default)["IIIF_PROCESS_MAX_SOURCE_BYTES"] == "4294967296"


def test_container_environment_holds_nothing_else(default: Synthesized) -> None:
    assert set(_environment(default)) == {
        "IIIF_CONFIG_IMAGES_SOURCE_URI",
        "IIIF_CONFIG_DERIVATIVES_CACHE_URI",
        "IIIF_PROCESS_LEDGER_TABLE",
        "IIIF_PROCESS_RECIPE",
        "IIIF_PROCESS_MAX_SOURCE_BYTES",
        "IIIF_PROCESS_STACK_NAME",
        "IIIF_PROCESS_TILES",
        "IIIF_PROCESS_IIIF_API_VERSION",
        "IIIF_PROCESS_TILE_SIZE",
        "IIIF_PROCESS_PUBLIC_BASE_URL",
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
    assert len(retention) == 4  # task, trigger, reconcile and flow logs


def test_log_retention_follows_setting(imported: Synthesized) -> None:
    retention = {
        group["Properties"]["RetentionInDays"]
        for group in imported.resources("AWS::Logs::LogGroup").values()
    }
    assert retention == {365}


def test_container_source_size_limit_follows_setting(imported: Synthesized) -> None:
    assert _environment(imported)["IIIF_PROCESS_MAX_SOURCE_BYTES"] == "0"


# --- deep zoom (issue #11): docs/contracts.md, "Deep zoom" ----------------------------------


def _deep_zoom(synthesized: Synthesized) -> dict[str, Any]:
    environment = _environment(synthesized)
    return {
        name: environment[name]
        for name in (
            "IIIF_PROCESS_TILES",
            "IIIF_PROCESS_IIIF_API_VERSION",
            "IIIF_PROCESS_TILE_SIZE",
            "IIIF_PROCESS_PUBLIC_BASE_URL",
        )
    }


def test_default_deep_zoom_is_tiles_on_api_3_of_512_through_cloudfront(
    default: Synthesized,
) -> None:
    distribution = next(iter(default.resources("AWS::CloudFront::Distribution")))
    assert _deep_zoom(default) == {
        "IIIF_PROCESS_TILES": "true",
        "IIIF_PROCESS_IIIF_API_VERSION": "3",
        "IIIF_PROCESS_TILE_SIZE": "512",
        "IIIF_PROCESS_PUBLIC_BASE_URL": {
            "Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution, "DomainName"]}]]
        },
    }


def test_deep_zoom_follows_api_2_tile_size_and_base_url_settings(iiif_v2: Synthesized) -> None:
    assert _deep_zoom(iiif_v2) == {
        "IIIF_PROCESS_TILES": "true",
        "IIIF_PROCESS_IIIF_API_VERSION": "2",
        "IIIF_PROCESS_TILE_SIZE": "256",
        "IIIF_PROCESS_PUBLIC_BASE_URL": V2_BASE_URL,
    }


def test_tiles_off_without_cloudfront_names_the_buckets_own_address(no_cdn: Synthesized) -> None:
    deep_zoom = _deep_zoom(no_cdn)
    assert (deep_zoom["IIIF_PROCESS_TILES"], deep_zoom["IIIF_PROCESS_PUBLIC_BASE_URL"]) == (
        "false",
        {
            "Fn::Join": [
                "",
                ["https://", {"Fn::GetAtt": ["DerivativesBucket", "RegionalDomainName"]}],
            ]
        },
    )


def test_base_url_setting_wins_without_cloudfront(own_cdn: Synthesized) -> None:
    deep_zoom = _deep_zoom(own_cdn)
    assert (deep_zoom["IIIF_PROCESS_TILES"], deep_zoom["IIIF_PROCESS_PUBLIC_BASE_URL"]) == (
        "true",
        CUSTOM_BASE_URL,
    )


def test_recipe_differs_between_deep_zoom_variants(synthesized: dict[str, Synthesized]) -> None:
    recipes = {
        name: _environment(synthesized[name])["IIIF_PROCESS_RECIPE"]
        for name in ("default", "iiif-v2", "no-cdn", "own-cdn")
    }
    assert len(set(recipes.values())) == 4, recipes


def test_tiles_off_keeps_the_recipe_of_config_and_instructions(no_cdn: Synthesized) -> None:
    assert _environment(no_cdn)["IIIF_PROCESS_RECIPE"] == image_recipe()


def test_task_and_functions_share_one_recipe(default: Synthesized) -> None:
    task_recipe = _environment(default)["IIIF_PROCESS_RECIPE"]
    function_recipes = {
        function["Properties"]["Environment"]["Variables"]["IIIF_PROCESS_RECIPE"]
        for function in default.resources("AWS::Lambda::Function").values()
        if "IIIF_PROCESS_RECIPE"
        in function["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert function_recipes == {task_recipe}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("iiif_api_version", 4),
        ("tile_size", 63),
        ("tile_size", 4097),
        ("tile_size", True),
        ("public_base_url", "https://images.example.org/"),
        ("public_base_url", "images.example.org"),
    ],
)
def test_deep_zoom_props_are_validated(field: str, value: Any) -> None:
    props: dict[str, Any] = {
        "tiles": True,
        "iiif_api_version": 3,
        "tile_size": 512,
        "public_base_url": "https://images.example.org",
        field: value,
    }
    with pytest.raises(ValueError, match=field):
        DeepZoom(**props)


@pytest.mark.parametrize("tile_size", [64, 4096])
def test_deep_zoom_tile_sizes_at_the_edges_are_accepted(tile_size: int) -> None:
    zoom = DeepZoom(
        tiles=True,
        iiif_api_version=2,
        tile_size=tile_size,
        public_base_url="http://localhost:8182",
    )
    assert zoom.environment()["IIIF_PROCESS_TILE_SIZE"] == str(tile_size)


def test_container_is_essential(default: Synthesized) -> None:
    """The task stops (and reports) when iiif-process exits."""
    assert _container(default)["Essential"] is True
