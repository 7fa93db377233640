"""lb_controller's IAM documents, rendered by Ansible from the role's templates and vars.

The controller's permissions must follow the caller's partition, let it change or delete only
what carries its cluster tag, and its role must trust only its own ServiceAccount.
"""
import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.support.playbooks import ROOT

ROLE = os.path.join(ROOT, "roles", "lb_controller")
PROVIDER = "arn:aws-cn:iam::210000001111:oidc-provider/oidc.eks.cn-north-1.amazonaws.com.cn/id/0123456789ABCDEF0123456789ABCDEF"


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    out = tmp_path_factory.mktemp("lbc")
    play = [{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"lb_controller_oidc_provider_arn": PROVIDER, "lb_controller_namespace": "kube-system",
                 "lb_controller_name": "aws-load-balancer-controller", "_lb_controller_partition": "aws-cn"},
        "tasks": [{"ansible.builtin.include_vars": {"file": os.path.join(ROLE, "vars", "main.yml")}}] + [
            {"ansible.builtin.copy": {"content": "{{ lookup('ansible.builtin.template', '%s') }}"
                                                % os.path.join(ROLE, "templates", name),
                                      "dest": str(out / name), "mode": "0600"}}
            for name in ("iam-policy.json.j2", "irsa-trust.json.j2")
        ],
    }]
    (out / "play.yml").write_text(yaml.safe_dump(play))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable, str(out / "play.yml")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {name: json.loads((out / name).read_text()) for name in ("iam-policy.json.j2", "irsa-trust.json.j2")}


def _statements(policy):
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        yield statement, actions, resources


def test_every_arn_is_in_the_callers_partition(documents):
    arns = [r for _s, _a, resources in _statements(documents["iam-policy.json.j2"]) for r in resources if r != "*"]
    assert arns and all(r.startswith("arn:aws-cn:") for r in arns), arns


def test_deletions_and_changes_need_the_controllers_cluster_tag(documents):
    destructive = ("elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:DeleteTargetGroup",
                   "elasticloadbalancing:ModifyLoadBalancerAttributes", "elasticloadbalancing:SetSubnets",
                   "ec2:DeleteSecurityGroup")
    seen = set()
    for statement, actions, _resources in _statements(documents["iam-policy.json.j2"]):
        for action in set(actions) & set(destructive):
            seen.add(action)
            assert statement["Condition"]["Null"]["aws:ResourceTag/elbv2.k8s.aws/cluster"] == "false", statement
    assert seen == set(destructive)
    creations = [s for s, actions, _r in _statements(documents["iam-policy.json.j2"])
                 if "elasticloadbalancing:CreateLoadBalancer" in actions]
    assert creations and all(s["Condition"]["Null"]["aws:RequestTag/elbv2.k8s.aws/cluster"] == "false" for s in creations)


def test_the_role_trusts_only_the_controllers_service_account_of_this_cluster(documents):
    (statement,) = documents["irsa-trust.json.j2"]["Statement"]
    assert statement["Principal"] == {"Federated": PROVIDER}
    issuer = "oidc.eks.cn-north-1.amazonaws.com.cn/id/0123456789ABCDEF0123456789ABCDEF"
    assert statement["Condition"]["StringEquals"] == {
        issuer + ":sub": "system:serviceaccount:kube-system:aws-load-balancer-controller",
        issuer + ":aud": "sts.amazonaws.com"}
