"""Bad input through the real playbook: each malformed definition fails in preflight, naming the
field and the rule, and no request reaches the AWS or Kubernetes stand-ins.

One ``ansible-playbook playbooks/deploy_party.yml`` run carries every case: a generated inventory
(the suite's sandbox inventory) with one host per malformed definition, plus one valid control
host. The control host is what makes the zero-request check mean something: its AWS endpoint is
a proxy that forwards exactly one request to the stand-in and then goes dark, so the run must
show that one request in moto's log, and nothing else.
"""
import copy
import os
import shutil

import pytest
import yaml

from .conftest import PROXY_PORTS, load_network, run_playbook
from .standin_proxy import FaultProxy
from tests.support.network_mutations import (FAKE_CA_PEM, both, drop_party, dup_party, host_set, net_set, party_del,
                                             party_set, party_set_from, port_of, service_name)

# The suites sharing the integration conftest's stand-ins (test_bad_input, test_faults, test_security)
# run on one xdist worker.
pytestmark = pytest.mark.xdist_group("standins")

PREFLIGHT = "threshold_kms.mpc_party.preflight : "


PCR = "c" * 96
BAD = [
    # (case, mutation of (network, host vars), field named, rule words)
    # -- network shape
    ("n-not-3t-plus-1", net_set("n", 5), "mpc_network.n", "3t + 1"),
    ("t-zero", both(net_set("t", 0), net_set("n", 1)), "mpc_network.t", "at least 1"),
    ("n-string", net_set("n", "4"), "mpc_network.n", "must be an integer"),
    ("party-missing", drop_party(4), "mpc_network.parties", "n = 4"),
    ("party-listed-twice", dup_party, "mpc_network.parties", "exactly once"),
    ("parties-not-a-list", net_set("parties", {"party1": {}}), "mpc_network.parties", "must be a list"),
    ("unknown-network-key", net_set("threshold", 1), "mpc_network.threshold", "unknown key"),
    ("bad-environment", net_set("environment", "prod"), "mpc_network.environment", "testnet, mainnet"),
    ("bad-tls-mode", net_set("tls_mode", "off"), "mpc_network.tls_mode", "must be one of"),
    ("mainnet-without-tls", both(net_set("environment", "mainnet"), net_set("tls_mode", "none")), "mpc_network.tls_mode", "refused on mainnet"),
    # -- party ids, identities, addresses
    ("duplicate-party-id", party_set(2, "party_id", 1), "party_id", "must be unique"),
    ("party-id-out-of-range", party_set(4, "party_id", 7), "party_id", "1..n"),
    ("party-id-string", party_set(3, "party_id", "3"), "party_id", "must be an integer"),
    ("duplicate-identity", party_set(2, "mpc_identity", "party1.sandbox.kms.local"), "mpc_identity", "must be unique"),
    ("identity-not-dns", party_set(2, "mpc_identity", "Party 2!"), "mpc_identity", "DNS name"),
    ("address-with-scheme", party_set(3, "address", "https://party3.example.com"), "address", "without scheme"),
    ("address-missing", party_del(3, "address"), "parties[party_id=3].address", "required"),
    ("unknown-party-key", party_set(3, "regoin", "eu-west-1"), "regoin", "unknown key"),
    # -- ports
    ("duplicate-peer-endpoint", party_set_from(2, "peer_port", port_of(1, "peer_port")), "address", "must be unique"),
    ("port-zero", party_set(1, "peer_port", 0), "peer_port", "1..65535"),
    ("port-too-big", party_set(1, "client_port", 70000), "client_port", "1..65535"),
    ("port-string", party_set(1, "client_port", "28211"), "client_port", "integer port"),
    ("port-clash-in-party", party_set_from(1, "metrics_port", port_of(1, "client_port")), "metrics_port", "collides"),
    ("port-clash-across-parties", party_set_from(2, "client_port", port_of(1, "client_port")), "client_port",
     "already used by party 1"),
    # -- enclave releases
    ("pcr-too-short", net_set("trusted_releases", [{"pcr0": "ab" * 47, "pcr1": PCR, "pcr2": PCR}]),
     "trusted_releases[0].pcr0", "96 lowercase hexadecimal"),
    ("pcr-uppercase", net_set("trusted_releases", [{"pcr0": "A" * 96, "pcr1": PCR, "pcr2": PCR}]),
     "trusted_releases[0].pcr0", "96 lowercase hexadecimal"),
    ("pcr2-missing", net_set("trusted_releases", [{"pcr0": PCR, "pcr1": PCR}]), "trusted_releases[0].pcr2", "required"),
    ("auto-tls-without-release", both(net_set("tls_mode", "auto"), net_set("trusted_releases", [])),
     "mpc_network.trusted_releases", "tls_mode is auto"),
    # -- AWS names
    ("bucket-uppercase", party_set(1, "public_bucket", "KMS-Public"), "public_bucket", "lowercase letters"),
    ("bucket-ip-address", party_set(1, "public_bucket", "192.168.1.1"), "public_bucket", "IP address"),
    ("bucket-double-dot", host_set("mpc_private_bucket", "kms..private"), "mpc_private_bucket", "adjacent dots"),
    ("bucket-too-short", host_set("mpc_private_bucket", "ab"), "mpc_private_bucket", "3 to 63"),
    ("bucket-shared-by-two-vaults", host_set("mpc_private_bucket", "kms-sandbox-p1-public"), "mpc_private_bucket",
     "separate buckets"),
    ("region-missing", party_del(2, "region"), "parties[party_id=2].region", "required"),
    ("region-not-aws", party_set(2, "region", "europe-1"), "parties[party_id=2].region", "AWS region"),
    ("party-region-mismatch", host_set("mpc_aws_region", "us-east-1"), "mpc_aws_region", "differs"),
    ("account-unquoted", party_set(3, "aws_account_id", 123456789012), "aws_account_id", "12 digits"),
    ("account-short", party_set(3, "aws_account_id", "12345"), "aws_account_id", "12 digits"),
    ("bad-service-name", party_set(2, "privatelink_service_name", "vpce-svc-123"), "privatelink_service_name",
     "com.amazonaws.vpce"),
    ("ca-pem-missing", party_set(1, "ca_certificate", {"source": "pem"}), "ca_certificate.pem", "required"),
    # -- this party's own variables
    ("unknown-party", host_set("mpc_party_id", 9), "mpc_party_id", "not in mpc_network.parties"),
    ("cluster-name-with-space", host_set("mpc_cluster_name", "kms cluster"), "mpc_cluster_name",
     "letters, digits"),
    ("cluster-name-empty", host_set("mpc_cluster_name", ""), "mpc_cluster_name", "required"),
    ("namespace-not-dns", host_set("mpc_namespace", "KMS_ns"), "mpc_namespace", "DNS label"),
    ("aws-endpoint-not-url", host_set("mpc_aws_endpoint_url", "127.0.0.1:28000"), "mpc_aws_endpoint_url",
     "http(s) URL"),
    ("kube-server-not-url", host_set("mpc_kube_api_server", "localhost:28101"), "mpc_kube_api_server",
     "http(s) URL"),
    ("prefix-of-other-vault", host_set("mpc_vault_prefixes", {"private": "PUB-secret"}), "mpc_vault_prefixes.private",
     "another vault's type name"),
    ("prefix-empty", host_set("mpc_vault_prefixes", {"public": ""}), "mpc_vault_prefixes.public", "non-empty"),
    ("prefix-unknown-vault", host_set("mpc_vault_prefixes", {"secret": "S-p1"}), "mpc_vault_prefixes.secret",
     "unknown vault"),
    # -- the variables of the roles the playbook runs (role_inputs: argument specs and rules)
    ("instance-type-without-enclaves", host_set("nitro_nodegroup_instance_types", ["t3.xlarge"]),
     "nitro_nodegroup_instance_types", "does not support Nitro Enclaves"),
    ("enclave-cpu-count-odd", host_set("nitro_nodegroup_enclave_cpu_count", 3), "nitro_nodegroup_enclave_cpu_count",
     "even number"),
    ("nodegroup-min-above-max", both(host_set("nitro_nodegroup_min_size", 3), host_set("nitro_nodegroup_max_size", 2)),
     "nitro_nodegroup_min_size", "min <= desired <= max"),
    ("nodegroup-size-a-word", host_set("nitro_nodegroup_max_size", "three"), "nitro_nodegroup_max_size",
     "must be of type int"),
    ("vpc-cidr-octet-300", host_set("eks_cluster_vpc_cidr", "10.300.0.0/16"), "eks_cluster_vpc_cidr",
     "each octet 0-255"),
    ("subnets-outside-vpc", host_set("eks_cluster_private_subnet_cidrs", ["192.168.0.0/24", "192.168.1.0/24"]),
     "eks_cluster_private_subnet_cidrs", "outside the VPC"),
    ("workload-image-tag-with-space", host_set("kms_workload_image_tag", "v0.14 rc"), "kms_workload_image_tag",
     "no spaces"),
    ("workload-image-digest-malformed", host_set("kms_workload_image_digest", "sha256:abc"), "kms_workload_image_digest",
     "sha256:<64 lowercase hex>"),
    ("workload-memory-8GB", host_set("kms_workload_resources", {"requests": {"cpu": "4", "memory": "8GB"}}),
     "kms_workload_resources.requests.memory", "Kubernetes quantity"),
    ("config-overrides-unknown-section", host_set("kms_config_overrides", {"servce": {"listen_port": 1}}),
     "kms_config_overrides.servce", "unknown key"),
    ("config-timeout-a-word", host_set("kms_config_timeout_secs", "six"), "kms_config_timeout_secs", "must be of type int"),
    ("lifecycle-days-negative", host_set("vault_buckets_noncurrent_version_days", -1),
     "vault_buckets_noncurrent_version_days", "at least 1"),
    ("bucket-encryption-unknown", host_set("vault_buckets_encryption", "aws-kms"), "vault_buckets_encryption",
     "must be one of: AES256, aws:kms"),
    ("prss-timeout-zero", host_set("prss_init_timeout", 0), "prss_init_timeout", "a positive number of seconds"),
    ("retention-days-a-word", both(host_set("enable_rds", True), host_set("connector_db_backup_retention_days", "seven")),
     "connector_db_backup_retention_days", "must be of type int"),
    ("lb-controller-chart-version-short", host_set("lb_controller_chart_version", "3.5"), "lb_controller_chart_version",
     "a released chart version"),
    ("scrape-timeout-above-interval", host_set("monitoring_scrape_timeout", "1m"), "monitoring_scrape_timeout",
     "at most monitoring_scrape_interval"),
    ("privatelink-cidr-world", host_set("privatelink_allowed_cidrs", ["0.0.0.0/0"]), "privatelink_allowed_cidrs[0]",
     "a /0 opens the peer port"),
    ("service-name-in-another-region", party_set(2, "privatelink_service_name", service_name("us-east-1")),
     "parties[party_id=2].privatelink_service_name", "must be the party's region"),
    ("ca-pem-not-a-certificate", party_set(3, "ca_certificate", {"source": "pem", "pem": FAKE_CA_PEM}),
     "parties[party_id=3].ca_certificate.pem", "PEM X.509 certificate that parses"),
    # -- wrong types, caught by the preflight role's argument spec
    ("party-id-not-a-number", host_set("mpc_party_id", "one"), "mpc_party_id", "convert to int"),
    ("network-not-a-mapping", host_set("mpc_network", "sandbox"), "mpc_network", "convert to dict"),
    ("prefixes-not-a-mapping", host_set("mpc_vault_prefixes", ["PUB-p1"]), "mpc_vault_prefixes", "convert to dict"),
]
CONTROL = "control-valid"


@pytest.fixture(scope="module")
def bad_input_run(standins, sandbox_inventory, tmp_path_factory):
    """One deploy_party.yml run over every malformed case and the control host."""
    base = load_network(sandbox_inventory)
    inventory = str(tmp_path_factory.mktemp("bad-input") / "inventory")
    shutil.copytree(os.path.join(sandbox_inventory, "group_vars"), os.path.join(inventory, "group_vars"))
    with open(os.path.join(sandbox_inventory, "hosts.yml")) as fh:
        party1 = yaml.safe_load(fh)["all"]["children"]["mpc_parties"]["hosts"]["party1"]
    hosts = {}
    for case, mutate, _field, _rule in BAD:
        network, host_vars = copy.deepcopy(base), dict(party1)
        mutate(network, host_vars)
        if network != base:
            host_vars.setdefault("mpc_network", network)
        hosts[case] = host_vars
    with FaultProxy(PROXY_PORTS[0], standins.aws_url, cert=standins.cert, key=standins.key,
                    cafile=standins.ca_bundle) as proxy:
        # The control host is valid; its AWS endpoint forwards one request and then goes dark.
        hosts[CONTROL] = dict(party1, mpc_aws_endpoint_url=proxy.url)
        proxy.cut_after(lambda request: True, then=0)
        with open(os.path.join(inventory, "hosts.yml"), "w") as fh:
            yaml.safe_dump({"all": {"children": {"mpc_parties": {"hosts": hosts}}}}, fh, sort_keys=False)
        before = standins.counts()
        run = run_playbook("deploy_party.yml", inventory, "--forks", "25", env=standins.env(), callback="json",
                           timeout=600)
        after = standins.counts()
        forwarded = [r for r in proxy.requests() if not r.throttled]
    return {"run": run, "doc": run.json(), "before": before, "after": after, "forwarded": forwarded}


def host_tasks(doc, host):
    """[(task name, result)] of every task that ran for ``host``, in order."""
    out = []
    for play in doc["plays"]:
        for task in play["tasks"]:
            if host in task["hosts"]:
                out.append((task["task"]["name"], task["hosts"][host]))
    return out


def test_enough_cases():
    assert len(BAD) >= 30
    assert len({case for case, *_ in BAD}) == len(BAD), "case names must be unique (one host each)"


@pytest.mark.parametrize("case,mutate,field,rule", BAD, ids=[b[0] for b in BAD])
def test_fails_in_preflight_naming_field_and_rule(bad_input_run, case, mutate, field, rule):
    tasks = host_tasks(bad_input_run["doc"], case)
    failed = [(name, res) for name, res in tasks if res.get("failed")]
    assert failed, "%s: no task failed; tasks run: %s" % (case, [n for n, _ in tasks])
    name, result = failed[0]
    assert name.startswith(PREFLIGHT), "%s failed outside preflight, in %r: %s" % (case, name, result.get("msg"))
    outside = [n for n, _ in tasks if not n.startswith(PREFLIGHT)]
    assert not outside, "%s: tasks ran after the failed preflight: %s" % (case, outside)
    lines = str(result.get("msg", "")).splitlines() + [str(e) for e in result.get("errors", [])]
    assert any(field in line and rule in line for line in lines), (
        "%s: no error line names %r with the rule %r:\n%s" % (case, field, rule, result.get("msg")))


def test_control_host_passes_preflight_and_reaches_aws(bad_input_run):
    """The control host proves that a valid party of this inventory does call the stand-in."""
    tasks = host_tasks(bad_input_run["doc"], CONTROL)
    names = [n for n, _ in tasks]
    assert any(n.startswith(PREFLIGHT + "Publish") for n in names), names
    failed = [(n, r) for n, r in tasks if r.get("failed")]
    assert failed and not failed[0][0].startswith(PREFLIGHT), failed[:1]
    assert len(bad_input_run["forwarded"]) >= 1, "the control host sent no AWS request through its proxy"


def test_no_request_reached_the_standins(bad_input_run):
    before, after = bad_input_run["before"], bad_input_run["after"]
    forwarded = len(bad_input_run["forwarded"])
    # Every request moto logged during the run is one the control host's proxy forwarded:
    # the malformed cases made none (and the counter does count: the control's are there).
    assert after["aws"] - before["aws"] == forwarded, (
        "moto logged %d requests during the run, the control host's proxy forwarded %d"
        % (after["aws"] - before["aws"], forwarded))
    assert after["kube"] == before["kube"], "Kubernetes API requests during the run: before %s, after %s" % (
        before["kube"], after["kube"])


def test_kube_counter_counts(standins):
    """The Kubernetes request counter sees a request that is not a probe (so zero above is real)."""
    before = standins.kube_requests()
    standins.kube_get(1, "/version")
    after = standins.kube_requests()
    assert after[1] == before[1] + 1 and {p: after[p] for p in after if p != 1} == {
        p: before[p] for p in before if p != 1}


def test_run_is_fast(bad_input_run):
    run = bad_input_run["run"]
    print("bad-input run: %d cases + control in %.1f s (rc %d)" % (len(BAD), run.seconds, run.rc))
    assert run.rc != 0
    assert run.seconds < 180, "the batched bad-input run took %.0f s" % run.seconds
