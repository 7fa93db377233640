"""rds_instance_managed_password: the pure logic, and the module run in-process against a real
moto server (started here, on a port of the ops range 27070-27079)."""
import json
import urllib.request

import boto3
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import rds_managed_password as lib
from ansible_collections.threshold_kms.mpc_party.plugins.modules import rds_instance_managed_password as module

REGION = "eu-west-1"
BASE = dict(db_instance_identifier="kms-p1-connector", engine="postgres", engine_version="16.8",
            db_instance_class="db.t4g.medium", allocated_storage=20, master_username="kms_connector",
            db_name="kms_connector", storage_encrypted=True, deletion_protection=True, backup_retention_period=7,
            publicly_accessible=False)


# moto_url (tests/unit/conftest.py) listens on this + the xdist worker number.
MOTO_PORT_BASE = 27070


# ------------------------------------------------------------------ pure logic --

def test_validate_params_names_each_option_and_rule():
    assert lib.validate_params(dict(BASE)) == []
    errors = lib.validate_params(dict(BASE, db_instance_identifier="1bad--id-", engine="aurora-postgresql",
                                      db_instance_class=None, backup_retention_period=40,
                                      max_allocated_storage=10, preferred_backup_window="25:00-26:00",
                                      preferred_maintenance_window="sun:03:00"))
    assert errors[0].startswith("db_instance_identifier: 1-63 letters")
    assert errors[1] == "db_instance_class: required to create the instance"
    assert errors[2].startswith("engine: one of postgres, mysql, mariadb")
    assert errors[3] == "backup_retention_period: 0 to 35 days (got 40)"
    assert errors[4] == "max_allocated_storage: at least allocated_storage (20; got 10)"
    assert errors[5].startswith("preferred_backup_window: hh24:mi-hh24:mi")
    assert errors[6].startswith("preferred_maintenance_window: ddd:hh24:mi-ddd:hh24:mi")
    assert len(errors) == 7


def test_create_parameters_use_rds_names_and_never_a_password():
    params = lib.create_parameters(dict(BASE, vpc_security_group_ids=["sg-1"], multi_az=True, kms_key_id=""),
                                   tags={"b": 2, "a": "x"})
    assert params["DBInstanceIdentifier"] == "kms-p1-connector"
    assert params["DBInstanceClass"] == "db.t4g.medium"
    assert params["DBName"] == "kms_connector"
    assert params["MultiAZ"] is True
    assert params["VpcSecurityGroupIds"] == ["sg-1"]
    assert params["ManageMasterUserPassword"] is True
    assert "KmsKeyId" not in params  # empty means the account's aws/rds key
    assert "MasterUserPassword" not in params
    assert params["Tags"] == [{"Key": "a", "Value": "x"}, {"Key": "b", "Value": "2"}]


def test_plan():
    assert lib.plan(None, False)[0] == "create"
    assert lib.plan({"MasterUserSecret": {"SecretArn": "arn"}}, False)[0] == "none"
    action, reason = lib.plan({"DBInstanceStatus": "available"}, False)
    assert action == "refuse" and "convert_existing: true" in reason
    assert lib.plan({"DBInstanceStatus": "available"}, True)[0] == "enable"
    assert lib.plan({"DBInstanceStatus": "deleting", "MasterUserSecret": {}}, True)[0] == "refuse"


# ------------------------------------------------------------ against moto --

@pytest.fixture()
def aws(moto_url, monkeypatch):
    urllib.request.urlopen(urllib.request.Request(moto_url + "/moto-api/reset", method="POST")).read()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    kw = dict(endpoint_url=moto_url, region_name=REGION)
    return {"url": moto_url, "rds": boto3.client("rds", **kw), "sm": boto3.client("secretsmanager", **kw)}


def run(aws, capsys, check=False, **args):
    args = dict(args, endpoint_url=aws["url"], region=REGION, _ansible_check_mode=check)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def test_check_mode_creates_nothing(aws, capsys):
    out = run(aws, capsys, check=True, **BASE)
    assert out["changed"] is True and out["created"] is True
    assert aws["rds"].describe_db_instances()["DBInstances"] == []


def test_create_then_nothing_to_do(aws, capsys):
    first = run(aws, capsys, **BASE)
    assert first["changed"] is True and first["created"] is True
    [instance] = aws["rds"].describe_db_instances()["DBInstances"]
    assert instance["StorageEncrypted"] and instance["DeletionProtection"]
    assert instance["BackupRetentionPeriod"] == 7
    secret_arn = instance["MasterUserSecret"]["SecretArn"]
    assert first["master_user_secret"]["secret_arn"] == secret_arn
    assert aws["sm"].describe_secret(SecretId=secret_arn)["OwningService"] == "rds"
    # the module returns where the password is, never the password
    password = json.loads(aws["sm"].get_secret_value(SecretId=secret_arn)["SecretString"])["password"]
    assert password not in json.dumps(first)

    second = run(aws, capsys, **BASE)
    assert second["changed"] is False and second["created"] is False
    assert second["master_user_secret"]["secret_arn"] == secret_arn


def test_an_instance_with_its_own_password_is_converted_only_on_request(aws, capsys):
    aws["rds"].create_db_instance(DBInstanceIdentifier="kms-p1-connector", DBInstanceClass="db.t4g.medium",
                                  Engine="postgres", MasterUsername="kms_connector", MasterUserPassword="an-old-password",
                                  AllocatedStorage=20)
    refused = run(aws, capsys, **BASE)
    assert refused["failed"] is True
    assert "convert_existing: true" in refused["msg"]
    assert "MasterUserSecret" not in aws["rds"].describe_db_instances()["DBInstances"][0]

    converted = run(aws, capsys, convert_existing=True, **BASE)
    assert converted["changed"] is True and converted["converted"] is True
    assert aws["rds"].describe_db_instances()["DBInstances"][0]["MasterUserSecret"]["SecretArn"]


def test_bad_input_fails_before_any_call(aws, capsys):
    out = run(aws, capsys, **dict(BASE, db_instance_identifier="-x", master_username=None))
    assert out["failed"] is True
    assert out["msg"].startswith("Invalid input: db_instance_identifier: 1-63 letters")
    assert "master_username: required to create the instance" in out["msg"]
