"""eks_cluster, nitro_nodegroup, vault_buckets and connector_db have no per-phase tags.

Their phases hand registered results and facts to each other (the network's subnets to the
cluster, the cluster to the OIDC provider, the buckets to the IRSA policies, ...), so one phase
alone cannot run, and deploy_party.yml refuses --tags anyway (tests/unit/test_deploy_tags.py).
The tags they carried were also inert: a tag on ``include_tasks`` without ``apply:`` selects the
include, not the tasks it loads, so ``--tags <role>_<phase>`` ran nothing. The roles run whole;
deploy_party.yml's role tags (``--skip-tags`` of the leaf roles) still apply to every task.
"""
import pathlib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLES = ["eks_cluster", "nitro_nodegroup", "vault_buckets", "connector_db"]


def tagged(tasks, where):
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        if "tags" in task:
            yield "%s: %s %s" % (where, task.get("name", "?"), task["tags"])
        for key in ("block", "rescue", "always"):
            yield from tagged(task.get(key), where)


@pytest.mark.parametrize("role", ROLES)
def test_no_task_of_the_role_carries_a_tag(role):
    files = sorted((ROOT / "roles" / role / "tasks").glob("*.yml"))
    assert files
    found = [line for f in files for line in tagged(yaml.safe_load(f.read_text()), f.name)]
    assert found == []


@pytest.mark.parametrize("role", ROLES)
def test_the_readme_advertises_no_phase_tag(role):
    readme = (ROOT / "roles" / role / "README.md").read_text()
    assert "(tag)" not in readme and "--tags" not in readme
