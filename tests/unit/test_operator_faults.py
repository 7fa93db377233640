"""The faults an operator meets, as this collection's AWS modules report them (issue 18):
access denied, expired credentials, a quota, a timeout (module_utils/aws_errors, applied to
every module's fail_json_aws by aws_retry.client), and a node group EKS reports CREATE_FAILED or
DEGRADED (eks_managed_nodegroup run in-process against a moto server whose EKS stand-in reports
that status: sandbox/aws_standin_eks.nodegroup_fault). Ports 19100-19119.
"""
import json
import os
import urllib.error
import urllib.request

import boto3
import botocore.exceptions
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_errors, aws_retry
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_eks_nodegroup as ngu
from ansible_collections.threshold_kms.mpc_party.plugins.modules import eks_managed_nodegroup as module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MOTO_PORT_BASE = 19100  # + the xdist worker number (the moto_url fixture of conftest.py)
REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/nodes"


def client_error(code, message, operation):
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": message}}, operation)


# ------------------------------------------------------------------ aws_errors.explain
def test_access_denied_names_the_action_and_resource_aws_gives():
    exc = client_error("UnauthorizedOperation", "You are not authorized to perform this operation. User: "
                       "arn:aws:sts::111122223333:assumed-role/deploy/s is not authorized to perform: ec2:CreateVpc "
                       "on resource: arn:aws:ec2:eu-west-1:111122223333:vpc/* because no identity-based policy "
                       "allows the ec2:CreateVpc action.", "CreateVpc")
    text = aws_errors.explain(exc, "ec2")
    assert "ec2:CreateVpc on arn:aws:ec2:eu-west-1:111122223333:vpc/*" in text, text
    assert "meta/iam/deploy-policy-party.json" in text


def test_access_denied_without_details_names_the_action_from_the_call():
    text = aws_errors.explain(client_error("AccessDeniedException", "Access denied", "DescribeNodegroup"), "eks")
    assert "eks:DescribeNodegroup" in text and "the resource of this call" in text, text
    elb = aws_errors.explain(client_error("AccessDenied", "denied", "CreateLoadBalancer"), "elbv2")
    assert "elasticloadbalancing:CreateLoadBalancer" in elb, elb


@pytest.mark.parametrize("code", ["ExpiredToken", "ExpiredTokenException", "RequestExpired"])
def test_expired_credentials_say_refresh(code):
    text = aws_errors.explain(client_error(code, "The security token included in the request is expired",
                                           "DescribeVpcs"), "ec2")
    assert "expired" in text and "refresh" in text and code in text and "DescribeVpcs" in text, text


@pytest.mark.parametrize("code,quota", [("VpcLimitExceeded", "VPCs per Region"),
                                        ("AddressLimitExceeded", "EC2-VPC Elastic IPs"),
                                        ("TooManyLoadBalancers", "Network Load Balancers per Region"),
                                        ("ResourceLimitExceededException", "Amazon EKS")])
def test_a_quota_error_names_the_quota(code, quota):
    text = aws_errors.explain(client_error(code, "The maximum number has been reached.", "CreateThing"), "ec2")
    assert quota in text and code in text and "Service Quotas" in text, text


def test_a_read_timeout_names_the_variables():
    exc = botocore.exceptions.ReadTimeoutError(endpoint_url="https://ec2.eu-west-1.amazonaws.com/")
    text = aws_errors.explain(exc, "ec2")
    assert "mpc_aws_read_timeout" in text and "https://ec2.eu-west-1.amazonaws.com/" in text, text


def test_other_errors_are_left_alone():
    assert aws_errors.explain(client_error("InvalidParameterValue", "bad", "CreateVpc"), "ec2") is None
    assert aws_errors.explain(ValueError("x"), "ec2") is None


def test_every_iam_action_the_explanations_point_to_is_a_real_document():
    assert os.path.isfile(os.path.join(ROOT, aws_errors.IAM_POLICY_DOC))


# ------------------------------------------------- aws_retry.client -> fail_json_aws
class _Failed(Exception):
    pass


class _Module(object):
    """What aws_retry.client needs of an AnsibleAWSModule: client() and fail_json_aws()."""

    def __init__(self):
        self.failures = []

    def client(self, service, retry_decorator=None, **kwargs):
        return boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")

    def fail_json_aws(self, exception, msg=None, **kwargs):
        self.failures.append(msg)
        raise _Failed(msg)


def test_the_client_makes_fail_json_aws_explain():
    mod = _Module()
    aws_retry.client(mod, "eks")
    with pytest.raises(_Failed):
        mod.fail_json_aws(client_error("AccessDeniedException", "denied", "CreateNodegroup"), msg="Could not create ng")
    with pytest.raises(_Failed):
        mod.fail_json_aws(client_error("InvalidParameterException", "bad", "CreateNodegroup"), msg="Could not create ng")
    assert mod.failures[0].startswith("Could not create ng: access denied: the credentials may not call "
                                      "eks:CreateNodegroup"), mod.failures[0]
    assert mod.failures[0].endswith("AWS said")
    assert mod.failures[1] == "Could not create ng"
    aws_retry.client(mod, "eks")  # a second client does not wrap twice
    with pytest.raises(_Failed):
        mod.fail_json_aws(client_error("ExpiredToken", "expired", "DescribeNodegroup"), msg="m")
    assert mod.failures[2].count("expired or not valid") == 1


# ------------------------------------------------------------------ node group health
ISSUES = [{"code": "AsgInstanceLaunchFailures", "message": "Could not launch On-Demand Instances. "
           "InsufficientInstanceCapacity", "resourceIds": ["eks-ng-1234"]},
          {"code": "NodeCreationFailure", "message": "Instances failed to join the kubernetes cluster",
           "resourceIds": ["i-0abc"]}]


def test_health_failure_lists_every_issue():
    text = ngu.health_failure({"nodegroupName": "ng", "clusterName": "c", "status": "DEGRADED",
                               "health": {"issues": ISSUES}})
    assert "Node group ng of cluster c is DEGRADED" in text
    assert "AsgInstanceLaunchFailures: Could not launch On-Demand Instances. InsufficientInstanceCapacity (eks-ng-1234)" in text
    assert "NodeCreationFailure: Instances failed to join the kubernetes cluster (i-0abc)" in text
    assert ngu.health_failure({"status": "ACTIVE", "health": {"issues": ISSUES}}) is None
    assert "none reported" in ngu.health_failure({"status": "CREATE_FAILED", "health": {}})


@pytest.fixture()
def aws(eks_account):
    from sandbox.aws_standin_eks import nodegroup_fault

    yield eks_account  # a cluster in two subnets (conftest.eks_account)
    nodegroup_fault("ng", None)


def run(aws, capsys, **args):
    base = dict(name="ng", cluster_name="c", node_role=ROLE, subnets=aws["subnets"], ami_type="AL2023_x86_64_STANDARD",
                instance_types=["c7a.16xlarge"], scaling={"min_size": 1, "max_size": 1, "desired_size": 1},
                wait=True, wait_timeout=60)
    base.update(args, endpoint_url=aws["url"], region=REGION)
    with patch_module_args(base):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def test_create_failed_shows_the_health_issues_and_a_fixed_group_converges(aws, capsys):
    from sandbox.aws_standin_eks import nodegroup_fault

    nodegroup_fault("ng", "CREATE_FAILED", ISSUES)
    failed = run(aws, capsys)
    assert failed.get("failed") is True, failed
    msg = failed["msg"]
    assert "is CREATE_FAILED" in msg and "AsgInstanceLaunchFailures" in msg and "InsufficientInstanceCapacity" in msg, msg
    assert "NodeCreationFailure: Instances failed to join" in msg and "delete the node group" in msg, msg
    # The next run meets the same group and stops before changing anything, naming the issues again.
    again = run(aws, capsys)
    assert again.get("failed") is True and "CREATE_FAILED" in again["msg"], again
    # Cause gone (EKS reports it ACTIVE): the run converges without a change.
    nodegroup_fault("ng", None)
    fine = run(aws, capsys)
    assert fine.get("failed") is not True and fine["changed"] is False, fine


def test_degraded_fails_showing_code_and_message(aws, capsys):
    from sandbox.aws_standin_eks import nodegroup_fault

    assert run(aws, capsys)["changed"] is True
    nodegroup_fault("ng", "DEGRADED", ISSUES[1:])
    failed = run(aws, capsys, scaling={"min_size": 1, "max_size": 2, "desired_size": 1})
    assert failed.get("failed") is True
    assert "is DEGRADED" in failed["msg"] and "NodeCreationFailure: Instances failed to join" in failed["msg"]
    assert failed["nodegroup"]["health"]["issues"][0]["code"] == "NodeCreationFailure"
    # Nothing was changed on a degraded group.
    assert aws["eks"].describe_nodegroup(clusterName="c", nodegroupName="ng")["nodegroup"]["scalingConfig"]["maxSize"] == 1


# ------------------------------------------------------------------ the timeout variables
@pytest.mark.parametrize("key", ["mpc_aws_connect_timeout", "mpc_aws_read_timeout"])
def test_the_timeout_variables_are_checked_before_any_call(key):
    from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import network_model as nm
    from tests.unit.test_network_model import load_network, party_vars

    network = load_network("sandbox")
    for good in (2, 2.5, "30", 3600):
        nm.validate(network, dict(party_vars(), **{key: good}))
    for bad in (0, -1, "soon", True, 3601):
        with pytest.raises(nm.NetworkError) as info:
            nm.validate(network, dict(party_vars(), **{key: bad}))
        assert any(e.startswith(key + ": must be a number of seconds") for e in info.value.errors), info.value.errors


# ------------------------------------------------------------------ the Kubernetes API fault switch
def test_the_kube_emulator_fails_n_requests_from_the_first_create():
    from sandbox.kube_emulator import run_emulators

    def call(url, method="GET", body=None, agent="OpenAPI-Generator/37.0.1/python"):
        request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None,
                                         headers={"User-Agent": agent, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, json.loads(resp.read().decode())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read().decode())

    with run_emulators(1, base_port=19110, controller=False):
        base = "http://127.0.0.1:19111"
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kms"}}
        assert call(base + "/_emulator/faults", "POST", {"fail": 2, "from_method": "POST",
                                                          "agent": "OpenAPI-Generator"})[0] == 200
        assert call(base + "/api/v1/namespaces")[0] == 200            # before the first create
        assert call(base + "/api/v1/namespaces", agent="other/1")[0] == 200
        status, body = call(base + "/api/v1/namespaces", "POST", ns)
        assert status == 503 and body["reason"] == "ServiceUnavailable", body
        assert call(base + "/api/v1/namespaces/kms")[0] == 503         # the next one too
        assert call(base + "/api/v1/namespaces", "POST", ns)[0] == 201  # then it answers again
        report = call(base + "/_emulator/faults")[1]
        assert report["refused"] == ["POST /api/v1/namespaces", "GET /api/v1/namespaces/kms"], report
