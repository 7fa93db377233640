"""What nitro_nodegroup renders, checked without a cluster: the device plugin DaemonSet against
the Kubernetes 1.32 OpenAPI schema (strict), and the node user data (MIME structure, shell syntax).

Both come from the role's own render entry point (tasks_from: render.yml), run by ansible-playbook."""
import email
import os
import subprocess
import sys
import textwrap

import kubernetes_validate
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("nitro")
    playbook = out / "render.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - ansible.builtin.include_role:
                name: threshold_kms.mpc_party.nitro_nodegroup
                tasks_from: render.yml
              vars:
                mpc_cluster_name: kms-test-p1
                mpc_party_id: 1
                nitro_nodegroup_render_path: "{{ out }}/daemonset.yaml"
                nitro_nodegroup_render_user_data_path: "{{ out }}/user-data.mime"
                nitro_nodegroup_enclave_cpu_count: 24
                nitro_nodegroup_enclave_memory_mib: 49152
        """))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"), ANSIBLE_NOCOLOR="1")
    run = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                          "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable, "-e", "out=%s" % out,
                          str(playbook)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    return out


def documents(rendered):
    return [d for d in yaml.safe_load_all((rendered / "daemonset.yaml").read_text()) if d]


def test_every_manifest_is_valid_for_kubernetes_1_32(rendered):
    for manifest in documents(rendered):
        kubernetes_validate.validate(manifest, "1.32.0", strict=True)


def test_daemonset_runs_only_on_enclave_nodes_with_cpu_advertisement(rendered):
    [manifest] = [d for d in documents(rendered) if d["kind"] == "DaemonSet"]
    assert (manifest["kind"], manifest["metadata"]["name"], manifest["metadata"]["namespace"]) == (
        "DaemonSet", "aws-nitro-enclaves-k8s-device-plugin", "kube-system")
    pod = manifest["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"node.kubernetes.io/enclave-enabled": "true"}
    assert pod["tolerations"] == [{"key": "node.kubernetes.io/enclave-enabled", "operator": "Equal",
                                   "value": "true", "effect": "NoSchedule"}]
    [container] = pod["containers"]
    assert container["image"] == "public.ecr.aws/aws-nitro-enclaves/aws-nitro-enclaves-k8s-device-plugin:v0.3"
    assert {"name": "ENCLAVE_CPU_ADVERTISEMENT", "value": "TRUE"} in container["env"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "/var/lib/kubelet/device-plugins" in [m["mountPath"] for m in container["volumeMounts"]]


def test_user_data_is_a_mime_shell_part_that_configures_the_allocator(rendered):
    message = email.message_from_string((rendered / "user-data.mime").read_text())
    assert message.is_multipart()
    [part] = message.get_payload()
    assert part.get_content_type() == "text/x-shellscript"
    script = part.get_payload()
    assert "memory_mib: 49152" in script and "cpu_count: 24" in script
    assert "systemctl enable nitro-enclaves-allocator.service" in script
    script_file = rendered / "user-data.sh"
    script_file.write_text(script)
    check = subprocess.run(["bash", "-n", str(script_file)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
