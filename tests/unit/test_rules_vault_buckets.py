"""vault_buckets' input rules (plugins/module_utils/rules_vault_buckets.py), through role_inputs.check with
the role's real argument spec: each rule passes a good value and names the variable of a bad one."""

import pytest

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import role_inputs
from tests.support.role_specs import for_role

OIDC = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
UNKNOWN = "(known after apply)"


spec = for_role("vault_buckets")


VALID = {
    "vault_buckets_state": "present",
    "vault_buckets_party_id": 1,
    "vault_buckets_region": "eu-west-1",
    "vault_buckets_private_name": "kms-p1-private",
    "vault_buckets_public_name": "kms-p1-public",
    "vault_buckets_backup_name": "",
    "vault_buckets_private_prefix": "PRIV-p1",
    "vault_buckets_public_prefix": "PUB-p1",
    "vault_buckets_backup_prefix": "BACKUP-p1",
    "vault_buckets_encryption": "AES256",
    "vault_buckets_noncurrent_version_days": 365,
    "vault_buckets_noncurrent_versions_kept": 3,
    "vault_buckets_abort_multipart_days": 7,
    "vault_buckets_oidc_provider_arn": OIDC,
    "vault_buckets_kms_key_arn": KEY,
    "vault_buckets_backup_kms_key_arn": "",
    "vault_buckets_namespace": "kms",
    "vault_buckets_service_account": "kms-core",
    "vault_buckets_irsa_role_name": "kms-p1-kms-party",
    "vault_buckets_connector_service_account": "kms-connector",
    "vault_buckets_connector_role_name": "kms-p1-kms-connector",
    "vault_buckets_backup_replication_region": "",
    "vault_buckets_backup_replica_name": "-replica",
    "vault_buckets_backup_replication_role_name": "kms-p1-backup-replication",
}
BACKUP = {"vault_buckets_backup_name": "kms-p1-backup", "vault_buckets_backup_replica_name": "kms-p1-backup-replica"}


def check(check_mode=False, **change):
    options = spec()
    values = dict((k, v) for k, v in dict(VALID, **change).items() if k in options)
    return role_inputs.check("vault_buckets", options, values, {"check_mode": check_mode})[0]


def test_the_base_and_a_replicated_backup_pass():
    assert check() == []
    assert check(vault_buckets_backup_replication_region="eu-central-1", **BACKUP) == []


@pytest.mark.parametrize("change, variable, words", [
    ({"vault_buckets_encryption": "aes256"}, "vault_buckets_encryption", "must be one of: AES256, aws:kms"),
    ({"vault_buckets_state": "gone"}, "vault_buckets_state", "must be one of: present, absent"),
    ({"vault_buckets_noncurrent_version_days": -1}, "vault_buckets_noncurrent_version_days", "at least 1 (got -1)"),
    ({"vault_buckets_noncurrent_version_days": 0}, "vault_buckets_noncurrent_version_days", "at least 1"),
    ({"vault_buckets_noncurrent_version_days": "a year"}, "vault_buckets_noncurrent_version_days",
     "must be of type int"),
    ({"vault_buckets_noncurrent_versions_kept": 101}, "vault_buckets_noncurrent_versions_kept", "0..100"),
    ({"vault_buckets_noncurrent_versions_kept": -1}, "vault_buckets_noncurrent_versions_kept", "0..100"),
    ({"vault_buckets_abort_multipart_days": -7}, "vault_buckets_abort_multipart_days", "at least 1"),
    ({"vault_buckets_party_id": 0}, "vault_buckets_party_id", "a party id, at least 1"),
    ({"vault_buckets_region": "europe"}, "vault_buckets_region", "an AWS region"),
    ({"vault_buckets_private_name": "Not_A_Bucket"}, "vault_buckets_private_name",
     "S3 bucket names use only lowercase"),
    ({"vault_buckets_public_name": "ab"}, "vault_buckets_public_name", "S3 bucket names are 3 to 63"),
    ({"vault_buckets_backup_name": "kms..backup"}, "vault_buckets_backup_name", "two adjacent dots"),
    ({"vault_buckets_public_name": "kms-p1-private"}, "vault_buckets_public_name",
     "each vault needs its own bucket; vault_buckets_private_name"),
    ({"vault_buckets_private_prefix": "PRIV/p1"}, "vault_buckets_private_prefix", "letters, digits, '-' and '_'"),
    ({"vault_buckets_public_prefix": "PRIV-p1"}, "vault_buckets_public_prefix", "the three prefixes must differ"),
    ({"vault_buckets_backup_prefix": "PUB-backup"}, "vault_buckets_backup_prefix", "another vault's type name"),
    ({"vault_buckets_oidc_provider_arn": ""}, "vault_buckets_oidc_provider_arn", "the IAM OIDC provider ARN"),
    ({"vault_buckets_oidc_provider_arn": UNKNOWN}, "vault_buckets_oidc_provider_arn", "the IAM OIDC provider ARN"),
    ({"vault_buckets_kms_key_arn": "alias/kms"}, "vault_buckets_kms_key_arn", "empty or a KMS key ARN"),
    ({"vault_buckets_backup_kms_key_arn": "key-1"}, "vault_buckets_backup_kms_key_arn", "empty or a KMS key ARN"),
    ({"vault_buckets_namespace": "KMS"}, "vault_buckets_namespace", "a Kubernetes namespace"),
    ({"vault_buckets_service_account": "kms_core"}, "vault_buckets_service_account", "a Kubernetes name"),
    ({"vault_buckets_connector_service_account": "-x"}, "vault_buckets_connector_service_account", "a Kubernetes name"),
    ({"vault_buckets_irsa_role_name": "a role"}, "vault_buckets_irsa_role_name", "an IAM role name"),
    ({"vault_buckets_connector_role_name": "r" * 65}, "vault_buckets_connector_role_name", "an IAM role name"),
    ({"vault_buckets_backup_replication_role_name": "x/y"}, "vault_buckets_backup_replication_role_name",
     "an IAM role name"),
    ({"vault_buckets_backup_replication_region": "eu-central-1"}, "vault_buckets_backup_replication_region",
     "needs a backup vault"),
    (dict(BACKUP, vault_buckets_backup_replication_region="eu-west-1"), "vault_buckets_backup_replication_region",
     "an AWS region other than eu-west-1"),
    (dict(BACKUP, vault_buckets_backup_replication_region="eu-central-1", vault_buckets_backup_replica_name="Replica"),
     "vault_buckets_backup_replica_name", "S3 bucket names use only lowercase"),
    (dict(BACKUP, vault_buckets_backup_replication_region="eu-central-1", vault_buckets_encryption="aws:kms"),
     "vault_buckets_encryption", "aws:kms cannot be combined with vault_buckets_backup_replication_region"),
])
def test_each_mistake_names_its_variable(change, variable, words):
    problems = check(**change)
    assert problems, "no problem found for %s" % change
    assert all(p.startswith("vault_buckets: %s: " % variable) for p in problems), problems
    assert any(words in p for p in problems), problems


def test_every_problem_at_once():
    problems = check(vault_buckets_noncurrent_version_days=-1, vault_buckets_encryption="none",
                     vault_buckets_namespace="KMS")
    assert sorted(p.split(": ")[1] for p in problems) == [
        "vault_buckets_encryption", "vault_buckets_namespace", "vault_buckets_noncurrent_version_days"]


def test_check_mode_placeholders_of_earlier_roles():
    """Before eks_cluster and nitro_nodegroup ran in check mode their facts hold a placeholder."""
    assert check(True, vault_buckets_oidc_provider_arn=UNKNOWN, vault_buckets_kms_key_arn=UNKNOWN,
                 vault_buckets_backup_kms_key_arn=UNKNOWN) == []
    assert check(False, vault_buckets_kms_key_arn=UNKNOWN)


def test_removal_needs_no_oidc_provider_and_no_replication_without_backup():
    assert check(vault_buckets_state="absent", vault_buckets_oidc_provider_arn="") == []
    assert check(vault_buckets_backup_replica_name="Not A Bucket") == []  # no replica, not used


def test_an_earlier_roles_output_is_checked_when_the_role_starts():
    """In preflight the wired ARNs are unknown: the rules reading them wait."""
    options = spec()
    values = dict((k, v) for k, v in VALID.items() if k in options and not k.endswith("_arn"))
    assert role_inputs.check("vault_buckets", options, values)[0] == []
