"""Latency mode of the AWS stand-in (sandbox/aws_latency.py), through its server and boto3.

With SANDBOX_AWS_LATENCY=2 (2 s per AWS minute) a new NAT gateway is pending for 3 s, a network
load balancer provisioning for 5 s, an interface endpoint pending for 3 s, a DB instance creating
for 15 s, an EKS cluster CREATING for 24 s (and a node group on it refused meanwhile, as EKS
refuses one on a cluster that is not ACTIVE); each then reports its ready state, and boto3's own
waiters see the change.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sandbox import aws_latency
from sandbox.kms_sim.testing import wait_port
from sandbox.procs import die_with_parent

ROOT = Path(__file__).resolve().parents[2]
PORT_BASE = 23400  # + the xdist worker number
SCALE = 2.0


def _port():
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return PORT_BASE + int("".join(ch for ch in worker if ch.isdigit()) or 0)


@pytest.fixture(scope="module")
def latency_url():
    port = _port()
    env = dict(os.environ, SANDBOX_AWS_LATENCY=str(SCALE))
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.aws_standin", "-H", "127.0.0.1", "-p", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=die_with_parent())
    try:
        wait_port(port)
        yield "http://127.0.0.1:%d" % port
    finally:
        proc.terminate()
        proc.wait(10)


def _client(url, service):
    return boto3.client(service, endpoint_url=url, region_name="eu-west-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}))


def _network(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.%d.0/24" % i, AvailabilityZone="eu-west-1" + az)["Subnet"]["SubnetId"]
               for i, az in enumerate("ab")]
    return vpc, subnets


def test_every_slow_resource_is_transitional_first_then_ready(latency_url):
    ec2, eks, rds, elb, iam = (_client(latency_url, s) for s in ("ec2", "eks", "rds", "elbv2", "iam"))
    vpc, subnets = _network(ec2)
    role = iam.create_role(RoleName="cluster", AssumeRolePolicyDocument="{}")["Role"]["Arn"]

    created = {}
    started = created["eks_cluster"] = time.monotonic()
    eks.create_cluster(name="c1", roleArn=role, resourcesVpcConfig={"subnetIds": subnets})
    created["nat_gateway"] = time.monotonic()
    nat = ec2.create_nat_gateway(SubnetId=subnets[0], ConnectivityType="private")["NatGateway"]["NatGatewayId"]
    created["load_balancer"] = time.monotonic()
    lb = elb.create_load_balancer(Name="nlb", Type="network", Scheme="internal", Subnets=subnets)["LoadBalancers"][0]
    created["db_instance"] = time.monotonic()
    rds.create_db_instance(DBInstanceIdentifier="db1", DBInstanceClass="db.t4g.micro", Engine="postgres",
                           MasterUsername="u", MasterUserPassword="p4ssw0rd-long", AllocatedStorage=20)
    created["vpc_endpoint"] = time.monotonic()
    endpoint = ec2.create_vpc_endpoint(VpcId=vpc, VpcEndpointType="Interface", SubnetIds=subnets[:1],
                                       ServiceName="com.amazonaws.eu-west-1.s3")["VpcEndpoint"]["VpcEndpointId"]

    describe = {
        "eks_cluster": lambda: eks.describe_cluster(name="c1")["cluster"]["status"],
        "nat_gateway": lambda: ec2.describe_nat_gateways(NatGatewayIds=[nat])["NatGateways"][0]["State"],
        "load_balancer": lambda: elb.describe_load_balancers(
            LoadBalancerArns=[lb["LoadBalancerArn"]])["LoadBalancers"][0]["State"]["Code"],
        "db_instance": lambda: rds.describe_db_instances(DBInstanceIdentifier="db1")["DBInstances"][0]["DBInstanceStatus"],
        "vpc_endpoint": lambda: ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"][0]["State"],
    }
    transitional = {"eks_cluster": "CREATING", "nat_gateway": "pending", "load_balancer": "provisioning",
                    "db_instance": "creating", "vpc_endpoint": "pending"}
    # Each resource read before its delay has passed is in its transitional state (a loaded machine
    # may be too slow to read the 3-second ones in time; the 15- and 24-second ones it always reads).
    seen = {}
    for kind, read in describe.items():
        state = read()
        if time.monotonic() - created[kind] < aws_latency.delay_of(kind, SCALE):
            seen[kind] = state
    assert {"eks_cluster", "db_instance"} <= set(seen)
    assert seen == {kind: transitional[kind] for kind in seen}

    # EKS refuses a node group until its cluster is ACTIVE
    with pytest.raises(ClientError) as refused:
        eks.create_nodegroup(clusterName="c1", nodegroupName="ng", nodeRole=role, subnets=subnets)
    assert "ACTIVE" in str(refused.value)

    # boto3's waiters (what the modules use) see each one become ready, no earlier than its delay
    fast = {"Delay": 0.5, "MaxAttempts": 120}
    ready_after = {}
    ec2.get_waiter("nat_gateway_available").wait(NatGatewayIds=[nat], WaiterConfig=fast)
    ready_after["nat_gateway"] = time.monotonic() - started
    elb.get_waiter("load_balancer_available").wait(LoadBalancerArns=[lb["LoadBalancerArn"]], WaiterConfig=fast)
    ready_after["load_balancer"] = time.monotonic() - started
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier="db1", WaiterConfig=fast)
    ready_after["db_instance"] = time.monotonic() - started
    eks.get_waiter("cluster_active").wait(name="c1", WaiterConfig=fast)
    ready_after["eks_cluster"] = time.monotonic() - started
    for kind, seconds in ready_after.items():
        assert seconds >= created[kind] - started + aws_latency.delay_of(kind, SCALE), (kind, seconds)
    assert describe["vpc_endpoint"]() == "available"

    # a node group, once the cluster is ACTIVE: CREATING for 4 AWS minutes, then ACTIVE
    eks.create_nodegroup(clusterName="c1", nodegroupName="ng", nodeRole=role, subnets=subnets)
    assert eks.describe_nodegroup(clusterName="c1", nodegroupName="ng")["nodegroup"]["status"] == "CREATING"
    eks.get_waiter("nodegroup_active").wait(clusterName="c1", nodegroupName="ng", WaiterConfig=fast)

    # a state the server sets otherwise is reported as set (not held back as the ready one)
    ec2.delete_nat_gateway(NatGatewayId=nat)
    assert ec2.describe_nat_gateways(NatGatewayIds=[nat])["NatGateways"][0]["State"] == "deleted"


@pytest.mark.parametrize("raw,expected", [("", 0.0), ("0", 0.0), ("2", 2.0), (" 0.5 ", 0.5)])
def test_the_scale_is_read_from_the_environment(raw, expected):
    assert aws_latency.scale_from_env({aws_latency.ENV: raw}) == expected


@pytest.mark.parametrize("raw", ["fast", "-1", "601"])
def test_a_bad_scale_is_refused_naming_the_variable(raw):
    with pytest.raises(ValueError, match="SANDBOX_AWS_LATENCY"):
        aws_latency.scale_from_env({aws_latency.ENV: raw})


def test_the_server_refuses_a_bad_scale_before_serving():
    env = dict(os.environ, SANDBOX_AWS_LATENCY="soon")
    done = subprocess.run([sys.executable, "-m", "sandbox.aws_standin", "-H", "127.0.0.1", "-p", str(_port() + 10)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "SANDBOX_AWS_LATENCY must be a number" in done.stderr
