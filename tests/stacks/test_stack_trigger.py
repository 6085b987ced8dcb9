"""Trigger: runtime, limits, DLQ, logs, the environment contract, permissions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from stacks.recipe import TileRecipe, image_recipe
from tests.stacks.conftest import IMPORTED_SOURCE, REPO_ROOT, Synthesized

# The deep-zoom defaults (cdk.json) as the recipe folds them in (issue #11).
DEFAULT_TILES = TileRecipe(tiles=True, iiif_api_version=3, tile_size=512, base_url="cloudfront")

# What CDK's table.grant_read_write_data() allows.
LEDGER_READ_WRITE = (
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
)


def _function(synthesized: Synthesized) -> dict[str, Any]:
    functions = synthesized.template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "handler.handler"}}
    )
    (function,) = functions.values()
    return function["Properties"]


def _function_statements(synthesized: Synthesized) -> list[dict[str, Any]]:
    role_id = _function(synthesized)["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _statements_with(synthesized: Synthesized, action: str) -> list[dict[str, Any]]:
    return [
        statement
        for statement in _function_statements(synthesized)
        if action
        in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    ]


def _contract_variables() -> dict[str, str]:
    """`variable -> value the stack sets` from the Stack → Lambda table of docs/contracts.md."""
    text = (REPO_ROOT / "docs" / "contracts.md").read_text()
    section = text.split("## Stack → Lambda", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(IIIF_PROCESS_[A-Z_]+)` \| ([^|]+) \|", section, flags=re.MULTILINE)
    return {name: value.strip() for name, value in rows}


def ledger_variables() -> set[str]:
    """Variables of docs/contracts.md's "Other variables added by issues #8/#9" table."""
    text = (REPO_ROOT / "docs" / "contracts.md").read_text()
    section = text.split("Other variables added by issues #8/#9", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(IIIF_PROCESS_[A-Z_]+)`", section, flags=re.MULTILINE))


# The trigger re-queues nothing (failed launches go back through batchItemFailures).
TRIGGER_LEAVES_OUT = {"IIIF_PROCESS_EVENT_QUEUE_URL"}


def test_function_uses_newest_python_runtime(default: Synthesized) -> None:
    assert _function(default)["Runtime"] == "python3.14"


def test_function_code_is_the_lambda_src_asset(default: Synthesized) -> None:
    function = _function(default)
    assert function["Handler"] == "handler.handler"
    assert function["Code"]["S3Key"].endswith(".zip")


def test_function_has_reserved_concurrency(default: Synthesized) -> None:
    assert _function(default)["ReservedConcurrentExecutions"] == 5


def test_function_timeout_and_memory_follow_settings(default: Synthesized) -> None:
    function = _function(default)
    assert (function["Timeout"], function["MemorySize"]) == (60, 256)


def test_function_has_a_dead_letter_queue(default: Synthesized) -> None:
    target = _function(default)["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"]
    assert target[0] in default.resources("AWS::SQS::Queue")


def test_dead_letter_queue_denies_requests_without_tls(default: Synthesized) -> None:
    queue = _function(default)["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
    (policy,) = default.template.find_resources(
        "AWS::SQS::QueuePolicy", {"Properties": {"Queues": [{"Ref": queue}]}}
    ).values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert {
        "Action": "sqs:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": statements[0]["Resource"],
    } in statements


def test_function_logs_to_its_own_log_group(default: Synthesized) -> None:
    group = _function(default)["LoggingConfig"]["LogGroup"]["Ref"]
    retention = default.resources("AWS::Logs::LogGroup")[group]["Properties"]["RetentionInDays"]
    assert retention == 30


def test_function_uses_no_log_retention_custom_resource(default: Synthesized) -> None:
    assert default.resources("Custom::LogRetention") == {}


def test_function_environment_has_every_contract_variable(default: Synthesized) -> None:
    expected = {name for name, value in _contract_variables().items() if value != "not set"}
    expected |= ledger_variables() - TRIGGER_LEAVES_OUT
    assert set(_function(default)["Environment"]["Variables"]) == expected


def test_function_environment_names_the_ledger_and_recipe(default: Synthesized) -> None:
    variables = _function(default)["Environment"]["Variables"]
    table = next(iter(default.resources("AWS::DynamoDB::Table")))
    assert (variables["IIIF_PROCESS_LEDGER_TABLE"], variables["IIIF_PROCESS_RECIPE"]) == (
        {"Ref": table},
        image_recipe(tiles=DEFAULT_TILES),
    )


def test_function_environment_carries_the_ledger_limits(default: Synthesized) -> None:
    variables = _function(default)["Environment"]["Variables"]
    assert (
        variables["IIIF_PROCESS_MAX_SOURCE_BYTES"],
        variables["IIIF_PROCESS_MAX_ATTEMPTS"],
    ) == ("4294967296", "3")


def test_function_reads_and_writes_the_ledger(default: Synthesized) -> None:
    table = next(iter(default.resources("AWS::DynamoDB::Table")))
    (statement,) = _statements_with(default, "dynamodb:UpdateItem")
    assert {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"} <= set(statement["Action"])
    assert statement["Resource"][0] == {"Fn::GetAtt": [table, "Arn"]}


def test_function_heads_source_objects_only(default: Synthesized) -> None:
    (statement,) = _statements_with(default, "s3:GetObject")
    assert (statement["Action"], statement["Resource"]) == (
        "s3:GetObject",
        {"Fn::Join": ["", [{"Fn::GetAtt": ["SourceBucket", "Arn"]}, "/*"]]},
    )


def test_function_environment_literal_values_match_contract(default: Synthesized) -> None:
    variables = _function(default)["Environment"]["Variables"]
    literals = {
        name: variables[name]
        for name in (
            "IIIF_PROCESS_MODE",
            "IIIF_PROCESS_CONFIG",
            "IIIF_PROCESS_INSTRUCTIONS",
            "IIIF_PROCESS_REPORT",
            "IIIF_PROCESS_REPORT_NAME",
            "IIIF_PROCESS_MAX_URIS_PER_TASK",
            "IIIF_PROCESS_STRIP_PATHS",
            "IIIF_PROCESS_CONTAINER",
            "IIIF_PROCESS_ASSIGN_PUBLIC_IP",
        )
    }
    assert literals == {
        "IIIF_PROCESS_MODE": "lambda",
        "IIIF_PROCESS_CONFIG": "/etc/go-iiif/config.json",
        "IIIF_PROCESS_INSTRUCTIONS": "/etc/go-iiif/instructions.json",
        "IIIF_PROCESS_REPORT": "true",
        "IIIF_PROCESS_REPORT_NAME": "process.json",
        "IIIF_PROCESS_MAX_URIS_PER_TASK": "50",
        "IIIF_PROCESS_STRIP_PATHS": "false",
        "IIIF_PROCESS_CONTAINER": "iiif-process",
        "IIIF_PROCESS_ASSIGN_PUBLIC_IP": "ENABLED",
    }


def test_function_environment_references_deployed_resources(default: Synthesized) -> None:
    variables = _function(default)["Environment"]["Variables"]
    task_definition = next(iter(default.resources("AWS::ECS::TaskDefinition")))
    cluster = next(iter(default.resources("AWS::ECS::Cluster")))
    security_group = next(iter(default.resources("AWS::EC2::SecurityGroup")))
    subnets = sorted(default.resources("AWS::EC2::Subnet"))
    assert variables["IIIF_PROCESS_TASK"] == {"Ref": task_definition}
    assert variables["IIIF_PROCESS_CLUSTER"] == {"Ref": cluster}
    assert variables["IIIF_PROCESS_SOURCE_BUCKET"] == {"Ref": "SourceBucket"}
    assert variables["IIIF_PROCESS_SECURITY_GROUP"] == {"Fn::GetAtt": [security_group, "GroupId"]}
    assert variables["IIIF_PROCESS_SUBNET"] == {
        "Fn::Join": [",", [{"Ref": subnet} for subnet in subnets]]
    }


def test_function_environment_follows_settings(imported: Synthesized) -> None:
    variables = _function(imported)["Environment"]["Variables"]
    assert {
        name: variables[name]
        for name in (
            "IIIF_PROCESS_REPORT",
            "IIIF_PROCESS_REPORT_NAME",
            "IIIF_PROCESS_MAX_URIS_PER_TASK",
            "IIIF_PROCESS_SOURCE_BUCKET",
        )
    } == {
        "IIIF_PROCESS_REPORT": "false",
        "IIIF_PROCESS_REPORT_NAME": "report.json",
        "IIIF_PROCESS_MAX_URIS_PER_TASK": "20",
        "IIIF_PROCESS_SOURCE_BUCKET": IMPORTED_SOURCE,
    }


def test_run_task_is_scoped_to_task_definition_and_cluster(default: Synthesized) -> None:
    task_definition = next(iter(default.resources("AWS::ECS::TaskDefinition")))
    cluster = next(iter(default.resources("AWS::ECS::Cluster")))
    assert _statements_with(default, "ecs:RunTask") == [
        {
            "Action": "ecs:RunTask",
            "Condition": {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": [cluster, "Arn"]}}},
            "Effect": "Allow",
            "Resource": {"Ref": task_definition},
        }
    ]


def test_pass_role_is_scoped_to_task_roles_and_ecs(default: Synthesized) -> None:
    task = default.only("AWS::ECS::TaskDefinition")["Properties"]
    (statement,) = _statements_with(default, "iam:PassRole")
    assert statement["Action"] == "iam:PassRole"
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    assert sorted(statement["Resource"], key=str) == sorted(
        [task["TaskRoleArn"], task["ExecutionRoleArn"]], key=str
    )


def test_function_may_do_nothing_else(default: Synthesized) -> None:
    actions = set()
    for statement in _function_statements(default):
        action = statement["Action"]
        actions.update([action] if isinstance(action, str) else action)
    assert actions == {
        "ecs:RunTask",
        "iam:PassRole",
        "sqs:SendMessage",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:GetObject",
        *LEDGER_READ_WRITE,
    }


def test_function_role_has_no_managed_policies(default: Synthesized) -> None:
    role_id = _function(default)["Role"]["Fn::GetAtt"][0]
    assert "ManagedPolicyArns" not in default.resources("AWS::IAM::Role")[role_id]["Properties"]


def _staged_function_code(synthesized: Synthesized) -> Path:
    asset_hash = _function(synthesized)["Code"]["S3Key"].removesuffix(".zip")
    return Path(synthesized.stack.node.root.outdir) / f"asset.{asset_hash}"


def test_function_code_holds_handler_and_package(default: Synthesized) -> None:
    code = _staged_function_code(default)
    assert (code / "handler.py").is_file()
    assert (code / "iiif_process_ecs" / "__init__.py").is_file()


def test_function_code_leaves_out_requirements(default: Synthesized) -> None:
    assert not (_staged_function_code(default) / "requirements.txt").exists()


def test_function_ledger_limits_follow_settings(imported: Synthesized) -> None:
    variables = _function(imported)["Environment"]["Variables"]
    assert (
        variables["IIIF_PROCESS_MAX_SOURCE_BYTES"],
        variables["IIIF_PROCESS_MAX_ATTEMPTS"],
    ) == ("0", "5")
