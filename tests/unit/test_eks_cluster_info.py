"""eks_cluster_info run in-process against a real moto server (port 27080 + xdist worker)."""
import json
import os

import boto3
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.threshold_kms.mpc_party.plugins.modules import eks_cluster_info as module

REGION = "eu-west-1"
MOTO_PORT_BASE = 27080  # + the xdist worker number; the moto_url fixture is in conftest.py


@pytest.fixture(scope="module")
def aws(moto_url):
    url = moto_url
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    kw = dict(endpoint_url=url, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    ec2 = boto3.client("ec2", **kw)
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock="10.7.%d.0/24" % i, AvailabilityZone=REGION + z)["Subnet"]["SubnetId"]
               for i, z in ((1, "a"), (2, "b"))]
    cluster = boto3.client("eks", **kw).create_cluster(
        name="kms-info-p1", roleArn="arn:aws:iam::123456789012:role/kms-info-p1-cluster",
        resourcesVpcConfig={"subnetIds": subnets}, tags={"mpc-cluster": "kms-info-p1"})["cluster"]
    yield {"url": url, "vpc": vpc, "subnets": subnets, "cluster": cluster}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def run(aws, capsys, **args):
    with patch_module_args(dict(args, endpoint_url=aws["url"], region=REGION, _ansible_check_mode=True)):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def test_an_existing_cluster_is_described_in_snake_case(aws, capsys):
    out = run(aws, capsys, name="kms-info-p1")
    assert out["changed"] is False and out["exists"] is True
    cluster = out["cluster"]
    assert cluster["name"] == "kms-info-p1"
    assert cluster["identity"]["oidc"]["issuer"] == aws["cluster"]["identity"]["oidc"]["issuer"]
    # (moto 5.2.5 leaves vpcId out of resourcesVpcConfig; EKS reports it, and the teardown falls back to tags)
    assert sorted(cluster["resources_vpc_config"]["subnet_ids"]) == sorted(aws["subnets"])
    assert cluster["tags"] == {"mpc-cluster": "kms-info-p1"}


def test_a_missing_cluster_is_not_an_error(aws, capsys):
    out = run(aws, capsys, name="kms-info-p9")
    assert (out["changed"], out["exists"], out["cluster"]) == (False, False, {})
    assert "failed" not in out
