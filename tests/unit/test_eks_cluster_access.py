"""eks_control_plane, eks_cluster_access and eks_addon, run in-process against the AWS stand-in
(moto + the EKS extension of sandbox/aws_standin_eks.py), and their planning functions directly."""
import json
import os

import boto3
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import eks_access
from ansible_collections.threshold_kms.mpc_party.plugins.modules import (eks_addon, eks_cluster_access, eks_control_plane,
                                                                       resource_ready)
from sandbox import aws_latency

REGION = "eu-west-1"
MOTO_PORT_BASE = 17100  # + the xdist worker number; the moto_url fixture is in conftest.py
ACCOUNT = "123456789012"  # moto's account for keys it does not know
OPS = "arn:aws:iam::%s:role/kms-operators" % ACCOUNT
AWX = "arn:aws:iam::%s:role/automation/awx" % ACCOUNT
ADMIN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"


@pytest.fixture(scope="module")
def aws(moto_url):
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    kw = dict(endpoint_url=moto_url, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    eks = boto3.client("eks", **kw)
    yield {"url": moto_url, "eks": eks}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def new_cluster(aws, name):
    aws["eks"].create_cluster(name=name, roleArn="arn:aws:iam::%s:role/%s-cluster" % (ACCOUNT, name),
                              resourcesVpcConfig={"subnetIds": ["subnet-0a", "subnet-0b"]})
    return name


def run(module, aws, capsys, check=False, **args):
    with patch_module_args(dict(args, endpoint_url=aws["url"], region=REGION, _ansible_check_mode=check)):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


ACCESS = dict(
    authentication_mode="API_AND_CONFIG_MAP",
    access_entries=[
        {"principal_arn": OPS, "policies": [{"policy": "AmazonEKSClusterAdminPolicy"}]},
        {"principal_arn": AWX, "kubernetes_groups": ["deployers"],
         "policies": [{"policy": "AmazonEKSViewPolicy", "scope": "namespace", "namespaces": ["kms"]}]},
    ],
    endpoint_private_access=True,
    endpoint_public_access=False,
    logging_types=["api", "audit", "authenticator"],
    secrets_encryption_key_arn="arn:aws:kms:eu-west-1:%s:key/0f1e2d3c-aaaa-bbbb-cccc-000000000001" % ACCOUNT,
)


SETTINGS = {k: v for k, v in ACCESS.items() if k != "access_entries"}  # what CreateCluster takes


def create(aws, capsys, name, check=False, **settings):
    return run(eks_control_plane, aws, capsys, check=check, name=name, version="1.32",
               role_arn="arn:aws:iam::%s:role/%s-cluster" % (ACCOUNT, name), subnets=["subnet-0a", "subnet-0b"],
               security_groups=["sg-0c"], tags={"party": "p1"}, **settings)


def caller_principal(aws):
    # moto names a caller it does not know arn:aws:sts::<account>:user/moto; the IAM user is the principal
    arn = boto3.client("sts", endpoint_url=aws["url"], region_name=REGION).get_caller_identity()["Arn"]
    return arn.replace(":sts::", ":iam::")


@pytest.mark.parametrize("settings", [
    SETTINGS,
    dict(SETTINGS, endpoint_public_access=True, public_access_cidrs=["203.0.113.0/24"], logging_types=["audit"]),
    dict(authentication_mode="API", endpoint_private_access=True, logging_types=[]),
], ids=["private-endpoint-encrypted", "public-cidrs", "api-mode-no-logs"])
def test_a_cluster_created_with_its_settings_needs_no_update_after(aws, capsys, settings):
    name = "created-%d" % len(aws["eks"].list_clusters()["clusters"])
    out = create(aws, capsys, name, **settings)
    assert out["changed"] is True and out["status"] in ("CREATING", "ACTIVE"), out
    assert out["request"]["accessConfig"] == {"authenticationMode": settings["authentication_mode"]}
    # eks_cluster_access finds nothing to update: only the access entries are left to make
    entries = dict(settings, access_entries=ACCESS["access_entries"])
    plan = run(eks_cluster_access, aws, capsys, check=True, name=name, **entries)
    assert {c["call"] for c in plan["calls"]} == {"create_access_entry", "associate_access_policy"}, plan["calls"]
    made = run(eks_cluster_access, aws, capsys, name=name, wait=False, **entries)
    assert made["pending_update"] is None and made["changed"] is True
    assert aws["eks"].list_updates(name=name)["updateIds"] == []
    # the creator is a cluster admin through its own access entry (EKS's default at creation)
    creator = caller_principal(aws)
    assert sorted(made["cluster_access"]["access_entries"]) == sorted([OPS, AWX, creator])
    assert made["cluster_access"]["access_entries"][creator]["policies"] == {ADMIN: {"type": "cluster"}}
    cluster = aws["eks"].describe_cluster(name=name)["cluster"]
    assert cluster["version"] == "1.32" and cluster["tags"] == {"party": "p1"}
    assert sorted(cluster["resourcesVpcConfig"]["subnetIds"]) == ["subnet-0a", "subnet-0b"]
    # and a second run of each changes nothing
    again = create(aws, capsys, name, **settings)
    assert again["changed"] is False and again["request"] == {} and again["name"] == name
    assert run(eks_cluster_access, aws, capsys, name=name, **entries)["changed"] is False


def test_a_cluster_created_with_the_settings_matches_one_updated_to_them(aws, capsys):
    created = create(aws, capsys, "created-vs-updated", **SETTINGS)["name"]
    updated = new_cluster(aws, "updated-vs-created")
    assert run(eks_cluster_access, aws, capsys, name=updated, **ACCESS)["changed"] is True
    both = [run(eks_cluster_access, aws, capsys, name=n, **ACCESS)["cluster_access"] for n in (created, updated)]
    for access in both:
        access.pop("access_entries")  # the created one has its creator's entry too
    assert both[0] == both[1]


def test_check_mode_creates_nothing_and_shows_the_request(aws, capsys):
    out = create(aws, capsys, "created-check", check=True, **SETTINGS)
    assert out["changed"] is True
    vpc = out["request"]["resourcesVpcConfig"]
    assert (vpc["endpointPublicAccess"], vpc["endpointPrivateAccess"]) == (False, True) and "publicAccessCidrs" not in vpc
    assert out["request"]["encryptionConfig"][0]["provider"]["keyArn"] == SETTINGS["secrets_encryption_key_arn"]
    assert out["request"]["logging"] == {"clusterLogging": [{"types": ["api", "audit", "authenticator"], "enabled": True}]}
    assert "created-check" not in aws["eks"].list_clusters()["clusters"]


def test_creating_needs_a_role_and_two_subnets_and_an_existing_network_is_not_changed(aws, capsys):
    out = run(eks_control_plane, aws, capsys, name="created-without-role", subnets=["subnet-0a"])
    assert out["failed"] is True and "role_arn: required" in out["msg"] and "subnets: two or more" in out["msg"]
    assert "created-without-role" not in aws["eks"].list_clusters()["clusters"]
    name = create(aws, capsys, "created-network")["name"]
    out = run(eks_control_plane, aws, capsys, name=name, subnets=["subnet-0a", "subnet-0z"], security_groups=["sg-0c"])
    assert out["failed"] is True and out["msg"].startswith("eks_control_plane: subnets: cluster created-network has "
                                                           "subnet-0a, subnet-0b"), out["msg"]
    out = run(eks_control_plane, aws, capsys, name=name, endpoint_public_access=False, endpoint_private_access=False)
    assert out["failed"] is True and "at least one must be true" in out["msg"]
    # another version is reported, not upgraded (the role names its variable; upgrades are deliberate)
    out = run(eks_control_plane, aws, capsys, name=name, version="1.33", subnets=["subnet-0b", "subnet-0a"])
    assert out["changed"] is False and out["version"] == "1.32" and out["request"] == {}


def test_check_mode_plans_everything_and_changes_nothing(aws, capsys):
    name = new_cluster(aws, "access-check")
    out = run(eks_cluster_access, aws, capsys, check=True, name=name, **ACCESS)
    assert out["changed"] is True
    calls = [c["call"] for c in out["calls"]]
    # mode first (entries need it), endpoint last (closing it could cut off the run itself)
    assert calls[0] == "update_cluster_config" and out["calls"][0]["params"] == {
        "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"}}
    assert out["calls"][-1]["params"] == {"resourcesVpcConfig": {"endpointPublicAccess": False,
                                                                 "endpointPrivateAccess": True}}
    assert calls.count("create_access_entry") == 2 and calls.count("associate_access_policy") == 2
    cluster = aws["eks"].describe_cluster(name=name)["cluster"]
    assert cluster["accessConfig"]["authenticationMode"] == "CONFIG_MAP"
    assert cluster["resourcesVpcConfig"]["endpointPublicAccess"] is True
    assert cluster["encryptionConfig"] == []


def test_apply_then_rerun_is_unchanged(aws, capsys):
    name = new_cluster(aws, "access-apply")
    out = run(eks_cluster_access, aws, capsys, name=name, **ACCESS)
    assert out["changed"] is True, out
    eks = aws["eks"]
    cluster = eks.describe_cluster(name=name)["cluster"]
    assert cluster["accessConfig"]["authenticationMode"] == "API_AND_CONFIG_MAP"
    vpc = cluster["resourcesVpcConfig"]
    assert (vpc["endpointPublicAccess"], vpc["endpointPrivateAccess"]) == (False, True)
    assert sorted(vpc["subnetIds"]) == ["subnet-0a", "subnet-0b"]  # the endpoint change kept the subnets
    enabled = [t for item in cluster["logging"]["clusterLogging"] if item["enabled"] for t in item["types"]]
    assert sorted(enabled) == ["api", "audit", "authenticator"]
    assert cluster["encryptionConfig"][0]["provider"]["keyArn"] == ACCESS["secrets_encryption_key_arn"]
    assert sorted(eks.list_access_entries(clusterName=name)["accessEntries"]) == sorted([OPS, AWX])
    awx = eks.list_associated_access_policies(clusterName=name, principalArn=AWX)["associatedAccessPolicies"]
    assert [(p["policyArn"], p["accessScope"]) for p in awx] == [(VIEW, {"type": "namespace", "namespaces": ["kms"]})]
    assert eks.describe_access_entry(clusterName=name, principalArn=AWX)["accessEntry"]["kubernetesGroups"] == ["deployers"]
    assert out["cluster_access"]["access_entries"][OPS]["policies"] == {ADMIN: {"type": "cluster"}}

    again = run(eks_cluster_access, aws, capsys, name=name, **ACCESS)
    assert again["changed"] is False and again["calls"] == []


def test_without_wait_each_run_makes_the_changes_up_to_one_update_and_the_next_run_carries_on(aws, capsys):
    stepwise, at_once = new_cluster(aws, "access-stepwise"), new_cluster(aws, "access-at-once")
    started = []
    for _step in range(6):
        out = run(eks_cluster_access, aws, capsys, name=stepwise, wait=False, **ACCESS)
        if out["pending_update"] is None:
            break
        assert out["changed"] is True and out["calls"], out
        # the update started is this run's last call: nothing after it until EKS has made it
        assert out["calls"][-1]["call"] in ("update_cluster_config", "associate_encryption_config"), out["calls"]
        assert all(c["call"] not in ("update_cluster_config", "associate_encryption_config") for c in out["calls"][:-1])
        started.append(out["pending_update"]["type"])
        update = aws["eks"].describe_update(name=stepwise, updateId=out["pending_update"]["id"])["update"]
        assert update["type"] == out["pending_update"]["type"]
    # the authentication mode before the entries that need it, the endpoint (which may cut off this
    # very run) last; the run after the last update has nothing left to do
    assert started == ["AccessConfigUpdate", "LoggingUpdate", "AssociateEncryptionConfig", "EndpointAccessUpdate"]
    assert out["changed"] is False and out["calls"] == []
    # the same end state as one run that waits for each update
    waited = run(eks_cluster_access, aws, capsys, name=at_once, **ACCESS)
    assert waited["pending_update"] is None
    assert out["cluster_access"] == waited["cluster_access"]


def test_an_update_is_in_progress_for_a_few_minutes_and_the_wait_reports_it(aws, capsys, monkeypatch):
    # the stand-in in latency mode for updates only: 0.5 s per AWS minute, an update InProgress for 1.5 s
    monkeypatch.setitem(aws_latency._SCALE, "seconds_per_minute", 0.5)
    name = new_cluster(aws, "access-slow")
    args = dict(name=name, wait=False, logging_types=["api"], endpoint_private_access=True)
    first = run(eks_cluster_access, aws, capsys, **args)
    pending = first["pending_update"]
    assert pending["type"] == "LoggingUpdate", first
    waiting = run(resource_ready, aws, capsys, kind="eks_update", name=pending["id"], cluster_name=name,
                  poll_interval=1, report_after=0)
    assert (waiting["ready"], waiting["state"]) == (False, "InProgress"), waiting
    assert waiting["progress"].startswith("EKS update LoggingUpdate of cluster %s (%s): InProgress, created "
                                          % (name, pending["id"])), waiting["progress"]
    assert waiting["progress"].endswith("(AWS typically takes a few minutes)")
    # EKS makes one update of a cluster at a time
    with pytest.raises(aws["eks"].exceptions.ResourceInUseException):
        aws["eks"].update_cluster_config(name=name, resourcesVpcConfig={"endpointPrivateAccess": True})
    # and no node group meanwhile (so a deploy makes the updates before its node group)
    with pytest.raises(aws["eks"].exceptions.InvalidRequestException, match="not in ACTIVE status"):
        aws["eks"].create_nodegroup(clusterName=name, nodegroupName="early", subnets=["subnet-0a"],
                                    nodeRole="arn:aws:iam::%s:role/nodes" % ACCOUNT)
    done = run(resource_ready, aws, capsys, kind="eks_update", name=pending["id"], cluster_name=name,
               poll_interval=1, report_after=30)
    assert (done["ready"], done["state"]) == (True, "Successful"), done
    second = run(eks_cluster_access, aws, capsys, **args)
    assert second["pending_update"]["type"] == "EndpointAccessUpdate", second
    done = run(resource_ready, aws, capsys, kind="eks_update", name=second["pending_update"]["id"], cluster_name=name,
               poll_interval=1, report_after=30)
    assert done["ready"], done
    aws["eks"].create_nodegroup(clusterName=name, nodegroupName="after", subnets=["subnet-0a"],
                                nodeRole="arn:aws:iam::%s:role/nodes" % ACCOUNT)


def test_an_update_an_interrupted_run_left_in_progress_is_returned_to_wait_on(aws, capsys, monkeypatch):
    monkeypatch.setitem(aws_latency._SCALE, "seconds_per_minute", 0.5)  # an update InProgress for 1.5 s
    name = new_cluster(aws, "access-interrupted")
    # an earlier run started the logging update, then was stopped before it ended
    earlier = aws["eks"].update_cluster_config(name=name, logging={"clusterLogging": [
        {"types": ["api"], "enabled": True}]})["update"]
    assert earlier["status"] == "InProgress"
    out = run(eks_cluster_access, aws, capsys, name=name, wait=False, logging_types=["api"], endpoint_private_access=True)
    assert out["pending_update"] == {"id": earlier["id"], "type": "LoggingUpdate"}, out
    assert out["changed"] is False and out["calls"] == []  # the endpoint change waits for it
    done = run(resource_ready, aws, capsys, kind="eks_update", name=earlier["id"], cluster_name=name,
               poll_interval=1, report_after=30)
    assert done["state"] == "Successful", done
    out = run(eks_cluster_access, aws, capsys, name=name, wait=False, logging_types=["api"], endpoint_private_access=True)
    assert out["pending_update"]["type"] == "EndpointAccessUpdate" and out["changed"] is True, out


def test_the_wait_for_an_update_eks_does_not_know_fails_at_once(aws, capsys):
    name = new_cluster(aws, "access-no-update")
    out = run(resource_ready, aws, capsys, kind="eks_update", name="0f0f0f0f-0000-0000-0000-000000000000",
              cluster_name=name, poll_interval=1, report_after=30)
    assert out["failed"] is True and "absent" in out["msg"], out


def test_policies_follow_the_list_and_purge_spares_node_roles_and_the_caller(aws, capsys):
    name = new_cluster(aws, "access-purge")
    run(eks_cluster_access, aws, capsys, name=name, **ACCESS)
    eks = aws["eks"]
    node_role = "arn:aws:iam::%s:role/kms-nodes" % ACCOUNT
    eks.create_access_entry(clusterName=name, principalArn=node_role, type="EC2_LINUX")
    # moto names its default caller arn:aws:sts::<account>:user/moto; the IAM principal is that user
    caller = boto3.client("sts", endpoint_url=aws["url"], region_name=REGION).get_caller_identity()["Arn"]
    caller = caller.replace(":sts::", ":iam::")
    eks.create_access_entry(clusterName=name, principalArn=caller)
    stray = "arn:aws:iam::%s:user/former-colleague" % ACCOUNT
    eks.create_access_entry(clusterName=name, principalArn=stray)
    changed = dict(ACCESS, purge_access_entries=True, access_entries=[
        {"principal_arn": OPS, "policies": [{"policy": "AmazonEKSViewPolicy"}]}])
    out = run(eks_cluster_access, aws, capsys, name=name, **changed)
    assert out["changed"] is True
    left = sorted(eks.list_access_entries(clusterName=name)["accessEntries"])
    assert left == sorted([OPS, node_role, caller])
    ops = eks.list_associated_access_policies(clusterName=name, principalArn=OPS)["associatedAccessPolicies"]
    assert [p["policyArn"] for p in ops] == [VIEW]


def test_the_partition_of_policy_arns_is_the_callers():
    wanted = eks_access.desired_entries({"access_entries": [
        {"principal_arn": "arn:aws-cn:iam::%s:role/ops" % ACCOUNT, "policies": [{"policy": "AmazonEKSViewPolicy"}]}]},
        eks_access.partition_of("arn:aws-cn:sts::%s:assumed-role/ops/session" % ACCOUNT))
    assert list(wanted["arn:aws-cn:iam::%s:role/ops" % ACCOUNT]["policies"]) == [
        "arn:aws-cn:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"]
    assert eks_access.caller_principal("arn:aws-cn:sts::%s:assumed-role/ops/session" % ACCOUNT) == \
        "arn:aws-cn:iam::%s:role/ops" % ACCOUNT


def test_going_back_in_authentication_mode_is_refused_before_any_change(aws, capsys):
    name = new_cluster(aws, "access-back")
    aws["eks"].update_cluster_config(name=name, accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"})
    aws["eks"].update_cluster_config(name=name, accessConfig={"authenticationMode": "API"})
    out = run(eks_cluster_access, aws, capsys, name=name, authentication_mode="API_AND_CONFIG_MAP",
              logging_types=["audit"])
    assert out["failed"] is True
    assert "authentication_mode" in out["msg"] and "cannot go back" in out["msg"]
    logging = aws["eks"].describe_cluster(name=name)["cluster"]["logging"]["clusterLogging"]
    assert not [t for item in logging if item["enabled"] for t in item["types"]]


def test_another_secrets_key_is_refused(aws, capsys):
    name = new_cluster(aws, "access-key")
    run(eks_cluster_access, aws, capsys, name=name, secrets_encryption_key_arn=ACCESS["secrets_encryption_key_arn"])
    other = ACCESS["secrets_encryption_key_arn"].replace("0001", "0002")
    out = run(eks_cluster_access, aws, capsys, name=name, secrets_encryption_key_arn=other)
    assert out["failed"] is True and "secrets_encryption_key_arn" in out["msg"] and "cannot change" in out["msg"]


@pytest.mark.parametrize("args, field", [
    (dict(public_access_cidrs=["10.0.0.1/8"]), "public_access_cidrs"),
    (dict(public_access_cidrs=["203.0.113.0/24"], endpoint_public_access=False, endpoint_private_access=True),
     "public_access_cidrs"),
    (dict(endpoint_public_access=False, endpoint_private_access=False), "at least one must be true"),
    (dict(authentication_mode="API", access_entries=[{"principal_arn": "arn:aws:iam::12:role/x"}]),
     "access_entries[0].principal_arn"),
    (dict(authentication_mode="API", access_entries=[{"principal_arn": OPS, "policies": [{"policy": "Admin"}]}]),
     "access_entries[0].policies[0].policy"),
    (dict(authentication_mode="API", access_entries=[
        {"principal_arn": OPS, "policies": [{"policy": "AmazonEKSEditPolicy", "scope": "namespace"}]}]),
     "access_entries[0].policies[0].namespaces"),
    (dict(access_entries=[{"principal_arn": OPS}]), "set authentication_mode"),
    (dict(secrets_encryption_key_arn="my-key"), "secrets_encryption_key_arn"),
])
def test_bad_input_names_the_field_before_any_call(aws, capsys, args, field):
    out = run(eks_cluster_access, aws, capsys, name="no-such-cluster", **args)
    assert out["failed"] is True and field in out["msg"], out["msg"]
    assert "does not exist" not in out["msg"]  # refused before reading the cluster


def test_vpc_cni_network_policy_addon(aws, capsys):
    name = new_cluster(aws, "addon")
    args = dict(cluster_name=name, name="vpc-cni", configuration_values={"enableNetworkPolicy": "true"})
    missing = run(eks_addon, aws, capsys, verify_only=True, **args)
    assert missing["failed"] is True and "vpc-cni" in missing["msg"] and "missing" in missing["msg"]
    check = run(eks_addon, aws, capsys, check=True, **args)
    assert check["changed"] is True and aws["eks"].list_addons(clusterName=name)["addons"] == []
    out = run(eks_addon, aws, capsys, **args)
    assert out["changed"] is True and out["addon"]["status"] == "ACTIVE"
    addon = aws["eks"].describe_addon(clusterName=name, addonName="vpc-cni")["addon"]
    assert json.loads(addon["configurationValues"]) == {"enableNetworkPolicy": "true"}
    assert run(eks_addon, aws, capsys, **args)["changed"] is False
    assert run(eks_addon, aws, capsys, verify_only=True, **args)["changed"] is False
    # someone switches enforcement off: verify names it, present puts it back
    aws["eks"].update_addon(clusterName=name, addonName="vpc-cni", configurationValues='{"enableNetworkPolicy":"false"}')
    drift = run(eks_addon, aws, capsys, verify_only=True, **args)
    assert drift["failed"] is True and "enableNetworkPolicy" in drift["msg"]
    assert run(eks_addon, aws, capsys, **args)["changed"] is True
    addon = aws["eks"].describe_addon(clusterName=name, addonName="vpc-cni")["addon"]
    assert json.loads(addon["configurationValues"]) == {"enableNetworkPolicy": "true"}


def test_plan_entries_only_touches_what_differs():
    current = {OPS: {"type": "STANDARD", "kubernetes_groups": [], "policies": {ADMIN: {"type": "cluster"}}}}
    wanted = {OPS: {"kubernetes_groups": [], "policies": {ADMIN: {"type": "cluster"}}}}
    assert eks_access.plan_entries(current, wanted, AWX, purge=True) == []
    wanted[OPS]["policies"][ADMIN] = {"type": "namespace", "namespaces": ["kms"]}
    assert eks_access.plan_entries(current, wanted, AWX, purge=False) == [
        ("associate_access_policy", {"principalArn": OPS, "policyArn": ADMIN,
                                     "accessScope": {"type": "namespace", "namespaces": ["kms"]}})]
