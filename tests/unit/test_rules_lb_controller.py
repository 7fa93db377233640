"""lb_controller's input rules (plugins/module_utils/rules_lb_controller.py), through role_inputs.check with
the role's real argument spec, and each mistake reported once across its two entry points."""
import os

import pytest

from ansible_collections.threshold_kms.mpc_party.plugins.action.role_inputs import playbook_roles
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import role_inputs
from tests.support.role_specs import for_role

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


spec = for_role("lb_controller")


VALID = {
    "lb_controller_mode": "install",
    "lb_controller_cluster_name": "kms-sandbox-p1",
    "lb_controller_region": "eu-west-1",
    "lb_controller_chart_version": "3.5.0",
    "lb_controller_image_repository": "public.ecr.aws/eks/aws-load-balancer-controller",
    "lb_controller_image_tag": "v3.5.0",
    "lb_controller_image_digest": "",
    "lb_controller_replicas": 2,
    "lb_controller_wait_timeout": 600,
    "lb_controller_oidc_provider_arn": "",
    "lb_controller_helm_binary": "helm",
}


def check(entry="main", **change):
    options = spec(entry)
    values = dict((k, v) for k, v in dict(VALID, **change).items() if k in options)
    return role_inputs.check("lb_controller", options, values)[0]


@pytest.mark.parametrize("change, variable, words", [
    ({"lb_controller_chart_version": "3.5"}, "lb_controller_chart_version", "a released chart version such as 3.5.0"),
    ({"lb_controller_chart_version": "latest"}, "lb_controller_chart_version", "a released chart version"),
    ({"lb_controller_image_tag": "latest"}, "lb_controller_image_tag", "never latest"),
    ({"lb_controller_image_tag": "3.5.0"}, "lb_controller_image_tag", "a release tag such as v3.5.0"),
    ({"lb_controller_image_digest": "sha256:abc"}, "lb_controller_image_digest", "sha256:<64 lowercase hex>"),
    ({"lb_controller_image_repository": "Public.ECR.aws/EKS/Controller:v1"}, "lb_controller_image_repository",
     "an image repository"),
    ({"lb_controller_replicas": 0}, "lb_controller_replicas", "at least 1"),
    ({"lb_controller_replicas": "two"}, "lb_controller_replicas", "must be of type int"),
    ({"lb_controller_wait_timeout": 0}, "lb_controller_wait_timeout", "seconds, at least 1"),
    ({"lb_controller_wait_timeout": "ten minutes"}, "lb_controller_wait_timeout", "must be of type int"),
    ({"lb_controller_oidc_provider_arn": "oidc.eks.eu-west-1.amazonaws.com/id/X"}, "lb_controller_oidc_provider_arn",
     "the IAM OIDC provider ARN"),
    ({"lb_controller_mode": "helm"}, "lb_controller_mode", "must be one of"),
])
def test_a_broken_rule_names_its_variable_once(change, variable, words):
    problems = check(**change)
    assert len(problems) == 1, problems
    assert problems[0].startswith("lb_controller: %s: " % variable) and words in problems[0], problems


@pytest.mark.parametrize("change", [
    {},
    {"lb_controller_image_digest": "sha256:" + "0" * 64},
    {"lb_controller_oidc_provider_arn": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/X"},
    {"lb_controller_oidc_provider_arn": "(known after apply)"},
    {"lb_controller_mode": "verify", "lb_controller_oidc_provider_arn": "not an arn"},
    {"lb_controller_replicas": "3", "lb_controller_wait_timeout": "60"},
    {"lb_controller_image_repository": "registry.example:5000/mirror/aws-load-balancer-controller"},
])
def test_good_inputs_pass(change):
    assert check(**change) == []


def test_the_preflight_entry_point_leaves_the_main_inputs_to_main():
    """deploy_party.yml reaches lb_controller through preflight (before the cluster exists and again
    once it is ACTIVE) and then main: the chart, image, replica, timeout and OIDC variables are in
    main's spec only, so preflight reports none of their mistakes and each is reported once."""
    entries = [entry for role, entry, _ in playbook_roles(os.path.join(ROOT, "playbooks", "deploy_party.yml"))
               if role == "lb_controller"]
    assert set(entries) == {"main", "preflight"} and entries.count("main") == 1, entries
    bad = dict(lb_controller_chart_version="3.5", lb_controller_image_tag="latest", lb_controller_replicas=0,
               lb_controller_wait_timeout=0, lb_controller_image_digest="sha256:abc",
               lb_controller_oidc_provider_arn="not an arn")
    everything = check("preflight", **bad) + check("main", **bad)
    assert check("preflight", **bad) == []
    assert len(everything) == len(set(everything)) == 6, everything
    shared = set(spec("preflight")) & set(spec("main"))
    assert shared.isdisjoint(bad)
