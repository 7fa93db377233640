"""privatelink's input rules (plugins/module_utils/rules_privatelink.py), through role_inputs.check with the
role's real argument spec."""
import os

import pytest

from ansible_collections.threshold_kms.mpc_party.plugins.action.role_inputs import playbook_roles
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import role_inputs
from tests.support.role_specs import for_role
from tests.unit.privatelink_network import network, svc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


spec = for_role("privatelink")


VALID = {
    "privatelink_sides": ["provider", "consumer", "peer_ca"], "privatelink_network_name": "net",
    "privatelink_party_id": 1, "privatelink_parties": network(), "privatelink_tls_mode": "manual",
    "privatelink_service_name_overrides": {}, "privatelink_vpc_id": "vpc-0abc",
    "privatelink_private_subnet_ids": ["subnet-1", "subnet-2"], "privatelink_node_security_group_id": "sg-0abc",
    "privatelink_allowed_cidrs": [], "privatelink_namespace": "kms", "privatelink_peer_service_name": "kms-core-peer",
    "privatelink_nlb_arn": "", "privatelink_nlb_wait_retries": 30, "privatelink_nlb_wait_delay": 10,
    "privatelink_create_nlb": False, "privatelink_nlb_name": "kms-net-p1-peer", "privatelink_nlb_target_ips": [],
    "privatelink_expose_client_port": False, "privatelink_acceptance_required": False, "privatelink_tags": {},
    "privatelink_ca_pem": "", "privatelink_ca_overwrite": False, "privatelink_public_bucket": "kms-net-p1-public",
    "privatelink_public_prefix": "PUB-p1", "privatelink_ca_object_name": "tls.crt", "privatelink_ca_warn_days": 30,
    "privatelink_ca_validate_certs": True, "privatelink_ca_bundle": "",
    "privatelink_ca_missing": "fail", "privatelink_ca_wait_timeout": 600, "privatelink_ca_wait_delay": 20,
    "privatelink_endpoint_wait": False, "privatelink_kubeconfig": "/tmp/kubeconfig", "privatelink_kube_api_server": "",
    "privatelink_cluster_domain": "cluster.local", "privatelink_address_check": True,
}


def check(check_mode=False, **change):
    return role_inputs.check("privatelink", spec(), dict(VALID, **change), {"check_mode": check_mode})[0]


def test_the_base_covers_every_option_of_main():
    assert sorted(VALID) == sorted(spec())


@pytest.mark.parametrize("change, variable, words", [
    # network and party
    ({"privatelink_party_id": 7}, "privatelink_party_id", "exactly once among privatelink_parties"),
    ({"privatelink_party_id": "one"}, "privatelink_party_id", "must be of type int"),
    ({"privatelink_parties": network(p2={"aws_account_id": "12345"})}, "privatelink_parties", "12 digits"),
    ({"privatelink_parties": network(p3={"privatelink_service_name": "vpce-svc-123"})},
     "privatelink_parties[party_id=3].privatelink_service_name", "com.amazonaws.vpce.<region>.vpce-svc-<hex>"),
    ({"privatelink_service_name_overrides": {"2": "nonsense"}}, "privatelink_service_name_overrides[2]",
     "com.amazonaws.vpce.<region>.vpce-svc-<hex>"),
    ({"privatelink_parties": network(p2={"region": "eu-west-2"})},
     "privatelink_parties[party_id=2].privatelink_service_name", "must be the party's region eu-west-2"),
    ({"privatelink_sides": ["provider", "bridge"]}, "privatelink_sides", "must be one or more of"),
    ({"privatelink_tls_mode": "on"}, "privatelink_tls_mode", "must be one of"),
    # provider side
    ({"privatelink_vpc_id": "", "privatelink_sides": ["provider"]}, "privatelink_vpc_id",
     "required by the provider part unless privatelink_nlb_arn"),
    ({"privatelink_create_nlb": True, "privatelink_nlb_name": "internal-peer"}, "privatelink_nlb_name",
     "nor starting with 'internal-'"),
    ({"privatelink_create_nlb": True, "privatelink_nlb_name": "x" * 33}, "privatelink_nlb_name", "1-32 letters"),
    ({"privatelink_create_nlb": True, "privatelink_private_subnet_ids": [], "privatelink_sides": ["provider"]},
     "privatelink_private_subnet_ids", "at least one"),
    ({"privatelink_parties": network(p1={"peer_port": 0})}, "privatelink_parties[party_id=1].peer_port",
     "this party's peer port"),
    ({"privatelink_nlb_wait_retries": 0}, "privatelink_nlb_wait_retries", "a count, at least 1"),
    ({"privatelink_nlb_wait_delay": "ten"}, "privatelink_nlb_wait_delay", "must be of type int"),
    # consumer side
    ({"privatelink_kubeconfig": "", "privatelink_kube_api_server": ""}, "privatelink_kubeconfig",
     "party<N>-external Services"),
    ({"privatelink_vpc_id": "", "privatelink_sides": ["consumer"]}, "privatelink_vpc_id", "required by the consumer part"),
    ({"privatelink_private_subnet_ids": [], "privatelink_sides": ["consumer"]}, "privatelink_private_subnet_ids",
     "the subnets of the peer endpoints"),
    ({"privatelink_node_security_group_id": ""}, "privatelink_node_security_group_id", "at least one of them"),
    ({"privatelink_node_security_group_id": "sg-XYZ"}, "privatelink_node_security_group_id", "security group id sg-"),
    ({"privatelink_allowed_cidrs": ["0.0.0.0/0"]}, "privatelink_allowed_cidrs[0]", "a /0 opens the peer port"),
    ({"privatelink_allowed_cidrs": ["10.0.0.0/16", "::/0"]}, "privatelink_allowed_cidrs[1]", "a /0 opens"),
    ({"privatelink_allowed_cidrs": ["10.300.0.0/16"]}, "privatelink_allowed_cidrs[0]", "each octet 0-255"),
    ({"privatelink_allowed_cidrs": ["10.0.0.1/16"]}, "privatelink_allowed_cidrs[0]", "host bits zero"),
    ({"privatelink_allowed_cidrs": ["fd00::1/8"]}, "privatelink_allowed_cidrs[0]", "an IPv6 CIDR"),
    ({"privatelink_allowed_cidrs": ["10.0.0.0"]}, "privatelink_allowed_cidrs[0]", "an IPv4 CIDR"),
    # CA certificates
    ({"privatelink_parties": network(p2={"public_vault_url": ""})}, "privatelink_parties[party_id=2].public_vault_url",
     "needed to read the party's CA"),
    ({"privatelink_parties": network(p4={"ca_certificate": {"source": "s3"}})},
     "privatelink_parties[party_id=4].ca_certificate.source", "vault, pem or path"),
    ({"privatelink_parties": network(p3={"mpc_identity": ""})}, "privatelink_parties[party_id=3].mpc_identity",
     "the CN the party's CA must carry"),
    ({"privatelink_ca_wait_timeout": -1}, "privatelink_ca_wait_timeout", "seconds, at least 0"),
    ({"privatelink_ca_wait_delay": 0}, "privatelink_ca_wait_delay", "seconds, at least 1"),
    ({"privatelink_ca_wait_delay": "a while"}, "privatelink_ca_wait_delay", "must be of type int"),
    ({"privatelink_ca_warn_days": -5}, "privatelink_ca_warn_days", "days, at least 0"),
    ({"privatelink_ca_missing": "ignore"}, "privatelink_ca_missing", "must be one of"),
    ({"privatelink_ca_pem": "-----BEGIN PRIVATE KEY-----"}, "privatelink_ca_pem", "a private key is never published"),
    ({"privatelink_ca_pem": "CERT", "privatelink_public_bucket": ""}, "privatelink_public_bucket",
     "where privatelink_ca_pem is published"),
    ({"privatelink_ca_pem": "CERT", "privatelink_ca_object_name": "certs/tls.crt"}, "privatelink_ca_object_name",
     "without '/'"),
    ({"privatelink_ca_pem": "CERT", "privatelink_tls_mode": "auto"}, "privatelink_ca_pem",
     "must be empty in tls_mode auto"),
    ({"privatelink_sides": ["own_ca"], "privatelink_ca_pem": "CERT",
      "privatelink_parties": network(p1={"public_vault_url": ""})}, "privatelink_parties[party_id=1].public_vault_url",
     "needed by the own_ca part"),
])
def test_a_broken_rule_names_its_variable_once(change, variable, words):
    problems = check(**change)
    assert len(problems) == 1, problems
    assert problems[0].startswith("privatelink: %s: " % variable) and words in problems[0], problems


@pytest.mark.parametrize("change, check_mode", [
    ({}, False),
    ({"privatelink_allowed_cidrs": ["10.0.0.0/16", "fd00::/8"], "privatelink_node_security_group_id": ""}, False),
    # a party not published yet is no peer: nothing to check on the consumer side
    ({"privatelink_parties": network(p2={"privatelink_service_name": ""}, p3={"privatelink_service_name": ""}),
      "privatelink_vpc_id": "", "privatelink_sides": ["consumer"]}, False),
    # an override of "" means "not published"; a good override replaces the network's name
    ({"privatelink_service_name_overrides": {"2": "", 4: svc("eu-central-1", 4)}}, False),
    ({"privatelink_sides": ["provider"], "privatelink_vpc_id": "", "privatelink_nlb_arn": "arn:aws:elb:x"}, False),
    ({"privatelink_create_nlb": True, "privatelink_nlb_name": "kms-net-p1-peer"}, False),
    # check mode before the VPC exists: the provider and consumer parts are not evaluated
    ({"privatelink_vpc_id": "(known after apply)", "privatelink_private_subnet_ids": []}, True),
    # tls_mode none needs no CA; own_ca in check mode (or with a pem source) needs no PEM
    ({"privatelink_tls_mode": "none", "privatelink_parties": network(p2={"public_vault_url": ""})}, False),
    ({"privatelink_sides": ["own_ca"]}, True),
    # the own_ca part's PEM is kms_workload_keys' output, checked in tasks/own_ca.yml (preflight sees its default)
    ({"privatelink_sides": ["own_ca"]}, False),
    ({"privatelink_sides": ["own_ca"], "privatelink_parties": network(p1={"ca_certificate": {"source": "pem"}})}, False),
    ({"privatelink_sides": ["own_ca"], "privatelink_tls_mode": "auto"}, False),
    # this party's own PEM replaces its vault URL for the peer CA part
    ({"privatelink_ca_pem": "CERT", "privatelink_parties": network(p1={"public_vault_url": ""})}, False),
    ({"privatelink_ca_wait_timeout": 0, "privatelink_ca_wait_delay": 1}, False),
])
def test_good_inputs_pass(change, check_mode):
    assert check(check_mode, **change) == []


def test_a_rule_about_a_part_waits_for_that_part():
    """The consumer rules say nothing when only the provider runs, and the other way round."""
    assert check(privatelink_sides=["provider"], privatelink_node_security_group_id="",
                 privatelink_kubeconfig="") == []
    assert check(privatelink_sides=["consumer"], privatelink_create_nlb=True, privatelink_nlb_name="-bad") == []


def test_the_playbook_wired_vpc_waits_for_the_role():
    """In preflight the VPC (eks_cluster_facts.vpc_id) is not known: the rules reading it do not run."""
    values = dict((k, v) for k, v in VALID.items() if k not in ("privatelink_vpc_id", "privatelink_private_subnet_ids",
                                                               "privatelink_node_security_group_id"))
    assert role_inputs.check("privatelink", spec(), values)[0] == []


def test_check_mode_before_the_vpc_exists_leaves_the_consumer_network_alone():
    """A --check deploy on an empty account: eks_cluster hands placeholders for what it has not created."""
    unknown = "(known after apply)"
    values = dict(VALID, privatelink_sides=["consumer"], privatelink_vpc_id=unknown,
                  privatelink_private_subnet_ids=[unknown], privatelink_node_security_group_id=unknown)
    assert role_inputs.check("privatelink", spec(), values, {"check_mode": True})[0] == []
    # the same placeholders in a real run are mistakes, each named
    problems = role_inputs.check("privatelink", spec(), values, {"check_mode": False})[0]
    assert any(p.startswith("privatelink: privatelink_node_security_group_id: empty or a security group id")
               for p in problems), problems


def test_the_teardown_entry_point():
    options = spec("teardown")
    values = {"privatelink_party_id": 1, "privatelink_create_nlb": True, "privatelink_nlb_name": "ok-name",
              "privatelink_vpc_id": ""}
    assert role_inputs.check("privatelink", options, values)[0] == []
    problems = role_inputs.check("privatelink", options, dict(values, privatelink_party_id="one"))[0]
    assert len(problems) == 1 and problems[0].startswith("privatelink: privatelink_party_id: must be of type int")


@pytest.mark.parametrize("change, variable", [
    ({"privatelink_ca_wait_delay": 0}, "privatelink_ca_wait_delay"),
    ({"privatelink_ca_wait_timeout": -1}, "privatelink_ca_wait_timeout"),
    ({"privatelink_nlb_wait_retries": 0}, "privatelink_nlb_wait_retries"),
    ({"privatelink_allowed_cidrs": ["0.0.0.0/0"]}, "privatelink_allowed_cidrs[0]"),
    ({"privatelink_node_security_group_id": "sg-XYZ"}, "privatelink_node_security_group_id"),
    ({"privatelink_parties": network(p2={"aws_account_id": "12345"})}, "privatelink_parties"),
])
def test_deploy_party_meets_each_part_rule_once(change, variable):
    """deploy_party.yml runs the role once per part (own_ca, peer_ca, provider, consumer): a rule about one
    part speaks in that run only, so its mistake is reported once over the whole playbook."""
    runs = [wiring["privatelink_sides"] for role, entry, wiring in
            playbook_roles(os.path.join(ROOT, "playbooks", "deploy_party.yml"))
            if role == "privatelink" and entry == "main"]
    assert sorted(map(tuple, runs)) == [("consumer",), ("own_ca",), ("peer_ca",), ("provider",)]
    problems = []
    for sides in runs:
        problems += check(privatelink_sides=sides, privatelink_ca_pem="CERT", **change)
    assert len(problems) == 1 and problems[0].startswith("privatelink: %s: " % variable), problems
