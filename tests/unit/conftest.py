"""Fixtures shared by the unit suites that run modules against a real moto server."""
import os

import pytest


@pytest.fixture(scope="module")
def moto_url(request):
    """A moto server for the test module, on MOTO_PORT_BASE + the xdist worker number.

    Each module declares its own MOTO_PORT_BASE, so suites running side by side (other
    modules, Molecule scenarios, the sandbox) never share a port.
    """
    from moto.server import ThreadedMotoServer

    from sandbox.aws_standin import extend

    extend(secure=False)  # the same moto as tools/sandbox and Molecule run (plain HTTP here)

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    port = request.module.MOTO_PORT_BASE + int("".join(ch for ch in worker if ch.isdigit()) or 0)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield "http://127.0.0.1:%d" % port
    server.stop()


EKS_REGION = "eu-west-1"
EKS_ROLE = "arn:aws:iam::123456789012:role/nodes"


@pytest.fixture()
def eks_account(moto_url, monkeypatch):
    """The module's moto server reset to an empty account, then a VPC with two subnets and the EKS
    cluster ``c`` (Kubernetes 1.32) in them, in EKS_REGION: ``{url, ec2, eks, subnets}``."""
    import urllib.request

    import boto3

    urllib.request.urlopen(urllib.request.Request(moto_url + "/moto-api/reset", method="POST")).read()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    kw = dict(endpoint_url=moto_url, region_name=EKS_REGION)
    ec2, eks = boto3.client("ec2", **kw), boto3.client("eks", **kw)
    vpc = ec2.create_vpc(CidrBlock="10.4.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock="10.4.%d.0/24" % i, AvailabilityZone=EKS_REGION + z)["Subnet"]["SubnetId"]
               for i, z in ((1, "a"), (2, "b"))]
    eks.create_cluster(name="c", roleArn=EKS_ROLE, resourcesVpcConfig={"subnetIds": subnets}, version="1.32")
    return {"url": moto_url, "ec2": ec2, "eks": eks, "subnets": subnets}


@pytest.fixture(scope="module")
def sim_aws_env():
    """The dummy AWS environment the KMS node simulators read their vaults with, for one module."""
    from sandbox.kms_sim.testing import AWS_ENV

    saved = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(AWS_ENV)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def moto(request, sim_aws_env):
    """A moto process on the module's MOTO_PORT, for the simulator suites."""
    from sandbox.kms_sim.testing import MotoProcess

    server = MotoProcess(request.module.MOTO_PORT).start()
    yield server
    server.stop()


# Suites that run many ansible-playbook processes or whole simulated networks (half a minute or
# more each on two cores). `make check` leaves them out (-m "not slow"); `make test` runs them.
SLOW_SUITES = ("test_manifests.py", "test_monitoring.py", "test_kms_config_enclave_mode.py", "test_prss.py",
               "test_kms_workload_keys.py", "test_kms_workload_wait.py", "test_deploy_tags.py",
               "test_aws_roles_input_validation.py", "test_kube_emulator.py", "test_aws_latency.py",
               # the in-place filters, each answer checked against the amazon.aws module on moto
               "test_ec2_network_filters.py", "test_kms_key_filters.py",
               # a simulated 4-party network under two runs of prss_init; nat.yml under ansible-playbook
               "test_prss_node_killed.py", "test_eks_cluster_nat_tags.py")


def pytest_collection_modifyitems(items):
    for item in items:
        if os.path.basename(str(item.fspath)) in SLOW_SUITES:
            item.add_marker(pytest.mark.slow)
