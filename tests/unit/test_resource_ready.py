"""resource_ready: the bounded, reporting wait for what takes minutes on AWS (module_utils/resource_ready
and the module, run in-process against the AWS stand-in's moto). Ports 23420-23439.

The stand-in here is not in latency mode (its resources are ready at once; tests/unit/test_aws_latency.py
shows the transitional states): the module's waiting is shown with a node group whose EKS stand-in
reports CREATING, CREATE_FAILED or DEGRADED (sandbox/aws_standin_eks.nodegroup_fault).
"""
import datetime
import json
import time

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import resource_ready as rr
from ansible_collections.threshold_kms.mpc_party.plugins.modules import resource_ready as module

MOTO_PORT_BASE = 23420  # + the xdist worker number (the moto_url fixture of conftest.py)
REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/nodes"


# ------------------------------------------------------------------ module_utils
@pytest.mark.parametrize("kind,state,expected", [
    ("eks_cluster", "ACTIVE", "ready"), ("eks_cluster", "CREATING", "waiting"), ("eks_cluster", "UPDATING", "waiting"),
    ("eks_cluster", "FAILED", "failed"), ("eks_cluster", None, "failed"),
    ("eks_nodegroup", "CREATE_FAILED", "failed"), ("eks_nodegroup", "DEGRADED", "failed"),
    ("eks_nodegroup", "UPDATING", "waiting"),
    ("db_instance", "available", "ready"), ("db_instance", "backing-up", "waiting"),
    ("db_instance", "incompatible-parameters", "failed"),
    ("nat_gateway", "pending", "waiting"), ("nat_gateway", "failed", "failed"), ("nat_gateway", "available", "ready"),
    ("eks_update", "InProgress", "waiting"), ("eks_update", "Successful", "ready"), ("eks_update", "Failed", "failed"),
    ("eks_update", "Cancelled", "failed"),
])
def test_verdict(kind, state, expected):
    assert rr.verdict(kind, state) == expected


def test_age_and_the_progress_line():
    now = datetime.datetime(2026, 12, 7, 12, 0, 0, tzinfo=datetime.timezone.utc)
    described = {"status": "CREATING", "createdAt": now - datetime.timedelta(minutes=4, seconds=5)}
    age = rr.age_seconds("eks_cluster", described, now=now)
    assert age == 245
    assert rr.progress_line("eks_cluster", "kms-p1", "CREATING", age) == (
        "EKS cluster kms-p1: CREATING, created 4m 05s ago (AWS typically takes 10-15 min)")
    assert rr.progress_line("nat_gateway", "nat-1", "available", 75) == "NAT gateway nat-1: available (created 1m 15s ago)"
    assert rr.age_seconds("eks_cluster", {"status": "ACTIVE"}) is None
    assert rr.duration(None) == "?" and rr.duration(9.6) == "10s"


def test_an_eks_update_is_named_by_its_type_and_cluster_and_a_failed_one_says_why():
    update = {"id": "u-1", "type": "EndpointAccessUpdate", "status": "Failed",
              "errors": [{"errorCode": "AccessDenied", "errorMessage": "not authorized to use the key"}]}
    assert rr.display_name("eks_update", "u-1", update, "kms-p1") == "EndpointAccessUpdate of cluster kms-p1 (u-1)"
    assert rr.display_name("eks_cluster", "kms-p1", {"status": "ACTIVE"}) == "kms-p1"
    assert rr.failure("eks_update", update, "kms-p1") == (
        "EKS update u-1 (EndpointAccessUpdate) of cluster kms-p1 ended Failed: AccessDenied: not authorized to use the key")
    assert rr.failure("eks_update", dict(update, errors=[]), "kms-p1") is None
    assert rr.failure("eks_cluster", {"status": "FAILED"}) is None


# ------------------------------------------------------------------ the module against moto
@pytest.fixture()
def aws(eks_account):
    """Cluster ``c`` in two subnets (conftest.eks_account) with node group ``ng``."""
    from sandbox.aws_standin_eks import nodegroup_fault

    eks_account["eks"].create_nodegroup(clusterName="c", nodegroupName="ng", nodeRole=ROLE,
                                        subnets=eks_account["subnets"])
    yield eks_account
    nodegroup_fault("ng", None)


def run(aws, capsys, check_mode=False, **args):
    base = dict(args, endpoint_url=aws["url"], region=REGION)
    if check_mode:
        base["_ansible_check_mode"] = True
    with patch_module_args(base):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def test_a_ready_cluster_returns_at_once_with_its_description(aws, capsys):
    out = run(aws, capsys, kind="eks_cluster", name="c")
    assert out["ready"] is True and out["exists"] is True and out["state"] == "ACTIVE", out
    assert out["resource"]["name"] == "c" and out["resource"]["version"] == "1.32"
    assert out["progress"].startswith("EKS cluster c: ACTIVE (created ") and out["age"] >= 0


def test_a_transitional_state_reports_after_report_after_seconds(aws, capsys):
    from sandbox.aws_standin_eks import nodegroup_fault

    nodegroup_fault("ng", "UPDATING")
    started = time.monotonic()
    out = run(aws, capsys, kind="eks_nodegroup", name="ng", cluster_name="c", poll_interval=1, report_after=2)
    assert 1 <= time.monotonic() - started < 10
    assert out["ready"] is False and out["state"] == "UPDATING" and out.get("failed") is not True, out
    assert "EKS node group ng: UPDATING, created" in out["progress"] and "3-5 min" in out["progress"]


def test_a_failed_node_group_stops_the_wait_with_what_eks_reports(aws, capsys):
    from sandbox.aws_standin_eks import nodegroup_fault

    nodegroup_fault("ng", "CREATE_FAILED", [{"code": "AsgInstanceLaunchFailures", "message": "Could not launch",
                                             "resourceIds": ["asg-1"]}])
    started = time.monotonic()
    out = run(aws, capsys, kind="eks_nodegroup", name="ng", cluster_name="c", poll_interval=1, report_after=30)
    assert time.monotonic() - started < 10, "a failed state must not be waited on"
    assert out["failed"] is True and out["state"] == "CREATE_FAILED"
    assert "AsgInstanceLaunchFailures: Could not launch (asg-1)" in out["msg"], out["msg"]


def test_a_missing_resource_fails_unless_check_mode_did_not_create_it(aws, capsys):
    missing = run(aws, capsys, kind="eks_cluster", name="nope")
    assert missing["failed"] is True and "EKS cluster nope: absent" in missing["msg"], missing
    checked = run(aws, capsys, check_mode=True, kind="nat_gateway", name="nat-0123456789abcdef0")
    assert checked.get("failed") is not True and checked["ready"] is True and checked["exists"] is False, checked


def test_a_nat_gateway_is_read_by_its_id(aws, capsys):
    subnet = aws["subnets"][0]
    nat = aws["ec2"].create_nat_gateway(SubnetId=subnet, ConnectivityType="private")["NatGateway"]["NatGatewayId"]
    out = run(aws, capsys, kind="nat_gateway", name=nat)
    assert out["ready"] is True and out["state"] == "available" and out["resource"]["nat_gateway_id"] == nat, out


def test_bad_intervals_are_refused_naming_them(aws, capsys):
    out = run(aws, capsys, kind="eks_cluster", name="c", poll_interval=0)
    assert out["failed"] is True and "poll_interval must be at least 1" in out["msg"], out


# ------------------------------------------------------------------ the roles' poll intervals
@pytest.mark.parametrize("role", ["eks_cluster", "nitro_nodegroup", "connector_db"])
@pytest.mark.parametrize("value,ok", [(1, True), (15, True), (60, True), (0, False), (61, False)])
def test_each_roles_poll_interval_is_checked_by_the_one_rule(role, value, ok):
    from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import role_rules

    name = "%s_wait_poll_interval" % role
    problems = [p for p in role_rules.check(role, {name: value}) if p.startswith(name)]
    assert (problems == []) is ok, problems
    if not ok:
        assert problems == ["%s: seconds between two reads of a resource being waited for, 1..60 (got %d)" % (name, value)]
