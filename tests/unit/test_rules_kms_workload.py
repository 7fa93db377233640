"""kms_workload's input rules (plugins/module_utils/rules_kms_workload.py) through role_inputs.check,
with the role's real argument specs (entry points main and keys): each rule passing and failing."""
import os

import pytest
import yaml

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import role_inputs
from tests.support.role_specs import for_role

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIGEST = "sha256:" + "ab" * 32


spec = for_role("kms_workload")


def defaults():
    with open(os.path.join(ROOT, "roles", "kms_workload", "defaults", "main.yml")) as handle:
        values = yaml.safe_load(handle)
    # the role's literal defaults; the ones computed from `mpc` get this party's values
    values = dict((k, v) for k, v in values.items() if not (isinstance(v, str) and "{{" in v))
    values.update({
        "kms_workload_network_name": "sandbox", "kms_workload_party_id": 1, "kms_workload_namespace": "kms",
        "kms_workload_client_port": 50100, "kms_workload_peer_port": 50001, "kms_workload_metrics_port": 9646,
        "kms_workload_tls_mode": "auto", "kms_workload_mpc_identity": "party1.example.com",
        "kms_workload_enclave": True, "kms_workload_config_enclave": True,
        "kms_workload_config_checksum": "0" * 64, "kms_workload_irsa_role_arn": "arn:aws:iam::123456789012:role/kms-p1",
        "kms_workload_peer_ingress_cidrs": ["10.0.0.0/20", "10.0.16.0/20"],
    })
    return values


MAIN = defaults()
PLAIN = {"kms_workload_enclave": False, "kms_workload_config_enclave": False, "kms_workload_tls_mode": "manual"}


def problems_of(change, entry="main", context=None):
    options = spec(entry)
    values = dict((k, v) for k, v in dict(MAIN, **change).items() if k in options)
    problems, _ = role_inputs.check("kms_workload", options, values, dict({"entry_point": entry}, **(context or {})))
    return problems


@pytest.mark.parametrize("change, words", [
    ({}, None),
    (PLAIN, None),
    # the configuration and the key-generation configuration
    ({"kms_workload_config_checksum": ""}, "kms_workload_config_checksum: the sha256 of threshold.toml"),
    ({"kms_workload_configmap_name": "KMS config"}, "kms_workload_configmap_name: the ConfigMap holding threshold.toml"),
    ({"kms_workload_keygen_configmap_name": ""}, "kms_workload_keygen_configmap_name: the ConfigMap holding keygen.toml"),
    ({"kms_workload_keygen_configmap_key": "keygen toml"}, "kms_workload_keygen_configmap_key: the key of keygen.toml"),
    ({"kms_workload_keygen_checksum": "abc"}, "kms_workload_keygen_checksum: empty or the sha256"),
    ({"kms_workload_keygen_checksum": "f" * 64}, None),
    # ports
    ({"kms_workload_peer_port": 0}, "kms_workload_peer_port: a port, 1..65535 (got 0)"),
    ({"kms_workload_metrics_port": 50100}, "three distinct ports"),
    ({"kms_workload_client_port": "fifty"}, "kms_workload_client_port: must be of type int"),
    # IRSA
    ({"kms_workload_irsa_role_arn": ""}, "kms_workload_irsa_role_arn: the IAM role ARN the ServiceAccount assumes"),
    ({"kms_workload_irsa_role_arn": "", "kms_workload_render_dir": "/tmp/render"}, None),
    ({"kms_workload_irsa_role_arn": "arn:aws:iam::1234:role/x"}, "kms_workload_irsa_role_arn"),
    # peer ingress
    ({"kms_workload_peer_ingress_cidrs": []}, "kms_workload_peer_ingress_cidrs: at least one CIDR"),
    ({"kms_workload_peer_ingress_cidrs": ["10.0.0.0"]}, "kms_workload_peer_ingress_cidrs: an IPv4 or IPv6 CIDR"),
    ({"kms_workload_peer_ingress_cidrs": ["10.300.0.0/16"]}, "kms_workload_peer_ingress_cidrs: an IPv4 or IPv6 CIDR"),
    ({"kms_workload_peer_ingress_cidrs": ["127.0.0.1/32", "fd00::/64"]}, None),
    ({"kms_workload_peer_ingress_extra_cidrs": ["127.0.0.1/32"]}, None),
    ({"kms_workload_peer_ingress_cidrs": [], "kms_workload_peer_ingress_extra_cidrs": ["127.0.0.1/32"]}, None),
    ({"kms_workload_peer_ingress_extra_cidrs": ["localhost"]}, "kms_workload_peer_ingress_extra_cidrs: an IPv4 or IPv6 CIDR"),
    ({"kms_workload_peer_ingress_extra_cidrs": ["0.0.0.0/0"]}, "kms_workload_peer_ingress_extra_cidrs: 0.0.0.0/0 would open"),
    # modes
    ({"kms_workload_enclave": False, "kms_workload_tls_mode": "none"}, "kms_workload_enclave: the workload's enclave mode"),
    ({"kms_workload_enclave": False, "kms_workload_config_enclave": None, "kms_workload_tls_mode": "none"}, None),
    ({"kms_workload_tls_mode": "manual"}, "kms_workload_tls_mode: manual mounts"),
    (dict(PLAIN, kms_workload_tls_mode="auto"), "kms_workload_tls_mode: auto"),
    ({"kms_workload_service_monitor": "sometimes"}, "kms_workload_service_monitor: must be one of"),
    # images
    ({"kms_workload_image_tag": "v0.14 rc"}, "kms_workload_image_tag: a published release tag"),
    ({"kms_workload_image_tag": "latest"}, "never latest"),
    ({"kms_workload_image_digest": "sha256:abc"}, "kms_workload_image_digest: empty or sha256:<64 lowercase hex>"),
    ({"kms_workload_image_digest": DIGEST, "kms_workload_enclave_image_digest": DIGEST}, None),
    ({"kms_workload_enclave_image_digest": "md5:" + "a" * 32}, "kms_workload_enclave_image_digest: empty or sha256"),
    ({"kms_workload_image_repository": "GHCR.io/Zama/Core Service"}, "kms_workload_image_repository"),
    ({"kms_workload_enclave_image_repository": "ghcr.io/zama-ai/kms/core-service-enclave:"},
     "kms_workload_enclave_image_repository"),
    ({"kms_workload_vsock_proxy_image": "docker.io/alpine/socat"}, "kms_workload_vsock_proxy_image"),
    ({"kms_workload_vsock_proxy_image": "docker.io/alpine/socat:latest"}, "moving tag latest"),
    ({"kms_workload_image_pull_secrets": ["registry-credentials"]}, None),
    ({"kms_workload_image_pull_secrets": ["Registry_Credentials"]}, "kms_workload_image_pull_secrets: a list of Secret names"),
    # resources
    ({"kms_workload_resources": {"requests": {"cpu": "4", "memory": "8GB"}}},
     "kms_workload_resources.requests.memory: a Kubernetes quantity such as 2, 500m, 8Gi or 512Mi (got '8GB')"),
    ({"kms_workload_keygen_resources": {"limits": {"cpu": "one"}}}, "kms_workload_keygen_resources.limits.cpu"),
    ({"kms_workload_enclave_tunnel_resources": {"request": {"cpu": "8"}}},
     "kms_workload_enclave_tunnel_resources.request: requests and limits only"),
    ({"kms_workload_enclave_launcher_resources": {"requests": {"cpu": "500m", "memory": "2Gi"}}}, None),
    # the Nitro enclave
    ({"kms_workload_enclave_cpus": 1}, "kms_workload_enclave_cpus: vCPUs of the enclave, at least 2 (got 1)"),
    ({"kms_workload_enclave_cpus": "many"}, "kms_workload_enclave_cpus: must be of type int"),
    ({"kms_workload_enclave_memory_gib": 0}, "kms_workload_enclave_memory_gib"),
    ({"kms_workload_enclave_device_gid": 0}, "kms_workload_enclave_device_gid"),
    (dict(PLAIN, kms_workload_enclave_cpus=1, kms_workload_enclave_cid=3), None),
    ({"kms_workload_enclave_cid": 3}, "kms_workload_enclave_cid: a vsock CID (0-3 are reserved), at least 4 (got 3)"),
    ({"kms_workload_enclave_eif_path": "enclave.eif"}, "kms_workload_enclave_eif_path: an absolute path"),
    ({"kms_workload_enclave_tunnel_subnet": "10.118.0.0"}, "kms_workload_enclave_tunnel_subnet: an IPv4 address"),
    ({"kms_workload_enclave_tunnel_enclave_address": "10.118.0.1/24"},
     "kms_workload_enclave_tunnel_enclave_address: must differ"),
    ({"kms_workload_enclave_tunnel_queues": 0}, "kms_workload_enclave_tunnel_queues"),
    ({"kms_workload_enclave_tunnel_worker_threads": 0}, "kms_workload_enclave_tunnel_worker_threads"),
])
def test_main_entry_point(change, words):
    problems = problems_of(change)
    assert (problems == []) if words is None else any(words in p for p in problems), problems
    assert all(p.startswith("kms_workload: kms_workload_") for p in problems), problems


@pytest.mark.parametrize("change, words", [
    ({}, None),
    (PLAIN, None),
    # phase 1: the enclave needs its role; a plain node has no key-generation pod
    ({"kms_workload_irsa_role_arn": ""}, "kms_workload_irsa_role_arn: the enclave's AWS identity"),
    (dict(PLAIN, kms_workload_irsa_role_arn=""), None),
    ({"kms_workload_irsa_role_arn": "(known after apply)"}, "kms_workload_irsa_role_arn"),
    # the TLS identity (tls_mode manual)
    (dict(PLAIN, kms_workload_mpc_identity="Party 1"), "kms_workload_mpc_identity: the party's mpc_identity"),
    (dict(PLAIN, kms_workload_mpc_identity="p" * 60 + ".example.com"), "at most 64 characters"),
    (dict(PLAIN, kms_workload_tls_validity_days=0), "kms_workload_tls_validity_days: days of validity, at least 1"),
    (dict(PLAIN, kms_workload_tls_secret_name="kms_tls"), "kms_workload_tls_secret_name: the Secret of the TLS identity"),
    (dict(PLAIN, kms_workload_tls_curve="P-521"), "kms_workload_tls_curve: must be one of"),
    ({"kms_workload_mpc_identity": "Party 1"}, None),
    # the same image and enclave rules as the main entry point
    ({"kms_workload_image_tag": "v0.14 rc"}, "kms_workload_image_tag: a published release tag"),
    ({"kms_workload_enclave_cid": 2}, "kms_workload_enclave_cid"),
    ({"kms_workload_enclave_launcher_resources": {"limits": {"memory": "4GB"}}},
     "kms_workload_enclave_launcher_resources.limits.memory"),
])
def test_keys_entry_point(change, words):
    problems = problems_of(change, "keys")
    assert (problems == []) if words is None else any(words in p for p in problems), problems


def test_a_check_run_accepts_the_role_vault_buckets_has_not_created():
    change = {"kms_workload_irsa_role_arn": "(known after apply)"}
    assert problems_of(change, context={"check_mode": True}) == []
    assert problems_of(change, "keys", context={"check_mode": True}) == []
    assert problems_of(change, context={"check_mode": False}) != []


def test_the_keys_entry_point_is_told_from_its_variables_when_the_context_does_not_name_it():
    options = spec("keys")
    values = dict((k, v) for k, v in dict(MAIN, **PLAIN).items() if k in options)
    values["kms_workload_irsa_role_arn"] = ""
    assert role_inputs.check("kms_workload", options, values, {})[0] == []
