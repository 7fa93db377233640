"""The privatelink role's decisions (plugins/filter/privatelink.py) on plain data: peers and
principals from a network definition, the consumer plan from what AWS and Kubernetes hold, the
NLB among the account's load balancers, the CA wait bookkeeping and the service name note."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.threshold_kms.mpc_party.plugins.filter.privatelink import (
    FilterModule,
    privatelink_ca_progress,
    privatelink_ca_requests,
    privatelink_consumer_plan,
    privatelink_input_errors,
    privatelink_model,
    privatelink_nlb,
    privatelink_peer_endpoints,
    privatelink_service_note,
)
from tests.unit.privatelink_network import network, svc

PREFIX = "kms-net-p1"


def test_the_filters_are_exported():
    assert set(FilterModule().filters()) == {
        "privatelink_model", "privatelink_input_errors", "privatelink_nlb", "privatelink_consumer_plan",
        "privatelink_peer_endpoints", "privatelink_ca_requests", "privatelink_ca_progress",
        "privatelink_service_note"}


# ------------------------------------------------------------------------------------- model --

def test_several_peers_only_those_with_a_service_name_and_a_cross_region_peer():
    model = privatelink_model(network(), "1", PREFIX)
    assert [p["party_id"] for p in model["peers"]] == [2, 3]  # party 4 has no service name yet
    two = model["peers"][0]
    assert two == {"party_id": 2, "peer_port": 50002, "region": "us-east-1", "region_matches_name": True,
                   "service_name": svc("us-east-1", 2), "security_group_name": "kms-net-p1-to-p2",
                   "kubernetes_service": "party2-external"}
    assert model["peer_ids"] == ["2", "3"]
    assert model["unnamed_peers"] == [4]
    # every other party may connect, service name or not; regions besides this party's own
    assert model["principal_accounts"] == ["100000000002", "100000000003", "100000000004"]
    assert model["supported_regions"] == ["eu-central-1", "us-east-1"]
    assert model["region"] == "eu-west-1"
    assert model["me"]["party_id"] == 1


def test_a_principal_change_follows_the_network_definition():
    before = privatelink_model(network(), 1, PREFIX)
    after = privatelink_model([p for p in network(p2={"aws_account_id": "200000000002"}) if p["party_id"] != 3], 1, PREFIX)
    assert set(before["principal_accounts"]) - set(after["principal_accounts"]) == {"100000000002", "100000000003"}
    assert "200000000002" in after["principal_accounts"]
    assert [p["party_id"] for p in after["peers"]] == [2]
    assert after["supported_regions"] == ["eu-central-1", "us-east-1"]


def test_overrides_win_over_the_network_definition_whatever_the_key_type():
    model = privatelink_model(network(), 1, PREFIX, {4: svc("eu-central-1", 4), "3": svc("eu-west-1", 0x33)})
    assert {p["party_id"]: p["service_name"] for p in model["peers"]} == {
        2: svc("us-east-1", 2), 3: svc("eu-west-1", 0x33), 4: svc("eu-central-1", 4)}


def test_a_service_name_in_another_region_than_its_party_is_flagged():
    model = privatelink_model(network(p3={"privatelink_service_name": svc("us-east-1", 3)}), 1, PREFIX)
    assert [p["party_id"] for p in model["peers"] if not p["region_matches_name"]] == [3]


def test_listeners_and_target_groups_fit_aws_limits():
    model = privatelink_model(network(), 1, "kms-a-very-long-network-name-p1", expose_client_port=True)
    assert [(p["name"], p["port"]) for p in model["listener_ports"]] == [("peer", 50001), ("client", 50101)]
    assert all(len(p["target_group"]) <= 32 for p in model["listener_ports"])
    assert model["nlb_listeners"][1] == {"Protocol": "TCP", "Port": 50101, "DefaultActions": [
        {"Type": "forward", "TargetGroupName": model["listener_ports"][1]["target_group"]}]}


# ------------------------------------------------------------------------------------- input --

def inputs(**changes):
    base = dict(sides=["provider", "consumer", "peer_ca"], party_id=1, parties=network(), prefix=PREFIX,
                tls_mode="manual", vpc_id="vpc-0123abcd", vpc_known=True, check_mode=False,
                private_subnet_ids=["subnet-1"], node_security_group_id="sg-0123abcd", allowed_cidrs=[],
                nlb_arn="", create_nlb=False, nlb_name="kms-net-p1-peer", namespace="kms",
                cluster_domain="cluster.local", address_check=True, kubeconfig="", kube_api_server="http://k",
                ca_pem="", public_bucket="b", public_prefix="PUB-p1", ca_object_name="tls.crt",
                ca_wait_timeout=600, ca_wait_delay=20)
    base.update(changes)
    return base


def test_good_addresses_give_no_warning():
    """The input rules themselves are in module_utils/rules_privatelink.py (tests/unit/test_rules_privatelink.py);
    this filter only says what to warn about."""
    checks = privatelink_input_errors(inputs(parties=network(p2={"address": "party2-external.kms.svc.cluster.local"},
                                                             p3={"address": "party3-external"})))
    assert checks == {"odd_addresses": [], "warnings": []}


def test_odd_peer_addresses_and_the_check_mode_note_are_warnings():
    checks = privatelink_input_errors(inputs(
        parties=network(p2={"address": "Party2-external.kms."}, p3={"address": "10.0.3.7"}),
        service_name_overrides={4: svc("eu-central-1", 4)}, vpc_known=False, vpc_id="vpc-known-after-apply"))
    assert checks["odd_addresses"] == ['party 3 is "10.0.3.7"', 'party 4 is ""']
    assert checks["warnings"][0].startswith("Check mode: the VPC does not exist yet (privatelink_vpc_id is "
                                            "'vpc-known-after-apply'), so the provider and consumer side(s)")
    assert 'party 3 is "10.0.3.7"' in checks["warnings"][1] and "party 2" not in checks["warnings"][1]
    assert privatelink_input_errors(inputs(address_check=False, parties=network(p3={"address": "10.0.3.7"})))[
        "warnings"] == [p for p in privatelink_input_errors(inputs(address_check=False))["warnings"]]


# --------------------------------------------------------------------------------------- NLB --

LBS = [
    {"load_balancer_arn": "arn:lb/a", "load_balancer_name": "k8s-kms-a", "type": "network", "scheme": "internal",
     "vpc_id": "vpc-1", "tags": {"service.k8s.aws/stack": "kms/kms-core-peer"}},
    {"load_balancer_arn": "arn:lb/b", "load_balancer_name": "k8s-kms-b", "type": "network", "scheme": "internal",
     "vpc_id": "vpc-2", "tags": {"service.k8s.aws/stack": "kms/kms-core-peer"}},
    {"load_balancer_arn": "arn:lb/c", "load_balancer_name": "kms-net-p1-peer", "type": "application",
     "scheme": "internet-facing", "vpc_id": "vpc-1", "tags": {}},
]


def test_the_controllers_nlb_is_found_by_its_stack_tag_in_this_vpc():
    found = privatelink_nlb(LBS, vpc_id="vpc-1", stack_tag="kms/kms-core-peer")
    assert found["nlb"]["load_balancer_arn"] == "arn:lb/a" and found["error"] == ""


def test_an_nlb_by_arn_by_name_or_none():
    assert privatelink_nlb(LBS, nlb_arn="arn:lb/b")["nlb"]["load_balancer_name"] == "k8s-kms-b"
    wrong = privatelink_nlb(LBS, create_nlb=True, nlb_name="kms-net-p1-peer")
    assert wrong["nlb"] == {} and "is a internet-facing application load balancer" in wrong["error"]
    assert "privatelink_nlb_arn: arn:lb/x does not exist" in privatelink_nlb(LBS, nlb_arn="arn:lb/x")["error"]
    none = privatelink_nlb(LBS, vpc_id="vpc-3", stack_tag="kms/kms-core-peer", wait_retries=30)
    assert none["matches"] == [] and "in VPC vpc-3 after 30 tries" in none["error"]
    assert privatelink_nlb(LBS, vpc_id="vpc-3", stack_tag="kms/kms-core-peer", check_mode=True)["error"] == ""


def test_two_controller_nlbs_are_ambiguous():
    twice = [dict(LBS[0]), dict(LBS[0], load_balancer_arn="arn:lb/a2", load_balancer_name="k8s-kms-a2")]
    found = privatelink_nlb(twice, vpc_id="vpc-1", stack_tag="kms/kms-core-peer")
    assert found["nlb"] == {} and "(k8s-kms-a, k8s-kms-a2): give privatelink_nlb_arn" in found["error"]


# ---------------------------------------------------------------------------------- consumer --

def endpoint(eid, peer, service, state="available"):
    return {"vpc_endpoint_id": eid, "service_name": service, "state": state,
            "tags": [{"key": "threshold_kms/peer-party-id", "value": str(peer)}, {"key": "threshold_kms/party-id", "value": "1"}]}


def service(name, peer, **labels):
    base = {"app.kubernetes.io/component": "peer-endpoint", "app.kubernetes.io/instance": "net-p1",
            "threshold-kms.io/peer-party-id": str(peer)}
    base.update(labels)
    return {"metadata": {"name": name, "labels": base}}


SELECTORS = ["app.kubernetes.io/component=peer-endpoint", "app.kubernetes.io/instance=net-p1",
             "threshold-kms.io/peer-party-id"]


def test_a_stale_endpoint_group_and_service_of_a_party_that_left():
    peers = privatelink_model(network(), 1, PREFIX)["peers"]  # 2 and 3
    plan = privatelink_consumer_plan(
        peers,
        endpoints=[endpoint("vpce-2", 2, svc("us-east-1", 2)), endpoint("vpce-5", 5, svc("eu-west-1", 5)),
                   endpoint("vpce-old", 5, svc("eu-west-1", 5), state="Deleted")],
        groups=[{"group_id": "sg-2", "group_name": "kms-net-p1-to-p2"}, {"group_id": "sg-5", "group_name": "kms-net-p1-to-p5"}],
        services=[service("party2-external", 2), service("party5-external", 5),
                  service("party6-external", 6, **{"app.kubernetes.io/instance": "other-p1"})],
        node_security_group_id="sg-nodes", allowed_cidrs=["10.0.0.0/16", "fd00::/8"],
        tags={"threshold_kms/network": "net", "threshold_kms/party-id": "1"}, service_selectors=SELECTORS)
    assert plan["stale_endpoints"] == [{"vpc_endpoint_id": "vpce-5", "service_name": svc("eu-west-1", 5), "peer": "5"}]
    assert plan["stale_groups"] == [{"group_id": "sg-5", "group_name": "kms-net-p1-to-p5"}]
    # another instance's Service is not this party's to delete
    assert plan["stale_services"] == [{"name": "party5-external", "peer": "5"}]
    assert plan["stale_service_selectors"] == SELECTORS[:2] + ["threshold-kms.io/peer-party-id notin (2,3)"]
    assert plan["removed_peers"] == [5]
    two, three = plan["peers"]
    assert two["vpc_endpoint_id"] == "vpce-2" and three["vpc_endpoint_id"] is None
    assert two["rules"] == [
        {"proto": "tcp", "ports": [50002], "group_id": "sg-nodes", "rule_desc": "KMS nodes to party 2"},
        {"proto": "tcp", "ports": [50002], "cidr_ip": "10.0.0.0/16", "rule_desc": "to party 2"},
        {"proto": "tcp", "ports": [50002], "cidr_ipv6": "fd00::/8", "rule_desc": "to party 2"}]
    assert three["tags"] == {"threshold_kms/network": "net", "threshold_kms/party-id": "1",
                             "threshold_kms/component": "peer-endpoint", "Name": "kms-net-p1-to-p3",
                             "threshold_kms/peer-party-id": "3"}


def test_a_peer_that_publishes_another_service_gets_a_new_endpoint():
    peers = privatelink_model(network(p2={"privatelink_service_name": svc("us-east-1", 0x22)}), 1, PREFIX)["peers"]
    plan = privatelink_consumer_plan(peers, endpoints=[endpoint("vpce-2", 2, svc("us-east-1", 2))],
                                     groups=[{"group_id": "sg-2", "group_name": "kms-net-p1-to-p2"}])
    assert [e["vpc_endpoint_id"] for e in plan["stale_endpoints"]] == ["vpce-2"]
    assert plan["stale_groups"] == []  # the group is kept for the new endpoint
    assert plan["peers"][0]["vpc_endpoint_id"] is None
    assert plan["removed_peers"] == [2]


def test_a_party_of_the_network_without_a_service_name_keeps_what_exists_towards_it():
    """A copy of the network definition that lacks a member's name (before the coordinators publish
    it, or an older copy) must not cut this party's connection to it: only a party that left, or a
    service a peer no longer publishes, loses its endpoint, group and Service."""
    model = privatelink_model(network(), 1, PREFIX)   # 2 and 3 named, 4 without a name
    plan = privatelink_consumer_plan(
        model["peers"],
        endpoints=[endpoint("vpce-2", 2, svc("us-east-1", 2)), endpoint("vpce-4", 4, svc("eu-central-1", 4)),
                   endpoint("vpce-5", 5, svc("eu-west-1", 5))],
        groups=[{"group_id": "sg-4", "group_name": "kms-net-p1-to-p4",
                 "tags": {"threshold_kms/peer-party-id": "4"}},
                {"group_id": "sg-5", "group_name": "kms-net-p1-to-p5",
                 "tags": {"threshold_kms/peer-party-id": "5"}}],
        services=[service("party4-external", 4), service("party5-external", 5)],
        service_selectors=SELECTORS, unnamed=model["unnamed_peers"])
    assert [e["vpc_endpoint_id"] for e in plan["stale_endpoints"]] == ["vpce-5"]
    assert plan["kept_unnamed_endpoints"] == [{"vpc_endpoint_id": "vpce-4", "service_name": svc("eu-central-1", 4),
                                               "peer": "4"}]
    assert plan["stale_groups"] == [{"group_id": "sg-5", "group_name": "kms-net-p1-to-p5"}]
    assert plan["stale_services"] == [{"name": "party5-external", "peer": "5"}]
    # the one-call delete selects every Service but those of the named and the unnamed members
    assert plan["stale_service_selectors"][-1] == "threshold-kms.io/peer-party-id notin (2,3,4)"
    assert plan["removed_peers"] == [5] and plan["unnamed_peers"] == [4]
    assert [p["party_id"] for p in plan["peers"]] == [2, 3]   # nothing is created or changed towards 4
    # without the list (teardown, or a caller that does not know the members) party 4's are stale
    plain = privatelink_consumer_plan(model["peers"], endpoints=[endpoint("vpce-4", 4, svc("eu-central-1", 4))])
    assert [e["vpc_endpoint_id"] for e in plain["stale_endpoints"]] == ["vpce-4"] and plain["unnamed_peers"] == []
    # a name given for a member wins over the list: it is a peer, reconciled as such
    both = privatelink_consumer_plan(model["peers"], endpoints=[endpoint("vpce-2", 2, "old")], unnamed=[2])
    assert [e["vpc_endpoint_id"] for e in both["stale_endpoints"]] == ["vpce-2"] and both["unnamed_peers"] == []


def test_teardown_is_the_plan_without_peers():
    plan = privatelink_consumer_plan([], endpoints=[endpoint("vpce-2", 2, "x")],
                                     groups=[{"group_id": "sg-2", "group_name": "kms-net-p1-to-p2"}],
                                     services=[service("party2-external", 2)], service_selectors=SELECTORS)
    assert [e["vpc_endpoint_id"] for e in plan["stale_endpoints"]] == ["vpce-2"]
    assert len(plan["stale_groups"]) == 1 and plan["stale_service_selectors"] == SELECTORS


def test_the_selector_must_keep_the_component_and_peer_labels():
    with pytest.raises(AnsibleFilterError, match="service_selectors must select"):
        privatelink_consumer_plan([], service_selectors=["app.kubernetes.io/instance=net-p1"])


def test_peer_endpoints_as_the_facts_carry_them():
    peer = privatelink_model(network(), 1, PREFIX)["peers"][0]
    endpoints = privatelink_peer_endpoints(
        [{"item": [peer, "sg-2"], "vpc_endpoint_id": "vpce-2", "state": "available", "dns_name": "vpce-2.example"},
         {"item": [dict(peer, party_id=7, kubernetes_service="party7-external"), ""]}], "kms", "cluster.local")
    assert endpoints[2] == {"endpoint_id": "vpce-2", "state": "available", "dns_name": "vpce-2.example",
                            "service_name": svc("us-east-1", 2), "service_region": "us-east-1",
                            "security_group_id": "sg-2", "port": 50002, "kubernetes_service": "party2-external",
                            "address": "party2-external.kms.svc.cluster.local"}
    assert endpoints[7]["state"] == "absent" and endpoints[7]["dns_name"] == ""  # check mode: to be created


# ------------------------------------------------------------------------------------------ CA --

def test_where_each_ca_is_read():
    requests = {r["party_id"]: r for r in privatelink_ca_requests(network(), 1, "OWN", "PUB-p1", "manual", "tls.crt")}
    assert requests[1]["source"] == "input" and requests[1]["pem"] == "OWN" and requests[1]["public_vault_url"] is None
    assert requests[2] == {"party_id": 2, "expected_cn": "p2.kms", "source": "vault",
                           "public_vault_url": "https://p2.example/pub", "prefix": "PUB-p2", "tls_mode": "manual",
                           "object_name": "tls.crt", "pem": None, "path": None}
    assert requests[3]["pem"] == "PEM3" and requests[4]["path"] == "ca/p4.pem"
    own = privatelink_ca_requests(network(), 1, "", "PUB-p1", "manual", "tls.crt")[0]
    assert own["source"] == "vault" and own["prefix"] == "PUB-p1"


SETTINGS = dict(party_id=1, tls_mode="manual", missing="fail", wait_timeout=45, warn_days=30, check_mode=False)


def looks():
    return [{"item": {"party_id": 1}, "pem": "P1", "subject_cn": "p1.kms", "not_after": "2027-01-01", "days_left": 20},
            {"item": {"party_id": 2}, "missing": True, "url": "https://p2.example/pub/PUB-p2/TlsIdentity/tls.crt"},
            {"item": {"party_id": 3}, "missing": True, "url": "https://p3.example/x"}]


def test_the_wait_fails_naming_the_parties_and_urls():
    progress = privatelink_ca_progress(looks(), {}, [], SETTINGS)
    assert progress["found"] == {1: "P1"}
    assert [p["party_id"] for p in progress["pending"]] == [2, 3]
    assert progress["pending_lines"][0] == "party 2 at https://p2.example/pub/PUB-p2/TlsIdentity/tls.crt"
    assert progress["action"] == "fail"
    assert progress["message"].startswith("Party 1 published its own CA certificate; waiting for parties 2, 3:")
    assert "waited 45 s" in progress["message"] and "Re-run when they have deployed" in progress["message"]
    assert progress["expiring"] == ["WARNING: the CA certificate of party 1 (p1.kms) expires on 2027-01-01, in 20 days: "
                                    "that party must publish its new CA, and every party re-run the peer_ca step, "
                                    "before then."]


def test_a_later_look_keeps_what_was_found_and_warn_or_check_mode_do_not_fail():
    first = privatelink_ca_progress(looks(), {}, [], dict(SETTINGS, missing="warn"))
    assert first["action"] == "warn" and "lacks party id(s) 2, 3" in first["message"]
    second = privatelink_ca_progress([{"item": {"party_id": 2}, "pem": "P2", "days_left": 300}],
                                     first["found"], first["checked"], SETTINGS)
    assert second["found"] == {1: "P1", 2: "P2"} and second["pending"] == [] and second["action"] == ""
    check = privatelink_ca_progress(looks()[1:], {}, [], dict(SETTINGS, check_mode=True))
    assert check["action"] == "check" and check["message"].startswith("Check mode: no CA certificate published yet")


# ------------------------------------------------------------------------------ service note --

def test_the_service_name_note():
    facts = {"party_id": 1, "service_name": svc("eu-west-1", 1)}
    assert privatelink_service_note({"party_id": 1, "service_name": ""}, check_mode=True).startswith(
        "Party 1 has no endpoint service yet (check mode")
    assert "nothing to send" in privatelink_service_note(facts, svc("eu-west-1", 1))
    assert privatelink_service_note(facts, "").startswith("ACTION: party 1 publishes the endpoint service " + svc("eu-west-1", 1))
    action = privatelink_service_note(facts, "old-name")
    assert action.startswith("ACTION: party 1 publishes") and "(it now says old-name)" in action


# ------------------------------------------------------------ peer security groups in place --

def _moto_groups(plan_peer, mutate=None):
    """The peer's security group made in moto as amazon.aws.ec2_security_group makes it (its rules,
    no egress rule, its tags), possibly changed by ``mutate(ec2, group_id)``, then read back as
    ec2_security_group_info returns it."""
    import boto3
    from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
    from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
    from moto import mock_aws

    with mock_aws():
        ec2 = boto3.client("ec2", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        nodes = ec2.create_security_group(GroupName="nodes", Description="nodes", VpcId=vpc)["GroupId"]
        gid = ec2.create_security_group(
            GroupName=plan_peer["security_group_name"], Description="peer", VpcId=vpc, TagSpecifications=[
                {"ResourceType": "security-group",
                 "Tags": [{"Key": k, "Value": v} for k, v in plan_peer["tags"].items()]}])["GroupId"]
        ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        perms = []
        for rule in plan_peer["rules"]:
            perm = {"IpProtocol": rule["proto"], "FromPort": rule["ports"][0], "ToPort": rule["ports"][0]}
            if "group_id" in rule:
                perm["UserIdGroupPairs"] = [{"GroupId": nodes, "Description": rule["rule_desc"]}]
            elif "cidr_ip" in rule:
                perm["IpRanges"] = [{"CidrIp": rule["cidr_ip"], "Description": rule["rule_desc"]}]
            else:
                perm["Ipv6Ranges"] = [{"CidrIpv6": rule["cidr_ipv6"], "Description": rule["rule_desc"]}]
            perms.append(perm)
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=perms)
        if mutate:
            mutate(ec2, gid)
        groups = []
        for group in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]:
            group = camel_dict_to_snake_dict(group)
            group["tags"] = boto3_tag_list_to_ansible_dict(group.get("tags", {}), tag_name_key_name="key",
                                                           tag_value_key_name="value")
            groups.append(group)
        return groups, nodes, gid


def _plan_with(groups, nodes):
    peers = privatelink_model(network(), 1, PREFIX)["peers"][:1]
    return privatelink_consumer_plan(peers, groups=groups, node_security_group_id=nodes,
                                     allowed_cidrs=["10.0.0.0/16", "fd00::/8"],
                                     tags={"threshold_kms/network": "net", "threshold_kms/party-id": "1"})["peers"][0]


def _wanted(nodes):
    return _plan_with([], nodes)


def test_a_peer_group_as_the_module_leaves_it_is_in_place_with_its_id():
    groups, nodes, gid = _moto_groups(_wanted("sg-placeholder"))  # made with the real node group
    peer = _plan_with(groups, nodes)
    assert peer["group_in_place"] is True and peer["group_id"] == gid


@pytest.mark.parametrize("change", [
    lambda ec2, gid: ec2.create_tags(Resources=[gid], Tags=[{"Key": "extra", "Value": "x"}]),
    lambda ec2, gid: ec2.delete_tags(Resources=[gid], Tags=[{"Key": "threshold_kms/peer-party-id"}]),
    lambda ec2, gid: ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]),
    lambda ec2, gid: ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]),
    lambda ec2, gid: ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 50002, "ToPort": 50002, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}]),
    lambda ec2, gid: ec2.update_security_group_rule_descriptions_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 50002, "ToPort": 50002,
         "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "edited"}]}]),
], ids=["extra tag", "missing tag", "egress rule", "extra rule", "missing rule", "other description"])
def test_a_peer_group_the_module_would_change_is_not_in_place(change):
    groups, nodes, gid = _moto_groups(_wanted("sg-placeholder"), change)
    peer = _plan_with(groups, nodes)
    assert peer["group_in_place"] is False and peer["group_id"] == ""


def test_no_group_or_two_of_the_name_is_not_in_place():
    assert _plan_with([], "sg-nodes")["group_in_place"] is False
    groups, nodes, gid = _moto_groups(_wanted("sg-placeholder"))
    twice = [g for g in groups if g["group_id"] == gid] * 2
    assert _plan_with(twice, nodes)["group_in_place"] is False


def test_the_endpoint_of_a_skipped_group_task_gets_the_group_in_place():
    peer = dict(privatelink_model(network(), 1, PREFIX)["peers"][0], group_id="sg-in-place")
    endpoints = privatelink_peer_endpoints([{"item": [peer, ""], "vpc_endpoint_id": "vpce-2", "state": "available"}],
                                           "kms", "cluster.local")
    assert endpoints[2]["security_group_id"] == "sg-in-place"
