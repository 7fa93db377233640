"""kms_workload's readiness wait fails with a message naming what is not ready.

Runs the role against the Kubernetes emulator. In the first test the sandbox's pod runner plays
the kubelet (a StatefulSet's pod is a KMS node simulator reading the ConfigMap behind
--config-file); the ConfigMap is never published, so the pod stays in ContainerCreating, as a
real kubelet would report it. The other tests run the emulator without its status controller and
write the status of pod kms-core-0 the way the scheduler and the kubelet report an enclave pod
that cannot be placed or whose sidecar crashes: the role must name the reasons it reads there.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# This suite's own range (29700-29799), clear of the kms_app Molecule scenario's 24000-24404:
# party 1 on 29711, and on 29721 the emulator without a status controller (+ 50 per xdist worker).
_WORKER = int("".join(ch for ch in os.environ.get("PYTEST_XDIST_WORKER", "gw0") if ch.isdigit()) or 0)
BASE_PORT = 29710 + 50 * _WORKER
BARE_BASE_PORT = 29720 + 50 * _WORKER

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: threshold_kms.mpc_party.kms_workload
      vars:
        kms_workload_network_name: waittest
        kms_workload_party_id: 1
        kms_workload_namespace: kms
        kms_workload_client_port: 24311
        kms_workload_peer_port: 24211
        kms_workload_metrics_port: 24411
        kms_workload_tls_mode: none
        kms_workload_enclave: {enclave}
        kms_workload_config_checksum: "{checksum}"
        kms_workload_irsa_role_arn: arn:aws:iam::100000000001:role/waittest
        kms_workload_peer_ingress_cidrs: [127.0.0.1/32]
        kms_workload_kubeconfig: "{kubeconfig}"
        kms_workload_kube_api_server: ""
        kms_workload_wait_timeout: 4
        kms_workload_wait_delay: 1
"""


@pytest.fixture
def cluster(tmp_path):
    kube_emulator = pytest.importorskip("sandbox.kube_emulator")
    kms_nodes = pytest.importorskip("sandbox.kms_nodes")
    with kube_emulator.run_emulators(
            1, base_port=BASE_PORT, crds=[],
            statefulset_runner=lambda party, emulator: kms_nodes.KmsNodeRunner(retry_seconds=0.5)) as kube:
        yield kube.write_kubeconfig(1, tmp_path / "kubeconfig.yaml")


@pytest.fixture
def bare_cluster(tmp_path):
    """An emulator whose pod statuses only the test writes (no status controller)."""
    kube_emulator = pytest.importorskip("sandbox.kube_emulator")
    with kube_emulator.run_emulators(1, base_port=BARE_BASE_PORT, crds=[], controller=False) as kube:
        yield kube.emulator(1), kube.write_kubeconfig(1, tmp_path / "kubeconfig.yaml")


def wait_failure(tmp_path, kubeconfig, enclave=False):
    """Run the role; return the message of the failed readiness wait."""
    playbook = tmp_path / "wait.yml"
    playbook.write_text(PLAYBOOK.format(checksum="0" * 64, kubeconfig=kubeconfig, enclave=str(enclave).lower()))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", "ansible_python_interpreter=%s" % sys.executable, str(playbook)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    failures = [task["hosts"]["localhost"] for play in result["plays"] for task in play["tasks"]
                if task["hosts"].get("localhost", {}).get("failed") and "msg" in task["hosts"]["localhost"]]
    messages = [f["msg"] for f in failures if "is not ready" in f["msg"]]
    assert messages, [f.get("msg") for f in failures]
    return messages[0]


def test_wait_names_what_is_not_ready(cluster, tmp_path):
    msg = wait_failure(tmp_path, cluster)
    assert "StatefulSet kms/kms-core is not ready after 4s" in msg
    assert "readyReplicas 0/1" in msg
    assert "container kms-core not ready (waiting: ContainerCreating" in msg
    assert 'configmap "kms-core-config" not found' in msg
    assert "Ready=False (ContainersNotReady: " in msg


def _condition(ctype, status, reason="", message=""):
    return {"type": ctype, "status": status, "reason": reason, "message": message,
            "lastProbeTime": None, "lastTransitionTime": "2026-11-26T10:00:00Z"}


def _put_pod(emulator, status):
    """Pod kms-core-0 of an enclave StatefulSet, with the status the kubelet would report."""
    emulator.create_object("v1/namespaces", None, {"metadata": {"name": "kms"}})
    emulator.create_object("v1/pods", "kms", {
        "metadata": {"name": "kms-core-0", "namespace": "kms"},
        "spec": {"containers": [{"name": "kms-core-enclave", "image": "ghcr.io/zama-ai/kms/core-service-enclave:v0.14.1-0"}]},
    })
    emulator.write_status("v1/pods", "kms", "kms-core-0", status)


def test_wait_names_why_the_pod_is_not_scheduled(bare_cluster, tmp_path):
    emulator, kubeconfig = bare_cluster
    _put_pod(emulator, {"phase": "Pending", "qosClass": "Burstable", "conditions": [
        _condition("PodScheduled", "False", "Unschedulable",
                   "0/3 nodes are available: 1 Insufficient hugepages-1Gi, 2 node(s) didn't match Pod's node "
                   "affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."),
    ]})
    msg = wait_failure(tmp_path, kubeconfig, enclave=True)
    assert "it does not exist" not in msg  # the StatefulSet was applied; only its status is missing
    assert "Pod kms-core-0: phase Pending; PodScheduled=False (Unschedulable: 0/3 nodes are available: " \
           "1 Insufficient hugepages-1Gi, 2 node(s) didn't match Pod's node affinity/selector." in msg


def test_wait_names_the_crashing_sidecar(bare_cluster, tmp_path):
    emulator, kubeconfig = bare_cluster
    sidecar_ok = {"name": "vsock-config", "ready": True, "started": True, "restartCount": 0, "image": "socat",
                  "imageID": "", "state": {"running": {"startedAt": "2026-11-26T10:00:05Z"}}}
    sidecar_crash = {
        "name": "enclave-tunnel", "ready": False, "started": False, "restartCount": 4, "image": "enclave", "imageID": "",
        "state": {"waiting": {"reason": "CrashLoopBackOff",
                              "message": "back-off 1m20s restarting failed container=enclave-tunnel "
                                         "pod=kms-core-0_kms(0f1e2d3c)"}},
        "lastState": {"terminated": {"reason": "Error", "exitCode": 1,
                                     "message": "enclave-tunnel: the TUN interface enclave0\ndid not come up in 30s\n",
                                     "startedAt": "2026-11-26T10:01:00Z", "finishedAt": "2026-11-26T10:01:00Z"}},
    }
    sidecar_exited = {"name": "vsock-logs", "ready": False, "started": False, "restartCount": 1, "image": "socat",
                      "imageID": "", "state": {"terminated": {"reason": "Error", "exitCode": 2, "message": "socat: vsock\nunsupported"}}}
    main = {"name": "kms-core-enclave", "ready": False, "started": False, "restartCount": 0, "image": "enclave",
            "imageID": "", "state": {"waiting": {"reason": "PodInitializing"}}}
    _put_pod(emulator, {"phase": "Pending", "qosClass": "Burstable",
                        "initContainerStatuses": [sidecar_ok, sidecar_exited, sidecar_crash], "containerStatuses": [main],
                        "conditions": [
                            _condition("PodScheduled", "True"),
                            _condition("Initialized", "False", "ContainersNotInitialized",
                                       "containers with incomplete status: [enclave-tunnel]"),
                            _condition("Ready", "False", "ContainersNotReady",
                                       "containers with unready status: [kms-core-enclave]"),
                        ]})
    msg = wait_failure(tmp_path, kubeconfig, enclave=True)
    assert "Initialized=False (ContainersNotInitialized: containers with incomplete status: [enclave-tunnel])" in msg
    assert ("init container enclave-tunnel not ready (waiting: CrashLoopBackOff - back-off 1m20s restarting failed "
            "container=enclave-tunnel pod=kms-core-0_kms(0f1e2d3c); 4 restart(s), last terminated: Error, exit code 1 - "
            "enclave-tunnel: the TUN interface enclave0 did not come up in 30s)") in msg
    assert "init container vsock-logs not ready (terminated: Error, exit code 2 - socat: vsock unsupported)" in msg
    assert "container kms-core-enclave not ready (waiting: PodInitializing)" in msg
    assert "vsock-config" not in msg  # ready sidecars are not named
    assert "PodScheduled" not in msg  # nor conditions that hold
