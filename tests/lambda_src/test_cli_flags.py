"""cli.py's flag table as a user meets it: defaults that change behaviour, and exit statuses."""

from __future__ import annotations

import boto3

from tests.lambda_src.conftest import REGION, Infra
from tests.lambda_src.ledger_support import create_ledger_table, put_item
from tests.lambda_src.test_ecs_trigger_cli import cli, result_of, task_flags


def test_a_uri_with_a_comma_is_one_uri(infra: Infra) -> None:
    status, out, _ = cli([*task_flags(infra), "-uri", "a,b.jpg"])
    assert (status, [e["uri"] for e in result_of(out)["launched"]]) == (0, ["a,b.jpg"])


def test_an_unchanged_key_is_skipped_unless_forced(infra: Infra) -> None:
    table = create_ledger_table()
    etag = boto3.client("s3", region_name=REGION).put_object(
        Bucket=infra.source_bucket, Key="same.jpg", Body=b"\xff\xd8\xff"
    )["ETag"]
    put_item(table, uri="same.jpg", status="succeeded", etag=etag.strip('"'), recipe="r1")
    argv = [*task_flags(infra), "-ledger-table", table, "-recipe", "r1"]
    status, out, _ = cli([*argv, "-source-bucket", infra.source_bucket, "-uri", "same.jpg"])
    assert (status, [e["uri"] for e in result_of(out)["skipped"]]) == (0, ["same.jpg"])


def test_an_aws_error_exits_1_and_says_so(infra: Infra) -> None:
    status, _, err = cli(["-mode", "status", "-ledger-table", "no-such-table", *task_flags(infra)])
    assert (status, "iiif-process-ecs: AWS error:" in err) == (1, True)
