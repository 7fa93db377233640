"""kms_workload's `keys` entry point (phase 1 of a first start), against the stand-ins.

The role runs through ansible-playbook against the Kubernetes emulator (without its status
controller) and a moto server holding the party's private vault. In tls_mode manual it must create
the TLS identity Secret once and keep it; in enclave mode it must look for <PRIV>/SigningKey/
before starting the one-shot key-generation pod, and judge that pod by its phase and by the vault
afterwards. A thread of the test plays the kubelet and the enclave: it writes the pod's final
status (and, when it "succeeds", the signing key into the vault), as test_kms_workload_wait does.
"""
import base64
import json
import os
import subprocess
import sys
import threading
import time

import boto3
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# This suite's range, outside the simulator suites' blocks (kms_sim.testing.port_block, 22000-22799):
# moto on 29600 + the xdist worker number (conftest.moto_url), the Kubernetes API emulator's
# party 1 on 29611 (+ 50 per worker).
_WORKER = int("".join(ch for ch in os.environ.get("PYTEST_XDIST_WORKER", "gw0") if ch.isdigit()) or 0)
MOTO_PORT_BASE = 29600
KUBE_BASE_PORT = 29610 + 50 * _WORKER
REGION = "eu-west-1"
PODS = "v1/pods"

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: threshold_kms.mpc_party.kms_workload
        tasks_from: keys
      vars:
        kms_workload_network_name: keystest
        kms_workload_party_id: 1
        kms_workload_namespace: kms
        kms_workload_client_port: 50100
        kms_workload_peer_port: 50001
        kms_workload_metrics_port: 9646
        kms_workload_tls_mode: {tls_mode}
        kms_workload_enclave: {enclave}
        kms_workload_mpc_identity: p1.keystest.example.org
        kms_workload_irsa_role_arn: arn:aws:iam::100000000001:role/keystest
        kms_workload_private_bucket: {bucket}
        kms_workload_private_prefix: PRIV-p1
        kms_workload_aws_region: {region}
        kms_workload_aws_endpoint_url: "{endpoint}"
        kms_workload_kubeconfig: "{kubeconfig}"
        kms_workload_kube_api_server: ""
        kms_workload_keygen_timeout: 5
        kms_workload_keygen_delay: 1
    - ansible.builtin.copy:
        content: "{{{{ kms_workload_keys_facts | to_json }}}}"
        dest: "{out}"
        mode: "0600"
      check_mode: false
      changed_when: false  # the test's own record, not the role's
"""


@pytest.fixture
def env(moto_url, tmp_path, request):
    kube_emulator = pytest.importorskip("sandbox.kube_emulator")
    bucket = "keystest-%s-private" % request.node.name.split("[")[0][-20:].replace("_", "-").strip("-")
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name=REGION, aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    with kube_emulator.run_emulators(1, base_port=KUBE_BASE_PORT, crds=[], controller=False) as kube:
        yield {"emulator": kube.emulator(1), "kubeconfig": kube.write_kubeconfig(1, tmp_path / "kubeconfig.yaml"),
               "s3": s3, "bucket": bucket, "moto_url": moto_url, "tmp": tmp_path}


def run_keys(env, tls_mode="none", enclave=False, check=False):
    """(return code, output, kms_workload_keys_facts or None, per-task changed counts)."""
    out = env["tmp"] / "facts.json"
    if out.exists():
        out.unlink()
    playbook = env["tmp"] / "keys.yml"
    playbook.write_text(PLAYBOOK.format(tls_mode=tls_mode, enclave=str(enclave).lower(), bucket=env["bucket"],
                                        region=REGION, endpoint=env["moto_url"], kubeconfig=env["kubeconfig"],
                                        out=out))
    run_env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", "ansible_python_interpreter=%s" % sys.executable, str(playbook)] + (["--check"] if check else []),
        cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert "PRIVATE KEY" not in output
    facts = json.loads(out.read_text()) if out.exists() else None
    recap = [line for line in output.splitlines() if line.startswith("localhost") and "ok=" in line]
    changed = int(recap[-1].split("changed=")[1].split()[0]) if recap else None
    return proc.returncode, output, facts, changed


def put_signing_key(env):
    env["s3"].put_object(Bucket=env["bucket"], Key="PRIV-p1/SigningKey/" + "0" * 64, Body=b"sealed")


def test_manual_tls_identity_is_created_once_and_kept(env):
    code, output, facts, _ = run_keys(env, tls_mode="manual", check=True)
    assert code == 0, output[-3000:]
    assert facts["tls_certificate_pem"] == "" and env["emulator"].get_object("v1/secrets", "kms", "kms-core-tls") is None

    code, output, facts, _ = run_keys(env, tls_mode="manual")
    assert code == 0, output[-3000:]
    secret = env["emulator"].get_object("v1/secrets", "kms", "kms-core-tls")
    assert base64.b64decode(secret["data"]["tls.crt"]).decode() == facts["tls_certificate_pem"]
    assert facts["tls_certificate_pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert facts["keygen"] == "init_container" and facts["signing_key_present"] is False
    assert facts["tls_secret"] == "kms-core-tls"

    code, output, again, changed = run_keys(env, tls_mode="manual")
    assert code == 0 and changed == 0, output[-3000:]
    assert again["tls_certificate_pem"] == facts["tls_certificate_pem"]
    assert env["emulator"].get_object("v1/secrets", "kms", "kms-core-tls")["data"] == secret["data"]

    put_signing_key(env)
    code, output, facts, _ = run_keys(env, tls_mode="manual")
    assert code == 0 and facts["signing_key_present"] is True


def test_enclave_skips_key_generation_when_the_vault_holds_a_signing_key(env):
    put_signing_key(env)
    code, output, facts, changed = run_keys(env, tls_mode="auto", enclave=True)
    assert code == 0, output[-3000:]
    assert facts == {"tls_certificate_pem": "", "tls_secret": "", "signing_key_present": True, "keygen": "skipped"}
    assert env["emulator"].get_object(PODS, "kms", "kms-core-keygen") is None


class Kubelet(threading.Thread):
    """Waits for the key-generation pod and ends it with ``status``; ``on_success`` runs first."""

    def __init__(self, emulator, status, on_success=None):
        super().__init__(daemon=True)
        self.emulator, self.status, self.on_success, self.seen = emulator, status, on_success, None
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            pod = self.emulator.get_object(PODS, "kms", "kms-core-keygen")
            if pod is not None and not pod.get("status", {}).get("phase"):
                self.seen = pod
                time.sleep(1)
                if self.on_success:
                    self.on_success()
                self.emulator.write_status(PODS, "kms", "kms-core-keygen", self.status)
                return
            time.sleep(0.2)


def _finish(env, status, on_success=None, check=False):
    kubelet = Kubelet(env["emulator"], status, on_success)
    kubelet.start()
    try:
        return run_keys(env, tls_mode="auto", enclave=True, check=check), kubelet.seen
    finally:
        kubelet.stop.set()
        kubelet.join(5)


def test_enclave_runs_key_generation_in_a_one_shot_pod(env):
    (code, output, facts, _), _ = _finish(env, {"phase": "Succeeded"}, check=True)
    assert code == 0, output[-3000:]
    assert facts["keygen"] == "would_run" and "would run kms-gen-keys in the enclave" in output
    assert env["emulator"].get_object(PODS, "kms", "kms-core-keygen") is None  # check mode started nothing

    (code, output, facts, _), pod = _finish(env, {"phase": "Succeeded"}, on_success=lambda: put_signing_key(env))
    assert code == 0, output[-3000:]
    assert facts == {"tls_certificate_pem": "", "tls_secret": "", "signing_key_present": True, "keygen": "ran"}
    # The pod that ran is the enclave key-generation pod, and it is gone once it succeeded.
    assert pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["activeDeadlineSeconds"] == 5
    assert "OPEN:/etc/kms/keygen/keygen.toml,rdonly" in pod["spec"]["initContainers"][0]["args"]
    assert env["emulator"].get_object(PODS, "kms", "kms-core-keygen") is None
    assert env["emulator"].get_object("v1/configmaps", "kms", "kms-core-enclave") is not None

    # The key is there now: a second run starts no pod.
    code, output, facts, _ = run_keys(env, tls_mode="auto", enclave=True)
    assert code == 0 and facts["keygen"] == "skipped"


def test_a_failed_key_generation_pod_is_named_and_left_for_its_logs(env):
    status = {"phase": "Failed", "reason": "DeadlineExceeded",
              "message": "Pod was active on the node longer than the specified deadline",
              "containerStatuses": [{
                  "name": "kms-gen-keys-enclave", "ready": False, "restartCount": 0, "image": "enclave", "imageID": "",
                  "state": {"terminated": {"reason": "Error", "exitCode": 1,
                                           "message": "[ E19 ] File operation failure.\nenclave.eif missing"}}}]}
    (code, output, facts, _), _ = _finish(env, status)
    assert code == 2 and facts is None
    flat = " ".join(output.split())
    assert "Key generation in the enclave did not succeed: pod kms/kms-core-keygen ended in phase Failed " \
           "(DeadlineExceeded: Pod was active on the node longer than the specified deadline); " \
           "kms-gen-keys-enclave terminated: Error, exit code 1 - [ E19 ] File operation failure. enclave.eif missing" in flat
    assert "kubectl -n kms logs kms-core-keygen -c vsock-logs" in flat
    assert env["emulator"].get_object(PODS, "kms", "kms-core-keygen") is not None


def test_a_successful_pod_without_a_signing_key_fails(env):
    (code, output, facts, _), _ = _finish(env, {"phase": "Succeeded"})
    assert code == 2 and facts is None
    assert "The key-generation pod succeeded but s3://%s/PRIV-p1/SigningKey/ is still empty" % env["bucket"] \
        in " ".join(output.split())
