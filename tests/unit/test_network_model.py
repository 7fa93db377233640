"""Preflight rules: every malformed network or party definition fails naming field and rule."""
import copy
import os

import pytest
import yaml

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_proto
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import network_model as nm
from tests.support.network_mutations import (FAKE_CA_PEM, both, drop_party, dup_party, host_set, net_set, party, party_del,
                                             party_set, self_signed_pem, service_name)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_network(name):
    with open(os.path.join(ROOT, "inventories", name, "group_vars", "all", "network.yml")) as fh:
        return yaml.safe_load(fh)["mpc_network"]


def party_vars(pid=1, name="sandbox"):
    return {
        "mpc_party_id": pid,
        "mpc_aws_region": "eu-west-1",
        "mpc_cluster_name": "kms-%s-p%d" % (name, pid),
        "mpc_namespace": "kms",
        "mpc_private_bucket": "kms-%s-p%d-private" % (name, pid),
        "mpc_public_bucket": "kms-%s-p%d-public" % (name, pid),
        "mpc_backup_bucket": "",
    }


@pytest.mark.parametrize("inventory,t", [("sandbox", 1), ("sandbox13", 4)])
def test_shipped_sandbox_networks_are_valid(inventory, t):
    network = load_network(inventory)
    for pid in range(1, 3 * t + 2):
        region = next(p["region"] for p in network["parties"] if p["party_id"] == pid)  # spread over regions
        mpc = nm.validate(network, dict(party_vars(pid, inventory), mpc_aws_region=region))
        assert mpc["n"] == 3 * t + 1 and mpc["t"] == t
        assert mpc["party"]["party_id"] == pid
        assert [p["party_id"] for p in mpc["peers"]] == [i for i in range(1, 3 * t + 2) if i != pid]
        assert mpc["prefixes"] == {"public": "PUB-p%d" % pid, "private": "PRIV-p%d" % pid, "backup": "BACKUP-p%d" % pid}


BAD = [
    # (id, mutation, field named, rule words)
    ("n-not-3t+1", net_set("n", 5), "mpc_network.n", "3t + 1"),
    ("t-zero", both(net_set("t", 0), net_set("n", 1)), "mpc_network.t", "at least 1"),
    ("n-string", net_set("n", "4"), "mpc_network.n", "integer"),
    ("t-wrong-for-13", net_set("t", 1), "mpc_network.n", "3t + 1"),
    ("party-count", drop_party(4), "mpc_network.parties", "n = 4"),
    ("duplicate-id", party_set(2, "party_id", 1), "party_id", "unique"),
    ("id-out-of-range", party_set(4, "party_id", 7), "party_id", "1..n"),
    ("id-zero", party_set(4, "party_id", 0), "party_id", "1..n"),
    ("id-string", party_set(3, "party_id", "3"), "party_id", "integer"),
    ("duplicate-endpoint", party_set(2, "peer_port", 12001), "address", "unique"),
    ("duplicate-identity", party_set(2, "mpc_identity", "party1.sandbox.kms.local"), "mpc_identity", "unique"),
    ("bad-identity", party_set(2, "mpc_identity", "Party 2!"), "mpc_identity", "DNS name"),
    ("port-zero", party_set(1, "peer_port", 0), "peer_port", "1..65535"),
    ("port-too-big", party_set(1, "client_port", 70000), "client_port", "1..65535"),
    ("port-string", party_set(1, "client_port", "50101"), "client_port", "integer"),
    ("port-clash-in-party", party_set(1, "metrics_port", 12101), "metrics_port", "collides"),
    ("port-clash-across-parties", party_set(2, "client_port", 12101), "client_port", "already used by party 1"),
    ("bad-pcr-length", net_set("trusted_releases", [{"pcr0": "ab" * 47, "pcr1": "0" * 96, "pcr2": "0" * 96}]), "trusted_releases[0].pcr0", "96 lowercase"),
    ("bad-pcr-upper", net_set("trusted_releases", [{"pcr0": "A" * 96, "pcr1": "0" * 96, "pcr2": "0" * 96}]), "pcr0", "96 lowercase"),
    ("missing-pcr2", net_set("trusted_releases", [{"pcr0": "a" * 96, "pcr1": "0" * 96}]), "pcr2", "required"),
    ("auto-tls-no-releases", both(net_set("tls_mode", "auto"), net_set("trusted_releases", [])), "mpc_network.trusted_releases", "tls_mode is auto"),
    ("mainnet-no-tls", both(net_set("environment", "mainnet"), net_set("tls_mode", "none")), "mpc_network.tls_mode", "mainnet"),
    ("bad-environment", net_set("environment", "prod"), "mpc_network.environment", "testnet, mainnet"),
    ("bad-tls-mode", net_set("tls_mode", "off"), "mpc_network.tls_mode", "one of"),
    ("bucket-uppercase", party_set(1, "public_bucket", "KMS-Public"), "public_bucket", "lowercase"),
    ("bucket-too-short", party_set(1, "public_bucket", "ab"), "public_bucket", "3 to 63"),
    ("bucket-ip", party_set(1, "public_bucket", "192.168.1.1"), "public_bucket", "IP address"),
    ("bucket-double-dot", host_set("mpc_private_bucket", "kms..private"), "mpc_private_bucket", "adjacent dots"),
    ("bucket-missing", host_set("mpc_private_bucket", ""), "mpc_private_bucket", "required"),
    ("bucket-shared", host_set("mpc_private_bucket", "kms-sandbox-p1-public"), "mpc_private_bucket", "separate buckets"),
    ("missing-region", party_del(2, "region"), "parties[party_id=2].region", "required"),
    ("bad-region", party_set(2, "region", "europe-1"), "region", "AWS region"),
    ("party-region-mismatch", host_set("mpc_aws_region", "us-east-1"), "mpc_aws_region", "differs"),
    ("unknown-party", host_set("mpc_party_id", 9), "mpc_party_id", "not in mpc_network.parties"),
    ("party-id-missing", host_set("mpc_party_id", None), "mpc_party_id", "required"),
    ("account-unquoted", party_set(3, "aws_account_id", 123456789012), "aws_account_id", "12 digits"),
    ("account-short", party_set(3, "aws_account_id", "12345"), "aws_account_id", "12 digits"),
    ("address-with-scheme", party_set(3, "address", "https://party3.example.com"), "address", "without scheme"),
    ("missing-address", party_del(3, "address"), "parties[party_id=3].address", "required"),
    ("unknown-party-key", party_set(3, "regoin", "eu-west-1"), "regoin", "unknown key"),
    ("unknown-network-key", net_set("threshold", 1), "mpc_network.threshold", "unknown key"),
    ("bad-service-name", party_set(2, "privatelink_service_name", "vpce-svc-123"), "privatelink_service_name", "com.amazonaws.vpce"),
    ("duplicate-party-entry", dup_party, "mpc_network.parties", "exactly once"),
    ("bad-prefix-other-type", host_set("mpc_vault_prefixes", {"private": "PUB-secret"}), "mpc_vault_prefixes.private", "another vault's type name"),
    ("empty-prefix", host_set("mpc_vault_prefixes", {"public": ""}), "mpc_vault_prefixes.public", "non-empty"),
    ("prefix-slash", host_set("mpc_vault_prefixes", {"backup": "BACKUP/p1"}), "mpc_vault_prefixes.backup", "letters, digits"),
    ("bad-cluster-name", host_set("mpc_cluster_name", "kms cluster"), "mpc_cluster_name", "letters, digits"),
    ("bad-namespace", host_set("mpc_namespace", "KMS_ns"), "mpc_namespace", "DNS label"),
    ("bad-endpoint-url", host_set("mpc_aws_endpoint_url", "127.0.0.1:4566"), "mpc_aws_endpoint_url", "http(s) URL"),
    ("parties-not-list", net_set("parties", {"party1": {}}), "mpc_network.parties", "must be a list"),
    ("ca-pem-missing", party_set(1, "ca_certificate", {"source": "pem"}), "ca_certificate.pem", "required"),
    # a party offers its endpoint service in its own region (party 2 is in eu-west-1)
    ("service-name-other-region", party_set(2, "privatelink_service_name", service_name("us-east-1")),
     "parties[party_id=2].privatelink_service_name", "must be the party's region eu-west-1"),
    # an inline CA must be one PEM X.509 certificate that parses
    ("ca-pem-fake", party_set(3, "ca_certificate", {"source": "pem", "pem": FAKE_CA_PEM}),
     "parties[party_id=3].ca_certificate.pem", "PEM X.509 certificate that parses"),
    ("ca-pem-not-pem", party_set(3, "ca_certificate", {"source": "pem", "pem": "party3's CA"}),
     "parties[party_id=3].ca_certificate.pem", "no '-----BEGIN CERTIFICATE-----' block"),
    ("ca-pem-not-text", party_set(3, "ca_certificate", {"source": "pem", "pem": ["-----BEGIN CERTIFICATE-----"]}),
     "parties[party_id=3].ca_certificate.pem", "as text"),
]


@pytest.mark.parametrize("case_id,mutate,field,rule", BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_field_and_rule(case_id, mutate, field, rule):
    name = "sandbox13" if case_id == "t-wrong-for-13" else "sandbox"
    network = copy.deepcopy(load_network(name))
    pv = party_vars(1, name)
    mutate(network, pv)
    with pytest.raises(nm.NetworkError) as info:
        nm.validate(network, pv)
    matching = [e for e in info.value.errors if field in e and rule in e]
    assert matching, "no error names %r with rule %r; got:\n%s" % (field, rule, "\n".join(info.value.errors))


def test_all_errors_reported_at_once():
    network = copy.deepcopy(load_network("sandbox"))
    network["n"] = 7
    party(network, 2)["peer_port"] = 0
    party(network, 3)["region"] = "mars-1"
    with pytest.raises(nm.NetworkError) as info:
        nm.validate(network, party_vars())
    text = str(info.value)
    assert "mpc_network.n" in text and "peer_port" in text and "region" in text


@pytest.mark.parametrize("n,reachable,status", [
    (13, 13, "Optimal"), (13, 12, "Healthy"), (13, 9, "Healthy"), (13, 8, "Degraded"),
    (13, 6, "Degraded"), (13, 5, "Unhealthy"), (4, 4, "Optimal"), (4, 3, "Healthy"), (4, 2, "Unhealthy"),
])
def test_status_rule_matches_server(n, reachable, status):
    # The one copy of the rule (network_model had a dead one with its arguments reversed).
    assert kms_proto.status_for(n, reachable) == status


def test_s3_names_accepted():
    for name in ("kms-sandbox-p1-private", "a.b-c", "abc", "x" * 63):
        assert nm.s3_bucket_name_errors(name) == []


def test_service_name_in_the_partys_region_is_accepted():
    network = copy.deepcopy(load_network("sandbox"))
    party(network, 2)["privatelink_service_name"] = service_name("eu-west-1")
    party(network, 4)["privatelink_service_name"] = service_name("ap-southeast-1", "368b817677e9690a7")
    mpc = nm.validate(network, party_vars())
    assert party(mpc, 4)["privatelink_service_name"].startswith("com.amazonaws.vpce.ap-southeast-1.")
    assert nm.service_name_region(service_name("ap-southeast-1")) == "ap-southeast-1"
    assert nm.service_name_region("vpce-svc-123") is None


def test_shipped_party1_network_service_names_match_regions():
    network = nm.validate_network(load_network("party1"))
    for p in network["parties"]:
        assert nm.service_name_region(p["privatelink_service_name"]) == p["region"], p["party_id"]


def test_real_ca_pem_is_accepted():
    network = copy.deepcopy(load_network("sandbox"))
    pem = self_signed_pem("party3.sandbox.kms.local")
    party(network, 3)["ca_certificate"] = {"source": "pem", "pem": pem}
    mpc = nm.validate(network, party_vars())
    assert party(mpc, 3)["ca_certificate"]["pem"] == pem


@pytest.mark.parametrize("extra,words", [
    ("twice", "exactly one"),
    ("-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n", "private key"),
])
def test_ca_pem_must_be_one_certificate_without_key(extra, words):
    pem = self_signed_pem("party3.sandbox.kms.local")
    network = copy.deepcopy(load_network("sandbox"))
    party(network, 3)["ca_certificate"] = {"source": "pem", "pem": pem + (pem if extra == "twice" else extra)}
    with pytest.raises(nm.NetworkError) as info:
        nm.validate(network, party_vars())
    assert [e for e in info.value.errors if "parties[party_id=3].ca_certificate.pem" in e and words in e], info.value.errors
