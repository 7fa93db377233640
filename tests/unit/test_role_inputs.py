"""The role input checks in Python: the shared value rules, the role rules and the argument-spec
check role_inputs runs, in preflight (every role of a playbook) and at a role's start."""
import os

import pytest

from ansible_collections.threshold_kms.mpc_party.plugins.action.role_inputs import playbook_roles
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import input_rules, role_inputs, role_rules
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.rules_nitro_nodegroup import (
    instance_type_errors, instance_vcpus)
from tests.support.role_specs import argument_spec

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


spec = argument_spec


# ---------------------------------------------------------------- shared value rules
@pytest.mark.parametrize("image, fine", [
    ("ghcr.io/zama-ai/kms/core-service:v0.14.1", True),
    ("ghcr.io/zama-ai/kms/core-service@sha256:" + "a" * 64, True),
    ("ghcr.io/zama-ai/kms/core-service:v0.14.1@sha256:" + "a" * 64, True),
    ("ghcr.io/zama-ai/kms/core-service:latest", False),
    ("ghcr.io/zama-ai/kms/core-service", False),
    ("ghcr.io/zama-ai/kms/core-service:v0.14 rc", False),
    ("ghcr.io/zama-ai/kms/core-service@sha256:abc", False),
    ("", False),
])
def test_image_references(image, fine):
    assert (input_rules.image_errors("img", image) == []) is fine


@pytest.mark.parametrize("value, fine", [("2", True), ("500m", True), ("8Gi", True), ("512Mi", True), ("1.5", True),
                                         ("8GB", False), ("8 Gi", False), ("-1", False), ("", False), ("two", False)])
def test_kubernetes_quantities(value, fine):
    assert (input_rules.quantity_errors("q", value) == []) is fine


@pytest.mark.parametrize("value, message", [
    ("10.0.0.0/16", None),
    ("10.300.0.0/16", "each octet 0-255"),
    ("10.0.0.1/16", "host bits zero"),
    ("10.0.0.0", "an IPv4 CIDR"),
    ("10.0.0.0/8", "from /16 to /28"),
])
def test_cidrs(value, message):
    errors = input_rules.cidr_errors("c", value, 16, 28)
    assert (errors == []) if message is None else (message in errors[0] and errors[0].startswith("c: "))


@pytest.mark.parametrize("tag, fine", [("v0.14.1", True), ("v0.14.1-0", True), ("latest", False), ("v0.14 rc", False),
                                       ("", False), ("x" * 129, False)])
def test_release_tags(tag, fine):
    assert (input_rules.tag_errors("t", tag) == []) is fine


# ---------------------------------------------------------------- Nitro Enclaves instance types
@pytest.mark.parametrize("instance_type, vcpus", [("c7a.16xlarge", 64), ("m5.xlarge", 4), ("c6g.large", 2),
                                                  ("c7a.metal-48xl", 192), ("m5.metal", None), ("c5.24xlarge", 96)])
def test_vcpus_from_the_size(instance_type, vcpus):
    assert instance_vcpus(instance_type) == vcpus


@pytest.mark.parametrize("instance_type, words", [
    ("c7a.16xlarge", None), ("m6i.2xlarge", None), ("c6g.large", None), ("r7g.xlarge", None),
    ("t3.2xlarge", "does not support Nitro Enclaves"), ("t4g.xlarge", "does not support Nitro Enclaves"),
    ("m7i-flex.2xlarge", "does not support Nitro Enclaves"), ("m4.4xlarge", "does not support Nitro Enclaves"),
    ("c5.large", "needs 4 at least"), ("c7a", "an EC2 instance type"), ("C7A.16XLARGE", "an EC2 instance type"),
])
def test_instance_types_that_can_host_an_enclave(instance_type, words):
    errors = instance_type_errors("types", instance_type)
    assert (errors == []) if words is None else (len(errors) == 1 and words in errors[0])


NITRO = {"nitro_nodegroup_instance_types": ["c7a.16xlarge"], "nitro_nodegroup_enclave_cpu_count": 48}


@pytest.mark.parametrize("change, words", [
    ({}, None),
    ({"nitro_nodegroup_enclave_cpu_count": 47}, "an even number on x86 instances"),
    ({"nitro_nodegroup_enclave_cpu_count": 64}, "at most 62 on c7a.16xlarge"),
    ({"nitro_nodegroup_enclave_cpu_count": 0}, "a positive number of vCPUs"),
    ({"nitro_nodegroup_instance_types": ["c7a.16xlarge", "c7a.4xlarge"]}, "at most 14 on c7a.4xlarge"),
    ({"nitro_nodegroup_instance_types": ["c7g.4xlarge"], "nitro_nodegroup_enclave_cpu_count": 7}, None),
])
def test_enclave_cpus_fit_every_instance_type(change, words):
    problems = role_rules.check("nitro_nodegroup", dict(NITRO, **change))
    assert (problems == []) if words is None else any(words in p for p in problems), problems


@pytest.mark.parametrize("sizes, fine", [((1, 1, 1), True), ((0, 2, 1), True), ((2, 1, 1), False), ((1, 3, 4), False),
                                         ((0, 0, 0), False)])
def test_node_group_sizes(sizes, fine):
    values = dict(zip(("nitro_nodegroup_min_size", "nitro_nodegroup_max_size", "nitro_nodegroup_desired_size"), sizes))
    assert (role_rules.check("nitro_nodegroup", values) == []) is fine


# ---------------------------------------------------------------- eks_cluster network
NETWORK = {
    "eks_cluster_vpc_id": "", "eks_cluster_vpc_cidr": "10.0.0.0/16", "eks_cluster_availability_zones": [],
    "eks_cluster_az_count": 2, "eks_cluster_private_subnet_cidrs": ["10.0.0.0/20", "10.0.16.0/20"],
    "eks_cluster_public_subnet_cidrs": ["10.0.128.0/24"], "eks_cluster_nat_gateway": True,
}


@pytest.mark.parametrize("change, words", [
    ({}, None),
    ({"eks_cluster_vpc_cidr": "10.300.0.0/16"}, "eks_cluster_vpc_cidr: an IPv4 CIDR"),
    ({"eks_cluster_private_subnet_cidrs": ["10.1.0.0/20", "10.0.16.0/20"]}, "10.1.0.0/20 lies outside the VPC 10.0.0.0/16"),
    ({"eks_cluster_private_subnet_cidrs": ["10.0.0.0/20", "10.0.8.0/21"]}, "10.0.8.0/21 overlaps 10.0.0.0/20"),
    ({"eks_cluster_public_subnet_cidrs": ["10.0.0.0/24"]}, "10.0.0.0/24 overlaps 10.0.0.0/20"),
    ({"eks_cluster_private_subnet_cidrs": ["10.0.0.0/20"]}, "one CIDR per zone, 2 needed (got 1)"),
    ({"eks_cluster_public_subnet_cidrs": []}, "a CIDR for the NAT gateway"),
    ({"eks_cluster_vpc_id": "vpc-0123abcd", "eks_cluster_vpc_cidr": "nonsense"}, None),
])
def test_the_cluster_network(change, words):
    problems = role_rules.check("eks_cluster", dict(NETWORK, **change))
    assert (problems == []) if words is None else any(words in p for p in problems), problems


# ---------------------------------------------------------------- the argument spec and the rules together
def test_types_choices_and_rules_are_reported_together_each_naming_its_variable():
    problems, validated = role_inputs.check("nitro_nodegroup", spec("nitro_nodegroup"), {
        "nitro_nodegroup_min_size": "two", "nitro_nodegroup_capacity_type": "CHEAP",
        "nitro_nodegroup_instance_types": ["t3.large"], "nitro_nodegroup_disk_size": "100",
    })
    assert problems == [
        "nitro_nodegroup: nitro_nodegroup_capacity_type: must be one of: ON_DEMAND, SPOT, got: CHEAP",
        "nitro_nodegroup: nitro_nodegroup_min_size: must be of type int (\"'two'\" cannot be converted to an int)",
        "nitro_nodegroup: nitro_nodegroup_instance_types: t3.large does not support Nitro Enclaves (burstable, Mac, "
        "flex and pre-Nitro families cannot run an enclave; the chart's default is c7a.16xlarge)",
    ]
    # converted by the spec ("100" is an int), and a refused value never reaches the rules
    assert validated["nitro_nodegroup_disk_size"] == 100 and "nitro_nodegroup_min_size" not in validated


def test_a_rule_waits_for_every_variable_it_reads():
    # min and max known, desired not (an earlier role's output): the size rule is left to the role
    assert role_rules.check("nitro_nodegroup", {"nitro_nodegroup_min_size": 5, "nitro_nodegroup_max_size": 1}) == []


def test_a_required_variable_without_a_value_is_named_unless_it_comes_later():
    options = {"a": {"type": "str", "required": True}, "b": {"type": "str", "required": True}, "c": {"type": "str"}}
    assert role_inputs.required_missing(options, present={}, unknown={"b"}) == ["a: required (no value set, and no default)"]


def test_a_role_without_rules_has_its_spec_checked():
    problems, _ = role_inputs.check("no_such_role", {"x": {"type": "int"}}, {"x": "many"})
    assert problems == ["no_such_role: x: must be of type int (\"'many'\" cannot be converted to an int)"]


# ---------------------------------------------------------------- which roles a playbook runs
def test_the_roles_of_deploy_party_in_order_with_what_the_playbook_hands_them():
    found = playbook_roles(os.path.join(ROOT, "playbooks", "deploy_party.yml"))
    names = [(role, entry) for role, entry, _ in found]
    for expected in [("eks_cluster", "start"), ("nitro_nodegroup", "prepare"), ("connector_db", "start"),
                     ("eks_cluster", "ready"), ("nitro_nodegroup", "nodes"), ("vault_buckets", "main"),
                     ("connector_db", "ready"), ("nitro_nodegroup", "ready"),
                     ("kms_config", "keygen"), ("kms_workload", "keys"), ("kms_config", "main"),
                     ("kms_workload", "main"), ("privatelink", "main"), ("prss_init", "main")]:
        assert expected in names, names
    # the long waits overlap: keys and database are started before the cluster is waited for, the vaults
    # are made before the node group is
    order = [names.index(e) for e in [("eks_cluster", "start"), ("nitro_nodegroup", "prepare"), ("connector_db", "start"),
                                      ("eks_cluster", "ready"), ("nitro_nodegroup", "nodes"), ("vault_buckets", "main"),
                                      ("nitro_nodegroup", "ready"), ("prss_init", "main")]]
    assert order == sorted(order), names
    wiring = dict(((role, entry), w) for role, entry, w in found)
    for entry in ("prepare", "nodes", "ready"):
        assert wiring[("nitro_nodegroup", entry)]["nitro_nodegroup_subnet_ids"] == "{{ eks_cluster_facts.private_subnet_ids }}"
    # the merge key of the shared kms_config wiring is followed
    assert "kms_config_kms_key_id" in wiring[("kms_config", "main")]


def test_the_rule_modules_load_for_the_roles_that_have_them():
    for role in ("eks_cluster", "nitro_nodegroup"):
        assert role_rules.rules_of(role), role
    assert role_rules.rules_of("no_such_role") == []


@pytest.mark.parametrize("expression, pending", [
    ("{{ nitro_nodegroup_facts.backup_kms_key_arn | default('', true) }}", True),   # an earlier role's output
    ("{{ privatelink_facts.peer_ca_pems | default({}) }}", True),
    ("{{ kms_workload_keys_facts.tls_certificate_pem | default('', true) if mpc.tls_mode == 'manual' else '' }}", True),
    ("{{ mpc.tls_mode }}", False),                                                  # known from the inventory
    ("{{ mpc_aws_profile | default(omit, true) }}", True),
    ("{{ lookup('env', 'HOME') }}", False),
    ("a literal", False),
    (3, False),
])
def test_a_wiring_that_reads_a_variable_not_defined_yet_is_pending(expression, pending):
    from ansible_collections.threshold_kms.mpc_party.plugins.action.role_inputs import _reads_undefined
    assert _reads_undefined(expression, {"mpc": {"tls_mode": "manual"}}) is pending
