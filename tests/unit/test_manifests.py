"""playbooks/render_party.yml: what a party would deploy, rendered without network access.

For inventories/sandbox (n = 4) and inventories/sandbox13 (n = 13): every manifest validates
against the Kubernetes 1.32 OpenAPI schemas in strict mode (kubernetes-validate), every
threshold.toml passes the strict configuration check, and the files agree with each other
(the ConfigMap holds the TOML, the pod template carries its checksum). A third render puts
party 1 in Nitro enclave mode with TLS auto to cover the enclave manifests: the StatefulSet's
enclave pod and the one-shot key-generation pod. The shell scripts those pods run (the enclave
tunnel and the launcher) are executed here with recording stand-ins for iptables, vsocktun,
dnsproxy and nitro-cli on PATH, to check what they would do.
"""
import glob
import hashlib
import json
import os
import re
import stat
import subprocess

import kubernetes_validate
import pytest
import yaml

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_config_schema as schema
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import tls_identity
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
    "02-configmap-kms-core-keygen-config.yaml",
    "10-statefulset-kms-core.yaml",
    "11-service-kms-core-headless.yaml",
    "12-service-kms-core-peer.yaml",
    "13-poddisruptionbudget-kms-core.yaml",
    "14-networkpolicy-kms-core.yaml",
    "20-configmap-kms-prometheus-scrape.yaml",
    "21-configmap-kms-prometheus-rules.yaml",
    "22-configmap-kms-node-dashboard.yaml",
]
_CAS = {}


def ca(pid, network_name="sandbox"):
    """A real self-signed certificate for party ``pid`` (CN = its mpc_identity), made once: preflight
    parses a CA given as PEM, so a fake one would be refused."""
    identity = "party%d.%s.kms.local" % (pid, network_name)
    if identity not in _CAS:
        _CAS[identity] = tls_identity.generate(identity)[0]
    return _CAS[identity]


def pems(peers):
    """The tls_cert PEMs of [[threshold.peers]], without surrounding white space."""
    return [p["tls_cert"]["pem"].strip() for p in peers]


def cas(pids, network_name="sandbox"):
    return [ca(i, network_name).strip() for i in pids]


def render(inventory, out, *extra):
    code, output = repo_playbook("render_party.yml", inventory, "-e", "render_dir=%s" % out, *extra)
    assert code == 0, output[-6000:]
    return out


def peer_cas(inventory, directory):
    """-e arguments giving every party's CA (what privatelink would hand over when TLS is on)."""
    net = network(inventory)
    if net["tls_mode"] == "none":
        return []
    path = directory / ("%s-cas.json" % inventory)
    path.write_text(json.dumps({"kms_config_peer_ca_pems": {str(p["party_id"]): ca(p["party_id"], net["name"])
                                                            for p in net["parties"]}}))
    return ["-e", "@%s" % path]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    base = tmp_path_factory.mktemp("render")
    inputs = tmp_path_factory.mktemp("render-inputs")
    return {
        "sandbox": render("inventories/sandbox", base / "sandbox", *peer_cas("sandbox", inputs)),
        "sandbox13": render("inventories/sandbox13", base / "sandbox13", *peer_cas("sandbox13", inputs)),
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
        assert ("tls" in doc["threshold"]) == (net["tls_mode"] != "none")


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
        # A release tag (vX.Y.Z or vX.Y.Z-N), never latest, no digest unless one is given.
        assert re.match(r"^ghcr\.io/zama-ai/kms/core-service:v[0-9]+\.[0-9]+\.[0-9]+(-[0-9]+)?$", container["image"])
        pod = sts["spec"]["template"]["spec"]
        assert "supplementalGroups" not in pod["securityContext"]  # plain mode: no device group
        assert not [v for v in pod["volumes"] if "hostPath" in v]


@pytest.mark.parametrize("inventory", ["sandbox", "sandbox13"])
def test_plain_node_generates_its_keys_before_the_server_starts(rendered, inventory):
    """kms-gen-keys (same image) runs first on every start, reading keygen.toml from its ConfigMap."""
    for party_dir in sorted(rendered[inventory].iterdir()):
        pod = load(party_dir / "manifests" / "10-statefulset-kms-core.yaml")[0]["spec"]["template"]["spec"]
        (init,) = pod["initContainers"]
        server = pod["containers"][0]
        assert init["name"] == "kms-gen-keys" and init["image"] == server["image"]
        assert init["command"] == ["kms-gen-keys"]
        assert init["args"] == ["--config-file", "/etc/kms/keygen/keygen.toml"]
        assert "restartPolicy" not in init  # a real init container: it must finish before the server
        mount = next(m for m in init["volumeMounts"] if m["mountPath"] == "/etc/kms/keygen")
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        assert volume["configMap"] == {"name": "kms-core-keygen-config",
                                       "items": [{"key": "keygen.toml", "path": "keygen.toml"}]}
        assert mount["name"] not in [m["name"] for m in server["volumeMounts"]]
        # The ConfigMap kms_config publishes holds keygen.toml; its checksum rolls the node.
        keygen = (party_dir / "keygen.toml").read_text()
        configmap = load(party_dir / "manifests" / "02-configmap-kms-core-keygen-config.yaml")[0]
        assert configmap["data"]["keygen.toml"] == keygen
        annotations = load(party_dir / "manifests" / "10-statefulset-kms-core.yaml")[0]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["checksum/keygen"] == hashlib.sha256(keygen.encode()).hexdigest()
        # The image's kms user (uid 10003, gid 10002), restricted profile.
        assert {k: pod["securityContext"][k] for k in ("runAsUser", "runAsGroup", "fsGroup", "runAsNonRoot")} == \
            {"runAsUser": 10003, "runAsGroup": 10002, "fsGroup": 10002, "runAsNonRoot": True}
        assert init["securityContext"]["allowPrivilegeEscalation"] is False
        assert init["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert "imagePullSecrets" not in pod  # none given


def test_parties_differ_only_where_they_should(rendered):
    docs = {p.name: load(p / "manifests" / "10-statefulset-kms-core.yaml")[0] for p in rendered["sandbox"].iterdir()}
    ports = {name: sorted(port["containerPort"] for port in d["spec"]["template"]["spec"]["containers"][0]["ports"])
             for name, d in docs.items()}
    assert len({tuple(v) for v in ports.values()}) == 4  # each party its own ports
    instances = {d["metadata"]["labels"]["app.kubernetes.io/instance"] for d in docs.values()}
    assert instances == {"sandbox-p1", "sandbox-p2", "sandbox-p3", "sandbox-p4"}


ENCLAVE_EXTRA = {
    # a real party: an enclave, and no peer traffic other than the PrivateLink side's
    "mpc_enclave": True, "kms_workload_peer_ingress_extra_cidrs": [],
    "kms_config_tls_mode": "auto", "kms_workload_tls_mode": "auto",
    "kms_config_kms_key_id": "arn:aws:kms:eu-west-1:100000000001:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "kms_workload_irsa_role_arn": "arn:aws:iam::100000000001:role/kms-sandbox-p1",
    "kms_workload_peer_ingress_cidrs": ["10.0.0.0/16"],
    "kms_workload_peer_lb_subnets": ["subnet-0a1", "subnet-0b2"],
    "kms_workload_service_monitor": "always",
    "kms_workload_image_digest": "sha256:" + "a" * 64,
    "kms_workload_enclave_image_digest": "sha256:" + "b" * 64,
    "kms_workload_image_pull_secrets": ["registry-credentials", "mirror-credentials"],
    "kms_config_peer_ca_pems": {str(i): ca(i) for i in range(1, 5)},
}


@pytest.fixture(scope="module")
def enclave_party(tmp_path_factory):
    """Party 1 of the sandbox rendered in Nitro enclave mode with TLS auto."""
    base = tmp_path_factory.mktemp("enclave")
    extra_file = base / "extra.json"
    extra_file.write_text(json.dumps(ENCLAVE_EXTRA))
    out = render("inventories/sandbox", base / "out", "--limit", "party1", "-e", "@%s" % extra_file)
    return out / "party1"


def test_enclave_mode_with_tls_auto(enclave_party):
    party, extra = enclave_party, ENCLAVE_EXTRA
    doc = schema.validate_text((party / "threshold.toml").read_text(), environment="testnet")
    assert doc["private_vault"]["keychain"] == {"aws_kms": {"root_key_id": extra["kms_config_kms_key_id"],
                                                            "root_key_spec": "symm"}}
    assert len(doc["threshold"]["tls"]["auto"]["trusted_releases"]) == 1
    assert pems(doc["threshold"]["peers"]) == cas(range(1, 5))

    files = sorted(os.listdir(party / "manifests"))
    # A ServiceMonitor scrapes the node, so the monitoring role renders no scrape-config fallback.
    assert files == sorted([f for f in EXPECTED if f != "20-configmap-kms-prometheus-scrape.yaml"]
                           + ["05-pod-kms-core-keygen.yaml", "09-configmap-kms-core-enclave.yaml",
                              "15-servicemonitor-kms-core.yaml"])
    for name in files:
        manifest = load(party / "manifests" / name)[0]
        if manifest["kind"] == "ServiceMonitor":  # a CRD: no schema in kubernetes-validate
            assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
            continue
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)

    sts = load(party / "manifests" / "10-statefulset-kms-core.yaml")[0]
    pod = sts["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    enclave_image = "ghcr.io/zama-ai/kms/core-service-enclave:%s@sha256:%s" % (main["image"].split(":")[1].split("@")[0],
                                                                               "b" * 64)
    assert main["image"] == enclave_image
    for resources in (main["resources"]["requests"], main["resources"]["limits"]):
        assert resources["aws.ec2.nitro/nitro_enclaves"] == "1"
        assert resources["aws.ec2.nitro/nitro_enclaves_cpus"] == "48"
        assert resources["hugepages-1Gi"] == "96Gi"
    # The launcher's own memory: 2 GiB requested, 4 GiB limit (the upstream chart's values).
    assert main["resources"]["requests"]["memory"] == "2Gi" and main["resources"]["limits"]["memory"] == "4Gi"
    assert main["lifecycle"]["preStop"]["exec"]["command"] == ["nitro-cli", "terminate-enclave", "--all"]
    assert pod["nodeSelector"] == {"node.kubernetes.io/enclave-enabled": "true"}
    assert {"key": "node.kubernetes.io/enclave-enabled", "operator": "Equal", "value": "true",
            "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}, {"name": "mirror-credentials"}]

    # enclave.json from the ConfigMap the launcher mounts.
    enclave_cm = load(party / "manifests" / "09-configmap-kms-core-enclave.yaml")[0]
    assert json.loads(enclave_cm["data"]["enclave.json"]) == {
        "cpu_count": 48, "memory_mib": 96 * 1024, "enclave_cid": 20, "eif_path": "/app/kms/core/service/enclave.eif"}
    mount = next(m for m in main["volumeMounts"] if m["mountPath"] == "/etc/kms/enclave")
    assert next(v for v in pod["volumes"] if v["name"] == mount["name"])["configMap"]["name"] == "kms-core-enclave"
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert annotations["checksum/enclave"] == hashlib.sha256(enclave_cm["data"]["enclave.json"].encode()).hexdigest()

    # Native sidecars: config 4000 (threshold.toml), logs 3000, IRSA token 4100, the tunnel. No
    # per-port socat ingress proxy any more: the pod's ports reach the enclave through the tunnel.
    sidecars = {c["name"]: c for c in pod["initContainers"]}
    assert list(sidecars) == ["vsock-config", "vsock-logs", "vsock-irsa-token", "enclave-tunnel"]
    assert all(c["restartPolicy"] == "Always" for c in sidecars.values())
    assert vsock_ports(sidecars) == {"vsock-config": "4000", "vsock-logs": "3000", "vsock-irsa-token": "4100"}
    assert "OPEN:/etc/kms/config/threshold.toml,rdonly" in sidecars["vsock-config"]["args"]
    assert not [c for c in pod["initContainers"] + pod["containers"]
                if any(a.startswith("TCP-LISTEN:") for a in c.get("args", []))]
    assert sorted(p["containerPort"] for p in main["ports"]) == sorted(tunnel_ports(sidecars["enclave-tunnel"]))

    # Only the tunnel departs from the restricted profile: privileged, root, /dev/net/tun.
    tunnel = sidecars["enclave-tunnel"]
    assert tunnel["image"] == enclave_image
    assert tunnel["securityContext"]["privileged"] is True and tunnel["securityContext"]["runAsUser"] == 0
    for name, container in list(sidecars.items()) + [(main["name"], main)]:
        if name == "enclave-tunnel":
            continue
        ctx = container["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"] == {"drop": ["ALL"]}, name
        assert ctx["runAsNonRoot"] is True and not ctx.get("privileged"), name
    assert {"name": "dev-net-tun", "hostPath": {"path": "/dev/net/tun", "type": "CharDevice"}} in pod["volumes"]
    assert [c["name"] for c in pod["initContainers"] + pod["containers"]
            if any(m["name"] == "dev-net-tun" for m in c.get("volumeMounts", []))] == ["enclave-tunnel"]
    # The image's kms user (uid 10003, gid 10002); the launcher opens /dev/nitro_enclaves (root:ne
    # 0660 on the node) through the node's ne group.
    assert {k: pod["securityContext"][k] for k in ("runAsUser", "runAsGroup", "fsGroup", "supplementalGroups")} == \
        {"runAsUser": 10003, "runAsGroup": 10002, "fsGroup": 1001, "supplementalGroups": [1001]}
    # Probes stay native gRPC on the client port (DNATed into the enclave).
    assert main["readinessProbe"]["grpc"]["port"] == next(p["containerPort"] for p in main["ports"] if p["name"] == "grpc-client")
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


def test_enclave_keygen_pod(enclave_party):
    """The one-shot pod runs the enclave with keygen.toml on the config socket, egress only."""
    keygen = load(enclave_party / "manifests" / "05-pod-kms-core-keygen.yaml")[0]
    sts = load(enclave_party / "manifests" / "10-statefulset-kms-core.yaml")[0]
    spec, node = keygen["spec"], sts["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never" and spec["activeDeadlineSeconds"] == 900
    # Not counted as the node: its labels do not match the StatefulSet's (and the Services') selector.
    assert not sts["spec"]["selector"]["matchLabels"].items() <= keygen["metadata"]["labels"].items()
    for key in ("serviceAccountName", "securityContext", "nodeSelector", "tolerations", "imagePullSecrets"):
        assert spec[key] == node[key], key
    sidecars = {c["name"]: c for c in spec["initContainers"]}
    assert list(sidecars) == ["vsock-config", "vsock-logs", "vsock-irsa-token", "enclave-tunnel"]
    assert vsock_ports(sidecars) == {"vsock-config": "4000", "vsock-logs": "3000", "vsock-irsa-token": "4100"}
    assert "OPEN:/etc/kms/keygen/keygen.toml,rdonly" in sidecars["vsock-config"]["args"]
    mount = sidecars["vsock-config"]["volumeMounts"][0]
    assert next(v for v in spec["volumes"] if v["name"] == mount["name"])["configMap"]["name"] == "kms-core-keygen-config"
    assert tunnel_ports(sidecars["enclave-tunnel"]) == []  # nothing comes in
    (launcher,) = spec["containers"]
    (node_launcher,) = node["containers"]
    assert launcher["image"] == node_launcher["image"] and launcher["args"] == node_launcher["args"]
    assert {"name": "KEYGEN", "value": "true"} in launcher["env"]
    assert launcher["resources"] == node_launcher["resources"]
    assert "ports" not in launcher and "readinessProbe" not in launcher


def vsock_ports(sidecars):
    return {name: arg.split(":")[1].split(",")[0] for name, c in sidecars.items()
            for arg in c.get("args", []) if arg.startswith("VSOCK-LISTEN:")}


def tunnel_ports(tunnel):
    return [int(p) for p in next(e["value"] for e in tunnel["env"] if e["name"] == "PORTS").split()]


STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "$CALLS"
case "$(basename "$0") $1" in
  "vsocktun parent") touch "$STATE/tun"; exec sleep 30 </dev/null >/dev/null 2>&1 ;;
  "ifconfig "*) [ -e "$STATE/tun" ] ;;
  "iptables "*) case " $* " in *" -C "*) exit 1 ;; esac ;;
  "nitro-cli describe-enclaves")
    n=$(cat "$STATE/described" 2>/dev/null || echo 0); echo $((n + 1)) > "$STATE/described"
    [ "$n" -lt 1 ] && echo '[{"State": "RUNNING"}]' || echo '[]' ;;
esac
exit 0
"""


def run_script(container, tmp_path, env):
    """Run a container's `sh -c` script with recording stand-ins on PATH; (exit code, calls)."""
    assert container["command"] == ["/bin/sh", "-c"]
    bindir, state = tmp_path / "bin", tmp_path / "state"
    bindir.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    for tool in ("iptables", "sysctl", "vsocktun", "ifconfig", "dnsproxy", "nitro-cli"):
        (bindir / tool).write_text(STUB)
        (bindir / tool).chmod(stat.S_IRWXU)
    calls = tmp_path / "calls"
    run_env = {"PATH": "%s:/usr/bin:/bin" % bindir, "CALLS": str(calls), "STATE": str(state)}
    run_env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    run_env.update(env)
    proc = subprocess.run(["/bin/sh", "-c", container["args"][0]], env=run_env, capture_output=True, text=True,
                          timeout=60)
    return proc.returncode, calls.read_text().splitlines() if calls.exists() else [], proc.stderr


def test_enclave_tunnel_script_routes_the_enclave(enclave_party, tmp_path):
    pod = load(enclave_party / "manifests" / "10-statefulset-kms-core.yaml")[0]["spec"]["template"]["spec"]
    tunnel = next(c for c in pod["initContainers"] if c["name"] == "enclave-tunnel")
    code, calls, stderr = run_script(tunnel, tmp_path, {"POD_IP": "192.0.2.7"})
    assert code == 1, stderr  # it only returns when vsocktun or dnsproxy stopped (here: dnsproxy)
    with open("/etc/resolv.conf") as handle:
        upstream = next(line.split()[1] for line in handle if line.startswith("nameserver"))
    added = [c for c in calls if c.startswith("iptables") and " -A " in c]
    assert calls[0] == "sysctl -w net.ipv4.ip_forward=1"
    assert "iptables -t nat -A POSTROUTING -s 10.118.0.0/24 -o eth0 -j MASQUERADE" in added
    assert ("vsocktun parent --tun-name enclave0 --tun-address 10.118.0.1/24 --enclave-address 10.118.0.2/24 "
            "--vsock-port 2100 --queues 32 --tokio-worker-threads 8") in calls
    for port in tunnel_ports(tunnel):
        assert ("iptables -t nat -A PREROUTING -i eth0 -d 192.0.2.7 -p tcp --dport %d -j DNAT "
                "--to-destination 10.118.0.2:%d" % (port, port)) in added
        assert "iptables -t filter -A FORWARD -i eth0 -o enclave0 -p tcp -d 10.118.0.2 --dport %d -j ACCEPT" % port in added
    assert "dnsproxy -l 10.118.0.1 -u %s" % upstream in calls
    # DNAT only once the TUN exists, dnsproxy last.
    assert calls.index(next(c for c in calls if c.startswith("vsocktun"))) < calls.index(next(c for c in added if "DNAT" in c))
    assert calls.index(added[-1]) < calls.index("dnsproxy -l 10.118.0.1 -u %s" % upstream)
    assert "vsocktun or dnsproxy stopped" in stderr


def test_enclave_launcher_script(enclave_party, tmp_path):
    pod = load(enclave_party / "manifests" / "10-statefulset-kms-core.yaml")[0]["spec"]["template"]["spec"]
    (launcher,) = pod["containers"]
    code, calls, stderr = run_script(launcher, tmp_path / "node", {})
    assert calls[:2] == ["nitro-cli describe-eif --eif-path /app/kms/core/service/enclave.eif",
                         "nitro-cli run-enclave --config /etc/kms/enclave/enclave.json"]
    assert calls[2:] == ["nitro-cli describe-enclaves"] * 2  # watched until it is no longer RUNNING
    assert code == 1 and "the enclave stopped" in stderr  # the node's enclave must not stop: restart
    keygen = load(enclave_party / "manifests" / "05-pod-kms-core-keygen.yaml")[0]["spec"]["containers"][0]
    code, calls, stderr = run_script(keygen, tmp_path / "keygen", {})
    assert code == 0 and "the key-generation enclave has stopped" in stderr


# render_party.yml runs preflight: the role's rules (rules_kms_workload) refuse these before any file is
# written, naming the role and the variable.
@pytest.mark.parametrize("extra, message", [
    ({"kms_workload_image_tag": "latest"}, "kms_workload: kms_workload_image_tag: a published release tag"),
    ({"kms_workload_image_tag": "v0.14 .1"}, "kms_workload: kms_workload_image_tag: a published release tag"),
    ({"kms_workload_image_digest": "sha256:abc"}, "kms_workload: kms_workload_image_digest: empty or sha256:<64"),
    ({"kms_workload_image_pull_secrets": ["Registry Credentials"]},
     "kms_workload: kms_workload_image_pull_secrets: a list of Secret names"),
])
def test_bad_image_inputs_are_refused_naming_the_variable(tmp_path, extra, message):
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps(extra))
    code, output = repo_playbook("render_party.yml", "inventories/sandbox", "--limit", "party1",
                                 "-e", "render_dir=%s" % (tmp_path / "out"), "-e", "@%s" % extra_file,
                                 *peer_cas("sandbox", tmp_path), timeout=600)
    assert code == 2, output[-3000:]
    assert message in " ".join(output.split()), output[-3000:]
    assert "preflight : Validate the variables of every role this playbook runs" in output, output[-3000:]
    assert not (tmp_path / "out" / "party1").exists()


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
    ca_file.write_text(ca(2))
    net["parties"][0]["ca_certificate"] = {"source": "pem", "pem": ca(1)}
    net["parties"][1]["ca_certificate"] = {"source": "path", "path": str(ca_file)}
    (inventory / "group_vars" / "all" / "network.yml").write_text(yaml.safe_dump({"mpc_network": net}))
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"kms_config_peer_ca_pems": {3: ca(3), "4": ca(4)}}))
    out = render(str(inventory), tmp_path / "out", "--limit", "party3", "-e", "@%s" % extra)
    party = out / "party3"
    doc = schema.validate_text((party / "threshold.toml").read_text())
    assert doc["threshold"]["tls"] == {"manual": {"cert": {"path": "/etc/kms/tls/tls.crt"},
                                                  "key": {"path": "/etc/kms/tls/tls.key"}}}
    assert pems(doc["threshold"]["peers"]) == cas(range(1, 5))
    sts = load(party / "manifests" / "10-statefulset-kms-core.yaml")[0]
    pod = sts["spec"]["template"]["spec"]
    tls_volume = next(v for v in pod["volumes"] if v["name"] == "tls")
    assert tls_volume["secret"]["secretName"] == "kms-core-tls"
    assert {"name": "tls", "mountPath": "/etc/kms/tls", "readOnly": True} in pod["containers"][0]["volumeMounts"]
    kubernetes_validate.validate(sts, K8S_VERSION, strict=True)
    configmap = load(party / "manifests" / "02-configmap-kms-core-config.yaml")[0]
    assert "PRIVATE KEY" not in configmap["data"]["threshold.toml"]

    # Without party 4's CA the run stops before anything is written, naming the variable.
    extra.write_text(json.dumps({"kms_config_peer_ca_pems": {3: ca(3)}}))
    code, output = repo_playbook("render_party.yml", inventory, "--limit", "party3",
                                 "-e", "render_dir=%s" % (tmp_path / "out2"), "-e", "@%s" % extra, timeout=600)
    assert code == 2
    assert "kms_config_peer_ca_pems: tls_mode is manual" in output and "missing for party id(s) 4" in output
    assert not (tmp_path / "out2").exists()


def test_bad_render_input_fails_on_the_nitro_render_spec(tmp_path):
    # render_party includes nitro_nodegroup's render entry point by name (tasks_from: render), so
    # its argument spec is validated: without it, "perhaps" | bool would silently render False.
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps({"nitro_nodegroup_device_plugin_cpu_advertisement": "perhaps"}))
    code, output = repo_playbook("render_party.yml", "inventories/sandbox", "--limit", "party1",
                                 "-e", "render_dir=%s" % (tmp_path / "out"), "-e", "@%s" % extra_file,
                                 *peer_cas("sandbox", tmp_path), timeout=600)
    text = " ".join(output.split())
    assert code == 2, output[-3000:]
    # render_party.yml's preflight (role_inputs) checks that entry point's spec before anything runs
    assert "preflight : Validate the variables of every role this playbook runs" in text, output[-3000:]
    assert "nitro_nodegroup: nitro_nodegroup_device_plugin_cpu_advertisement: must be of type bool" in text, \
        output[-3000:]
    assert not (tmp_path / "out" / "party1" / "cluster-addons" / "nitro-device-plugin.yaml").exists()
