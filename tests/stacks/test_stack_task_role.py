"""The task role grants exactly the calls iiif-process makes (issue #8, item 13).

Source: GetObject (HeadObject is authorized by it). Derivatives: PutObject, GetObject (HeadObject
before overwriting), DeleteObject; ListBucket on the bucket so HeadObject of a missing key is
404, not 403. Ledger: UpdateItem on the table. Nothing else: no versions, legal hold, retention,
tagging, Abort*, GetBucket* or List* on the source.
"""

from __future__ import annotations

from typing import Any

from tests.stacks.conftest import IMPORTED_DERIVATIVES, IMPORTED_SOURCE, Synthesized

SOURCE_OBJECTS = {"Fn::Join": ["", [{"Fn::GetAtt": ["SourceBucket", "Arn"]}, "/*"]]}
DERIVATIVES_OBJECTS = {"Fn::Join": ["", [{"Fn::GetAtt": ["DerivativesBucket", "Arn"]}, "/*"]]}
DERIVATIVES_BUCKET = {"Fn::GetAtt": ["DerivativesBucket", "Arn"]}


def _statements(synthesized: Synthesized) -> list[dict[str, Any]]:
    task = synthesized.only("AWS::ECS::TaskDefinition")["Properties"]
    role_id = task["TaskRoleArn"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def _resources(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def _actions_on(synthesized: Synthesized, resource: Any) -> set[str]:
    """Every action the task role is allowed on `resource`."""
    return {
        action
        for statement in _statements(synthesized)
        if statement["Effect"] == "Allow" and resource in _resources(statement)
        for action in _actions(statement)
    }


def _ledger_arn(synthesized: Synthesized) -> dict[str, Any]:
    table = next(iter(synthesized.resources("AWS::DynamoDB::Table")))
    return {"Fn::GetAtt": [table, "Arn"]}


def test_task_role_only_gets_source_objects(default: Synthesized) -> None:
    assert _actions_on(default, SOURCE_OBJECTS) == {"s3:GetObject"}


def test_task_role_puts_heads_and_deletes_derivative_objects(default: Synthesized) -> None:
    assert _actions_on(default, DERIVATIVES_OBJECTS) == {
        "s3:PutObject",
        "s3:GetObject",
        "s3:DeleteObject",
    }


def test_task_role_lists_the_derivatives_bucket_for_404s(default: Synthesized) -> None:
    assert _actions_on(default, DERIVATIVES_BUCKET) == {"s3:ListBucket"}


def test_task_role_has_nothing_on_the_source_bucket_itself(default: Synthesized) -> None:
    assert _actions_on(default, {"Fn::GetAtt": ["SourceBucket", "Arn"]}) == set()


def test_task_role_only_updates_ledger_items(default: Synthesized) -> None:
    assert _actions_on(default, _ledger_arn(default)) == {"dynamodb:UpdateItem"}


def test_task_role_grants_nothing_else(default: Synthesized) -> None:
    granted = {
        (action, str(resource))
        for statement in _statements(default)
        for action in _actions(statement)
        for resource in _resources(statement)
    }
    assert granted == {
        ("s3:GetObject", str(SOURCE_OBJECTS)),
        ("s3:PutObject", str(DERIVATIVES_OBJECTS)),
        ("s3:GetObject", str(DERIVATIVES_OBJECTS)),
        ("s3:DeleteObject", str(DERIVATIVES_OBJECTS)),
        ("s3:ListBucket", str(DERIVATIVES_BUCKET)),
        ("dynamodb:UpdateItem", str(_ledger_arn(default))),
    }


def test_task_role_statements_have_no_conditions_or_denies(default: Synthesized) -> None:
    assert all(set(s) == {"Action", "Effect", "Resource"} for s in _statements(default))


def _imported_arn(bucket: str, objects: bool) -> dict[str, Any]:
    suffix = "/*" if objects else ""
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":s3:::{bucket}{suffix}"]]}


def test_task_role_never_writes_an_imported_source_bucket(imported: Synthesized) -> None:
    assert _actions_on(imported, _imported_arn(IMPORTED_SOURCE, objects=True)) == {"s3:GetObject"}


def test_task_role_grants_follow_imported_derivatives_bucket(imported: Synthesized) -> None:
    assert (
        _actions_on(imported, _imported_arn(IMPORTED_DERIVATIVES, objects=True)),
        _actions_on(imported, _imported_arn(IMPORTED_DERIVATIVES, objects=False)),
    ) == ({"s3:PutObject", "s3:GetObject", "s3:DeleteObject"}, {"s3:ListBucket"})
