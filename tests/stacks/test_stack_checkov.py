"""checkov on the template (issue #8, item 15): what is right is fixed, the rest acknowledged in
the template (`Metadata.checkov.skip`, each with a reason), and no finding is left."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs

from stacks.checkov import skip_checkov
from tests.stacks.conftest import REPO_ROOT, Synthesized

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"


def _skips(synthesized: Synthesized) -> dict[str, set[str]]:
    """Logical ID -> checkov checks skipped on that resource."""
    return {
        logical_id: {skip["id"] for skip in resource["Metadata"]["checkov"]["skip"]}
        for logical_id, resource in synthesized.template.to_json()["Resources"].items()
        if "checkov" in resource.get("Metadata", {})
    }


def _skips_of_type(synthesized: Synthesized, type_: str) -> list[set[str]]:
    skips = _skips(synthesized)
    return [skips.get(logical_id, set()) for logical_id in synthesized.resources(type_)]


def test_source_bucket_versioning_is_fixed_not_acknowledged(default: Synthesized) -> None:
    assert "SourceBucket" not in _skips(default)


def test_turning_source_versioning_off_is_acknowledged(unversioned: Synthesized) -> None:
    assert _skips(unversioned)["SourceBucket"] == {"CKV_AWS_21"}


def test_every_skip_carries_a_sentence_of_reason(synthesized: dict[str, Synthesized]) -> None:
    comments = [
        skip["comment"]
        for variant in synthesized.values()
        for resource in variant.template.to_json()["Resources"].values()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert comments and all(len(c) > 40 and c.endswith(".") for c in comments)


def test_queues_acknowledge_only_the_sse_sqs_check(default: Synthesized) -> None:
    assert all(skips == {"CKV_AWS_27"} for skips in _skips_of_type(default, "AWS::SQS::Queue"))


def test_functions_keep_their_concurrency_checks(default: Synthesized) -> None:
    """Only the handlers of CDK's own custom resources (bucket notifications, the default
    security group's restriction) skip the reserved-concurrency check (CKV_AWS_115)."""
    skipping = sorted(
        logical_id for logical_id, skips in _skips(default).items() if "CKV_AWS_115" in skips
    )
    prefixes = ("BucketNotificationsHandler", "CustomVpcRestrictDefaultSGCustomResourceProvider")
    assert [logical_id.startswith(prefixes) for logical_id in skipping] == [True, True]


def test_skip_goes_on_the_resource_with_others_kept() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    queue = sqs.Queue(stack, "Q")
    skip_checkov(queue, "CKV_AWS_1", "First reason, a whole sentence.")
    skip_checkov(queue, "CKV_AWS_2", "Second reason, a whole sentence.")
    cfn_queue = queue.node.default_child
    assert isinstance(cfn_queue, cdk.CfnResource)
    assert cfn_queue.get_metadata("checkov") == {
        "skip": [
            {"id": "CKV_AWS_1", "comment": "First reason, a whole sentence."},
            {"id": "CKV_AWS_2", "comment": "Second reason, a whole sentence."},
        ]
    }


def test_skip_without_a_sentence_is_refused() -> None:
    queue = sqs.Queue(cdk.Stack(cdk.App(), "S"), "Q")
    with pytest.raises(ValueError, match="CKV_AWS_27"):
        skip_checkov(queue, "CKV_AWS_27", "because")


def test_skipping_the_same_check_twice_is_refused() -> None:
    queue = sqs.Queue(cdk.Stack(cdk.App(), "S"), "Q")
    skip_checkov(queue, "CKV_AWS_27", "Encrypted with SSE-SQS.")
    with pytest.raises(ValueError, match="already skipped"):
        skip_checkov(queue, "CKV_AWS_27", "Encrypted with SSE-SQS.")


def _run_checkov(templates: list[Path]) -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.skip("checkov is not installed: make .venv-checkov/.installed")
    result = subprocess.run(
        [
            str(CHECKOV),
            "--framework",
            "cloudformation",
            "--skip-download",
            "--output",
            "json",
            *[arg for template in templates for arg in ("-f", str(template))],
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    report = json.loads(result.stdout)
    return report if isinstance(report, dict) else {"results": {"failed_checks": []}}


def test_checkov_finds_nothing_unacknowledged_in_any_variant(
    synthesized: dict[str, Synthesized],
) -> None:
    outdir = Path(next(iter(synthesized.values())).stack.node.root.outdir)
    report = _run_checkov(sorted(outdir.glob("*.template.json")))
    failed = [
        (check["check_id"], check["resource"]) for check in report["results"]["failed_checks"]
    ]
    assert (failed, report["summary"]["skipped"] > 0) == ([], True)
