"""ec2_subnet_in_place, ec2_subnet_id, ec2_route_table_in_place, ec2_security_group_in_place,
ec2_security_group_id, ec2_vpc_in_place and ec2_igw_in_place on what AWS (moto) describes, converted
as amazon.aws's ec2_vpc_subnet_info / ec2_vpc_route_table_info / ec2_security_group_info convert it
(or read by amazon.aws's ec2_vpc_net_info / ec2_vpc_igw_info themselves, run in-process)."""
import json

import boto3
import pytest
from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.amazon.aws.plugins.modules.ec2_vpc_route_table_info import normalize_route_table
from moto import mock_aws

from ansible_collections.threshold_kms.mpc_party.plugins.filter.ec2_network import (
    FilterModule, ec2_igw_in_place, ec2_route_table_in_place, ec2_security_group_id, ec2_security_group_in_place,
    ec2_subnet_id, ec2_subnet_in_place, ec2_vpc_in_place)
from tests.unit.aws_modules import moto_env, run_aws_module

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


# ----------------------------------------------------------------------------- security groups --
# The three amazon.aws.ec2_security_group tasks of roles/eks_cluster/tasks/security_groups.yml, on
# groups made in moto as those tasks leave them. Each answer of ec2_security_group_in_place is also
# checked against the module itself, run in check mode on the same groups: "in place" must be
# exactly "the module reports no change" (the group description aside: see below).

CLUSTER, NODE = "kms-p1-cluster", "kms-p1-node"
CLUSTER_DESC, NODE_DESC = "EKS control plane of kms-p1 (additional group)", "Nodes of kms-p1"
CLUSTER_TAGS = {"Name": CLUSTER, "party": "1"}
NODE_TAGS = {"Name": NODE, "party": "1", "kubernetes.io/cluster/kms-p1": "owned"}


def _node_rules(cluster_id):
    return [{"proto": "all", "group_name": NODE, "rule_desc": "node to node"},
            {"proto": "tcp", "ports": [443], "group_id": cluster_id, "rule_desc": "control plane to webhooks"},
            {"proto": "tcp", "ports": ["1025-65535"], "group_id": cluster_id,
             "rule_desc": "control plane to kubelet and pods"}]


def _cluster_rules(node_id):
    return [{"proto": "tcp", "ports": [443], "group_id": node_id, "rule_desc": "nodes to the Kubernetes API"}]


def tasks(v):
    """The parameters of the three tasks, by task: those the filter and the module share."""
    return {
        "bare": dict(name=CLUSTER, description=CLUSTER_DESC, tags=CLUSTER_TAGS, purge_rules=False),
        "node": dict(name=NODE, description=NODE_DESC, tags=NODE_TAGS, rules=_node_rules(v["cluster"])),
        "rules": dict(name=CLUSTER, description=CLUSTER_DESC, tags=CLUSTER_TAGS, rules=_cluster_rules(v["node"])),
    }


@pytest.fixture()
def eks_groups(monkeypatch):
    """The two groups of eks_cluster as its three tasks leave them (AWS's default allow-all egress kept)."""
    moto_env(monkeypatch)
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="eu-west-1")
        vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]

        def group(name, desc, tags):
            return ec2.create_security_group(GroupName=name, Description=desc, VpcId=vpc_id, TagSpecifications=[
                {"ResourceType": "security-group", "Tags": _boto_tags(tags)}])["GroupId"]

        cluster, node = group(CLUSTER, CLUSTER_DESC, CLUSTER_TAGS), group(NODE, NODE_DESC, NODE_TAGS)
        ec2.authorize_security_group_ingress(GroupId=node, IpPermissions=[
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": node, "Description": "node to node"}]},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
             "UserIdGroupPairs": [{"GroupId": cluster, "Description": "control plane to webhooks"}]},
            {"IpProtocol": "tcp", "FromPort": 1025, "ToPort": 65535,
             "UserIdGroupPairs": [{"GroupId": cluster, "Description": "control plane to kubelet and pods"}]}])
        ec2.authorize_security_group_ingress(GroupId=cluster, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
             "UserIdGroupPairs": [{"GroupId": node, "Description": "nodes to the Kubernetes API"}]}])
        yield {"ec2": ec2, "vpc": vpc_id, "cluster": cluster, "node": node}


def groups(v, names=(CLUSTER, NODE)):
    """ec2_security_group_info's list for the VPC and the two names (the role's one read)."""
    found = []
    for group in v["ec2"].describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [v["vpc"]]},
                                                            {"Name": "group-name", "Values": list(names)}])["SecurityGroups"]:
        group = camel_dict_to_snake_dict(group)
        group["tags"] = boto3_tag_list_to_ansible_dict(group.get("tags", {}), tag_name_key_name="key",
                                                       tag_value_key_name="value")
        found.append(group)
    return found


def module_check(v, capsys, params):
    """amazon.aws.ec2_security_group in check mode with these parameters, in-process on moto."""
    return run_aws_module("amazon.aws.ec2_security_group", dict(params, vpc_id=v["vpc"]), check_mode=True)


def in_place(v, params, observed=None):
    params = dict(params)
    return ec2_security_group_in_place(groups(v) if observed is None else observed, params.pop("name"), **params)


def answers(v, capsys):
    """Per task: (the filter's answer, whether the module in check mode would leave the group as it is)."""
    return {task: (in_place(v, params), not module_check(v, capsys, params)["changed"])
            for task, params in tasks(v).items()}


def test_the_filters_are_exported():
    assert set(FilterModule().filters()) == {
        "ec2_subnet_in_place", "ec2_subnet_id", "ec2_route_table_in_place",
        "ec2_security_group_in_place", "ec2_security_group_id", "ec2_vpc_in_place", "ec2_igw_in_place"}


def test_security_groups_as_the_tasks_leave_them_are_in_place(eks_groups, capsys):
    assert answers(eks_groups, capsys) == {"bare": (True, True), "node": (True, True), "rules": (True, True)}


def _revoke(which, perm):
    return lambda ec2, v: ec2.revoke_security_group_ingress(GroupId=v[which], IpPermissions=[perm(v)])


def _authorize(which, perm, egress=False):
    return lambda ec2, v: getattr(ec2, "authorize_security_group_" + ("egress" if egress else "ingress"))(
        GroupId=v[which], IpPermissions=[perm(v)])


def _describe_kubelet_rule(ec2, v, old, new):
    """The node group's 1025-65535 rule described ``new`` instead of ``old`` (moto's
    update_security_group_rule_descriptions_ingress finds no group pair: revoked and authorized again)."""
    def rule(desc):
        return {"IpProtocol": "tcp", "FromPort": 1025, "ToPort": 65535,
                "UserIdGroupPairs": [{"GroupId": v["cluster"], "Description": desc}]}
    ec2.revoke_security_group_ingress(GroupId=v["node"], IpPermissions=[rule(old)])
    ec2.authorize_security_group_ingress(GroupId=v["node"], IpPermissions=[rule(new)])


ALL_OUT = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
API = lambda node: {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,  # noqa: E731
                    "UserIdGroupPairs": [{"GroupId": node, "Description": "nodes to the Kubernetes API"}]}
SSH = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}


@pytest.mark.parametrize("change, expected", [
    (lambda ec2, v: ec2.create_tags(Resources=[v["cluster"]], Tags=[{"Key": "extra", "Value": "x"}]),
     {"bare": False, "node": True, "rules": False}),
    (lambda ec2, v: ec2.delete_tags(Resources=[v["node"]], Tags=[{"Key": "party"}]),
     {"bare": True, "node": False, "rules": True}),
    (lambda ec2, v: ec2.create_tags(Resources=[v["node"]], Tags=[{"Key": "party", "Value": "2"}]),
     {"bare": True, "node": False, "rules": True}),
    (_revoke("node", lambda v: {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                                "UserIdGroupPairs": [{"GroupId": v["cluster"], "Description": "control plane to webhooks"}]}),
     {"bare": True, "node": False, "rules": True}),
    (_revoke("node", lambda v: {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": v["node"], "Description": "node to node"}]}),
     {"bare": True, "node": False, "rules": True}),
    (_authorize("node", lambda v: SSH), {"bare": True, "node": False, "rules": True}),
    # the bare control-plane task keeps rules it does not name (purge_rules: false); the rules task purges them
    (_authorize("cluster", lambda v: SSH), {"bare": True, "node": True, "rules": False}),
    (_revoke("cluster", lambda v: API(v["node"])),
     {"bare": True, "node": True, "rules": False}),
    (lambda ec2, v: _describe_kubelet_rule(ec2, v, "control plane to kubelet and pods", "edited"),
     {"bare": True, "node": False, "rules": True}),
    # another port range from the control plane (1025-65534 instead of 1025-65535)
    (lambda ec2, v: (
        _revoke("node", lambda v: {"IpProtocol": "tcp", "FromPort": 1025, "ToPort": 65535,
                                   "UserIdGroupPairs": [{"GroupId": v["cluster"],
                                                         "Description": "control plane to kubelet and pods"}]})(ec2, v),
        _authorize("node", lambda v: {"IpProtocol": "tcp", "FromPort": 1025, "ToPort": 65534, "UserIdGroupPairs": [
            {"GroupId": v["cluster"], "Description": "control plane to kubelet and pods"}]})(ec2, v)),
     {"bare": True, "node": False, "rules": True}),
    # no rules_egress in the tasks: the module neither adds nor removes an egress rule, so egress does not count
    (_authorize("node", lambda v: SSH, egress=True), {"bare": True, "node": True, "rules": True}),
    (lambda ec2, v: [ec2.revoke_security_group_egress(GroupId=v[g], IpPermissions=[ALL_OUT]) for g in ("cluster", "node")],
     {"bare": True, "node": True, "rules": True}),
], ids=["extra tag", "missing tag", "tag value", "missing rule", "missing self rule", "extra node rule",
        "extra control-plane rule", "missing control-plane rule", "rule description", "port range",
        "extra egress rule", "no egress rule"])
def test_a_group_change_is_seen_as_the_module_sees_it(eks_groups, capsys, change, expected):
    change(eks_groups["ec2"], eks_groups)
    assert answers(eks_groups, capsys) == {task: (ok, ok) for task, ok in expected.items()}


def test_a_missing_group_is_not_in_place_and_has_no_id(eks_groups, capsys):
    ec2 = eks_groups["ec2"]
    ec2.revoke_security_group_ingress(GroupId=eks_groups["cluster"], IpPermissions=[API(eks_groups["node"])])
    ec2.delete_security_group(GroupId=eks_groups["node"])
    assert in_place(eks_groups, tasks(eks_groups)["node"]) is False
    assert module_check(eks_groups, capsys, tasks(eks_groups)["node"])["changed"] is True
    assert ec2_security_group_id({"skipped": True}, groups(eks_groups), NODE, "(unknown)") == "(unknown)"
    assert ec2_security_group_in_place([], CLUSTER, tags=CLUSTER_TAGS, purge_rules=False) is False


def test_another_group_description_is_not_in_place(eks_groups, capsys):
    """The module cannot change a group's description: it changes nothing and warns. The task runs so
    that the warning is seen (the group must be re-created to take the new description)."""
    params = dict(tasks(eks_groups)["node"], description="Nodes of another cluster")
    assert in_place(eks_groups, params) is False
    result = module_check(eks_groups, capsys, params)
    assert result["changed"] is False
    assert "description does not match" in json.dumps(result.get("warnings"))
    # the filter only looks at the description when the task gives it
    assert in_place(eks_groups, dict(params, description=None)) is True


def test_two_groups_of_the_name_are_not_in_place(eks_groups):
    observed = groups(eks_groups)
    node = [g for g in observed if g["group_name"] == NODE]
    assert in_place(eks_groups, tasks(eks_groups)["node"], observed + node) is False
    assert ec2_security_group_id({"skipped": True}, observed + node, NODE) == ""


def test_aws_own_tags_on_a_group_do_not_count(eks_groups):
    observed = groups(eks_groups)
    for group in observed:
        group["tags"]["aws:cloudformation:stack-name"] = "x"
    assert all(in_place(eks_groups, params, observed) for params in tasks(eks_groups).values())
    # but a task giving no tag at all would unset every tag, AWS's own too
    assert in_place(eks_groups, dict(tasks(eks_groups)["bare"], tags={}), observed) is False


def test_rules_written_otherwise_compare_as_the_module_expands_them(eks_groups, capsys):
    v = eks_groups
    same = [{"proto": "-1", "group_name": [NODE], "rule_desc": "node to node"},
            # one rule, two port ranges; the control plane by name (another group of the VPC)
            {"proto": "tcp", "ports": ["443", "65535-1025"], "group_name": CLUSTER, "rule_desc": "x"}]
    params = dict(tasks(v)["node"], rules=same)
    assert in_place(v, params) is False  # one description differs from the rules made
    assert module_check(v, capsys, params)["changed"] is True
    _describe_kubelet_rule(v["ec2"], v, "control plane to kubelet and pods", "x")
    v["ec2"].revoke_security_group_ingress(GroupId=v["node"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "UserIdGroupPairs": [{"GroupId": v["cluster"], "Description": "control plane to webhooks"}]}])
    v["ec2"].authorize_security_group_ingress(GroupId=v["node"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": v["cluster"], "Description": "x"}]}])
    assert in_place(v, params) is True
    assert module_check(v, capsys, params)["changed"] is False
    # a group name the VPC's read does not hold: the module would create it (or fail), so not in place
    lost = dict(params, rules=same + [{"proto": "tcp", "ports": [80], "group_name": "elsewhere", "rule_desc": "x"}])
    assert in_place(v, lost) is False


def test_egress_rules_given_are_compared_as_the_module_purges_them(eks_groups, capsys):
    """privatelink's peer groups give rules_egress: [] (purged): AWS's default allow-all must then be gone."""
    v = eks_groups
    params = dict(tasks(v)["node"], rules_egress=[], purge_rules_egress=True)
    assert (in_place(v, params), module_check(v, capsys, params)["changed"]) == (False, True)
    kept = dict(params, purge_rules_egress=False)
    assert (in_place(v, kept), module_check(v, capsys, kept)["changed"]) == (True, False)
    v["ec2"].revoke_security_group_egress(GroupId=v["node"], IpPermissions=[ALL_OUT])
    assert (in_place(v, params), module_check(v, capsys, params)["changed"]) == (True, False)


def test_the_id_of_a_group_task_ran_or_skipped(eks_groups):
    observed = groups(eks_groups)
    assert ec2_security_group_id({"group_id": "sg-made"}, observed, NODE) == "sg-made"
    assert ec2_security_group_id({"skipped": True}, observed, NODE) == eks_groups["node"]
    assert ec2_security_group_id({"changed": True, "group_id": None}, [], NODE, "(unknown)") == "(unknown)"
    assert ec2_security_group_id(None, observed, CLUSTER) == eks_groups["cluster"]


# ------------------------------------------------------------------ VPC and internet gateway --
# The "VPC of the cluster" (amazon.aws.ec2_vpc_net) and "Internet gateway of the VPC"
# (amazon.aws.ec2_vpc_igw) tasks of roles/eks_cluster/tasks/network.yml and nat.yml, run here
# in-process on moto to make the VPC and gateway; the role's reads (ec2_vpc_net_info by Name tag and
# CIDR, ec2_vpc_igw_info by attachment) run in-process too. Each answer of ec2_vpc_in_place /
# ec2_igw_in_place is checked against the module itself in check mode: "in place" must be exactly
# "the module reports no change".

VPC_NAME, VPC_CIDR = "kms-p1", "10.0.0.0/16"
VPC_TAGS = {"mpc-cluster": "kms-p1", "party": "1"}  # eks_cluster_tags; the module adds Name
IGW_TAGS = dict(VPC_TAGS, Name=VPC_NAME)
VPC_TASK = dict(name=VPC_NAME, cidr_block=[VPC_CIDR], dns_hostnames=True, dns_support=True, tags=VPC_TAGS)


def run_module(capsys, name, params, check_mode=False):
    """amazon.aws.<name> in-process on moto with these parameters: its result (failed or not)."""
    return run_aws_module("amazon.aws." + name, params, check_mode=check_mode, allow_failure=True)


@pytest.fixture()
def eks_vpc(monkeypatch, capsys):
    """The VPC and its internet gateway as the role's two tasks make them."""
    moto_env(monkeypatch)
    with mock_aws():
        vpc = run_module(capsys, "ec2_vpc_net", VPC_TASK)
        assert vpc["changed"] and not vpc.get("failed"), vpc
        igw = run_module(capsys, "ec2_vpc_igw", dict(vpc_id=vpc["vpc"]["id"], tags=IGW_TAGS))
        assert igw["changed"] and not igw.get("failed"), igw
        yield {"ec2": boto3.client("ec2", region_name="eu-west-1"), "vpc": vpc["vpc"]["id"], "igw": igw["gateway_id"],
               "capsys": capsys}


def vpcs(v, name=VPC_NAME, cidr=VPC_CIDR):
    """The role's read: amazon.aws.ec2_vpc_net_info by Name tag and CIDR (ec2_vpc_net's own lookup)."""
    result = run_module(v["capsys"], "ec2_vpc_net_info", dict(filters={"tag:Name": name, "cidr-block": cidr}))
    assert not result.get("failed"), result
    return result["vpcs"]


def igws(v):
    """The role's read: amazon.aws.ec2_vpc_igw_info by attachment to the VPC (ec2_vpc_igw's own lookup)."""
    result = run_module(v["capsys"], "ec2_vpc_igw_info", dict(filters={"attachment.vpc-id": v["vpc"]}))
    assert not result.get("failed"), result
    return result["internet_gateways"]


def vpc_filter_params(task):
    """The ec2_vpc_net task's parameters as ec2_vpc_in_place takes them."""
    params = dict(task)
    return params.pop("name"), params.pop("cidr_block"), params


def vpc_answer(v, task=VPC_TASK, observed=None):
    """(the filter's id or '', whether ec2_vpc_net in check mode leaves the VPC as it is)."""
    name, cidr, params = vpc_filter_params(task)
    found = ec2_vpc_in_place(vpcs(v) if observed is None else observed, name, cidr, **params)
    result = run_module(v["capsys"], "ec2_vpc_net", task, check_mode=True)
    assert not result.get("failed"), result
    return found, not result["changed"]


def igw_answer(v, tags=IGW_TAGS):
    """(the filter's id or '', whether ec2_vpc_igw in check mode leaves the gateway as it is)."""
    found = ec2_igw_in_place(igws(v), v["vpc"], tags)
    result = run_module(v["capsys"], "ec2_vpc_igw", dict(vpc_id=v["vpc"], tags=tags), check_mode=True)
    assert not result.get("failed"), result
    return found, not result["changed"]


def test_the_vpc_and_gateway_as_the_tasks_leave_them_are_in_place(eks_vpc):
    assert vpc_answer(eks_vpc) == (eks_vpc["vpc"], True)
    assert igw_answer(eks_vpc) == (eks_vpc["igw"], True)


@pytest.mark.parametrize("change", [
    lambda ec2, v: ec2.create_tags(Resources=[v["vpc"]], Tags=[{"Key": "extra", "Value": "x"}]),
    lambda ec2, v: ec2.create_tags(Resources=[v["vpc"]], Tags=[{"Key": "party", "Value": "2"}]),
    lambda ec2, v: ec2.delete_tags(Resources=[v["vpc"]], Tags=[{"Key": "party"}]),
    lambda ec2, v: ec2.modify_vpc_attribute(VpcId=v["vpc"], EnableDnsHostnames={"Value": False}),
    lambda ec2, v: (ec2.modify_vpc_attribute(VpcId=v["vpc"], EnableDnsHostnames={"Value": False}),
                    ec2.modify_vpc_attribute(VpcId=v["vpc"], EnableDnsSupport={"Value": False})),
], ids=["extra tag", "tag value", "missing tag", "dns hostnames off", "dns support off"])
def test_a_vpc_the_module_would_change_is_not_in_place(eks_vpc, change):
    change(eks_vpc["ec2"], eks_vpc)
    assert vpc_answer(eks_vpc) == ("", False)


def test_a_vpc_renamed_is_not_found_and_the_module_would_create_one(eks_vpc):
    eks_vpc["ec2"].create_tags(Resources=[eks_vpc["vpc"]], Tags=[{"Key": "Name", "Value": "renamed"}])
    assert vpc_answer(eks_vpc) == ("", False)
    # even a list read without the Name filter does not make it the cluster's
    assert ec2_vpc_in_place(vpcs(eks_vpc, name="renamed"), *vpc_filter_params(VPC_TASK)[:2],
                            **vpc_filter_params(VPC_TASK)[2]) == ""


def test_a_second_vpc_with_the_name_and_cidr_is_not_in_place(eks_vpc):
    """ec2_vpc_net fails when two VPCs have the name and CIDR (multi_ok false): the task runs and fails as before."""
    ec2 = eks_vpc["ec2"]
    ec2.create_vpc(CidrBlock=VPC_CIDR, TagSpecifications=[
        {"ResourceType": "vpc", "Tags": _boto_tags(dict(VPC_TAGS, Name=VPC_NAME))}])
    observed = vpcs(eks_vpc)
    assert len(observed) == 2
    name, cidr, params = vpc_filter_params(VPC_TASK)
    assert ec2_vpc_in_place(observed, name, cidr, **params) == ""
    result = run_module(eks_vpc["capsys"], "ec2_vpc_net", VPC_TASK, check_mode=True)
    assert result["failed"] and "same name and CIDR block" in result["msg"], result
    # another CIDR or another name does not count
    ec2.create_vpc(CidrBlock="10.1.0.0/16",
                   TagSpecifications=[{"ResourceType": "vpc", "Tags": _boto_tags({"Name": VPC_NAME})}])
    assert ec2_vpc_in_place([v for v in observed if v["id"] == eks_vpc["vpc"]] + vpcs(eks_vpc, cidr="10.1.0.0/16"),
                            name, cidr, **params) == eks_vpc["vpc"]


def test_what_the_module_leaves_alone_by_default_does_not_count(eks_vpc):
    """A secondary CIDR (purge_cidrs false), an Amazon IPv6 block (no ipv6_cidr), another tenancy or
    DHCP options set (neither given): the module changes none of them, so the VPC is still in place."""
    ec2 = eks_vpc["ec2"]
    ec2.associate_vpc_cidr_block(VpcId=eks_vpc["vpc"], CidrBlock="10.2.0.0/16")
    ec2.associate_vpc_cidr_block(VpcId=eks_vpc["vpc"], AmazonProvidedIpv6CidrBlock=True)
    dhcp = ec2.create_dhcp_options(DhcpConfigurations=[{"Key": "domain-name", "Values": ["example.internal"]}])
    ec2.associate_dhcp_options(DhcpOptionsId=dhcp["DhcpOptions"]["DhcpOptionsId"], VpcId=eks_vpc["vpc"])
    assert vpc_answer(eks_vpc) == (eks_vpc["vpc"], True)


def test_cidrs_ipv6_and_dhcp_given_are_compared_as_the_module_reconciles_them(eks_vpc):
    ec2, v = eks_vpc["ec2"], eks_vpc
    ec2.associate_vpc_cidr_block(VpcId=v["vpc"], CidrBlock="10.2.0.0/16")
    assert vpc_answer(v, dict(VPC_TASK, purge_cidrs=True)) == ("", False)                       # would remove it
    assert vpc_answer(v, dict(VPC_TASK, cidr_block=[VPC_CIDR, "10.2.0.0/16"], purge_cidrs=True)) == (v["vpc"], True)
    assert vpc_answer(v, dict(VPC_TASK, cidr_block=[VPC_CIDR, "10.3.0.0/16"])) == ("", False)  # would add it
    assert vpc_answer(v, dict(VPC_TASK, ipv6_cidr=False)) == (v["vpc"], True)
    assert vpc_answer(v, dict(VPC_TASK, ipv6_cidr=True)) == ("", False)                         # would request one
    ec2.associate_vpc_cidr_block(VpcId=v["vpc"], AmazonProvidedIpv6CidrBlock=True)
    assert vpc_answer(v, dict(VPC_TASK, ipv6_cidr=True)) == (v["vpc"], True)
    assert vpc_answer(v, dict(VPC_TASK, ipv6_cidr=False)) == ("", False)                        # would remove it
    dhcp = ec2.describe_vpcs(VpcIds=[v["vpc"]])["Vpcs"][0]["DhcpOptionsId"]
    assert vpc_answer(v, dict(VPC_TASK, dhcp_opts_id=dhcp)) == (v["vpc"], True)
    assert vpc_answer(v, dict(VPC_TASK, dhcp_opts_id="dopt-0123456789abcdef0")) == ("", False)


def test_vpc_tags_as_the_module_treats_its_name_and_purge_tags(eks_vpc):
    ec2, v = eks_vpc["ec2"], eks_vpc
    ec2.create_tags(Resources=[v["vpc"]], Tags=[{"Key": "extra", "Value": "x"}])
    # no tags: the module only makes sure of the Name tag (purge_tags is then off)
    assert vpc_answer(v, dict(VPC_TASK, tags=None)) == (v["vpc"], True)
    assert vpc_answer(v, dict(VPC_TASK, purge_tags=False)) == (v["vpc"], True)
    assert vpc_answer(v, dict(VPC_TASK, purge_tags=False, tags=dict(VPC_TAGS, party="2"))) == ("", False)
    # a Name among the tags is the name's (the module overwrites it)
    ec2.delete_tags(Resources=[v["vpc"]], Tags=[{"Key": "extra"}])
    assert vpc_answer(v, dict(VPC_TASK, tags=dict(VPC_TAGS, Name="other"))) == (v["vpc"], True)
    # AWS's own aws: tags are never purged
    observed = vpcs(v)
    observed[0]["tags"]["aws:cloudformation:stack-name"] = "x"
    assert vpc_answer(v, observed=observed)[0] == v["vpc"]


def test_no_vpc_read_is_not_in_place_and_the_module_would_create_it(eks_vpc):
    """Check mode on an account without the VPC: the task runs and reports the creation, as before."""
    task = dict(VPC_TASK, name="kms-p2")
    assert vpcs(eks_vpc, name="kms-p2") == []
    assert vpc_answer(eks_vpc, task) == ("", False)
    assert ec2_vpc_in_place([], VPC_NAME, VPC_CIDR, True, True, VPC_TAGS) == ""


def test_unsure_vpc_reads_are_not_in_place(eks_vpc):
    name, cidr, params = vpc_filter_params(VPC_TASK)
    observed = vpcs(eks_vpc)
    assert ec2_vpc_in_place(observed, name, cidr, **params) == eks_vpc["vpc"]
    for key, value in (("state", "pending"), ("enable_dns_support", None), ("enable_dns_hostnames", None),
                       ("cidr_block_association_set", [])):
        changed = [dict(observed[0], **{key: value})]
        assert ec2_vpc_in_place(changed, name, cidr, **params) == "", key
    # hostnames without DNS support: the module fails
    assert ec2_vpc_in_place(observed, name, cidr, dns_hostnames=True, dns_support=None, tags=VPC_TAGS) == ""


@pytest.mark.parametrize("change", [
    lambda ec2, v: ec2.detach_internet_gateway(InternetGatewayId=v["igw"], VpcId=v["vpc"]),
    lambda ec2, v: (ec2.detach_internet_gateway(InternetGatewayId=v["igw"], VpcId=v["vpc"]),
                    ec2.delete_internet_gateway(InternetGatewayId=v["igw"])),
    lambda ec2, v: ec2.create_tags(Resources=[v["igw"]], Tags=[{"Key": "party", "Value": "2"}]),
    lambda ec2, v: ec2.create_tags(Resources=[v["igw"]], Tags=[{"Key": "extra", "Value": "x"}]),
    lambda ec2, v: ec2.delete_tags(Resources=[v["igw"]], Tags=[{"Key": "Name"}]),
], ids=["detached", "missing", "tag value", "extra tag", "missing tag"])
def test_a_gateway_the_module_would_change_is_not_in_place(eks_vpc, change):
    change(eks_vpc["ec2"], eks_vpc)
    assert igw_answer(eks_vpc) == ("", False)


def test_another_vpcs_gateway_does_not_count(eks_vpc):
    ec2 = eks_vpc["ec2"]
    other_vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    other = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=other, VpcId=other_vpc)
    everything = run_module(eks_vpc["capsys"], "ec2_vpc_igw_info", {})["internet_gateways"]
    assert len(everything) == 2
    assert ec2_igw_in_place(everything, eks_vpc["vpc"], IGW_TAGS) == eks_vpc["igw"]


def test_unsure_gateway_reads_are_not_in_place(eks_vpc):
    observed = igws(eks_vpc)
    assert ec2_igw_in_place(observed, eks_vpc["vpc"], IGW_TAGS) == eks_vpc["igw"]
    assert ec2_igw_in_place(observed + observed, eks_vpc["vpc"], IGW_TAGS) == ""  # the module fails on two
    detaching = [dict(observed[0], attachments=[{"state": "detaching", "vpc_id": eks_vpc["vpc"]}])]
    assert ec2_igw_in_place(detaching, eks_vpc["vpc"], IGW_TAGS) == ""
    assert ec2_igw_in_place(observed, "", IGW_TAGS) == ""
    assert ec2_igw_in_place([], eks_vpc["vpc"], IGW_TAGS) == ""
    # the tags as the module treats them: not given, not purged, AWS's own
    assert ec2_igw_in_place(observed, eks_vpc["vpc"]) == eks_vpc["igw"]
    assert ec2_igw_in_place(observed, eks_vpc["vpc"], {"Name": VPC_NAME}, purge_tags=False) == eks_vpc["igw"]
    assert ec2_igw_in_place(observed, eks_vpc["vpc"], {"Name": VPC_NAME}) == ""
    observed[0]["tags"]["aws:cloudformation:stack-name"] = "x"
    assert ec2_igw_in_place(observed, eks_vpc["vpc"], IGW_TAGS) == eks_vpc["igw"]
    # convert_tags: false (a list of key/value)
    listed = [dict(observed[0], tags=[{"key": k, "value": val} for k, val in IGW_TAGS.items()])]
    assert ec2_igw_in_place(listed, eks_vpc["vpc"], IGW_TAGS) == eks_vpc["igw"]


@pytest.fixture()
def ec2_requests(monkeypatch):
    """The AWS requests boto3 clients made from here on, by operation (a botocore before-call hook
    on every client created; moto answers after it)."""
    import collections

    import botocore.session

    counted = collections.Counter()
    create_client = botocore.session.Session.create_client

    def counting_client(self, *args, **kwargs):
        client = create_client(self, *args, **kwargs)
        client.meta.events.register("before-call", lambda model, **_: counted.update([model.name]))
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", counting_client)
    return counted


def test_the_reads_cost_fewer_requests_than_the_modules_on_a_re_run(eks_vpc, ec2_requests, capsys):
    """A no-change re-run: the two modules as the tasks run them, against the two reads that now
    replace them (the numbers are in the report of this change)."""
    def count(name, params):
        ec2_requests.clear()
        result = run_module(capsys, name, params)
        assert not result.get("failed") and not result.get("changed"), result
        return dict(ec2_requests)

    module_vpc = count("ec2_vpc_net", VPC_TASK)
    read_vpc = count("ec2_vpc_net_info", dict(filters={"tag:Name": VPC_NAME, "cidr-block": VPC_CIDR}))
    module_igw = count("ec2_vpc_igw", dict(vpc_id=eks_vpc["vpc"], tags=IGW_TAGS))
    read_igw = count("ec2_vpc_igw_info", dict(filters={"attachment.vpc-id": eks_vpc["vpc"]}))
    print("ec2_vpc_net", module_vpc, "ec2_vpc_net_info", read_vpc, "ec2_vpc_igw", module_igw, "ec2_vpc_igw_info", read_igw)
    assert read_vpc == {"DescribeVpcs": 1, "DescribeVpcAttribute": 2}
    assert read_igw == {"DescribeInternetGateways": 1}
    assert sum(module_vpc.values()) > sum(read_vpc.values()) + 5
    assert sum(module_igw.values()) > sum(read_igw.values())
