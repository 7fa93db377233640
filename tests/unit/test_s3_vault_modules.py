"""s3_bucket_replication and s3_object_versions_info: their pure logic, and the modules run
in-process against a real moto server (port range 23160-23179)."""
import datetime
import json
import urllib.request

import boto3
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_s3_vault as lib
from ansible_collections.threshold_kms.mpc_party.plugins.modules import s3_bucket_replication as replication
from ansible_collections.threshold_kms.mpc_party.plugins.modules import s3_object_versions_info as versions_info

REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/replication"


MOTO_PORT_BASE = 23160  # + the xdist worker number; the moto_url fixture is in conftest.py


# ------------------------------------------------------------------ pure logic --

def test_replication_configuration_and_its_normal_form():
    config = lib.build_configuration(ROLE, [{"id": "r", "priority": 1, "destination_bucket": "dst",
                                             "storage_class": "STANDARD", "delete_marker_replication": False}])
    assert config == {"Role": ROLE, "Rules": [{
        "ID": "r", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
        "DeleteMarkerReplication": {"Status": "Disabled"},
        "Destination": {"Bucket": "arn:aws:s3:::dst", "StorageClass": "STANDARD"}}]}
    # what S3 may answer: filter {}, no storage class, no delete-marker setting
    answered = {"Role": ROLE, "Rules": [{"ID": "r", "Priority": 1, "Status": "Enabled", "Filter": {},
                                         "Destination": {"Bucket": "arn:aws:s3:::dst"}}]}
    assert lib.configuration_matches(config, answered)
    assert not lib.configuration_matches(config, dict(answered, Role="arn:aws:iam::123456789012:role/other"))
    legacy = {"Role": ROLE, "Rules": [{"ID": "r", "Priority": 1, "Status": "Enabled", "Prefix": "",
                                       "Destination": {"Bucket": "arn:aws:s3:::dst"}}]}
    assert lib.configuration_matches(config, legacy)


def test_rule_validation_names_the_rule():
    assert lib.validate_rules([{"id": "a", "priority": 1, "destination_bucket": "x"}]) == []
    errors = lib.validate_rules([{"id": "a", "priority": 1, "destination_bucket": ""},
                                 {"id": "a", "priority": 1, "destination_bucket": "y"}])
    assert errors == ["rules[0].destination_bucket: required", "rules[1].id: duplicate rule id 'a'",
                      "rules[1].priority: duplicate priority 1 (S3 needs distinct priorities)"]


def test_versions_summary_counts_everything_a_deletion_destroys():
    when = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    pages = [{"Versions": [{"Key": "PRIV-p1/a", "VersionId": "2", "IsLatest": False, "Size": 5, "LastModified": when},
                           {"Key": "PRIV-p1/a", "VersionId": "1", "IsLatest": False, "Size": 4, "LastModified": when}],
              "DeleteMarkers": [{"Key": "PRIV-p1/a", "VersionId": "3", "IsLatest": True, "LastModified": when}]},
             {"Versions": [{"Key": "PRIV-p1/b", "VersionId": "1", "IsLatest": True, "Size": 1, "LastModified": when}]}]
    summary = lib.summarise_versions(pages, max_items=2)
    assert {k: summary[k] for k in ("objects", "versions", "delete_markers", "bytes", "key_count", "empty", "truncated")} == {
        "objects": 1, "versions": 3, "delete_markers": 1, "bytes": 10, "key_count": 2, "empty": False, "truncated": True}
    assert summary["entries"][0] == {"key": "PRIV-p1/a", "version_id": "2", "is_latest": False, "delete_marker": False,
                                     "size": 5, "last_modified": "2026-01-01T00:00:00+00:00"}
    assert lib.summarise_versions([])["empty"] is True


# ------------------------------------------------------------ against moto --

@pytest.fixture()
def aws(moto_url, monkeypatch):
    urllib.request.urlopen(urllib.request.Request(moto_url + "/moto-api/reset", method="POST")).read()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name=REGION)
    for name, region in (("backup", REGION), ("replica", "eu-central-1")):
        client = boto3.client("s3", endpoint_url=moto_url, region_name=region)
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return {"url": moto_url, "s3": s3}


def run(aws, capsys, module, check=False, **args):
    args = dict(args, endpoint_url=aws["url"], region=REGION, _ansible_check_mode=check, _ansible_diff=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


RULES = [{"id": "backup-vault-replica", "destination_bucket": "replica"}]


def held(aws):
    try:
        return aws["s3"].get_bucket_replication(Bucket="backup")["ReplicationConfiguration"]
    except aws["s3"].exceptions.ClientError:
        return None


def test_replication_check_mode_then_create_then_noop(aws, capsys):
    planned = run(aws, capsys, replication, check=True, bucket="backup", role_arn=ROLE, rules=RULES)
    assert planned["changed"] is True and held(aws) is None
    created = run(aws, capsys, replication, bucket="backup", role_arn=ROLE, rules=RULES)
    assert created["changed"] is True
    config = held(aws)
    assert config["Role"] == ROLE
    assert config["Rules"][0]["Destination"]["Bucket"] == "arn:aws:s3:::replica"
    assert config["Rules"][0]["DeleteMarkerReplication"] == {"Status": "Disabled"}
    again = run(aws, capsys, replication, bucket="backup", role_arn=ROLE, rules=RULES)
    assert again["changed"] is False


def test_replication_change_and_removal(aws, capsys):
    run(aws, capsys, replication, bucket="backup", role_arn=ROLE, rules=RULES)
    changed = run(aws, capsys, replication, bucket="backup", role_arn=ROLE,
                  rules=[dict(RULES[0], storage_class="STANDARD_IA")])
    assert changed["changed"] is True
    assert changed["diff"]["before"]["Rules"][0]["Destination"]["StorageClass"] == "STANDARD"
    assert held(aws)["Rules"][0]["Destination"]["StorageClass"] == "STANDARD_IA"
    assert run(aws, capsys, replication, bucket="backup", state="absent")["changed"] is True
    assert held(aws) is None
    assert run(aws, capsys, replication, bucket="backup", state="absent")["changed"] is False
    # removing replication never touches the buckets
    assert {b["Name"] for b in aws["s3"].list_buckets()["Buckets"]} == {"backup", "replica"}


def test_replication_bad_input(aws, capsys):
    failed = run(aws, capsys, replication, bucket="backup", role_arn=ROLE,
                 rules=[{"id": "a", "destination_bucket": "x"}, {"id": "a", "destination_bucket": "y"}])
    assert failed["failed"] is True and "rules[1].id: duplicate rule id 'a'" in failed["msg"]
    missing = run(aws, capsys, replication, bucket="nope", role_arn=ROLE, rules=RULES)
    assert missing["failed"] is True and missing["msg"] == "bucket: nope does not exist"


def test_versions_info_sees_deleted_keys(aws, capsys):
    s3 = aws["s3"]
    assert run(aws, capsys, versions_info, bucket="backup")["empty"] is True
    s3.put_object(Bucket="backup", Key="BACKUP-p1/key", Body=b"v1")
    s3.put_object(Bucket="backup", Key="BACKUP-p1/key", Body=b"v22")
    s3.delete_object(Bucket="backup", Key="BACKUP-p1/key")
    seen = run(aws, capsys, versions_info, bucket="backup")
    assert seen["changed"] is False and seen["exists"] is True
    assert (seen["empty"], seen["objects"], seen["versions"], seen["delete_markers"], seen["bytes"]) == (False, 0, 2, 1, 5)
    assert {e["key"] for e in seen["entries"]} == {"BACKUP-p1/key"}
    assert run(aws, capsys, versions_info, bucket="backup", prefix="OTHER/")["empty"] is True
    absent = run(aws, capsys, versions_info, bucket="no-such-bucket")
    assert absent["exists"] is False and absent["empty"] is True
