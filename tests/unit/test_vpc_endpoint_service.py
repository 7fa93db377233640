"""vpc_endpoint_service: the planning logic, and the module run in-process against a real
moto server (started here, on a port of the privatelink range 25000-25099)."""
import json
import os
import urllib.request

import boto3
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import vpc_endpoint_service as lib
from ansible_collections.threshold_kms.mpc_party.plugins.modules import vpc_endpoint_service as module

REGION = "eu-west-1"
P2 = "arn:aws:iam::100000000002:root"
P3 = "arn:aws:iam::100000000003:root"
P4 = "arn:aws:iam::100000000004:root"


# moto_url (tests/unit/conftest.py) listens on this + the xdist worker number.
MOTO_PORT_BASE = 25000


# ------------------------------------------------------------------ pure logic --

def test_validate_params_names_the_option_and_rule():
    errors = lib.validate_params({"state": "present", "network_load_balancer_arns": [],
                                  "allowed_principals": ["123456789012", P2]})
    assert errors[0].startswith("network_load_balancer_arns: required")
    assert errors[1].startswith("allowed_principals: '123456789012' is not an IAM principal ARN")
    assert len(errors) == 2
    assert lib.validate_params({"state": "absent"})[0].startswith("network_load_balancer_arns or tags.Name")
    assert lib.validate_params({"state": "absent", "tags": {"Name": "x"}}) == []


def test_principal_changes_is_a_set_difference():
    assert lib.principal_changes([P2, P3], [P3, P4, P4]) == ([P4], [P2])
    assert lib.principal_changes([], []) == ([], [])


def test_find_service_refuses_ambiguity():
    a = {"ServiceId": "vpce-svc-a", "NetworkLoadBalancerArns": ["arn1"], "ServiceState": "Available",
         "Tags": [{"Key": "Name", "Value": "peer"}]}
    b = {"ServiceId": "vpce-svc-b", "NetworkLoadBalancerArns": ["arn2"], "ServiceState": "Available",
         "Tags": [{"Key": "Name", "Value": "peer"}]}
    assert lib.find_service([a, b], ["arn2"], "peer") is b
    assert lib.find_service([a, b], ["arn9"], None) is None
    with pytest.raises(lib.EndpointServiceError, match="tags.Name: 2 endpoint services"):
        lib.find_service([a, b], ["arn9"], "peer")
    with pytest.raises(lib.EndpointServiceError, match="attached to 2 endpoint services"):
        lib.find_service([a, b], ["arn1", "arn2"], None)
    deleted = dict(a, ServiceState="Deleted")
    assert lib.find_service([deleted], ["arn1"], None) is None


def test_plan_update_only_touches_managed_options():
    config = {"NetworkLoadBalancerArns": ["arn1"], "AcceptanceRequired": True, "PrivateDnsName": ""}
    plan = lib.plan_update(config, [P2], {"network_load_balancer_arns": ["arn1", "arn2"],
                                          "acceptance_required": False, "allowed_principals": None})
    assert plan == {"modify": {"AddNetworkLoadBalancerArns": ["arn2"], "AcceptanceRequired": False},
                    "add_principals": [], "remove_principals": []}
    plan = lib.plan_update(config, [P2], {"network_load_balancer_arns": ["arn1"], "allowed_principals": [P3]})
    assert plan == {"modify": {}, "add_principals": [P3], "remove_principals": [P2]}


# ------------------------------------------------------------ against moto --

@pytest.fixture()
def aws(moto_url, monkeypatch):
    """A fresh moto account with a VPC, a subnet and an internal NLB."""
    urllib.request.urlopen(urllib.request.Request(moto_url + "/moto-api/reset", method="POST")).read()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    kw = dict(endpoint_url=moto_url, region_name=REGION)
    ec2 = boto3.client("ec2", **kw)
    elb = boto3.client("elbv2", **kw)
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24", AvailabilityZone=REGION + "a")["Subnet"]["SubnetId"]
    nlbs = [elb.create_load_balancer(Name="p1-peer-%d" % i, Subnets=[subnet], Scheme="internal",
                                     Type="network")["LoadBalancers"][0]["LoadBalancerArn"] for i in (1, 2)]
    return {"url": moto_url, "ec2": ec2, "nlbs": nlbs}


def run(aws, capsys, check=False, **args):
    args = dict(args, endpoint_url=aws["url"], region=REGION, _ansible_check_mode=check, _ansible_diff=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def services(aws):
    return aws["ec2"].describe_vpc_endpoint_service_configurations()["ServiceConfigurations"]


def permissions(aws, service_id):
    found = aws["ec2"].describe_vpc_endpoint_service_permissions(ServiceId=service_id)["AllowedPrincipals"]
    return sorted(p["Principal"] for p in found)


def test_create_then_noop(aws, capsys):
    args = dict(network_load_balancer_arns=[aws["nlbs"][0]], acceptance_required=False,
                allowed_principals=[P3, P2], tags={"Name": "p1-peer", "threshold_kms/party-id": "1"})
    first = run(aws, capsys, **args)
    assert first["changed"] is True
    assert first["service_name"] == "com.amazonaws.vpce.%s.%s" % (REGION, first["service_id"])
    assert first["state"] == "Available"
    assert first["allowed_principals"] == [P2, P3]
    assert first["diff"]["before"] == {}
    assert first["diff"]["after"]["allowed_principals"] == [P2, P3]
    # what AWS holds now
    [svc] = services(aws)
    assert svc["ServiceId"] == first["service_id"]
    assert svc["AcceptanceRequired"] is False
    assert svc["NetworkLoadBalancerArns"] == [aws["nlbs"][0]]
    assert {t["Key"]: t["Value"] for t in svc["Tags"]} == {"Name": "p1-peer", "threshold_kms/party-id": "1"}
    assert permissions(aws, svc["ServiceId"]) == [P2, P3]

    second = run(aws, capsys, **args)
    assert second["changed"] is False
    assert second["service_id"] == first["service_id"]
    assert second["diff"]["before"] == second["diff"]["after"]
    assert len(services(aws)) == 1


def test_change_of_principals_reports_the_diff(aws, capsys):
    base = dict(network_load_balancer_arns=[aws["nlbs"][0]], acceptance_required=False)
    created = run(aws, capsys, allowed_principals=[P2, P3], **base)
    changed = run(aws, capsys, allowed_principals=[P3, P4], **base)
    assert changed["changed"] is True
    assert changed["service_id"] == created["service_id"]
    assert changed["principals_added"] == [P4]
    assert changed["principals_removed"] == [P2]
    assert changed["diff"]["before"]["allowed_principals"] == [P2, P3]
    assert changed["diff"]["after"]["allowed_principals"] == [P3, P4]
    assert permissions(aws, created["service_id"]) == [P3, P4]
    # principals unset: not managed, nothing changes
    untouched = run(aws, capsys, **base)
    assert untouched["changed"] is False
    assert permissions(aws, created["service_id"]) == [P3, P4]
    # the empty list removes every principal
    emptied = run(aws, capsys, allowed_principals=[], **base)
    assert emptied["changed"] is True and emptied["principals_removed"] == [P3, P4]
    assert permissions(aws, created["service_id"]) == []


def test_update_of_acceptance_load_balancers_and_tags(aws, capsys):
    created = run(aws, capsys, network_load_balancer_arns=[aws["nlbs"][0]], acceptance_required=True,
                  allowed_principals=[P2], tags={"Name": "p1-peer", "old": "x"})
    # found by its Name tag although its NLB is replaced
    updated = run(aws, capsys, network_load_balancer_arns=[aws["nlbs"][1]], acceptance_required=False,
                  allowed_principals=[P2], tags={"Name": "p1-peer"})
    assert updated["changed"] is True
    assert updated["service_id"] == created["service_id"]
    [svc] = services(aws)
    assert svc["NetworkLoadBalancerArns"] == [aws["nlbs"][1]]
    assert svc["AcceptanceRequired"] is False
    assert {t["Key"] for t in svc["Tags"]} == {"Name"}
    assert updated["diff"]["before"]["tags"] == {"Name": "p1-peer", "old": "x"}
    assert updated["diff"]["after"]["tags"] == {"Name": "p1-peer"}


def test_check_mode_creates_nothing(aws, capsys):
    args = dict(network_load_balancer_arns=[aws["nlbs"][0]], allowed_principals=[P2])
    planned = run(aws, capsys, check=True, **args)
    assert planned["changed"] is True
    assert planned["state"] == "absent" and planned["service_id"] is None
    assert planned["diff"]["after"]["allowed_principals"] == [P2]
    assert services(aws) == []

    created = run(aws, capsys, **args)
    planned = run(aws, capsys, check=True, network_load_balancer_arns=[aws["nlbs"][0]], allowed_principals=[P3])
    assert planned["changed"] is True
    assert planned["allowed_principals"] == [P3]
    assert planned["principals_added"] == [P3] and planned["principals_removed"] == [P2]
    assert permissions(aws, created["service_id"]) == [P2]  # untouched


def test_delete_and_delete_again(aws, capsys):
    created = run(aws, capsys, network_load_balancer_arns=[aws["nlbs"][0]], allowed_principals=[P2],
                  tags={"Name": "p1-peer"})
    planned = run(aws, capsys, check=True, state="absent", tags={"Name": "p1-peer"})
    assert planned["changed"] is True
    assert len(services(aws)) == 1
    deleted = run(aws, capsys, state="absent", network_load_balancer_arns=[aws["nlbs"][0]])
    assert deleted["changed"] is True
    assert deleted["service_id"] == created["service_id"]
    assert deleted["state"] == "absent"
    assert deleted["diff"]["before"]["allowed_principals"] == [P2]
    assert services(aws) == []
    again = run(aws, capsys, state="absent", network_load_balancer_arns=[aws["nlbs"][0]])
    assert again["changed"] is False


def test_bad_input_fails_before_any_call(aws, capsys):
    failed = run(aws, capsys, network_load_balancer_arns=["my-nlb"], allowed_principals=["0.0.0.0/0"])
    assert failed["failed"] is True
    assert "network_load_balancer_arns: 'my-nlb' is not a load balancer ARN" in failed["msg"]
    assert "allowed_principals: '0.0.0.0/0' is not an IAM principal ARN" in failed["msg"]
    assert services(aws) == []


# ------------------------------------------- the role's ExternalName Service --

def test_external_service_manifest_is_valid_for_kubernetes_1_32():
    """roles/privatelink/templates/external-service.yaml.j2, rendered by Ansible's templar with
    the role's label variables, validates strictly against the Kubernetes 1.32 schemas."""
    import kubernetes_validate
    import yaml
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    role = os.path.join(root, "roles", "privatelink")
    loader = DataLoader()
    role_vars = loader.load_from_file(os.path.join(role, "vars", "main.yml"), trusted_as_template=True)
    with open(os.path.join(role, "templates", "external-service.yaml.j2")) as handle:
        source = handle.read()
    variables = {
        "privatelink_network_name": "sandbox", "privatelink_party_id": 1, "privatelink_namespace": "kms",
        "_privatelink_labels": role_vars["_privatelink_labels"],
        "_privatelink_peer_label": role_vars["_privatelink_peer_label"],
        "_privatelink_peer": {"party_id": 3, "peer_port": 50003, "kubernetes_service": "party3-external",
                              "service_name": "com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0"},
        "_privatelink_endpoint": {"endpoint_id": "vpce-0123456789abcdef0",
                                  "dns_name": "vpce-0123456789abcdef0-abcdefgh.vpce-svc-0123456789abcdef0"
                                              ".eu-west-1.vpce.amazonaws.com"},
    }
    rendered = Templar(loader=loader, variables=variables).template(trust_as_template(source))
    manifest = yaml.safe_load(rendered)
    kubernetes_validate.validate(manifest, "1.32.0", strict=True)
    assert manifest["metadata"]["name"] == "party3-external"
    assert manifest["metadata"]["labels"]["threshold-kms.io/peer-party-id"] == "3"
    assert manifest["metadata"]["labels"]["app.kubernetes.io/instance"] == "sandbox-p1"
    assert manifest["spec"] == {
        "type": "ExternalName",
        "externalName": variables["_privatelink_endpoint"]["dns_name"],
        "ports": [{"name": "grpc-peer", "port": 50003, "targetPort": 50003, "protocol": "TCP"}],
    }


# ------------------------------------- partition, accounts, supported regions --

def test_principals_are_built_in_the_callers_partition():
    assert lib.partition_of("arn:aws-cn:iam::100000000001:user/op") == "aws-cn"
    assert lib.partition_of("arn:aws-us-gov:sts::100000000001:assumed-role/r/s") == "aws-us-gov"
    assert lib.partition_of("arn:aws:iam::100000000001:root") == "aws"
    with pytest.raises(lib.EndpointServiceError, match="cannot tell the AWS partition"):
        lib.partition_of("100000000001")
    assert lib.account_principal("100000000002", "aws-cn") == "arn:aws-cn:iam::100000000002:root"
    with pytest.raises(lib.EndpointServiceError, match="allowed_account_ids: '1234' is not a 12-digit"):
        lib.account_principal("1234", "aws")
    assert lib.desired_principals({"allowed_principals": None, "allowed_account_ids": None}) is None
    assert lib.desired_principals({"allowed_principals": [P3], "allowed_account_ids": ["100000000002", "100000000003"]},
                                  "aws") == [P2, P3]
    assert lib.validate_params({"state": "present", "network_load_balancer_arns": [],
                                "allowed_account_ids": ["12"], "supported_regions": ["Europe"]})[1:] == [
        "allowed_account_ids: '12' is not a 12-digit AWS account id",
        "supported_regions: 'Europe' is not an AWS region name (for example eu-west-1)"]


def test_region_changes_ignore_the_home_region():
    config = {"ServiceName": "com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0",
              "SupportedRegions": [{"Region": "eu-west-1"}, {"Region": "us-east-1"}, {"Region": "ap-south-1"}]}
    assert lib.supported_regions(config) == ["ap-south-1", "us-east-1"]
    assert lib.region_changes(config, ["eu-west-1", "us-east-1", "ap-southeast-1"]) == (["ap-southeast-1"], ["ap-south-1"])
    assert lib.region_changes(config, ["us-east-1", "ap-south-1"]) == ([], [])


def test_account_ids_and_supported_regions_are_reconciled(aws, capsys):
    args = dict(network_load_balancer_arns=[aws["nlbs"][0]], acceptance_required=False,
                allowed_account_ids=["100000000003", "100000000002"], supported_regions=["us-east-1", REGION])
    first = run(aws, capsys, **args)
    assert first["changed"] is True
    assert first["partition"] == "aws"  # moto's caller identity: arn:aws:...
    assert first["allowed_principals"] == [P2, P3]
    assert first["supported_regions"] == ["us-east-1"] and first["service_region"] == REGION
    [svc] = services(aws)
    assert {r["Region"] for r in svc["SupportedRegions"]} - {REGION} == {"us-east-1"}
    assert permissions(aws, svc["ServiceId"]) == [P2, P3]
    assert run(aws, capsys, **args)["changed"] is False

    moved = run(aws, capsys, **dict(args, allowed_account_ids=["100000000004"],
                                    supported_regions=["ap-southeast-1", "us-east-1"]))
    assert moved["changed"] is True
    assert moved["diff"]["before"]["supported_regions"] == ["us-east-1"]
    assert moved["diff"]["after"]["supported_regions"] == ["ap-southeast-1", "us-east-1"]
    assert moved["principals_added"] == [P4] and moved["principals_removed"] == [P2, P3]
    [svc] = services(aws)
    assert {r["Region"] for r in svc["SupportedRegions"]} - {REGION} == {"ap-southeast-1", "us-east-1"}

    planned = run(aws, capsys, check=True, **dict(args, allowed_account_ids=["100000000004"], supported_regions=[]))
    assert planned["changed"] is True and planned["supported_regions"] == []
    [svc] = services(aws)
    assert {r["Region"] for r in svc["SupportedRegions"]} - {REGION} == {"ap-southeast-1", "us-east-1"}  # untouched
    emptied = run(aws, capsys, **dict(args, allowed_account_ids=["100000000004"], supported_regions=[]))
    assert emptied["changed"] is True and emptied["supported_regions"] == []
    assert run(aws, capsys, **dict(args, allowed_account_ids=["100000000004"]))["changed"] is True  # regions back
