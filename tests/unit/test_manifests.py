"""playbooks/render_party.yml: what a party would deploy, rendered without network access.

For inventories/sandbox (n = 4) and inventories/sandbox13 (n = 13): every manifest validates
against the Kubernetes 1.32 OpenAPI schemas in strict mode (kubernetes-validate), every
threshold.toml passes the strict configuration check, and the files agree with each other
(the ConfigMap holds the TOML, the pod template carries its checksum). A third render puts
party 1 in Nitro enclave mode with TLS auto to cover the enclave manifests.
"""
import glob
import hashlib
import json
import os

import kubernetes_validate
import pytest
import yaml

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_config_schema as schema
from tests.support.playbooks import repo_playbook

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# One worker for the whole module: the module-scoped render of both inventories then runs once,
# not once per xdist worker (it was measured twice in one run, 150-175 s each).
pytestmark = pytest.mark.xdist_group("manifests")
K8S_VERSION = "1.32.0"
EXPECTED = [
    "00-namespace-kms.yaml",
    "01-serviceaccount-kms-core.yaml",
    "02-configmap-kms-core-config.yaml",
    "10-statefulset-kms-core.yaml",
    "11-service-kms-core-headless.yaml",
    "12-service-kms-core-peer.yaml",
    "13-poddisruptionbudget-kms-core.yaml",
    "14-networkpolicy-kms-core.yaml",
    "20-configmap-kms-prometheus-scrape.yaml",
    "21-configmap-kms-prometheus-rules.yaml",
    "22-configmap-kms-node-dashboard.yaml",
]
CA = "-----BEGIN CERTIFICATE-----\nMIIBfake%d\n-----END CERTIFICATE-----\n"


def render(inventory, out, *extra):
    code, output = repo_playbook("render_party.yml", inventory, "-e", "render_dir=%s" % out, *extra)
    assert code == 0, output[-6000:]
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    base = tmp_path_factory.mktemp("render")
    return {
        "sandbox": render("inventories/sandbox", base / "sandbox"),
        "sandbox13": render("inventories/sandbox13", base / "sandbox13"),
    }


def load(path):
    with open(path) as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def network(inventory):
    with open(os.path.join(ROOT, "inventories", inventory, "group_vars", "all", "network.yml")) as handle:
        return yaml.safe_load(handle)["mpc_network"]


@pytest.mark.parametrize("inventory", ["sandbox", "sandbox13"])
def test_one_directory_per_party_with_every_file(rendered, inventory):
    net = network(inventory)
    parties = sorted(os.listdir(rendered[inventory]))
    assert parties == sorted("party%d" % p["party_id"] for p in net["parties"])
    for party in parties:
        files = sorted(os.listdir(rendered[inventory] / party / "manifests"))
        assert files == EXPECTED, (party, files)
        assert (rendered[inventory] / party / "threshold.toml").is_file()


@pytest.mark.parametrize("inventory", ["sandbox", "sandbox13"])
def test_every_manifest_validates_strictly_for_kubernetes_1_32(rendered, inventory):
    paths = sorted(glob.glob(str(rendered[inventory] / "*" / "manifests" / "*.yaml")))
    assert len(paths) == len(EXPECTED) * network(inventory)["n"]
    for path in paths:
        docs = load(path)
        assert len(docs) == 1, path
        try:
            kubernetes_validate.validate(docs[0], K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail("%s: %s" % (path, exc))


@pytest.mark.parametrize("inventory", ["sandbox", "sandbox13"])
def test_every_threshold_toml_passes_the_strict_check(rendered, inventory):
    net = network(inventory)
    for party in net["parties"]:
        pid = party["party_id"]
        text = (rendered[inventory] / ("party%d" % pid) / "threshold.toml").read_text()
        doc = schema.validate_text(text, environment=net["environment"])
        assert doc["threshold"]["my_id"] == pid
        assert doc["threshold"]["threshold"] == net["t"]
        assert [p["party_id"] for p in doc["threshold"]["peers"]] == list(range(1, net["n"] + 1))
        assert doc["service"]["listen_port"] == party["client_port"]
        assert doc["threshold"]["listen_port"] == party["peer_port"]
        assert doc["public_vault"]["storage"]["s3"] == {"bucket": party["public_bucket"], "prefix": "PUB-p%d" % pid}
        assert doc["private_vault"]["storage"]["s3"]["prefix"] == "PRIV-p%d" % pid
        assert "keychain" not in doc["private_vault"]  # no enclave in the sandbox
        assert "tls" not in doc["threshold"]  # tls_mode none


@pytest.mark.parametrize("inventory", ["sandbox", "sandbox13"])
def test_configmap_and_checksum_match_the_toml(rendered, inventory):
    for party_dir in sorted(rendered[inventory].iterdir()):
        text = (party_dir / "threshold.toml").read_text()
        checksum = hashlib.sha256(text.encode()).hexdigest()
        configmap = load(party_dir / "manifests" / "02-configmap-kms-core-config.yaml")[0]
        sts = load(party_dir / "manifests" / "10-statefulset-kms-core.yaml")[0]
        assert configmap["data"]["threshold.toml"] == text
        assert configmap["metadata"]["annotations"]["checksum/config"] == checksum
        assert sts["spec"]["template"]["metadata"]["annotations"]["checksum/config"] == checksum
        container = sts["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ["--config-file", "/etc/kms/config/threshold.toml"]
        assert container["image"].startswith("ghcr.io/zama-ai/kms/core-service:v0.15.")
        pod = sts["spec"]["template"]["spec"]
        assert "supplementalGroups" not in pod["securityContext"]  # plain mode: no device group
        assert not [v for v in pod["volumes"] if "hostPath" in v]


def test_parties_differ_only_where_they_should(rendered):
    docs = {p.name: load(p / "manifests" / "10-statefulset-kms-core.yaml")[0] for p in rendered["sandbox"].iterdir()}
    ports = {name: sorted(port["containerPort"] for port in d["spec"]["template"]["spec"]["containers"][0]["ports"])
             for name, d in docs.items()}
    assert len({tuple(v) for v in ports.values()}) == 4  # each party its own ports
    instances = {d["metadata"]["labels"]["app.kubernetes.io/instance"] for d in docs.values()}
    assert instances == {"sandbox-p1", "sandbox-p2", "sandbox-p3", "sandbox-p4"}


def test_enclave_mode_with_tls_auto(tmp_path):
    extra = {
        "mpc_sandbox": False,
        "kms_config_tls_mode": "auto", "kms_workload_tls_mode": "auto",
        "kms_config_kms_key_id": "arn:aws:kms:eu-west-1:100000000001:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "kms_workload_irsa_role_arn": "arn:aws:iam::100000000001:role/kms-sandbox-p1",
        "kms_workload_peer_ingress_cidrs": ["10.0.0.0/16"],
        "kms_workload_peer_lb_subnets": ["subnet-0a1", "subnet-0b2"],
        "kms_workload_service_monitor": "always",
        "kms_workload_image_digest": "sha256:" + "a" * 64,
        "kms_workload_enclave_image_digest": "sha256:" + "b" * 64,
        "kms_config_peer_ca_pems": {str(i): CA % i for i in range(1, 5)},
    }
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps(extra))
    out = render("inventories/sandbox", tmp_path / "out", "--limit", "party1", "-e", "@%s" % extra_file)
    party = out / "party1"
    doc = schema.validate_text((party / "threshold.toml").read_text(), environment="testnet")
    assert doc["private_vault"]["keychain"] == {"aws_kms": {"root_key_id": extra["kms_config_kms_key_id"],
                                                            "root_key_spec": "symm"}}
    assert len(doc["threshold"]["tls"]["auto"]["trusted_releases"]) == 1
    assert [p["tls_cert"]["pem"] for p in doc["threshold"]["peers"]] == [CA % i for i in range(1, 5)]

    files = sorted(os.listdir(party / "manifests"))
    # A ServiceMonitor scrapes the node, so the monitoring role renders no scrape-config fallback.
    assert files == sorted([f for f in EXPECTED if f != "20-configmap-kms-prometheus-scrape.yaml"]
                           + ["15-servicemonitor-kms-core.yaml"])
    for name in files:
        manifest = load(party / "manifests" / name)[0]
        if manifest["kind"] == "ServiceMonitor":  # a CRD: no schema in kubernetes-validate
            assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
            continue
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)

    sts = load(party / "manifests" / "10-statefulset-kms-core.yaml")[0]
    pod = sts["spec"]["template"]["spec"]
    main = pod["containers"][0]
    assert main["image"] == "ghcr.io/zama-ai/kms/core-service-enclave:v0.15.0@sha256:" + "b" * 64
    limits = main["resources"]["limits"]
    assert limits["aws.ec2.nitro/nitro_enclaves"] == "1"
    assert limits["aws.ec2.nitro/nitro_enclaves_cpus"] == "48"
    assert limits["hugepages-1Gi"] == "96Gi"
    assert pod["nodeSelector"] == {"node.kubernetes.io/enclave-enabled": "true"}
    assert {"key": "node.kubernetes.io/enclave-enabled", "operator": "Equal", "value": "true",
            "effect": "NoSchedule"} in pod["tolerations"]
    sidecars = {c["name"]: c for c in pod["initContainers"]}
    assert all(c["restartPolicy"] == "Always" for c in sidecars.values())
    vsock = {name: next(a for a in c["args"] if a.startswith("VSOCK-LISTEN:")) for name, c in sidecars.items()
             if any(a.startswith("VSOCK-LISTEN:") for a in c["args"])}
    assert {name: arg.split(":")[1].split(",")[0] for name, arg in vsock.items()} == {
        "vsock-config": "4000", "vsock-logs": "3000", "vsock-irsa-token": "4100", "enclave-tunnel": "2100"}
    # Only the tunnel departs from the restricted profile, and only by root + NET_ADMIN.
    for name, container in list(sidecars.items()) + [(main["name"], main)]:
        ctx = container["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"]["drop"] == ["ALL"], name
        if name == "enclave-tunnel":
            assert ctx["capabilities"]["add"] == ["NET_ADMIN"] and ctx["runAsUser"] == 0
        else:
            assert "add" not in ctx["capabilities"] and ctx["runAsNonRoot"] is True, name
    # The tunnel's TUN device comes from the node, mounted into the tunnel container only.
    assert {"name": "dev-net-tun", "hostPath": {"path": "/dev/net/tun", "type": "CharDevice"}} in pod["volumes"]
    assert sidecars["enclave-tunnel"]["volumeMounts"] == [{"name": "dev-net-tun", "mountPath": "/dev/net/tun"}]
    assert [c["name"] for c in pod["initContainers"] + pod["containers"]
            if any(m["name"] == "dev-net-tun" for m in c.get("volumeMounts", []))] == ["enclave-tunnel"]
    # The launcher (UID 10002, no capability) opens /dev/nitro_enclaves (root:ne 0660 on the node)
    # through the node's ne group.
    assert pod["securityContext"]["runAsUser"] == 10002 and pod["securityContext"]["supplementalGroups"] == [1001]
    namespace = load(party / "manifests" / "00-namespace-kms.yaml")[0]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/warn"] == "restricted"

    sa = load(party / "manifests" / "01-serviceaccount-kms-core.yaml")[0]
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == extra["kms_workload_irsa_role_arn"]
    peer = load(party / "manifests" / "12-service-kms-core-peer.yaml")[0]
    assert peer["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-subnets"] == "subnet-0a1,subnet-0b2"
    policy = load(party / "manifests" / "14-networkpolicy-kms-core.yaml")[0]
    assert policy["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "10.0.0.0/16"}}]
    monitor = load(party / "manifests" / "15-servicemonitor-kms-core.yaml")[0]
    headless = load(party / "manifests" / "11-service-kms-core-headless.yaml")[0]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= headless["metadata"]["labels"].items()
    assert not monitor["spec"]["selector"]["matchLabels"].items() <= peer["metadata"]["labels"].items()


def test_tls_manual_with_cas_from_the_network_and_the_privatelink_role(tmp_path):
    """CAs come from ca_certificate.pem / .path in the network and from kms_config_peer_ca_pems."""
    inventory = tmp_path / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    for name in ("hosts.yml",):
        (inventory / name).write_text((open(os.path.join(ROOT, "inventories", "sandbox", name)).read()))
    party_vars = open(os.path.join(ROOT, "inventories", "sandbox", "group_vars", "all", "party.yml")).read()
    (inventory / "group_vars" / "all" / "party.yml").write_text(party_vars)
    net = network("sandbox")
    net["tls_mode"] = "manual"
    ca_file = tmp_path / "ca2.pem"
    ca_file.write_text(CA % 2)
    net["parties"][0]["ca_certificate"] = {"source": "pem", "pem": CA % 1}
    net["parties"][1]["ca_certificate"] = {"source": "path", "path": str(ca_file)}
    (inventory / "group_vars" / "all" / "network.yml").write_text(yaml.safe_dump({"mpc_network": net}))
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"kms_config_peer_ca_pems": {3: CA % 3, "4": CA % 4}}))
    out = render(str(inventory), tmp_path / "out", "--limit", "party3", "-e", "@%s" % extra)
    party = out / "party3"
    doc = schema.validate_text((party / "threshold.toml").read_text())
    assert doc["threshold"]["tls"] == {"manual": {"cert": {"path": "/etc/kms/tls/tls.crt"},
                                                  "key": {"path": "/etc/kms/tls/tls.key"}}}
    assert [p["tls_cert"]["pem"] for p in doc["threshold"]["peers"]] == [CA % i for i in range(1, 5)]
    sts = load(party / "manifests" / "10-statefulset-kms-core.yaml")[0]
    pod = sts["spec"]["template"]["spec"]
    tls_volume = next(v for v in pod["volumes"] if v["name"] == "tls")
    assert tls_volume["secret"]["secretName"] == "kms-core-tls"
    assert {"name": "tls", "mountPath": "/etc/kms/tls", "readOnly": True} in pod["containers"][0]["volumeMounts"]
    kubernetes_validate.validate(sts, K8S_VERSION, strict=True)
    configmap = load(party / "manifests" / "02-configmap-kms-core-config.yaml")[0]
    assert "PRIVATE KEY" not in configmap["data"]["threshold.toml"]

    # Without party 4's CA the run stops before anything is written, naming the variable.
    extra.write_text(json.dumps({"kms_config_peer_ca_pems": {3: CA % 3}}))
    code, output = repo_playbook("render_party.yml", inventory, "--limit", "party3",
                                 "-e", "render_dir=%s" % (tmp_path / "out2"), "-e", "@%s" % extra, timeout=600)
    assert code == 2
    assert "kms_config_peer_ca_pems: tls_mode is manual" in output and "missing for party id(s) 4" in output
    assert not (tmp_path / "out2").exists()
