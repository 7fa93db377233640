"""playbooks/upgrade_party.yml against the stand-ins.

party1 is deployed alone (the ``party1_sandbox`` fixture of conftest.py, which the teardown
suite uses after this one). With the other three parties down
the quorum check refuses to roll it; with that check off (and the health threshold at none,
since one node of four is Unhealthy by the server's rule) the upgrade runs step by step:
trust (both PCR0 values in the key policy, image unchanged), roll (new image, both PCR0 values
still in the policy), remove (the new PCR0 alone).
"""
import hashlib
import json
import os

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config


pytestmark = pytest.mark.xdist_group("party1_lifecycle")  # with test_teardown_party.py, which runs after

NEW = {name: hashlib.sha384(("ops-release-2-" + name).encode()).hexdigest() for name in ("pcr0", "pcr1", "pcr2")}
OLD_PCR0 = hashlib.sha384(b"ops-release-1-pcr0").hexdigest()  # tools/make_sandbox_inventory.py
UPGRADE = ["-e", "upgrade_image_tag=v0.15.1", "-e", "upgrade_pcr0=" + NEW["pcr0"].upper(),
           "-e", "upgrade_pcr1=" + NEW["pcr1"], "-e", "upgrade_pcr2=" + NEW["pcr2"]]
ONE_PARTY = ["-e", "upgrade_require_quorum=false", "-e", "upgrade_health_fail_below=none"]
TIMINGS = {}


@pytest.fixture(scope="module")
def sandbox(party1_sandbox):
    TIMINGS["deploy"] = party1_sandbox.setup_seconds
    return party1_sandbox


def upgrade(sandbox, *args):
    rc, out, seconds = sandbox.playbook("playbooks/upgrade_party.yml", "--limit", "party1", *UPGRADE, *args)
    return rc, " ".join(out.split()), seconds  # the output callback wraps long lines


def trusted_pcr0(sandbox):
    kms = sandbox.client("kms")
    key_id = kms.describe_key(KeyId="alias/kms-ops-p1-party")["KeyMetadata"]["KeyId"]
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    statement = next(s for s in policy["Statement"] if s["Sid"] == "PartyRoleDecryptsOnlyInsideAttestedEnclave")
    return statement["Condition"]["StringEqualsIgnoreCase"]["kms:RecipientAttestation:ImageSha384"]


def image(sandbox):
    api = k8s_client.AppsV1Api(k8s_config.new_client_from_config(
        config_file=os.path.join(sandbox.env["SANDBOX_DIR"], "kube", "kubeconfig-p1.yaml")))
    sts = api.read_namespaced_stateful_set("kms-core", "kms")
    return next(c.image for c in sts.spec.template.spec.containers if c.name == "kms-core")


def test_bad_input_is_refused_before_any_cloud_call(sandbox):
    rc, out, _ = sandbox.playbook("playbooks/upgrade_party.yml", "--limit", "party1", "-e", "upgrade_image_tag=latest",
                                  "-e", "upgrade_pcr0=abc", "-e", "upgrade_pcr1=" + NEW["pcr1"], "-e", "upgrade_pcr2=" + NEW["pcr2"])
    out = " ".join(out.split())
    assert rc == 2
    assert "upgrade_image_tag: the new core-service image tag, pinned" in out
    assert "upgrade_pcr0: the new release value, 96 hex characters" in out
    assert "Health of every party" not in out


def test_it_refuses_to_roll_a_node_the_others_cannot_do_without(sandbox):
    rc, out, _ = upgrade(sandbox)
    assert rc == 2, out[-4000:]
    # counted from the peers party 1's own node reports reachable (GetHealthStatus through its pod)
    assert "upgrade_require_quorum: party 1's node reaches 0 of the other 3 parties, fewer than the 3" in out
    assert "unreachable party2, party3, party4" in out
    assert trusted_pcr0(sandbox) == [OLD_PCR0]
    assert image(sandbox) == "ghcr.io/zama-ai/kms/core-service:v0.14.1-0"


def test_step_trust_puts_both_pcr0_in_the_key_policy_and_keeps_the_image(sandbox):
    rc, out, TIMINGS["trust"] = upgrade(sandbox, *ONE_PARTY, "--tags", "upgrade_trust")
    assert rc == 0, out[-6000:]
    assert trusted_pcr0(sandbox) == [OLD_PCR0, NEW["pcr0"]]
    assert image(sandbox) == "ghcr.io/zama-ai/kms/core-service:v0.14.1-0"


def test_step_roll_changes_the_image_with_both_pcr0_still_trusted(sandbox):
    rc, out, TIMINGS["roll"] = upgrade(sandbox, *ONE_PARTY, "--tags", "upgrade_roll")
    assert rc == 0, out[-6000:]
    assert image(sandbox) == "ghcr.io/zama-ai/kms/core-service:v0.15.1"
    assert trusted_pcr0(sandbox) == [OLD_PCR0, NEW["pcr0"]]
    # the node was checked after the roll (and answered: the play did not fail)
    assert "Report the health (after)" in out
    assert "party 1: node Unhealthy, reaches 1/4 nodes (itself included); unreachable peers: 2, 3, 4" in out


def test_removing_the_old_release_leaves_the_new_pcr0_alone(sandbox):
    rc, out, TIMINGS["remove"] = upgrade(sandbox, *ONE_PARTY, "--tags", "upgrade_remove", "-e", "upgrade_remove_old_release=true")
    assert rc == 0, out[-6000:]
    assert trusted_pcr0(sandbox) == [NEW["pcr0"]]
    assert image(sandbox) == "ghcr.io/zama-ai/kms/core-service:v0.15.1"
    assert "kms_workload_image_tag: v0.15.1" in out
    print("timings (s): " + ", ".join("%s %.0f" % kv for kv in TIMINGS.items()))
