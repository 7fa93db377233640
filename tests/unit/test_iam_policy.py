"""The deploy role's IAM policy (meta/iam/*.json) against the AWS calls the playbooks can make.

tests/unit/iam_scan.py finds every module the roles and playbooks call and, from the modules' own
code (this collection's and the installed amazon.aws/community.aws), the IAM actions each can use.
The policy must allow every action the roles need, and grant nothing else but the short allowlist
of tests/unit/data/iam_module_actions.yml. A role that starts using a new module or a module that
starts making a new call fails here until the policy says so.
"""

import fnmatch
import glob
import json
import os
import re
import string

import pytest
import yaml

from tests.unit import iam_scan

POLICY_DIR = os.path.join(iam_scan.ROOT, "meta", "iam")
PLACEHOLDERS = {"ClusterName": "zama-testnet-party1", "VaultBuckets": "zama-testnet-p1-*"}
MANAGED_POLICY_LIMIT = 6144  # characters of a managed policy, whitespace not counted
# Services whose resources the policy does not scope (EC2/ELB/RDS ARNs carry generated ids or
# need tag conditions); everything else written with Resource "*" is listed here, read-only.
UNSCOPED_SERVICES = ("ec2", "elasticloadbalancing", "rds")
ACCOUNT_WIDE = {"iam:ListOpenIDConnectProviders", "iam:ListPolicies", "kms:CreateKey", "kms:ListAliases",
                "kms:ListKeys", "s3:ListAllMyBuckets", "sts:GetCallerIdentity"}


def policy_files():
    return sorted(glob.glob(os.path.join(POLICY_DIR, "*.json")))


def load(path):
    with open(path) as handle:
        return json.load(handle)


def statements():
    return [st for path in policy_files() for st in load(path)["Statement"]]


def listed(value):
    return value if isinstance(value, list) else [value]


def granted():
    return {action for st in statements() for action in listed(st["Action"])}


@pytest.fixture(scope="module")
def data():
    return iam_scan.load_data()


@pytest.fixture(scope="module")
def actions(data):
    return iam_scan.module_actions(data)


def test_policy_documents_are_well_formed():
    assert policy_files(), "no policy document under meta/iam"
    for path in policy_files():
        with open(path) as handle:
            text = handle.read()
        names = set(re.findall(r"\$\{(\w+)\}", text))
        assert names <= set(PLACEHOLDERS), "%s: undocumented placeholders %s" % (path, names - set(PLACEHOLDERS))
        rendered = string.Template(text).substitute(PLACEHOLDERS)
        doc = json.loads(rendered)
        assert doc["Version"] == "2012-10-17"
        assert len(re.sub(r"\s", "", rendered)) <= MANAGED_POLICY_LIMIT, "%s: over the managed policy size" % path
        sids = [st["Sid"] for st in doc["Statement"]]
        assert len(sids) == len(set(sids))
        for st in doc["Statement"]:
            assert st["Effect"] == "Allow" and set(st) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, st
            for action in listed(st["Action"]):
                assert re.match(r"^[a-z0-9-]+:[A-Za-z0-9]+$", action), "%s: %s is not one action" % (st["Sid"], action)


def test_the_scan_finds_the_aws_modules_and_their_calls(actions):
    used = iam_scan.modules_used()
    assert any(m.startswith("amazon.aws.") for m in used) and any(m.startswith("community.aws.") for m in used)
    own = {m for m in used if m.startswith(iam_scan.COLLECTION + ".") and iam_scan.is_aws_module(m)}
    assert own, "none of this collection's modules opens an AWS client?"
    for fqcn, (found, _needed) in actions.items():
        assert found, "%s: the scan finds no AWS call in its code" % fqcn


def test_policy_allows_every_action_the_roles_need(actions):
    allowed = granted()
    missing = {fqcn: sorted(needed - allowed) for fqcn, (_found, needed) in actions.items() if needed - allowed}
    assert not missing, "meta/iam lacks actions the roles' modules call: %s" % missing


def test_policy_grants_no_action_no_module_needs(actions, data):
    needed = set().union(*(needed for _found, needed in actions.values()))
    extra = granted() - needed - set(data["allowlist"])
    assert not extra, "meta/iam grants actions no module of the roles calls: %s" % sorted(extra)


def test_every_exclusion_and_allowance_still_applies(actions, data):
    """An exclusion of a call the code no longer makes, or an allowance not in the policy, goes."""
    for fqcn, entry in data["not_reached"].items():
        assert fqcn in actions, "not_reached names %s, which no task calls" % fqcn
        assert entry["why"] and set(entry["actions"]) <= actions[fqcn][0], (
            "%s: not_reached lists calls the code does not make: %s" % (fqcn, set(entry["actions"]) - actions[fqcn][0]))
    for fqcn in data["dynamic_calls"]:
        assert fqcn in actions, "dynamic_calls names %s, which no task calls" % fqcn
        assert iam_scan.dynamic_calls(fqcn, data["dynamic_calls"][fqcn]), "%s: no task asks for a dynamic call" % fqcn
    for action, entry in data["allowlist"].items():
        assert entry["why"] and action in granted(), action
    for key in data["iam_names"]:
        prefix, op = key.split(":")
        assert prefix == "s3" and op in iam_scan.operations("s3").values(), "iam_names: %s is no operation" % key


def test_resources_are_scoped_where_the_names_are_known():
    for st in statements():
        resources = listed(st["Resource"])
        for action in listed(st["Action"]):
            service = action.split(":")[0]
            if "*" in resources:
                assert service in UNSCOPED_SERVICES or action in ACCOUNT_WIDE, (
                    "%s: %s on every resource" % (st["Sid"], action))
            elif service == "s3":
                assert all(r.startswith("arn:aws:s3:::${VaultBuckets}") for r in resources), st["Sid"]
            elif action != "iam:CreateServiceLinkedRole" and ":role/" in " ".join(resources):
                assert all("${ClusterName}-" in r for r in resources if ":role/" in r), st["Sid"]
    pass_role = [st for st in statements() if "iam:PassRole" in listed(st["Action"])]
    assert pass_role and all(listed(st["Resource"]) == ["arn:aws:iam::*:role/${ClusterName}-*"] for st in pass_role)
    linked = [st for st in statements() if "iam:CreateServiceLinkedRole" in listed(st["Action"])]
    assert linked and all(st["Condition"]["StringEquals"]["iam:AWSServiceName"] for st in linked)


def test_the_collection_build_ships_the_policy():
    with open(os.path.join(iam_scan.ROOT, "galaxy.yml")) as handle:
        ignored = yaml.safe_load(handle).get("build_ignore", [])
    for path in policy_files():
        rel = os.path.relpath(path, iam_scan.ROOT)
        parts = rel.split(os.sep)
        prefixes = [os.sep.join(parts[:i]) for i in range(1, len(parts) + 1)]
        assert not any(fnmatch.fnmatch(p, pattern) for p in prefixes for pattern in ignored), rel
