"""The sandbox's kubelet for KMS pods (sandbox/kms_nodes.py) with the real simulator:
init containers that run kms-gen-keys, ConfigMap and Secret volumes, crash loops with the cause,
the record of client-port calls.

A Kubernetes API emulator with the real status controller, simulated nodes on 127.0.0.1 and a
moto server process for the S3 vaults; ports: this worker's block, offsets 150-199.
"""
import base64
import os
import stat
import time

import grpc
import pytest
import tomli_w

from sandbox.kms_sim import network as net
from sandbox.kms_sim import proto as P
from sandbox.kms_sim.faults import self_signed_cert
from sandbox.kms_sim.keygen import SIGNING_KEY_ID
from sandbox.kms_sim.testing import keygen_config, port_block
from sandbox.kube_emulator import run_emulators
from sandbox.kms_nodes import KmsNodeRunner, keygen_config_path

BASE = port_block() + 150
MOTO_PORT = BASE + 1
KUBE_BASE = BASE + 2          # party 1 on +3
PEER, CLIENT = BASE + 10, BASE + 20
NS = "kms"


# The simulator's AWS environment and its moto process: tests/unit/conftest.py (sim_aws_env, moto).
pytestmark = pytest.mark.usefixtures("sim_aws_env")


def wait_for(predicate, timeout=20.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met within %ss" % timeout)


def party_configs(moto, name, pid=1):
    network = net.make_network(4, name=name, peer_base=PEER, client_base=CLIENT)
    config = net.threshold_config(network, pid, storage="s3", s3_endpoint=moto.url)
    s3 = moto.client()
    for vault in ("private_vault", "public_vault"):
        s3.create_bucket(Bucket=config[vault]["storage"]["s3"]["bucket"],
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return config, keygen_config(config), s3


def statefulset(init=None, volumes=(), mounts=()):
    spec = {
        "containers": [{"name": "kms-core", "image": "ghcr.io/zama-ai/kms/core-service:v0.14.1-0",
                        "command": ["kms-server"], "args": ["--config-file", "/etc/kms/config/threshold.toml"],
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/kms/config"}] + list(mounts)}],
        "volumes": [{"name": "config", "configMap": {"name": "kms-core-config"}},
                    {"name": "keygen", "configMap": {"name": "kms-core-keygen-config",
                                                     "items": [{"key": "keygen.toml", "path": "keygen.toml"}]}}]
        + list(volumes),
    }
    if init:
        spec["initContainers"] = init
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "kms-core"},
            "spec": {"replicas": 1, "serviceName": "kms-core", "selector": {"matchLabels": {"app": "kms-core"}},
                     "template": {"metadata": {"labels": {"app": "kms-core"}}, "spec": spec}}}


KEYGEN_INIT = {"name": "kms-gen-keys", "image": "ghcr.io/zama-ai/kms/core-service:v0.14.1-0",
               "command": ["kms-gen-keys"], "args": ["--config-file", "/etc/kms/keygen/keygen.toml"],
               "volumeMounts": [{"name": "keygen", "mountPath": "/etc/kms/keygen"}]}


def configmaps(emu, config, keygen):
    emu.create_object("v1/namespaces", None, {"metadata": {"name": NS}})
    emu.create_object("v1/configmaps", NS, {"apiVersion": "v1", "kind": "ConfigMap",
                                            "metadata": {"name": "kms-core-config"},
                                            "data": {"threshold.toml": tomli_w.dumps(config)}})
    emu.create_object("v1/configmaps", NS, {"apiVersion": "v1", "kind": "ConfigMap",
                                            "metadata": {"name": "kms-core-keygen-config"},
                                            "data": {"keygen.toml": tomli_w.dumps(keygen)}})


def pod_status(emu):
    return (emu.get_object("v1/pods", NS, "kms-core-0") or {}).get("status") or {}


def sts_ready(emu):
    return ((emu.get_object("apps/v1/statefulsets", NS, "kms-core") or {}).get("status") or {}).get("readyReplicas")


def test_keygen_command_is_found_in_both_forms():
    assert keygen_config_path(KEYGEN_INIT) == "/etc/kms/keygen/keygen.toml"
    shell = {"command": ["/bin/sh", "-c"], "args": ["set -e; kms-gen-keys --config-file=/k/keygen.toml && echo ok"]}
    assert keygen_config_path(shell) == "/k/keygen.toml"
    assert keygen_config_path({"command": ["sh", "-c", "exec /app/bin/kms-gen-keys"]}) == ""
    assert keygen_config_path({"command": ["kms-server"], "args": ["--config-file", "/x"]}) is None


def test_the_init_container_generates_the_keys_then_the_server_starts(moto):
    config, keygen, s3 = party_configs(moto, "podkeys")
    runner = KmsNodeRunner(retry_seconds=0.3, label="party1")
    with run_emulators(1, base_port=KUBE_BASE, statefulset_runner=lambda p, e: runner, resync_seconds=0.2) as kube:
        emu = kube.emulator(1)
        configmaps(emu, config, keygen)
        emu.create_object("apps/v1/statefulsets", NS, statefulset(init=[KEYGEN_INIT]))
        wait_for(lambda: sts_ready(emu) == 1)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="kms-podkeys-p1-private")["Contents"]]
        assert keys == ["PRIV-p1/SigningKey/%s" % SIGNING_KEY_ID]
        ca = s3.get_object(Bucket="kms-podkeys-p1-public", Key="PUB-p1/CACert/%s" % SIGNING_KEY_ID)["Body"].read()
        status = wait_for(lambda: pod_status(emu) if pod_status(emu).get("phase") == "Running" else None)
        assert status["initContainerStatuses"][0]["state"] == {"terminated": {"exitCode": 0, "reason": "Completed"}}
        row = runner.describe()[0]
        assert row["init_containers"][0]["generated"] is True
        # Where the emulator's port-forward connects for this pod's ports.
        assert runner.forward_target(NS, "kms-core-0", 50100) == ("127.0.0.1", CLIENT + 1)
        assert runner.forward_target(NS, "kms-core-0", CLIENT + 1) == ("127.0.0.1", CLIENT + 1)
        assert runner.forward_target(NS, "kms-core-0", 50001) == ("127.0.0.1", PEER + 1)
        with pytest.raises(LookupError) as err:
            runner.forward_target(NS, "kms-core-0", 9646)
        assert "nothing listens on port 9646" in str(err.value)
        with pytest.raises(KeyError):
            runner.forward_target(NS, "kms-other-0", 50100)

        with grpc.insecure_channel("127.0.0.1:%d" % (CLIENT + 1)) as channel:
            P.call(channel, P.GET_HEALTH_STATUS, P.messages.Empty())
        calls = runner.describe()[0]["calls"]
        assert [c["method"] for c in calls] == [P.GET_HEALTH_STATUS] and calls[0]["peer"].startswith("ipv4:127.0.0.1:")

        # A new revision runs the init container again: the keys are kept, the calls too.
        emu.patch_object("apps/v1/statefulsets", NS, "kms-core",
                         {"spec": {"template": {"metadata": {"annotations": {"checksum": "2"}}}}}, "strategic")
        wait_for(lambda: runner.describe()[0]["revision"] != row["revision"] and sts_ready(emu) == 1
                 and runner.describe()[0]["state"] == "serving")
        assert runner.describe()[0]["init_containers"][0]["generated"] is False
        assert s3.get_object(Bucket="kms-podkeys-p1-public",
                             Key="PUB-p1/CACert/%s" % SIGNING_KEY_ID)["Body"].read() == ca
        assert [c["method"] for c in runner.describe()[0]["calls"]] == [P.GET_HEALTH_STATUS]


def test_without_key_generation_the_server_crash_loops_with_the_cause(moto):
    config, keygen, _ = party_configs(moto, "podnokeys")
    runner = KmsNodeRunner(retry_seconds=0.3, label="party1")
    with run_emulators(1, base_port=KUBE_BASE, statefulset_runner=lambda p, e: runner, resync_seconds=0.2) as kube:
        emu = kube.emulator(1)
        configmaps(emu, config, keygen)
        emu.create_object("apps/v1/statefulsets", NS, statefulset())
        waiting = wait_for(lambda: ((pod_status(emu).get("containerStatuses") or [{}])[0].get("state") or {})
                           .get("waiting"))
        assert waiting["reason"] == "CrashLoopBackOff"
        assert "SigningKey" in waiting["message"] and "VerfKey" in waiting["message"]
        assert not sts_ready(emu)
        with pytest.raises(LookupError) as err:
            runner.forward_target(NS, "kms-core-0", 50100)
        assert "not running: CrashLoopBackOff" in str(err.value) and "SigningKey" in str(err.value)


def test_a_failing_init_container_shows_init_error_then_crash_loop(moto):
    config, keygen, _ = party_configs(moto, "podbadkg")
    keygen["threshold"]["listen_port"] = 50001   # kms-gen-keys refuses unknown keys
    shell_init = dict(KEYGEN_INIT, command=["/bin/sh", "-c"],
                      args=["kms-gen-keys --config-file /etc/kms/keygen/keygen.toml"])
    runner = KmsNodeRunner(retry_seconds=0.3, label="party1")
    with run_emulators(1, base_port=KUBE_BASE, statefulset_runner=lambda p, e: runner, resync_seconds=0.2) as kube:
        emu = kube.emulator(1)
        configmaps(emu, config, keygen)
        emu.create_object("apps/v1/statefulsets", NS, statefulset(init=[shell_init]))
        first = wait_for(lambda: (pod_status(emu).get("initContainerStatuses") or [None])[0])
        seen = [first]
        looping = wait_for(lambda: seen.append((pod_status(emu).get("initContainerStatuses") or [None])[0])
                           or (seen[-1] or {}).get("state", {}).get("waiting"))
        assert any((s or {}).get("state", {}).get("terminated", {}).get("reason") == "Error" for s in seen)
        assert looping["reason"] == "CrashLoopBackOff"
        assert "threshold.listen_port: unknown key" in looping["message"]
        status = pod_status(emu)
        assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
        assert [c for c in status["conditions"] if c["type"] == "Initialized"][0]["status"] == "False"
        assert runner.node(NS, "kms-core") is None


def test_tls_files_come_from_the_pods_secret_volume(moto, tmp_path):
    config, keygen, _ = party_configs(moto, "podtls")
    certs = {pid: [b.decode() for b in self_signed_cert("party%d.podtls.kms.local" % pid)] for pid in range(1, 5)}
    config["threshold"]["tls"] = {"manual": {"cert": {"path": "/etc/kms/tls/tls.crt"},
                                             "key": {"path": "/etc/kms/tls/tls.key"}}}
    for peer in config["threshold"]["peers"]:
        peer["tls_cert"] = {"pem": certs[peer["party_id"]][1]}
    runner = KmsNodeRunner(retry_seconds=0.3, label="party1")
    with run_emulators(1, base_port=KUBE_BASE, statefulset_runner=lambda p, e: runner, resync_seconds=0.2) as kube:
        emu = kube.emulator(1)
        configmaps(emu, config, keygen)
        sts = statefulset(init=[KEYGEN_INIT], volumes=[{"name": "tls", "secret": {"secretName": "kms-core-tls"}}],
                          mounts=[{"name": "tls", "mountPath": "/etc/kms/tls", "readOnly": True}])
        emu.create_object("apps/v1/statefulsets", NS, sts)
        waiting = wait_for(lambda: ((pod_status(emu).get("containerStatuses") or [{}])[0].get("state") or {})
                           .get("waiting", {}).get("message"))
        assert 'secret "kms-core-tls" not found' in waiting
        emu.create_object("v1/secrets", NS, {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kms-core-tls"}, "type": "kubernetes.io/tls",
            "data": {"tls.crt": base64.b64encode(certs[1][1].encode()).decode(),
                     "tls.key": base64.b64encode(certs[1][0].encode()).decode()}})
        wait_for(lambda: sts_ready(emu) == 1)
        workdir = runner._pods[(NS, "kms-core")].workdir
        key_file = os.path.join(workdir, "volumes", "tls", "tls.key")
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        # The peer port serves TLS with the Secret's certificate and wants a client certificate.
        creds = grpc.ssl_channel_credentials(root_certificates=certs[1][1].encode(),
                                             private_key=certs[2][0].encode(), certificate_chain=certs[2][1].encode())
        with grpc.secure_channel("127.0.0.1:%d" % (PEER + 1), creds,
                                 options=[("grpc.ssl_target_name_override", "party1.podtls.kms.local")]) as channel:
            resp = P.call(channel, P.HEALTH_CHECK, P.messages.HealthCheckRequest(service=P.PEER_SERVICE_NAME))
        assert resp.status == P.SERVING
