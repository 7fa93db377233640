"""A cluster without the AWS Load Balancer Controller: the deploy stops, naming it.

The sandbox's Kubernetes emulator normally plays an installed controller (its Deployment in
kube-system, network load balancers in the AWS stand-in). Here it is started with
SANDBOX_LB_CONTROLLER=absent: no Deployment, Services of type LoadBalancer stay pending, as on a
real cluster where nobody installed it.

* verify mode (the sandbox default), fresh account: the run creates the cluster and its node
  group (the controller cannot exist before its cluster), then stops naming the controller,
  before any Kubernetes object of the party or any vault bucket;
* verify mode again, the cluster existing now: the run stops in its preflight, changed=0;
* install mode without helm: stops in the preflight, naming helm and the controller, changed=0.

Own stand-ins on ports 26000-26404 (AWS 26000, Kubernetes 26101+, nodes 26201+/26301+/26401+).
"""
import configparser
import json
import re
import tempfile
import urllib.error
import urllib.request

import boto3
import pytest

from tests.integration.standins import Sandbox

PORT_BASE = 26000
NAMED = "AWS Load Balancer Controller (Deployment kube-system/aws-load-balancer-controller) is not installed"


def _recap(out, host="party1"):
    match = re.search(r"^%s\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)" % host, out, re.M)
    assert match, out[-3000:]
    return {"ok": int(match.group(1)), "changed": int(match.group(2)), "failed": int(match.group(4))}


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def _party_s3(sandbox, party=1):
    """S3 of the party's own account: its profile in the sandbox's credentials file, if it has one."""
    path = sandbox.env.get("AWS_SHARED_CREDENTIALS_FILE")
    if not path:
        return sandbox.client("s3")
    parser = configparser.ConfigParser()
    parser.read(path)
    section = parser["party%d" % party]
    return boto3.client("s3", endpoint_url=sandbox.aws_url, region_name="eu-west-1",
                        aws_access_key_id=section["aws_access_key_id"],
                        aws_secret_access_key=section["aws_secret_access_key"],
                        verify=sandbox.env.get("AWS_CA_BUNDLE") or False)


@pytest.fixture(scope="module")
def sandbox():
    with tempfile.TemporaryDirectory(prefix="lbc-") as tmp:
        sb = Sandbox(tmp, PORT_BASE)
        sb.env["SANDBOX_LB_CONTROLLER"] = "absent"
        with sb:
            yield sb


def test_without_the_controller_the_deploy_stops_naming_it(sandbox):
    kube = "http://127.0.0.1:%d" % (PORT_BASE + 100 + 1)
    assert _get(kube + "/apis/apps/v1/namespaces/kube-system/deployments/aws-load-balancer-controller")[0] == 404

    rc, out, _ = sandbox.playbook("playbooks/deploy_party.yml", "--limit", "party1", "--skip-tags", "prss_init")
    assert rc != 0
    assert NAMED in out, out[-4000:]
    assert "threshold_kms.mpc_party.lb_controller : The AWS Load Balancer Controller is available" in out
    assert _recap(out)["failed"] == 1
    # nothing of the party's own in the cluster, no vault bucket: the run stopped at the controller
    status, body = _get(kube + "/apis/apps/v1/namespaces/kms/statefulsets")
    assert status == 404 or body["items"] == []
    assert not [b["Name"] for b in _party_s3(sandbox).list_buckets()["Buckets"] if "-p1-" in b["Name"]]

    # The cluster exists now: the preflight finds the controller missing before any change.
    rc, out, _ = sandbox.playbook("playbooks/deploy_party.yml", "--limit", "party1", "--skip-tags", "prss_init")
    assert rc != 0 and NAMED in out, out[-4000:]
    assert "TASK [threshold_kms.mpc_party.eks_cluster" not in out
    assert _recap(out)["changed"] == 0


def test_install_mode_without_helm_stops_before_any_change(sandbox):
    rc, out, _ = sandbox.playbook("playbooks/deploy_party.yml", "--limit", "party1", "--skip-tags", "prss_init",
                                  "-e", "lb_controller_mode=install", "-e", "lb_controller_helm_binary=/nonexistent/helm")
    assert rc != 0
    assert "lb_controller_mode=install installs the AWS Load Balancer Controller" in out, out[-4000:]
    assert "Nothing was changed" in out
    assert "TASK [threshold_kms.mpc_party.eks_cluster" not in out
    assert _recap(out)["changed"] == 0
