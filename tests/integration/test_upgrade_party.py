"""playbooks/upgrade_party.yml against the stand-ins.

party1 is deployed alone (the ``party1_sandbox`` fixture of conftest.py, which the teardown
suite uses after this one). With the other three parties down
the quorum check refuses to roll it; with that check off (and the health threshold at none,
since one node of four is Unhealthy by the server's rule) the upgrade runs step by step:
trust (both PCR0 values in the key policy, image unchanged), roll (new image, both PCR0 values
still in the policy), remove (the new PCR0 alone).

Every run starts, as an AWX job does, without the kubeconfig the deploy wrote: mpc_kubeconfig
points into a new directory, and the playbook writes it from the cluster's description (the
same file as the deploy's) before its first Kubernetes call. check_network.yml runs the same way.
"""
import hashlib
import json
import os
from pathlib import Path

import pytest
import yaml
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


def fresh_kubeconfig(tmp_path):
    """A kubeconfig path in a directory that does not exist yet, as in a fresh AWX container."""
    path = tmp_path / "job" / "kubeconfig.yaml"
    assert not path.parent.exists()
    return path


def assert_kubeconfig_written(sandbox, path):
    """The playbook wrote the kubeconfig the deploy wrote (eks_cluster's template), mode 0600."""
    deployed = Path(sandbox.env["SANDBOX_DIR"]) / "kubeconfig" / "party1.yaml"
    assert path.read_text() == deployed.read_text()
    assert path.stat().st_mode & 0o777 == 0o600
    doc = yaml.safe_load(path.read_text())
    assert doc["clusters"] == [{"name": "kms-ops-p1", "cluster": {"server": "http://127.0.0.1:%d" % (sandbox.port_base + 101)}}]


def upgrade(sandbox, kubeconfig, *args):
    rc, out, seconds = sandbox.playbook("playbooks/upgrade_party.yml", "--limit", "party1", *UPGRADE,
                                        "-e", "mpc_kubeconfig=%s" % kubeconfig, *args)
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


def test_bad_input_is_refused_before_any_cloud_call(sandbox, tmp_path):
    kubeconfig = fresh_kubeconfig(tmp_path)
    rc, out, _ = sandbox.playbook("playbooks/upgrade_party.yml", "--limit", "party1", "-e", "upgrade_image_tag=latest",
                                  "-e", "upgrade_pcr0=abc", "-e", "upgrade_pcr1=" + NEW["pcr1"], "-e", "upgrade_pcr2=" + NEW["pcr2"],
                                  "-e", "mpc_kubeconfig=%s" % kubeconfig)
    out = " ".join(out.split())
    assert rc == 2
    assert not kubeconfig.parent.exists()  # no cluster read, nothing written
    assert "upgrade_party: upgrade_image_tag: a published release tag such as v0.14.1" in out
    assert "never latest; got 'latest'" in out
    assert ("upgrade_party: upgrade_pcr0: the new release's PCR0, 96 hexadecimal characters (a SHA-384 digest) "
            "(got 3 characters)") in out
    assert "Health of every party" not in out


def test_it_refuses_to_roll_a_node_the_others_cannot_do_without(sandbox, tmp_path):
    kubeconfig = fresh_kubeconfig(tmp_path)
    rc, out, TIMINGS["refused"] = upgrade(sandbox, kubeconfig)
    assert rc == 2, out[-4000:]
    assert_kubeconfig_written(sandbox, kubeconfig)
    # counted from the peers party 1's own node reports reachable (GetHealthStatus through its pod)
    assert "upgrade_require_quorum: party 1's node reaches 0 of the other 3 parties, fewer than the 3" in out
    assert "unreachable party2, party3, party4" in out
    assert trusted_pcr0(sandbox) == [OLD_PCR0]
    assert image(sandbox) == "ghcr.io/zama-ai/kms/core-service:v0.14.1-0"


def test_step_trust_puts_both_pcr0_in_the_key_policy_and_keeps_the_image(sandbox, tmp_path):
    kubeconfig = fresh_kubeconfig(tmp_path)
    rc, out, TIMINGS["trust"] = upgrade(sandbox, kubeconfig, *ONE_PARTY, "--tags", "upgrade_trust")
    assert rc == 0, out[-6000:]
    assert_kubeconfig_written(sandbox, kubeconfig)  # --tags upgrade_trust still gets it
    assert trusted_pcr0(sandbox) == [OLD_PCR0, NEW["pcr0"]]
    assert image(sandbox) == "ghcr.io/zama-ai/kms/core-service:v0.14.1-0"


def test_step_roll_changes_the_image_with_both_pcr0_still_trusted(sandbox, tmp_path):
    kubeconfig = fresh_kubeconfig(tmp_path)
    rc, out, TIMINGS["roll"] = upgrade(sandbox, kubeconfig, *ONE_PARTY, "--tags", "upgrade_roll")
    assert rc == 0, out[-6000:]
    assert_kubeconfig_written(sandbox, kubeconfig)
    assert image(sandbox) == "ghcr.io/zama-ai/kms/core-service:v0.15.1"
    assert trusted_pcr0(sandbox) == [OLD_PCR0, NEW["pcr0"]]
    # the node was checked after the roll (and answered: the play did not fail)
    assert "Report the health (after)" in out
    assert "party 1: node Unhealthy, reaches 1/4 nodes (itself included); unreachable peers: 2, 3, 4" in out


def test_removing_the_old_release_leaves_the_new_pcr0_alone(sandbox, tmp_path):
    kubeconfig = fresh_kubeconfig(tmp_path)
    rc, out, TIMINGS["remove"] = upgrade(sandbox, kubeconfig, *ONE_PARTY, "--tags", "upgrade_remove",
                                         "-e", "upgrade_remove_old_release=true")
    assert rc == 0, out[-6000:]
    assert_kubeconfig_written(sandbox, kubeconfig)
    assert trusted_pcr0(sandbox) == [NEW["pcr0"]]
    assert image(sandbox) == "ghcr.io/zama-ai/kms/core-service:v0.15.1"
    assert "kms_workload_image_tag: v0.15.1" in out


def test_check_network_asks_the_node_through_a_kubeconfig_it_writes_itself(sandbox, tmp_path):
    kubeconfig = fresh_kubeconfig(tmp_path)
    rc, out, TIMINGS["check_network"] = sandbox.playbook("playbooks/check_network.yml", "--limit", "party1",
                                                         "-e", "mpc_kubeconfig=%s" % kubeconfig, "-e", "check_network_fail_below=none")
    out = " ".join(out.split())
    assert rc == 0, out[-6000:]
    assert_kubeconfig_written(sandbox, kubeconfig)
    # party 1's own node answered through a port-forward of its cluster: alone, it reaches itself only
    assert "party1 Unhealthy 1/4 2,3,4" in out, out[-4000:]
    print("timings (s): " + ", ".join("%s %.0f" % kv for kv in TIMINGS.items()))
