"""What nitro_nodegroup renders, checked without a cluster: the device plugin DaemonSet against
the Kubernetes 1.32 OpenAPI schema (strict), and the node user data (MIME structure, shell syntax,
and the boot script run against stand-ins of sysfs and systemd: 1 GiB hugepages reserved before the
allocator starts, boot failure when the kernel grants fewer).

Both come from the role's own render entry point (tasks_from: render, its argument spec validated), run by
ansible-playbook."""
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
                tasks_from: render
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


# The boot script runs for real below, as root would run it at boot, with its three system paths
# moved into a temporary directory and dnf, systemctl, systemd-cat, getent and groupadd replaced
# by scripts that record their calls (``ne_group`` is what getent finds for the group ne). A regular file stands for nr_hugepages (the kernel grants every page); a
# link to /dev/null stands for a kernel that grants none.
SYSTEM_PATHS = {
    "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages": "nr_hugepages_1g",
    "/proc/sys/vm/compact_memory": "compact_memory",
    "/etc/nitro_enclaves/allocator.yaml": "allocator.yaml",
}


def boot(rendered, tmp_path, nr_hugepages="file", allocator_leaves=None, ne_group=None):
    [part] = email.message_from_string((rendered / "user-data.mime").read_text()).get_payload()
    script = part.get_payload()
    for system_path, name in SYSTEM_PATHS.items():
        assert system_path in script
        script = script.replace(system_path, str(tmp_path / name))
    (tmp_path / "boot.sh").write_text(script)
    pages = tmp_path / "nr_hugepages_1g"
    if nr_hugepages == "file":
        pages.write_text("0\n")
    else:
        pages.symlink_to("/dev/null")
    (tmp_path / "compact_memory").write_text("")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    trace = tmp_path / "trace"
    allocator = ("echo %d > %s" % (allocator_leaves, pages)) if allocator_leaves is not None else ":"
    for name, body in {
        "dnf": 'echo "dnf $*" >> %s' % trace,
        "systemctl": 'echo "systemctl $* pages=$(cat %s)" >> %s\n[ "$1" = restart ] && %s\nexit 0' % (pages, trace, allocator),
        "systemd-cat": "cat >> %s" % (tmp_path / "journal"),
        "getent": ('echo "%s"' % ne_group) if ne_group else "exit 2",
        "groupadd": 'echo "groupadd $*" >> %s' % trace,
    }.items():
        stub = stubs / name
        stub.write_text("#!/usr/bin/env bash\n" + body + "\n")
        stub.chmod(0o755)
    env = dict(os.environ, PATH="%s:%s" % (stubs, os.environ["PATH"]))
    run = subprocess.run(["bash", str(tmp_path / "boot.sh")], env=env, capture_output=True, text=True, timeout=60)
    journal = (tmp_path / "journal").read_text() if (tmp_path / "journal").exists() else ""
    return run, (trace.read_text() if trace.exists() else ""), journal


def test_user_data_reserves_the_1gib_hugepages_before_the_allocator_starts(rendered, tmp_path):
    run, trace, journal = boot(rendered, tmp_path)
    assert run.returncode == 0, run.stderr
    # 49152 MiB of enclave memory: 48 pages of 1 GiB, in place when the allocator (re)starts.
    assert (tmp_path / "nr_hugepages_1g").read_text().strip() == "48"
    assert "systemctl restart nitro-enclaves-allocator.service pages=48" in trace.splitlines()
    assert trace.index("pages=48") > trace.index("dnf install")
    # the group owning /dev/nitro_enclaves gets the pods' supplemental group id before the package
    assert trace.index("groupadd -g 1001 ne") < trace.index("dnf install")
    assert "reserved 48 x 1GiB hugepages" in journal
    assert "allocator configured (24 vCPU, 49152 MiB, 48 x 1GiB hugepages)" in journal
    assert "memory_mib: 49152" in (tmp_path / "allocator.yaml").read_text()


def test_user_data_fails_the_boot_when_the_kernel_grants_too_few_pages(rendered, tmp_path):
    run, trace, journal = boot(rendered, tmp_path, nr_hugepages="granted-none")
    assert run.returncode == 1
    assert "reserved only 0 of 48 x 1GiB hugepages" in run.stderr
    assert "reserved only 0 of 48" in journal
    # It stopped before installing and starting the allocator; it compacted memory and retried.
    assert trace == ""
    assert (tmp_path / "compact_memory").read_text().strip() == "1"


def test_user_data_fails_the_boot_when_the_allocator_leaves_too_few_pages(rendered, tmp_path):
    run, trace, journal = boot(rendered, tmp_path, allocator_leaves=40)
    assert run.returncode == 1
    assert "after the allocator only 40 of 48 x 1GiB hugepages remain" in run.stderr
    assert "allocator configured" not in journal


def test_user_data_keeps_an_ne_group_with_the_right_id(rendered, tmp_path):
    run, trace, journal = boot(rendered, tmp_path, ne_group="ne:x:1001:")
    assert run.returncode == 0, run.stderr
    assert "groupadd" not in trace and "dnf install" in trace


def test_user_data_fails_the_boot_when_ne_has_another_group_id(rendered, tmp_path):
    run, trace, journal = boot(rendered, tmp_path, ne_group="ne:x:995:")
    assert run.returncode == 1
    assert "group ne exists with id 995, not 1001 (nitro_nodegroup_enclave_device_gid)" in run.stderr
    assert "dnf install" not in trace
