"""Stack outputs: every OutputKey of docs/contracts.md, under exactly that key."""

from __future__ import annotations

import re

from tests.stacks.conftest import CUSTOM_BASE_URL, REPO_ROOT, V2_BASE_URL, Synthesized


def _contract_output_keys() -> set[str]:
    """The outputs section's list, plus any "Stack output `Name`" of a later section (#11)."""
    text = (REPO_ROOT / "docs" / "contracts.md").read_text()
    section = text.split("## Stack outputs", 1)[1].split("\n## ", 1)[0]
    paragraph = section.split("\n", 1)[1].split("Default stack name", 1)[0]
    return set(re.findall(r"`([A-Za-z]+)`", paragraph)) | set(
        re.findall(r"Stack output `([A-Za-z]+)`", text)
    )


def test_contract_lists_twenty_one_outputs() -> None:
    assert len(_contract_output_keys()) == 21


def test_every_contract_output_is_declared(default: Synthesized) -> None:
    assert set(default.template.to_json()["Outputs"]) == _contract_output_keys()


def test_log_stream_prefix_output(default: Synthesized) -> None:
    default.template.has_output("LogStreamPrefix", {"Value": "iiif-process"})


def test_assign_public_ip_output(imported: Synthesized) -> None:
    imported.template.has_output("AssignPublicIp", {"Value": "DISABLED"})


def test_container_name_output(default: Synthesized) -> None:
    default.template.has_output("ContainerName", {"Value": "iiif-process"})


def test_subnet_ids_output_is_comma_separated(imported: Synthesized) -> None:
    imported.template.has_output(
        "SubnetIds", {"Value": "subnet-0123456789abcdef0,subnet-0fedcba9876543210"}
    )


def test_default_stack_id(default: Synthesized) -> None:
    assert default.stack.stack_name == "IiifProcessStack"


def test_ledger_table_name_output(default: Synthesized) -> None:
    table = next(iter(default.resources("AWS::DynamoDB::Table")))
    default.template.has_output("LedgerTableName", {"Value": {"Ref": table}})


def test_reconcile_outputs_name_the_reconcile_function_and_queue(default: Synthesized) -> None:
    outputs = default.template.to_json()["Outputs"]
    function = outputs["ReconcileFunctionName"]["Value"]["Ref"]
    queue = outputs["ReconcileQueueUrl"]["Value"]["Ref"]
    handler = default.resources("AWS::Lambda::Function")[function]["Properties"]["Handler"]
    rule = default.only("AWS::Events::Rule")["Properties"]
    assert (handler, rule["Targets"][0]["Arn"]) == (
        "reconcile_handler.handler",
        {"Fn::GetAtt": [queue, "Arn"]},
    )


def test_public_base_url_output_is_the_distributions_https_address(default: Synthesized) -> None:
    distribution = next(iter(default.resources("AWS::CloudFront::Distribution")))
    default.template.has_output(
        "PublicBaseUrl",
        {"Value": {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution, "DomainName"]}]]}},
    )


def test_public_base_url_output_follows_the_setting(iiif_v2: Synthesized) -> None:
    iiif_v2.template.has_output("PublicBaseUrl", {"Value": V2_BASE_URL})


def test_public_base_url_output_is_what_the_task_gets(own_cdn: Synthesized) -> None:
    (task,) = own_cdn.resources("AWS::ECS::TaskDefinition").values()
    environment = {
        e["Name"]: e["Value"] for e in task["Properties"]["ContainerDefinitions"][0]["Environment"]
    }
    output = own_cdn.template.to_json()["Outputs"]["PublicBaseUrl"]["Value"]
    assert output == environment["IIIF_PROCESS_PUBLIC_BASE_URL"] == CUSTOM_BASE_URL
