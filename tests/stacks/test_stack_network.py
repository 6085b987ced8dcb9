"""Network: a cheap public-subnet VPC by default, or an imported one."""

from __future__ import annotations

from tests.stacks.conftest import (
    IMPORTED_SECURITY_GROUPS,
    IMPORTED_SUBNETS,
    IMPORTED_VPC,
    Synthesized,
)


def _lambda_env(synthesized: Synthesized) -> dict[str, object]:
    functions = synthesized.template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "handler.handler"}}
    )
    (function,) = functions.values()
    return function["Properties"]["Environment"]["Variables"]


def test_vpc_has_dns_hostnames_and_support(default: Synthesized) -> None:
    properties = default.only("AWS::EC2::VPC")["Properties"]
    assert (properties["EnableDnsHostnames"], properties["EnableDnsSupport"]) == (True, True)


def test_vpc_has_no_nat_gateway(default: Synthesized) -> None:
    assert default.resources("AWS::EC2::NatGateway") == {}


def test_vpc_has_two_public_subnets_only(default: Synthesized) -> None:
    subnets = default.resources("AWS::EC2::Subnet").values()
    types = [
        tag["Value"]
        for subnet in subnets
        for tag in subnet["Properties"]["Tags"]
        if tag["Key"] == "aws-cdk:subnet-type"
    ]
    assert types == ["Public", "Public"]


def test_vpc_has_s3_gateway_endpoint(default: Synthesized) -> None:
    endpoint = default.only("AWS::EC2::VPCEndpoint")["Properties"]
    service = endpoint["ServiceName"]["Fn::Join"][1]
    assert (endpoint["VpcEndpointType"], service[-1]) == ("Gateway", ".s3")


def test_vpc_flow_logs_go_to_a_log_group(default: Synthesized) -> None:
    flow_log = default.only("AWS::EC2::FlowLog")["Properties"]
    assert flow_log["LogDestinationType"] == "cloud-watch-logs"
    assert flow_log["TrafficType"] == "ALL"


def test_task_security_group_has_no_inbound_rules(default: Synthesized) -> None:
    group = default.only("AWS::EC2::SecurityGroup")["Properties"]
    assert "SecurityGroupIngress" not in group
    assert default.resources("AWS::EC2::SecurityGroupIngress") == {}


def test_tasks_get_a_public_ip_by_default(default: Synthesized) -> None:
    assert _lambda_env(default)["IIIF_PROCESS_ASSIGN_PUBLIC_IP"] == "ENABLED"


def test_assign_public_ip_can_be_turned_off(imported: Synthesized) -> None:
    assert _lambda_env(imported)["IIIF_PROCESS_ASSIGN_PUBLIC_IP"] == "DISABLED"


def test_default_security_group_of_the_vpc_is_restricted(default: Synthesized) -> None:
    """CDK's custom resource empties the VPC's default group, whatever the emulator can run."""
    restriction = default.only("Custom::VpcRestrictDefaultSG")["Properties"]
    (vpc_id,) = default.resources("AWS::EC2::VPC")
    assert restriction["DefaultSecurityGroupId"] == {"Fn::GetAtt": [vpc_id, "DefaultSecurityGroup"]}


def test_imported_vpc_default_security_group_is_left_alone(imported: Synthesized) -> None:
    assert imported.resources("Custom::VpcRestrictDefaultSG") == {}


def test_imported_vpc_creates_no_network(imported: Synthesized) -> None:
    created = [
        type_
        for type_ in ("AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::SecurityGroup")
        if imported.resources(type_)
    ]
    assert created == []


def test_imported_subnets_reach_the_function(imported: Synthesized) -> None:
    assert _lambda_env(imported)["IIIF_PROCESS_SUBNET"] == ",".join(IMPORTED_SUBNETS)


def test_imported_security_groups_reach_the_function(imported: Synthesized) -> None:
    env = _lambda_env(imported)
    assert env["IIIF_PROCESS_SECURITY_GROUP"] == ",".join(IMPORTED_SECURITY_GROUPS)


def test_imported_vpc_is_the_settings_vpc(imported: Synthesized) -> None:
    assert imported.stack.network.vpc.vpc_id == IMPORTED_VPC


def test_task_security_group_allows_only_https_out(default: Synthesized) -> None:
    """Issue #8, item 14: TCP 443 to anywhere (S3, ECR, Logs, DynamoDB), nothing else."""
    group = default.only("AWS::EC2::SecurityGroup")["Properties"]
    rules = [
        {k: rule[k] for k in ("CidrIp", "IpProtocol", "FromPort", "ToPort")}
        for rule in group["SecurityGroupEgress"]
    ]
    assert rules == [{"CidrIp": "0.0.0.0/0", "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443}]


def test_task_security_group_has_no_separate_egress_rules(default: Synthesized) -> None:
    assert default.resources("AWS::EC2::SecurityGroupEgress") == {}


def test_task_security_group_egress_rule_says_why(default: Synthesized) -> None:
    (rule,) = default.only("AWS::EC2::SecurityGroup")["Properties"]["SecurityGroupEgress"]
    assert "HTTPS" in rule["Description"]
