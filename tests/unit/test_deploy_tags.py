"""deploy_party.yml runs as a whole: a tag selection that would run a role without the facts
the earlier roles hand it is refused at once, naming the selection and what to run instead;
skipping the leaf roles (connector_db, monitoring, privatelink, prss_init) is allowed.

The playbook runs on the sandbox inventory with AWS pointed at a closed port: a refusal must
come before any cloud call, and an allowed selection gets past the check to the first AWS call.
"""
import os
import re
import sys

import pytest

from tests.support.playbooks import ROOT, repo_playbook

GUARD = "Refuse a tag selection that would run a role without the facts it needs"
CLOSED_PORT = "23197"


def deploy(tmp_path, *args):
    env = dict(ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               SANDBOX_DIR=str(tmp_path), SANDBOX_AWS_PORT=CLOSED_PORT, SANDBOX_KUBE_BASE_PORT="23180")
    return repo_playbook("deploy_party.yml", "inventories/sandbox", "--limit", "party1",
                         "-e", "ansible_python_interpreter=" + sys.executable, *args, env=env, timeout=300)


def tasks_run(out):
    return re.findall(r"^TASK \[(.*?)\] \*+$", out, re.M)


@pytest.mark.parametrize("args, named", [
    (["--tags", "privatelink"], ["--tags privatelink "]),
    (["--tags", "prss_init"], ["--tags prss_init "]),
    (["--tags", "eks_cluster,kms_workload"], ["eks_cluster", "kms_workload"]),  # in any order
    (["--skip-tags", "nitro_nodegroup"], ["--tags all --skip-tags nitro_nodegroup "]),
])
def test_a_selection_that_breaks_the_fact_chain_is_refused_before_any_cloud_call(tmp_path, args, named):
    rc, out = deploy(tmp_path, *args)
    assert rc == 2, out
    flat = " ".join(out.split())
    assert "deploy_party.yml runs as a whole" in flat, out
    selection = flat.split(" so ", 1)[1].split(" would run roles")[0] + " "
    assert all(word in selection for word in named), selection
    assert "--skip-tags may leave out connector_db, monitoring, privatelink, prss_init" in flat
    # nothing after the check ran: the last task is the check itself, and no role's task started
    assert tasks_run(out)[-1] == GUARD, tasks_run(out)
    assert not [t for t in tasks_run(out) if "eks_cluster" in t or "privatelink" in t]


def test_skipping_the_leaf_roles_passes_the_check(tmp_path):
    rc, out = deploy(tmp_path, "--skip-tags", "prss_init,monitoring,connector_db", "--check")
    assert rc != 0, out  # AWS is a closed port: the run fails at its first cloud call...
    names = tasks_run(out)
    assert GUARD in names and names[-1] != GUARD, names  # ...after the check let it through
    assert "runs as a whole" not in out
    # the first cloud call: lb_controller's preflight looks for the cluster (verify mode in the sandbox)
    assert any(name.startswith(("threshold_kms.mpc_party.lb_controller", "threshold_kms.mpc_party.eks_cluster"))
               for name in names), names
