"""s3_vault_plan: the one definition of the vault buckets' settings (module_utils/s3_vault_plan.py,
the vault_bucket_settings filter) and the module that compares it with S3 in check mode, run
in-process against a real moto server (port range 15520-15529)."""
import json
import urllib.request

import boto3
import pytest
from ansible.errors import AnsibleFilterError
from ansible.module_utils.testing import patch_module_args

from ansible_collections.threshold_kms.mpc_party.plugins.filter import vault_buckets as filters
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import s3_vault_plan as lib
from ansible_collections.threshold_kms.mpc_party.plugins.modules import s3_vault_plan as module

REGION = "eu-west-1"
VAULTS = [{"vault": "private", "name": "kms-t-p1-private", "prefix": "PRIV-p1", "public": False},
          {"vault": "public", "name": "kms-t-p1-public", "prefix": "PUB-p1", "public": True}]

MOTO_PORT_BASE = 15520  # + the xdist worker number; the moto_url fixture is in conftest.py


# ------------------------------------------------------------------ pure logic --

def test_settings_of_the_private_and_public_vaults():
    private, public = lib.bucket_settings(VAULTS, encryption="aws:kms", encryption_key_id="arn:aws:kms:k",
                                          tags={"mpc-party-id": "1"})
    assert (private["encryption"], private["encryption_key_id"], private["bucket_key_enabled"]) == ("aws:kms", "arn:aws:kms:k", True)
    # anonymous readers cannot use a KMS key: the public vault is always SSE-S3
    assert (public["encryption"], public["encryption_key_id"], public["bucket_key_enabled"]) == ("AES256", None, None)
    assert private["public_access"] == lib.BLOCK_ALL and public["public_access"]["block_public_policy"] is False
    assert private["cors_rules"] == [] and public["cors_rules"][0]["allowed_methods"] == ["GET", "HEAD"]
    assert [s["Sid"] for s in private["policy"]["Statement"]] == ["DenyInsecureTransport"]
    assert [s["Sid"] for s in public["policy"]["Statement"]] == [
        "DenyInsecureTransport", "PublicReadOfPublicVault", "PublicListOfPublicVault"]
    assert public["policy"]["Statement"][1]["Resource"] == "arn:aws:s3:::kms-t-p1-public/PUB-p1/*"
    assert private["tags"] == {"mpc-party-id": "1", "mpc-vault": "private"}
    assert private["lifecycle"] == {"rule_id": "noncurrent-versions", "noncurrent_days": 365,
                                    "noncurrent_versions_kept": 3, "abort_multipart_days": 7}


def test_no_statement_means_no_policy_and_strings_are_read_as_ansible_would_pass_them():
    private, public = lib.bucket_settings(VAULTS, partition="aws-cn", require_tls="false", public_list="no",
                                          noncurrent_days="30")
    assert private["policy"] == {}
    assert [s["Sid"] for s in public["policy"]["Statement"]] == ["PublicReadOfPublicVault"]
    assert public["policy"]["Statement"][0]["Resource"].startswith("arn:aws-cn:s3:::")
    assert private["lifecycle"]["noncurrent_days"] == 30


def test_filter_refuses_what_is_not_a_list_of_vaults():
    assert filters.vault_bucket_settings(VAULTS, require_tls=True)[0]["name"] == "kms-t-p1-private"
    with pytest.raises(AnsibleFilterError, match="expected a list of"):
        filters.vault_bucket_settings([{"name": "x"}])
    with pytest.raises(AnsibleFilterError, match="unexpected keyword argument 'encrypt'"):
        filters.vault_bucket_settings(VAULTS, encrypt="AES256")


def test_policies_are_compared_as_sets_of_statements():
    settings = lib.bucket_settings(VAULTS)[1]
    answered = dict(settings["policy"], Statement=[dict(s, Action=[s["Action"]] if isinstance(s["Action"], str) else s["Action"])
                                                   for s in reversed(settings["policy"]["Statement"])])
    assert lib.normal_policy(answered) == lib.normal_policy(settings["policy"])
    rogue = dict(answered, Statement=answered["Statement"] + [{"Sid": "RogueRead", "Effect": "Allow", "Action": "s3:GetObject",
                                                                 "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                                                                 "Resource": "arn:aws:s3:::kms-t-p1-public/*"}])
    assert lib.normal_policy(rogue) != lib.normal_policy(settings["policy"])


def test_plan_of_a_missing_bucket_describes_the_creation():
    result = lib.plan(lib.bucket_settings(VAULTS)[1], {})
    assert result["changed"] is True and result["exists"] is False and result["drift"] == []
    assert result["msg"] == ("would create bucket kms-t-p1-public (public vault): ownership enforced, versioning, AES256 "
                             "encryption, public access block, TLS-only policy, public read of PUB-p1/*, lifecycle, CORS")
    assert result["before"] == {} and set(result["after"]) == {
        "versioning", "encryption", "object ownership", "public access block", "bucket policy", "lifecycle", "CORS"}


# ------------------------------------------------------------ against moto --

@pytest.fixture()
def aws(moto_url, monkeypatch):
    urllib.request.urlopen(urllib.request.Request(moto_url + "/moto-api/reset", method="POST")).read()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return {"url": moto_url, "s3": boto3.client("s3", endpoint_url=moto_url, region_name=REGION)}


def run(aws, capsys, settings):
    args = dict(settings=settings, endpoint_url=aws["url"], region=REGION, _ansible_check_mode=True, _ansible_diff=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def apply(s3, settings):
    """What vault_buckets' S3 tasks set, with boto3 (the S3 modules themselves run in molecule/vault_buckets)."""
    name = settings["name"]
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": settings["object_ownership"]}]})
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": settings["encryption"]}}]})
    block = settings["public_access"]
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": block["block_public_acls"], "IgnorePublicAcls": block["ignore_public_acls"],
        "BlockPublicPolicy": block["block_public_policy"], "RestrictPublicBuckets": block["restrict_public_buckets"]})
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps(settings["policy"]))
    if settings["cors_rules"]:
        s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": [{
            "AllowedOrigins": r["allowed_origins"], "AllowedMethods": r["allowed_methods"],
            "AllowedHeaders": r["allowed_headers"], "ExposeHeaders": r["expose_headers"],
            "MaxAgeSeconds": r["max_age_seconds"]} for r in settings["cors_rules"]]})
    life = settings["lifecycle"]
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [{
        "ID": life["rule_id"], "Status": "Enabled", "Filter": {"Prefix": ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": life["noncurrent_days"]},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": life["abort_multipart_days"]}}]})


def test_missing_bucket_would_be_created_and_nothing_is_written(aws, capsys):
    settings = lib.bucket_settings(VAULTS[:1])[0]
    result = run(aws, capsys, settings)
    assert result["changed"] is True and result["exists"] is False
    assert result["msg"].startswith("would create bucket kms-t-p1-private (private vault): ownership enforced")
    assert result["diff"]["before"] == {} and result["diff"]["after"]["encryption"] == "AES256"
    assert aws["s3"].list_buckets()["Buckets"] == []


def test_applied_buckets_are_up_to_date_then_drift_is_named_and_diffed(aws, capsys):
    private, public = lib.bucket_settings(VAULTS, noncurrent_versions_kept=0)
    for settings in (private, public):
        apply(aws["s3"], settings)
        result = run(aws, capsys, settings)
        assert (result["changed"], result["msg"], result["drift"]) == (False, "%s: up to date" % settings["name"], []), result
    # out of band: CORS opened to PUT from another origin, the lifecycle shortened, a rogue statement
    aws["s3"].put_bucket_cors(Bucket=public["name"], CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["https://evil.example"], "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["*"]}]})
    aws["s3"].put_bucket_lifecycle_configuration(Bucket=private["name"], LifecycleConfiguration={"Rules": [{
        "ID": "noncurrent-versions", "Status": "Enabled", "Filter": {"Prefix": ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]})
    rogue = dict(public["policy"], Statement=public["policy"]["Statement"] + [{
        "Sid": "RogueRead", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::%s/*" % public["name"]}])
    aws["s3"].put_bucket_policy(Bucket=public["name"], Policy=json.dumps(rogue))

    drifted = run(aws, capsys, private)
    assert drifted["changed"] is True and drifted["drift"] == ["lifecycle"]
    assert drifted["msg"] == ("would change kms-t-p1-private (private vault): lifecycle differ from what this role sets "
                              "(--diff shows before and after)")
    assert drifted["diff"]["before"]["lifecycle"]["noncurrent_days"] == 1
    assert drifted["diff"]["before"]["lifecycle"]["abort_multipart_days"] is None
    assert drifted["diff"]["after"] == {"lifecycle": {"status": "Enabled", "prefix": "", "noncurrent_days": 365,
                                                      "noncurrent_versions_kept": 0, "abort_multipart_days": 7}}
    drifted = run(aws, capsys, public)
    assert drifted["drift"] == ["bucket policy", "CORS"]
    assert "RogueRead" in json.dumps(drifted["diff"]["before"]) and "RogueRead" not in json.dumps(drifted["diff"]["after"])
    assert drifted["diff"]["before"]["CORS"][0]["AllowedOrigins"] == ["https://evil.example"]
    assert drifted["diff"]["after"]["CORS"][0]["AllowedMethods"] == ["GET", "HEAD"]
    # check mode wrote nothing
    assert aws["s3"].get_bucket_cors(Bucket=public["name"])["CORSRules"][0]["AllowedOrigins"] == ["https://evil.example"]


def test_settings_missing_a_key_are_refused_before_any_call(aws, capsys):
    settings = lib.bucket_settings(VAULTS[:1])[0]
    del settings["policy"]
    result = run(aws, capsys, settings)
    assert result["failed"] is True
    assert result["msg"] == "settings: missing policy (pass an entry of the vault_bucket_settings filter)"
