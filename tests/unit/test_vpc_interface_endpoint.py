"""vpc_interface_endpoint: the planning logic, and the module run in-process against a real moto
server with the AWS stand-in's extensions (sandbox/aws_standin.py), as the sandbox runs
it: a provider and a consumer in two accounts (each with its own IAM access key) and in one or
two regions."""
import json
import urllib.request

import boto3
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import vpc_interface_endpoint as lib
from ansible_collections.threshold_kms.mpc_party.plugins.modules import vpc_interface_endpoint as module

# moto_url (tests/unit/conftest.py) listens on this + the xdist worker number (privatelink range).
MOTO_PORT_BASE = 25010

PROVIDER, CONSUMER = "100000000003", "100000000001"
NAME = "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0"


# ------------------------------------------------------------------ pure logic --

def test_validate_params_names_the_option_and_rule():
    assert lib.validate_params({"state": "present", "vpc_id": "vpc-1", "subnet_ids": ["subnet-1"],
                                "service_name": NAME, "service_region": "eu-west-1"}) == [
        "service_region: eu-west-1, but the service name %s says the service is in us-east-1" % NAME]
    errors = lib.validate_params({"state": "present", "service_name": "my-service", "vpc_endpoint_id": "x"})
    assert errors == ["vpc_endpoint_id: 'x' is not a VPC endpoint id (vpce-<hex>)",
                      "vpc_id: required when state=present",
                      "subnet_ids: required (at least one subnet) when state=present",
                      "service_name: 'my-service' is not an endpoint service name "
                      "(com.amazonaws.vpce.<region>.vpce-svc-<hex>)"]
    assert lib.validate_params({"state": "absent"}) == ["vpc_endpoint_id: required when state=absent"]
    assert lib.wanted_service_region({"service_name": NAME}) == "us-east-1"


def test_explain_invisible_tells_region_from_principal():
    reason, msg = lib.explain_invisible(NAME, "us-east-1", "eu-west-1", CONSUMER, "aws-cn", True, "party 3")
    assert reason == "region"
    assert msg.startswith("service %s of party 3 (us-east-1) does not list eu-west-1 among its supported regions" % NAME)
    reason, msg = lib.explain_invisible(NAME, "us-east-1", "eu-west-1", CONSUMER, "aws-cn", False, "party 3")
    assert reason == "principal"
    assert "does not allow principal arn:aws-cn:iam::%s:root" % CONSUMER in msg
    assert "list eu-west-1 among its supported regions" in msg
    reason, msg = lib.explain_invisible(NAME, "us-east-1", "us-east-1", CONSUMER, "aws", None)
    assert reason == "principal" and "supported regions" not in msg


def test_plan_update_and_lookup():
    endpoint = {"VpcEndpointId": "vpce-0123456789abcdef0", "ServiceName": NAME, "State": "available",
                "SubnetIds": ["subnet-a", "subnet-b"], "Groups": [{"GroupId": "sg-a"}],
                "Tags": [{"Key": "Name", "Value": "p1-to-p3"}]}
    assert lib.plan_update(endpoint, {"subnet_ids": ["subnet-b", "subnet-c"], "security_group_ids": None}) == {
        "AddSubnetIds": ["subnet-c"], "RemoveSubnetIds": ["subnet-a"]}
    assert lib.plan_update(endpoint, {"subnet_ids": ["subnet-a", "subnet-b"], "security_group_ids": ["sg-b"]}) == {
        "AddSecurityGroupIds": ["sg-b"], "RemoveSecurityGroupIds": ["sg-a"]}
    dead = dict(endpoint, VpcEndpointId="vpce-0123456789abcdef1", State="deleted")
    assert lib.find_endpoint([endpoint, dead], NAME, "p1-to-p3") is endpoint
    assert lib.find_endpoint([endpoint], NAME, "other") is None
    with pytest.raises(lib.InterfaceEndpointError, match="2 interface endpoints"):
        lib.find_endpoint([endpoint, dict(endpoint, VpcEndpointId="vpce-0123456789abcdef2")], NAME)
    with pytest.raises(lib.InterfaceEndpointError, match=r"connects to .* \(us-east-1\), not to .* \(eu-west-1\)"):
        lib.check_same_service(dict(endpoint, ServiceRegion="us-east-1"), NAME, "eu-west-1", "eu-west-1")


# ------------------------------------------------------------ against moto --

def _account_keys(url, account_id):
    """An IAM user and access key in ``account_id``: moto maps the key to that account."""
    iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                       aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    iam.meta.events.register("before-sign.iam.*",
                             lambda request, **_: request.headers.__setitem__("x-moto-account-id", account_id))
    iam.create_user(UserName="operator")
    key = iam.create_access_key(UserName="operator")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def _network(ec2, region, cidr):
    vpc = ec2.create_vpc(CidrBlock=cidr + ".0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr + ".1.0/24", AvailabilityZone=region + "a")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="to-peer", Description="to peer", VpcId=vpc)["GroupId"]
    return vpc, subnet, group


@pytest.fixture()
def net(moto_url):
    """Provider (account 3) in us-east-1 with an endpoint service; consumer (account 1) VPCs in
    eu-west-1 and us-east-1. The service allows nobody and lists no other region yet."""
    urllib.request.urlopen(urllib.request.Request(moto_url + "/moto-api/reset", method="POST")).read()
    provider, consumer = _account_keys(moto_url, PROVIDER), _account_keys(moto_url, CONSUMER)

    def client(service, keys, region):
        return boto3.client(service, endpoint_url=moto_url, region_name=region,
                            aws_access_key_id=keys[0], aws_secret_access_key=keys[1])

    p_ec2 = client("ec2", provider, "us-east-1")
    _vpc, p_subnet, _group = _network(p_ec2, "us-east-1", "10.3")
    nlb = client("elbv2", provider, "us-east-1").create_load_balancer(
        Name="p3-peer", Subnets=[p_subnet], Scheme="internal", Type="network")["LoadBalancers"][0]["LoadBalancerArn"]
    service = p_ec2.create_vpc_endpoint_service_configuration(
        NetworkLoadBalancerArns=[nlb], AcceptanceRequired=False)["ServiceConfiguration"]
    c_eu = client("ec2", consumer, "eu-west-1")
    c_us = client("ec2", consumer, "us-east-1")
    return {"url": moto_url, "consumer": consumer, "provider_ec2": p_ec2, "service": service,
            "eu": (c_eu,) + _network(c_eu, "eu-west-1", "10.1"), "us": (c_us,) + _network(c_us, "us-east-1", "10.2")}


def run(net, capsys, region, check=False, **args):
    args = dict(args, endpoint_url=net["url"], region=region, access_key=net["consumer"][0],
                secret_key=net["consumer"][1], _ansible_check_mode=check, _ansible_diff=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def endpoint_args(net, where, **extra):
    _ec2, vpc, subnet, group = net[where]
    return dict(vpc_id=vpc, service_name=net["service"]["ServiceName"], subnet_ids=[subnet],
                security_group_ids=[group], service_owner="party 3", tags={"Name": "p1-to-p3"}, **extra)


def allow(net, principal=None, regions=()):
    p_ec2, service_id = net["provider_ec2"], net["service"]["ServiceId"]
    if principal:
        p_ec2.modify_vpc_endpoint_service_permissions(ServiceId=service_id, AddAllowedPrincipals=[principal])
    if regions:
        p_ec2.modify_vpc_endpoint_service_configuration(ServiceId=service_id, AddSupportedRegions=list(regions))


def test_cross_region_endpoint_names_the_service_region(net, capsys):
    allow(net, "arn:aws:iam::%s:root" % CONSUMER, ["eu-west-1"])
    first = run(net, capsys, "eu-west-1", **endpoint_args(net, "eu"))
    assert first["changed"] is True
    assert first["service_region"] == "us-east-1"
    assert first["dns_name"]
    # what AWS (the stand-in) holds in the consumer's account and region
    [ep] = net["eu"][0].describe_vpc_endpoints()["VpcEndpoints"]
    assert ep["VpcEndpointId"] == first["vpc_endpoint_id"]
    assert ep["ServiceRegion"] == "us-east-1"
    assert ep["ServiceName"] == net["service"]["ServiceName"]
    assert [g["GroupId"] for g in ep["Groups"]] == [net["eu"][3]]
    assert net["provider_ec2"].describe_vpc_endpoints()["VpcEndpoints"] == []  # not in the provider's account

    again = run(net, capsys, "eu-west-1", **endpoint_args(net, "eu"))
    assert again["changed"] is False
    assert again["vpc_endpoint_id"] == first["vpc_endpoint_id"]
    assert again["diff"]["before"] == again["diff"]["after"]

    # a same-region endpoint carries no cross-region ServiceRegion
    same = run(net, capsys, "us-east-1", **endpoint_args(net, "us"))
    assert same["changed"] is True and same["service_region"] == "us-east-1"


def test_missing_region_and_missing_principal_are_told_apart(net, capsys):
    hidden = run(net, capsys, "eu-west-1", **endpoint_args(net, "eu"))
    assert hidden["failed"] is True and hidden["reason"] == "principal"
    assert "does not allow principal arn:aws:iam::%s:root" % CONSUMER in hidden["msg"]
    assert "of party 3 (us-east-1)" in hidden["msg"]

    allow(net, "arn:aws:iam::%s:root" % CONSUMER)
    no_region = run(net, capsys, "eu-west-1", **endpoint_args(net, "eu"))
    assert no_region["failed"] is True and no_region["reason"] == "region"
    assert no_region["msg"].startswith("service_name: service %s of party 3 (us-east-1) does not list eu-west-1 "
                                       "among its supported regions" % net["service"]["ServiceName"])
    assert net["eu"][0].describe_vpc_endpoints()["VpcEndpoints"] == []

    allow(net, regions=["eu-west-1"])
    assert run(net, capsys, "eu-west-1", **endpoint_args(net, "eu"))["changed"] is True


def test_check_mode_update_and_delete(net, capsys):
    allow(net, "arn:aws:iam::%s:root" % CONSUMER, ["eu-west-1"])
    planned = run(net, capsys, "eu-west-1", check=True, **endpoint_args(net, "eu"))
    assert planned["changed"] is True and planned["vpc_endpoint_id"] is None
    assert planned["diff"]["after"]["service_region"] == "us-east-1"
    assert net["eu"][0].describe_vpc_endpoints()["VpcEndpoints"] == []

    created = run(net, capsys, "eu-west-1", **endpoint_args(net, "eu"))
    ec2, vpc, _subnet, _group = net["eu"]
    other = ec2.create_security_group(GroupName="other", Description="other", VpcId=vpc)["GroupId"]
    changed = run(net, capsys, "eu-west-1", **endpoint_args(net, "eu", purge_tags=True) | {"security_group_ids": [other]})
    assert changed["changed"] is True and changed["security_group_ids"] == [other]
    assert changed["vpc_endpoint_id"] == created["vpc_endpoint_id"]
    [ep] = ec2.describe_vpc_endpoints()["VpcEndpoints"]
    assert [g["GroupId"] for g in ep["Groups"]] == [other]

    gone = run(net, capsys, "eu-west-1", state="absent", vpc_endpoint_id=created["vpc_endpoint_id"])
    assert gone["changed"] is True and gone["service_region"] == "us-east-1"
    live = [e for e in ec2.describe_vpc_endpoints()["VpcEndpoints"] if e["State"].lower() not in lib.DEAD_STATES]
    assert live == []
    assert run(net, capsys, "eu-west-1", state="absent", vpc_endpoint_id=created["vpc_endpoint_id"])["changed"] is False


def test_tags_in_place():
    assert lib.tags_in_place({"Name": "a", "aws:x": "1"}, {"Name": "a"})
    assert lib.tags_in_place({"Name": "a"}, None)
    assert not lib.tags_in_place({"Name": "a", "extra": "1"}, {"Name": "a"})
    assert lib.tags_in_place({"Name": "a", "extra": "1"}, {"Name": "a"}, purge=False)
    assert not lib.tags_in_place({"Name": "b"}, {"Name": "a"}, purge=False)
    assert not lib.tags_in_place({}, {"Name": "a"})


def test_an_endpoint_as_wanted_is_left_alone_and_tag_drift_is_repaired(net, capsys):
    allow(net, "arn:aws:iam::%s:root" % CONSUMER, ["eu-west-1"])
    created = run(net, capsys, "eu-west-1", **endpoint_args(net, "eu"))
    ec2 = net["eu"][0]
    again = run(net, capsys, "eu-west-1", **endpoint_args(net, "eu"))
    assert again["changed"] is False and again["vpc_endpoint_id"] == created["vpc_endpoint_id"]
    assert again["dns_name"] == created["dns_name"] and again["service_region"] == "us-east-1"

    endpoint_id = created["vpc_endpoint_id"]
    ec2.create_tags(Resources=[endpoint_id], Tags=[{"Key": "Name", "Value": "renamed"}, {"Key": "extra", "Value": "1"}])
    repaired = run(net, capsys, "eu-west-1", vpc_endpoint_id=endpoint_id, **endpoint_args(net, "eu"))
    assert repaired["changed"] is True
    [ep] = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"]
    assert {t["Key"]: t["Value"] for t in ep["Tags"]} == {"Name": "p1-to-p3"}
    assert run(net, capsys, "eu-west-1", vpc_endpoint_id=endpoint_id, **endpoint_args(net, "eu"))["changed"] is False
