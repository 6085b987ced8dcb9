"""Image repository: generated or given name, immutable tags, scan on push, lifecycle, stable ID."""

from __future__ import annotations

import json

from tests.stacks.conftest import REPOSITORY_NAME, Synthesized


def test_repository_logical_id_is_stable(default: Synthesized) -> None:
    assert list(default.resources("AWS::ECR::Repository")) == ["ImageRepository"]


def test_repository_name_is_generated_by_default(default: Synthesized) -> None:
    """No fixed name: two stacks in one account and region do not collide on it."""
    assert "RepositoryName" not in default.only("AWS::ECR::Repository")["Properties"]


def test_repository_name_setting_names_the_repository(imported: Synthesized) -> None:
    name = imported.only("AWS::ECR::Repository")["Properties"]["RepositoryName"]
    assert name == REPOSITORY_NAME


def test_repository_tags_are_immutable(default: Synthesized) -> None:
    properties = default.only("AWS::ECR::Repository")["Properties"]
    assert properties["ImageTagMutability"] == "IMMUTABLE"


def test_repository_scans_on_push(default: Synthesized) -> None:
    properties = default.only("AWS::ECR::Repository")["Properties"]
    assert properties["ImageScanningConfiguration"] == {"ScanOnPush": True}


def test_repository_lifecycle_keeps_newest_tagged_images(default: Synthesized) -> None:
    policy = default.only("AWS::ECR::Repository")["Properties"]["LifecyclePolicy"]
    rules = json.loads(policy["LifecyclePolicyText"])["rules"]
    counts = [r["selection"] for r in rules if r["selection"]["countType"] == "imageCountMoreThan"]
    assert counts == [{"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 20}]


def test_repository_is_retained_by_default(default: Synthesized) -> None:
    assert default.only("AWS::ECR::Repository")["DeletionPolicy"] == "Retain"


def test_repository_lifecycle_drops_untagged_images_after_a_day(default: Synthesized) -> None:
    policy = default.only("AWS::ECR::Repository")["Properties"]["LifecyclePolicy"]
    (first, _) = json.loads(policy["LifecyclePolicyText"])["rules"]
    assert (first["rulePriority"], first["selection"]) == (
        1,
        {
            "tagStatus": "untagged",
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": 1,
        },
    )


def test_retained_repository_is_not_emptied(default: Synthesized) -> None:
    assert default.only("AWS::ECR::Repository")["Properties"]["EmptyOnDelete"] is False


def test_destroyable_repository_is_emptied_and_deleted(destroyable: Synthesized) -> None:
    repository = destroyable.only("AWS::ECR::Repository")
    assert (repository["DeletionPolicy"], repository["Properties"]["EmptyOnDelete"]) == (
        "Delete",
        True,
    )
