"""prss_init's input rules (plugins/module_utils/rules_prss_init.py), through role_inputs.check with the
role's real argument spec: each rule passes a good value and names the variable of a bad one."""

import pytest

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import role_inputs
from tests.support.role_specs import for_role


spec = for_role("prss_init")


VALID = {
    "prss_init_kubeconfig": "/tmp/kubeconfig",
    "prss_init_kube_context": "",
    "prss_init_namespace": "kms",
    "prss_init_pod": "kms-core-0",
    "prss_init_port": 50100,
    "prss_init_parties": 4,
    "prss_init_party_id": 1,
    "prss_init_private_bucket": "kms-p1-private",
    "prss_init_private_prefix": "PRIV-p1",
    "prss_init_context_id": "07" + "0" * 61 + "1",
    "prss_init_epoch_id": "08" + "0" * 61 + "1",
    "prss_init_min_health": "Optimal",
    "prss_init_health_timeout": 5,
    "prss_init_rpc_timeout": 10,
    "prss_init_timeout": 1200,
    "prss_init_poll_interval": 2,
    "prss_init_progress_interval": 30,
    "prss_init_cross_check": True,
    "prss_init_unconnected_peers": [],
}


def check(**change):
    options = spec()
    values = dict((k, v) for k, v in dict(VALID, **change).items() if k in options)
    return role_inputs.check("prss_init", options, values)[0]


@pytest.mark.parametrize("change", [{}, {"prss_init_parties": 7, "prss_init_party_id": 7},
                                    {"prss_init_parties": 13, "prss_init_party_id": 10},
                                    {"prss_init_timeout": "1200", "prss_init_poll_interval": 0.5},
                                    {"prss_init_min_health": "Healthy"},
                                    {"prss_init_unconnected_peers": [2, 4]},
                                    {"prss_init_unconnected_peers": ["3"]}])
def test_good_inputs_pass(change):
    assert check(**change) == []


@pytest.mark.parametrize("change, variable, words", [
    ({"prss_init_timeout": 0}, "prss_init_timeout", "a positive number of seconds (got 0"),
    ({"prss_init_timeout": "soon"}, "prss_init_timeout", "must be of type float"),
    ({"prss_init_health_timeout": -1}, "prss_init_health_timeout", "a positive number of seconds"),
    ({"prss_init_rpc_timeout": 0}, "prss_init_rpc_timeout", "a positive number of seconds"),
    ({"prss_init_poll_interval": 0}, "prss_init_poll_interval", "a positive number of seconds"),
    ({"prss_init_progress_interval": 0}, "prss_init_progress_interval", "a positive number of seconds"),
    ({"prss_init_parties": 3, "prss_init_party_id": 1}, "prss_init_parties", "n = 3t + 1, at least 4"),
    ({"prss_init_parties": 5}, "prss_init_parties", "n = 3t + 1"),
    ({"prss_init_parties": "four"}, "prss_init_parties", "must be of type int"),
    ({"prss_init_party_id": 5}, "prss_init_party_id", "1..4 (got 5)"),
    ({"prss_init_party_id": 0}, "prss_init_party_id", "1..4"),
    ({"prss_init_namespace": "Kms"}, "prss_init_namespace", "a Kubernetes namespace"),
    ({"prss_init_pod": "kms_core_0"}, "prss_init_pod", "a pod name such as kms-core-0"),
    ({"prss_init_port": 70000}, "prss_init_port", "a port, 1..65535"),
    ({"prss_init_port": 0}, "prss_init_port", "a port, 1..65535"),
    ({"prss_init_private_bucket": "KMS_private"}, "prss_init_private_bucket", "S3 bucket names use only lowercase"),
    ({"prss_init_private_prefix": "/PRIV-p1"}, "prss_init_private_prefix", "letters, digits, '-' and '_'"),
    ({"prss_init_private_prefix": ""}, "prss_init_private_prefix", "non-empty"),
    ({"prss_init_context_id": "0x" + "a" * 64}, "prss_init_context_id", "64 lower-case hex characters"),
    ({"prss_init_epoch_id": "A" * 64}, "prss_init_epoch_id", "64 lower-case hex characters"),
    ({"prss_init_min_health": "Degraded"}, "prss_init_min_health", "must be one of: Optimal, Healthy"),
    ({"prss_init_unconnected_peers": [1]}, "prss_init_unconnected_peers", "without this party's 1 (got [1]"),
    ({"prss_init_unconnected_peers": [2, 5, 0]}, "prss_init_unconnected_peers", "1 to 4 without this party's 1 (got [5, 0]"),
    ({"prss_init_unconnected_peers": ["two"]}, "prss_init_unconnected_peers", "int"),
])
def test_each_mistake_names_its_variable(change, variable, words):
    problems = check(**change)
    assert problems, "no problem found for %s" % change
    assert all(p.startswith("prss_init: %s: " % variable) for p in problems), problems
    assert any(words in p for p in problems), problems


def test_every_timeout_at_once():
    problems = check(prss_init_timeout=0, prss_init_rpc_timeout=0)
    assert sorted(p.split(": ")[1] for p in problems) == ["prss_init_rpc_timeout", "prss_init_timeout"]


def test_a_word_in_one_timeout_does_not_hide_a_zero_in_another():
    problems = check(prss_init_timeout=0, prss_init_health_timeout="five")
    assert sorted(p.split(": ")[1] for p in problems) == ["prss_init_health_timeout", "prss_init_timeout"]
