"""The collection's retry policy (module_utils/aws_retry.py) where modules used to bypass it, and
IAM's eventual consistency right after an OIDC provider is created.

The modules run in-process against a real moto server (port range 15500-15509). moto answers at
once and never throttles, so the transient errors are injected at the boundary: botocore's
``BaseClient._make_api_call`` fails the first calls of one operation, below the modules' retry
wrapper and above botocore's own retries, as a throttled or not-yet-consistent AWS would.
"""
import json
import urllib.request

import boto3
import botocore.client
import pytest
from ansible.module_utils.testing import patch_module_args
from botocore.exceptions import ClientError

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import iam_oidc
from ansible_collections.threshold_kms.mpc_party.plugins.modules import iam_oidc_provider
from ansible_collections.threshold_kms.mpc_party.plugins.modules import rds_instance_managed_password
from ansible_collections.threshold_kms.mpc_party.plugins.modules import s3_object_versions_info

REGION = "eu-west-1"
ISSUER = "https://oidc.eks.eu-west-1.amazonaws.com/id/RACE0000000000000000000000000000"

MOTO_PORT_BASE = 15500  # + the xdist worker number; the moto_url fixture is in conftest.py


@pytest.fixture()
def aws(moto_url, monkeypatch):
    urllib.request.urlopen(urllib.request.Request(moto_url + "/moto-api/reset", method="POST")).read()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return moto_url


@pytest.fixture()
def inject(monkeypatch):
    """inject(operation, code, times, after=None): the next ``times`` calls of ``operation`` (once
    ``after`` has been called, when given) fail with ``code``. Returns the log of calls made."""
    real = botocore.client.BaseClient._make_api_call
    rules = []
    calls = []

    def fake(client, operation, params):
        calls.append(operation)
        for rule in rules:
            armed = rule["after"] is None or rule["after"] in calls
            if operation == rule["operation"] and armed and rule["left"] > 0:
                rule["left"] -= 1
                raise ClientError({"Error": {"Code": rule["code"], "Message": "injected"},
                                   "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)
        return real(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", fake)

    def add(operation, code, times, after=None):
        rules.append(dict(operation=operation, code=code, left=times, after=after))
        return calls
    return add


def run(module, endpoint, capsys, **args):
    args = dict(dict(_ansible_check_mode=False), **args)
    args.update(endpoint_url=endpoint, region=REGION, _ansible_diff=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def test_oidc_provider_rides_out_no_such_entity_right_after_create(aws, inject, capsys):
    # IAM has created the provider, but the first two reads of it still answer NoSuchEntity.
    calls = inject("GetOpenIDConnectProvider", "NoSuchEntity", 2, after="CreateOpenIDConnectProvider")
    created = run(iam_oidc_provider, aws, capsys, url=ISSUER, tags={"mpc-party-id": "1"})
    assert created.get("failed") is not True, created
    assert created["changed"] is True
    assert created["arn"] == iam_oidc.provider_arn("123456789012", ISSUER)
    assert created["tags"] == {"mpc-party-id": "1"} and created["client_ids"] == ["sts.amazonaws.com"]
    assert calls.count("CreateOpenIDConnectProvider") == 1
    # 2 failed reads, then the one that answered
    assert calls[calls.index("CreateOpenIDConnectProvider"):].count("GetOpenIDConnectProvider") == 3
    iam = boto3.client("iam", endpoint_url=aws, region_name=REGION)
    assert [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]] == [created["arn"]]


def test_oidc_provider_no_such_entity_is_not_retried_when_looking_up(aws, inject, capsys):
    # A provider deleted between the listing and the read is absent: one read, no retry.
    iam = boto3.client("iam", endpoint_url=aws, region_name=REGION)
    iam.create_open_id_connect_provider(Url=ISSUER, ClientIDList=["sts.amazonaws.com"])
    calls = inject("GetOpenIDConnectProvider", "NoSuchEntity", 5)
    planned = run(iam_oidc_provider, aws, capsys, url=ISSUER, _ansible_check_mode=True)
    assert planned["changed"] is True and planned["diff"]["before"] == {}
    assert calls.count("GetOpenIDConnectProvider") == 1


def test_object_versions_listing_retries_a_throttled_page(aws, inject, capsys):
    s3 = boto3.client("s3", endpoint_url=aws, region_name=REGION)
    s3.create_bucket(Bucket="vault", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket="vault", VersioningConfiguration={"Status": "Enabled"})
    for body in (b"1", b"22"):
        s3.put_object(Bucket="vault", Key="PRIV-p1/share", Body=body)
    # S3's throttled answer without a body is a bare 503.
    calls = inject("ListObjectVersions", "503", 1)
    listed = run(s3_object_versions_info, aws, capsys, bucket="vault")
    assert listed.get("failed") is not True, listed
    assert (listed["exists"], listed["versions"], listed["bytes"]) == (True, 2, 3)
    assert calls.count("ListObjectVersions") == 2


def test_rds_module_retries_throttling(aws, inject, capsys):
    calls = inject("DescribeDBInstances", "ThrottlingException", 1)
    planned = run(rds_instance_managed_password, aws, capsys, _ansible_check_mode=True, db_instance_identifier="kms-db",
                  engine="postgres", db_instance_class="db.t4g.micro", allocated_storage=20, master_username="kms")
    assert planned.get("failed") is not True, planned
    assert planned["changed"] is True and planned["created"] is True
    assert calls.count("DescribeDBInstances") == 2
