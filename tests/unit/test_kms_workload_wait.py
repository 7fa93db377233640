"""kms_workload's readiness wait fails with a message naming what is not ready.

Runs the role against the Kubernetes emulator with the sandbox's pod runner (a StatefulSet's
pod is a KMS node simulator reading the ConfigMap behind --config-file). The ConfigMap is never
published, so the pod stays in ContainerCreating, as a real kubelet would report it.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE_PORT = 24010  # party 1 on 24011 (this suite's port range is 24000-24999)

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
        kms_workload_enclave: false
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
    kube_emulator = pytest.importorskip("tests.support.kube_emulator")
    kms_nodes = pytest.importorskip("tests.support.sandbox.kms_nodes")
    with kube_emulator.run_emulators(
            1, base_port=BASE_PORT, crds=[],
            statefulset_runner=lambda party, emulator: kms_nodes.KmsNodeRunner(retry_seconds=0.5)) as kube:
        yield kube.write_kubeconfig(1, tmp_path / "kubeconfig.yaml")


def test_wait_names_what_is_not_ready(cluster, tmp_path):
    playbook = tmp_path / "wait.yml"
    playbook.write_text(PLAYBOOK.format(checksum="0" * 64, kubeconfig=cluster))
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
    msg = messages[0]
    assert "StatefulSet kms/kms-core is not ready after 4s" in msg
    assert "readyReplicas 0/1" in msg
    assert "container kms-core not ready (waiting: ContainerCreating" in msg
    assert 'configmap "kms-core-config" not found' in msg
    assert "Ready=False" in msg
