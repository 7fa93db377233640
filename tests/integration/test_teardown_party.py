"""playbooks/teardown_party.yml against the stand-ins.

party1 is deployed alone with its connector database, and its private vault holds the PRSS
EpochData object the KMS node writes: the ``party1_sandbox`` fixture of conftest.py, which the
upgrade suite used before (so the party torn down here has been upgraded once). Then, in order:
a run without flags refuses and deletes nothing; check mode with the flags lists everything and
deletes nothing; a run with the flags removes everything, the KMS key only scheduled for
deletion; a re-run changes nothing.

Every run starts, as an AWX job does, without the kubeconfig the deploy wrote: mpc_kubeconfig
points into a new directory. While the cluster exists the playbook writes it from the cluster's
description and deletes the Kubernetes objects (the peer Service's NLB goes with the Service);
once the cluster is gone it says so and skips them.
"""
import datetime
import os
from pathlib import Path

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.rest import ApiException

from tests.integration.standins import PARTY1_EPOCH_KEY as EPOCH_KEY

pytestmark = pytest.mark.xdist_group("party1_lifecycle")  # with test_upgrade_party.py, which runs first

FLAGS = ["-e", "teardown_delete_nonempty_vaults=true", "-e", "teardown_schedule_kms_key_deletion=true",
         "-e", "teardown_delete_database=true"]
TIMINGS = {}


@pytest.fixture(scope="module")
def sandbox(party1_sandbox):
    TIMINGS["setup"] = party1_sandbox.setup_seconds
    return party1_sandbox


def fresh_kubeconfig(tmp_path):
    """A kubeconfig path in a directory that does not exist yet, as in a fresh AWX container."""
    path = tmp_path / "job" / "kubeconfig.yaml"
    assert not path.parent.exists()
    return path


def teardown(sandbox, kubeconfig, *args):
    rc, out, seconds = sandbox.playbook("playbooks/teardown_party.yml", "--limit", "party1",
                                        "-e", "mpc_kubeconfig=%s" % kubeconfig, *args)
    return rc, " ".join(out.split()), seconds  # the output callback wraps long lines


def peer_nlbs(sandbox):
    """Load balancers the (emulated) AWS Load Balancer Controller made for the peer Service."""
    elbv2 = sandbox.client("elbv2")
    arns = [lb["LoadBalancerArn"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]]
    found = []
    for start in range(0, len(arns), 20):
        for doc in elbv2.describe_tags(ResourceArns=arns[start:start + 20])["TagDescriptions"]:
            tags = {t["Key"]: t["Value"] for t in doc["Tags"]}
            if tags.get("service.k8s.aws/stack") == "kms/kms-core-peer":
                found.append(doc["ResourceArn"])
    return found


def state(sandbox):
    """What exists of party1, read straight from the stand-ins."""
    s3, kms, rds, eks, ec2 = (sandbox.client(s) for s in ("s3", "kms", "rds", "eks", "ec2"))
    key_id = next((a["TargetKeyId"] for a in kms.list_aliases()["Aliases"] if a["AliasName"] == "alias/kms-ops-p1-party"), None)
    api = k8s_client.AppsV1Api(k8s_config.new_client_from_config(
        config_file=os.path.join(sandbox.env["SANDBOX_DIR"], "kube", "kubeconfig-p1.yaml")))
    core = k8s_client.CoreV1Api(api.api_client)
    try:
        api.read_namespaced_stateful_set("kms-core", "kms")
        sts = True
    except ApiException as e:
        assert e.status == 404
        sts = False
    try:
        core.read_namespaced_service("kms-core-peer", "kms")
        peer_service = True
    except ApiException as e:
        assert e.status == 404
        peer_service = False
    return {
        "buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("kms-ops-p1-")),
        "key": kms.describe_key(KeyId=key_id)["KeyMetadata"] if key_id else None,
        "databases": [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]],
        "clusters": eks.list_clusters()["clusters"],
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["kms-ops-p1"]}])["Vpcs"]],
        "statefulset": sts,
        "peer_service": peer_service,
        "peer_nlbs": peer_nlbs(sandbox),
    }


def assert_untouched(now):
    assert now["buckets"] == ["kms-ops-p1-private", "kms-ops-p1-public"]
    assert now["key"]["KeyState"] == "Enabled"
    assert now["databases"] == ["kms-ops-p1-connector"]
    assert now["clusters"] == ["kms-ops-p1"]
    assert len(now["vpcs"]) == 1
    assert now["statefulset"]
    assert now["peer_service"]
    assert len(now["peer_nlbs"]) == 1


def test_without_flags_it_refuses_naming_each_flag_and_deletes_nothing(sandbox, tmp_path):
    rc, out, TIMINGS["refused"] = teardown(sandbox, fresh_kubeconfig(tmp_path), "-e", "teardown_confirm_party=party1")
    assert rc == 2, out[-4000:]
    assert "Nothing was deleted." in out
    # the private vault holds the signing key and the epoch, the public one the keys kms-gen-keys published
    assert "teardown_delete_nonempty_vaults: kms-ops-p1-private, kms-ops-p1-public still hold object versions" in out
    assert "teardown_delete_database: the connector database kms-ops-p1-connector exists." in out
    assert "teardown_schedule_kms_key_deletion: the KMS key alias/kms-ops-p1-party" in out
    # the plan names the data it refuses to delete
    assert EPOCH_KEY in out and "REFUSED without teardown_delete_nonempty_vaults=true" in out
    assert_untouched(state(sandbox))


def test_the_party_name_must_be_confirmed(sandbox, tmp_path):
    rc, out, _ = teardown(sandbox, fresh_kubeconfig(tmp_path), "-e", "teardown_confirm_party=party2", *FLAGS)
    assert rc == 2
    assert "teardown_confirm_party: must equal the name of this party, party1, to tear it down (got party2)" in out
    assert_untouched(state(sandbox))


def test_check_mode_lists_everything_and_deletes_nothing(sandbox, tmp_path):
    kubeconfig = fresh_kubeconfig(tmp_path)
    rc, out, TIMINGS["check"] = teardown(sandbox, kubeconfig, "--check", *FLAGS)
    assert rc == 0, out[-6000:]
    # written even in check mode: the Kubernetes objects below are read through it
    assert kubeconfig.read_text() == (Path(sandbox.env["SANDBOX_DIR"]) / "kubeconfig" / "party1.yaml").read_text()
    for expected in (
        "check mode: nothing is deleted",
        "kms-ops-p1-private (private): holds 2 version(s) of 2 key(s)",  # its signing key and epoch
        "DELETED WITH ITS CONTENTS",
        "SCHEDULED FOR DELETION in 30 days (not deleted at once)",
        "connector database kms-ops-p1-connector: postgres",
        "Delete the endpoint service kms-ops-p1-peer",
        "StatefulSet kms/kms-core", "Service kms/kms-core-peer",
        "Delete the ConfigMap kms/kms-core-config", "Delete the namespace kms",
        "would be deleted with all of them: " + EPOCH_KEY,
        "DB instance kms-ops-p1-connector (postgres",
        "would be scheduled for deletion in 30 days",
        "Delete the node group kms-ops-p1-nitro", "Delete the launch template kms-ops-p1-nitro",
        "Delete the EKS cluster kms-ops-p1", "Delete the VPC kms-ops-p1",
    ):
        assert expected in out, expected
    assert "changed=0" not in out
    assert_untouched(state(sandbox))


def test_with_the_flags_everything_goes_and_the_key_is_only_scheduled(sandbox, tmp_path):
    before = state(sandbox)
    kubeconfig = fresh_kubeconfig(tmp_path)
    rc, out, TIMINGS["teardown"] = teardown(sandbox, kubeconfig, "-e", "teardown_confirm_party=party1", *FLAGS)
    assert rc == 0, out[-6000:]
    after = state(sandbox)
    # The Kubernetes deletions went through the kubeconfig the run wrote (and removed with the cluster):
    # the StatefulSet, the peer Service and the NLB the load balancer controller made for it are gone.
    assert "Kubeconfig of the cluster, written in check mode too" in out
    assert "does not exist: its Kubernetes objects went with it" not in out
    assert not kubeconfig.exists()
    assert not after["peer_service"]
    assert after["peer_nlbs"] == []
    assert after["buckets"] == []
    assert after["databases"] == []
    assert after["clusters"] == []
    assert after["vpcs"] == []
    assert not after["statefulset"]
    # The key still exists, scheduled: it can be restored until its deletion date.
    assert after["key"]["KeyId"] == before["key"]["KeyId"]
    assert after["key"]["KeyState"] == "PendingDeletion"
    days = (after["key"]["DeletionDate"] - datetime.datetime.now(datetime.timezone.utc)).days
    assert 29 <= days <= 30
    # The database left a final snapshot.
    snapshots = sandbox.client("rds").describe_db_snapshots()["DBSnapshots"]
    assert [s["DBSnapshotIdentifier"] for s in snapshots] == ["kms-ops-p1-connector-final"]


def test_a_rerun_finds_nothing_left_to_do(sandbox, tmp_path):
    kubeconfig = fresh_kubeconfig(tmp_path)
    rc, out, TIMINGS["rerun"] = teardown(sandbox, kubeconfig, "-e", "teardown_confirm_party=party1", *FLAGS)
    assert rc == 0, out[-6000:]
    assert "changed=0" in out
    # The cluster is gone: the run says so, and only then skips the Kubernetes deletions.
    assert "The EKS cluster kms-ops-p1 does not exist: its Kubernetes objects went with it" in out
    assert "EKS cluster kms-ops-p1 (does not exist)" in out
    assert not kubeconfig.parent.exists()
    print("timings (s): " + ", ".join("%s %.0f" % kv for kv in TIMINGS.items()))
