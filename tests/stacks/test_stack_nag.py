"""cdk-nag: the packs run on every synthesis and the stack passes them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from stacks import add_nag_checks
from tests.stacks.conftest import REPO_ROOT, Synthesized


@pytest.mark.parametrize("pack", [AwsSolutionsChecks, ServerlessChecks])
def test_stack_has_no_unacknowledged_findings(
    synthesized: dict[str, Synthesized], pack: type
) -> None:
    app = next(iter(synthesized.values())).stack.node.root
    assert pack().validate_scope(app).violations == []


def test_unacknowledged_finding_fails_synthesis(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    add_nag_checks(app)
    stack = cdk.Stack(app, "Bad")
    s3.Bucket(stack, "Plain")  # no TLS policy, no access logs
    with pytest.raises(Exception, match="AwsSolutions-S10"):
        Template.from_stack(stack)


def test_acknowledgments_carry_reasons(synthesized: dict[str, Synthesized]) -> None:
    app = next(iter(synthesized.values())).stack.node.root
    reasons = [
        reason
        for construct in app.node.find_all()
        for entry in construct.node.metadata
        if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule, reason in entry.data.items()
        if rule.split("::")[-1].startswith(("AwsSolutions-", "Serverless-"))
    ]
    assert reasons and all(isinstance(r, str) and r.endswith(".") for r in reasons)


def test_app_refuses_a_bad_setting_naming_the_key() -> None:
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({"cpu": "300"}),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode, "'cpu'" in result.stderr) == (1, True)
