"""eks_cluster's NAT gateway tags are reconciled on every run (roles/eks_cluster/tasks/nat.yml),
against a real moto server (port range 15530-15539): the role's nat.yml entry runs under
ansible-playbook in a VPC made here, then its tags drift out of band and the next run puts them
back, and the run after that changes nothing."""
import json
import os
import re
import subprocess
import sys
import textwrap
import urllib.request

import boto3
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REGION = "eu-west-1"
WANTED = {"mpc-cluster": "kms-nat-p1", "mpc-party-id": "1", "managed-by": "threshold_kms.mpc_party", "Name": "kms-nat-p1"}

MOTO_PORT_BASE = 15530  # + the xdist worker number; the moto_url fixture is in conftest.py


@pytest.fixture()
def network(moto_url, monkeypatch, tmp_path):
    urllib.request.urlopen(urllib.request.Request(moto_url + "/moto-api/reset", method="POST")).read()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    ec2 = boto3.client("ec2", endpoint_url=moto_url, region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    private = [ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.%d.0/24" % i, AvailabilityZone=REGION + az)["Subnet"]["SubnetId"]
               for i, az in ((0, "a"), (1, "b"))]
    playbook = tmp_path / "nat.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: localhost
          gather_facts: false
          module_defaults:
            group/amazon.aws.aws: {endpoint_url: "%s", region: %s}
          tasks:
            - ansible.builtin.include_role:
                name: threshold_kms.mpc_party.eks_cluster
                tasks_from: nat
              vars:
                mpc_cluster_name: kms-nat-p1
                mpc_party_id: 1
                mpc_aws_region: %s
                _eks_cluster_vpc_id: %s
                _eks_cluster_azs: [%sa, %sb]
                _eks_cluster_private_subnet_ids: %s
        """ % (moto_url, REGION, REGION, vpc, REGION, REGION, json.dumps(private))))
    return {"ec2": ec2, "playbook": playbook}


def run(playbook):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable, str(playbook)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    return int(re.search(r"localhost\s+: ok=\d+\s+changed=(\d+)", out).group(1)), out


def nat_tags(ec2):
    [gateway] = [g for g in ec2.describe_nat_gateways()["NatGateways"] if g["State"] in ("pending", "available")]
    return gateway["NatGatewayId"], {t["Key"]: t["Value"] for t in gateway.get("Tags", [])}


def test_nat_gateway_tags_drift_is_put_back_then_nothing_changes(network):
    changed, out = run(network["playbook"])
    assert changed > 0, out
    nat_id, tags = nat_tags(network["ec2"])
    assert tags == WANTED

    # out of band: one tag removed, one changed, one added
    network["ec2"].delete_tags(Resources=[nat_id], Tags=[{"Key": "mpc-party-id"}])
    network["ec2"].create_tags(Resources=[nat_id], Tags=[{"Key": "Name", "Value": "renamed"}, {"Key": "stale", "Value": "x"}])
    changed, out = run(network["playbook"])
    assert changed == 1, out  # the tags task alone
    assert "changed: [localhost]" in out.split("TASK [threshold_kms.mpc_party.eks_cluster : Tags of the NAT gateway]")[1], out
    assert nat_tags(network["ec2"]) == (nat_id, WANTED)

    changed, out = run(network["playbook"])
    assert changed == 0, out
    assert nat_tags(network["ec2"]) == (nat_id, WANTED)
