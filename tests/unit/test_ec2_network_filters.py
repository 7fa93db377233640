"""ec2_subnet_in_place, ec2_subnet_id, ec2_route_table_in_place on what AWS (moto) describes, converted as
amazon.aws's ec2_vpc_subnet_info / ec2_vpc_route_table_info convert it."""
import boto3
import pytest
from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.amazon.aws.plugins.modules.ec2_vpc_route_table_info import normalize_route_table
from moto import mock_aws

from ansible_collections.threshold_kms.mpc_party.plugins.filter.ec2_network import (
    ec2_route_table_in_place, ec2_subnet_id, ec2_subnet_in_place)

TAGS = {"Name": "kms-p1-private-eu-west-1a", "kubernetes.io/role/internal-elb": "1", "party": "1"}
TABLE_TAGS = {"Name": "kms-p1-private", "party": "1"}


def _boto_tags(tags):
    return [{"Key": k, "Value": v} for k, v in tags.items()]


@pytest.fixture()
def vpc(monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="eu-west-1")
        vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24", AvailabilityZone="eu-west-1a",
                                      TagSpecifications=[{"ResourceType": "subnet", "Tags": _boto_tags(TAGS)}]
                                      )["Subnet"]["SubnetId"]
        other = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.2.0/24", AvailabilityZone="eu-west-1b")["Subnet"]["SubnetId"]
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
        table = ec2.create_route_table(VpcId=vpc_id, TagSpecifications=[
            {"ResourceType": "route-table", "Tags": _boto_tags(TABLE_TAGS)}])["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet_id)
        yield {"ec2": ec2, "vpc": vpc_id, "subnet": subnet_id, "other": other, "igw": igw, "table": table}


def subnets(v):
    """ec2_vpc_subnet_info's list for the VPC."""
    found = []
    for subnet in v["ec2"].describe_subnets(Filters=[{"Name": "vpc-id", "Values": [v["vpc"]]}])["Subnets"]:
        subnet["id"] = subnet["SubnetId"]
        found.append(camel_dict_to_snake_dict(subnet))
        found[-1]["tags"] = boto3_tag_list_to_ansible_dict(subnet.get("Tags", []))
    return found


def tables(v):
    """ec2_vpc_route_table_info's list for the VPC."""
    return [normalize_route_table(t) for t in
            v["ec2"].describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [v["vpc"]]}])["RouteTables"]]


ROUTES = lambda v: [{"dest": "0.0.0.0/0", "gateway_id": v["igw"]}]  # noqa: E731


def test_a_subnet_as_wanted_is_in_place(vpc):
    assert ec2_subnet_in_place(subnets(vpc), "10.0.1.0/24", "eu-west-1a", TAGS) == vpc["subnet"]


@pytest.mark.parametrize("cidr, az, tags, map_public", [
    ("10.0.9.0/24", "eu-west-1a", TAGS, False),                      # missing
    ("10.0.1.0/24", "eu-west-1b", TAGS, False),                      # another zone
    ("10.0.1.0/24", "eu-west-1a", dict(TAGS, party="2"), False),     # a tag differs
    ("10.0.1.0/24", "eu-west-1a", dict(TAGS, extra="x"), False),     # a tag missing
    ("10.0.1.0/24", "eu-west-1a", {"Name": TAGS["Name"]}, False),    # a tag the module would purge
    ("10.0.1.0/24", "eu-west-1a", TAGS, True),                       # public IPs wanted
])
def test_a_subnet_the_module_would_change_is_not_in_place(vpc, cidr, az, tags, map_public):
    assert ec2_subnet_in_place(subnets(vpc), cidr, az, tags, map_public) == ""


def test_a_subnet_with_ipv6_the_module_would_remove_is_not_in_place(vpc):
    vpc["ec2"].modify_subnet_attribute(SubnetId=vpc["subnet"], AssignIpv6AddressOnCreation={"Value": True})
    assert ec2_subnet_in_place(subnets(vpc), "10.0.1.0/24", "eu-west-1a", TAGS) == ""
    vpc["ec2"].modify_subnet_attribute(SubnetId=vpc["subnet"], AssignIpv6AddressOnCreation={"Value": False})
    observed = subnets(vpc)
    assert ec2_subnet_in_place(observed, "10.0.1.0/24", "eu-west-1a", TAGS) == vpc["subnet"]
    mine = [s for s in observed if s["id"] == vpc["subnet"]][0]
    mine["ipv6_cidr_block_association_set"] = [
        {"ipv6_cidr_block": "2a05:d018::/64", "ipv6_cidr_block_state": {"state": "associated"}}]
    assert ec2_subnet_in_place(observed, "10.0.1.0/24", "eu-west-1a", TAGS) == ""
    mine["ipv6_cidr_block_association_set"][0]["ipv6_cidr_block_state"]["state"] = "disassociated"
    assert ec2_subnet_in_place(observed, "10.0.1.0/24", "eu-west-1a", TAGS) == vpc["subnet"]


def test_aws_own_tags_do_not_count(vpc):
    observed = subnets(vpc)
    observed[0]["tags"]["aws:cloudformation:stack-name"] = "x"
    observed[1]["tags"]["aws:cloudformation:stack-name"] = "x"
    assert ec2_subnet_in_place(observed, "10.0.1.0/24", "eu-west-1a", TAGS) == vpc["subnet"]


def test_the_id_of_a_subnet_result_ran_or_skipped(vpc):
    observed = subnets(vpc)
    assert ec2_subnet_id({"subnet": {"id": "subnet-made"}}, observed) == "subnet-made"
    assert ec2_subnet_id({"skipped": True, "item": ["eu-west-1a", "10.0.1.0/24"]}, observed) == vpc["subnet"]
    assert ec2_subnet_id({"skipped": True}, observed, "10.0.2.0/24") == vpc["other"]
    assert ec2_subnet_id({"subnet": {"id": None}}, observed, None, "(unknown)") == "(unknown)"
    assert ec2_subnet_id({"skipped": True}, observed, "10.0.9.0/24", "(unknown)") == "(unknown)"


def test_a_route_table_as_wanted_is_in_place(vpc):
    assert ec2_route_table_in_place(tables(vpc), TABLE_TAGS, [vpc["subnet"]], ROUTES(vpc)) is True


def test_a_route_table_with_a_changed_association_route_or_tag_is_not(vpc):
    observed = tables(vpc)
    assert not ec2_route_table_in_place(observed, TABLE_TAGS, [vpc["subnet"], vpc["other"]], ROUTES(vpc))
    assert not ec2_route_table_in_place(observed, TABLE_TAGS, [], ROUTES(vpc))
    assert not ec2_route_table_in_place(observed, TABLE_TAGS, [vpc["subnet"]], [])
    assert not ec2_route_table_in_place(observed, TABLE_TAGS, [vpc["subnet"]],
                                        [{"dest": "0.0.0.0/0", "nat_gateway_id": "nat-0123"}])
    assert not ec2_route_table_in_place(observed, {"Name": "kms-p1-private"}, [vpc["subnet"]], ROUTES(vpc))
    assert not ec2_route_table_in_place(observed, dict(TABLE_TAGS, Name="kms-p1-public"), [vpc["subnet"]], ROUTES(vpc))


def test_an_extra_route_or_a_second_table_with_the_tags_is_not_in_place(vpc):
    ec2 = vpc["ec2"]
    ec2.create_route(RouteTableId=vpc["table"], DestinationCidrBlock="192.168.0.0/16", GatewayId=vpc["igw"])
    assert not ec2_route_table_in_place(tables(vpc), TABLE_TAGS, [vpc["subnet"]], ROUTES(vpc))
    ec2.delete_route(RouteTableId=vpc["table"], DestinationCidrBlock="192.168.0.0/16")
    assert ec2_route_table_in_place(tables(vpc), TABLE_TAGS, [vpc["subnet"]], ROUTES(vpc))
    ec2.create_route_table(VpcId=vpc["vpc"], TagSpecifications=[
        {"ResourceType": "route-table", "Tags": _boto_tags(TABLE_TAGS)}])
    assert not ec2_route_table_in_place(tables(vpc), TABLE_TAGS, [vpc["subnet"]], ROUTES(vpc))


def test_no_tables_or_subnets_read_means_not_in_place():
    assert ec2_route_table_in_place([], TABLE_TAGS, [], []) is False
    assert ec2_subnet_in_place([], "10.0.1.0/24", "eu-west-1a", TAGS) == ""
