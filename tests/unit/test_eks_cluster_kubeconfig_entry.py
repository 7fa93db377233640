"""eks_cluster's `kubeconfig` entry point (the day-2 playbooks' kubeconfig) without the cloud.

AWS points at a closed port (127.0.0.1:23199): a run that called AWS would fail with a
connection error. Bad input is refused naming each variable before any call; an existing file is
kept as it is, without reading the cluster; an absent file makes it read the cluster (here: the
connection error, naming the cluster read). Writing the file from a real description is proved
against the stand-ins by tests/integration/test_upgrade_party.py and test_teardown_party.py."""
import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PLAYBOOK = textwrap.dedent("""\
    - hosts: localhost
      gather_facts: false
      module_defaults:
        group/threshold_kms.mpc_party.aws: {endpoint_url: "http://127.0.0.1:23199", region: eu-west-1}
      vars:
        mpc_aws_region: eu-west-1
        mpc_cluster_name: kms-test-p1
      tasks:
        - name: Run the entry point
          block:
            - ansible.builtin.include_role:
                name: threshold_kms.mpc_party.eks_cluster
                tasks_from: kubeconfig
          rescue:
            - ansible.builtin.copy:
                content: "{{ {'task': ansible_failed_task.name, 'msg': ansible_failed_result.msg} | to_json }}"
                dest: "{{ out }}"
                mode: "0600"
    """)


def run(tmp_path, *flags, **extra):
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    out = tmp_path / "failure.json"
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"), ANSIBLE_NOCOLOR="1",
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_MAX_ATTEMPTS="1")
    extra = dict(extra, out=str(out), ansible_python_interpreter=sys.executable)
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", "-e", json.dumps(extra), str(playbook), *flags],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text()) if out.exists() else None


def test_bad_input_is_refused_naming_each_variable(tmp_path):
    failure = run(tmp_path, mpc_kubeconfig="relative/kubeconfig", eks_cluster_name="bad name",
                  eks_cluster_region="Europe", eks_cluster_api_server_override="ftp://x")
    assert failure["task"] == "Check the kubeconfig inputs (no cloud call)"
    for expected in ("eks_cluster_name: 1-100 letters", "eks_cluster_region: an AWS region",
                     "eks_cluster_kubeconfig_path: an absolute path (got relative/kubeconfig)",
                     "eks_cluster_api_server_override: empty or an http(s) URL (got ftp://x)"):
        assert expected in failure["msg"], failure["msg"]
    assert not (tmp_path / "relative").exists()


def test_an_existing_kubeconfig_is_kept_without_reading_the_cluster(tmp_path):
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text("# the operator's own kubeconfig\n")
    assert run(tmp_path, "--check", mpc_kubeconfig=str(kubeconfig)) is None
    assert run(tmp_path, mpc_kubeconfig=str(kubeconfig)) is None
    assert kubeconfig.read_text() == "# the operator's own kubeconfig\n"


def test_an_absent_kubeconfig_makes_it_read_the_cluster(tmp_path):
    kubeconfig = tmp_path / "job" / "kubeconfig.yaml"
    failure = run(tmp_path, mpc_kubeconfig=str(kubeconfig))
    assert failure["task"] == "Read the cluster kms-test-p1"
    assert "Could not describe EKS cluster kms-test-p1" in failure["msg"], failure["msg"]
    assert not kubeconfig.parent.exists()
