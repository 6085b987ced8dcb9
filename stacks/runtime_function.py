"""A Lambda function running this project's runtime code (`lambda_src/`), as every function of
the stack is built: its own role writing only its own log group, arm64, the code asset found from
this file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.props import check_range
from stacks.stack_settings import LAMBDA_MEMORY_MIB, LAMBDA_TIMEOUT_SECONDS

LAMBDA_DIR = Path(__file__).resolve().parent.parent / "lambda_src"
"""The functions' code: the handlers and the `iiif_process_ecs` package (boto3 only)."""

RUNTIME = lambda_.Runtime.PYTHON_3_14
CODE_EXCLUDES = ["requirements.txt", "**/__pycache__", "**/*.pyc", "**/*.egg-info"]


def check_function_size(props: object) -> None:
    """`props.timeout_seconds` and `props.memory_mib` are within what Lambda accepts."""
    check_range(props, "timeout_seconds", LAMBDA_TIMEOUT_SECONDS)
    check_range(props, "memory_mib", LAMBDA_MEMORY_MIB)


@dataclass(frozen=True)
class RuntimeFunction:
    """What `runtime_function` made."""

    function: lambda_.Function
    role: iam.IRole
    log_group: logs.LogGroup


def runtime_function(
    scope: Construct,
    *,
    handler: str,
    description: str,
    role_description: str,
    environment: dict[str, str],
    timeout_seconds: int,
    memory_mib: int,
    reserved_concurrency: int,
    log_retention: logs.RetentionDays,
    removal_policy: cdk.RemovalPolicy,
    dead_letter_queue: sqs.IQueue | None = None,
) -> RuntimeFunction:
    """The log group, role and function (ids `LogGroup`, `Role`, `Function` in ``scope``).

    An own role instead of CDK's default one, which attaches the AWSLambdaBasicExecutionRole
    managed policy (logs:* on every log group); this one writes to its log group only.
    """
    log_group = logs.LogGroup(
        scope, "LogGroup", retention=log_retention, removal_policy=removal_policy
    )
    role = iam.Role(
        scope,
        "Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=role_description,
    )
    log_group.grant_write(role)
    function = lambda_.Function(
        scope,
        "Function",
        runtime=RUNTIME,
        architecture=lambda_.Architecture.ARM_64,
        handler=handler,
        code=lambda_.Code.from_asset(str(LAMBDA_DIR), exclude=CODE_EXCLUDES),
        role=role,
        timeout=cdk.Duration.seconds(timeout_seconds),
        memory_size=memory_mib,
        reserved_concurrent_executions=reserved_concurrency,
        dead_letter_queue=dead_letter_queue,
        log_group=log_group,
        environment=environment,
        description=description,
    )
    return RuntimeFunction(function=function, role=role, log_group=log_group)
