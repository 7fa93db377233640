# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Rules of vault_buckets' inputs (registry and conventions: role_rules.py).

The argument spec holds the types and the choices of vault_buckets_state and
vault_buckets_encryption; what it cannot say is here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.input_rules import (
    IAM_ROLE_NAME_RE, OIDC_PROVIDER_ARN_RE, REGION_RE, UNKNOWN, range_errors)
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.network_model import (
    DNS_LABEL_RE, HOSTNAME_RE, prefix_errors, s3_bucket_name_errors)
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.role_rules import got, rule

R = "vault_buckets"
# A KMS key ARN (not an alias: IAM grants on a key ARN).
KMS_KEY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$")
# The vaults in the order their names and prefixes are reported.
VAULTS = ("private", "public", "backup")


def _pending(value, context):
    """The placeholder a check-mode run hands on for a resource an earlier role has not created."""
    return bool(context.get("check_mode")) and value == UNKNOWN


@rule(R, "vault_buckets_party_id")
def _party_id(v, _):
    return range_errors("vault_buckets_party_id", v["vault_buckets_party_id"], 1, None, "a party id")


@rule(R, "vault_buckets_region")
def _region(v, _):
    if not REGION_RE.match(v["vault_buckets_region"]):
        return ["vault_buckets_region: an AWS region such as eu-west-1 %s" % got(v["vault_buckets_region"])]
    return []


@rule(R, *["vault_buckets_%s_name" % vault for vault in VAULTS])
def _names(v, _):
    problems, seen = [], {}
    for vault in VAULTS:
        name, value = "vault_buckets_%s_name" % vault, v["vault_buckets_%s_name" % vault]
        if vault == "backup" and not value:
            continue  # no backup vault
        problems += ["%s: %s %s" % (name, e, got(value)) for e in s3_bucket_name_errors(value)]
        if value in seen:
            problems.append("%s: each vault needs its own bucket; %s already names it %s"
                            % (name, seen[value], got(value)))
        seen.setdefault(value, name)
    return problems


@rule(R, *["vault_buckets_%s_prefix" % vault for vault in VAULTS])
def _prefixes(v, _):
    problems, seen = [], {}
    for vault in VAULTS:
        name, value = "vault_buckets_%s_prefix" % vault, v["vault_buckets_%s_prefix" % vault]
        problems += ["%s: %s" % (name, e) for e in prefix_errors(value, vault)]
        if value in seen:
            problems.append("%s: the three prefixes must differ; %s is the same %s" % (name, seen[value], got(value)))
        seen.setdefault(value, name)
    return problems


@rule(R, "vault_buckets_state", "vault_buckets_oidc_provider_arn")
def _oidc(v, context):
    arn = v["vault_buckets_oidc_provider_arn"]
    if v["vault_buckets_state"] != "present" or _pending(arn, context):
        return []
    if not OIDC_PROVIDER_ARN_RE.match(arn) or arn == UNKNOWN:
        return ["vault_buckets_oidc_provider_arn: the IAM OIDC provider ARN of the cluster (wire "
                "eks_cluster_facts.oidc_provider_arn) %s" % got(arn)]
    return []


def _key_arn(name, arn, context, wire):
    if not arn or KMS_KEY_ARN_RE.match(arn) or _pending(arn, context):
        return []
    return ["%s: empty or a KMS key ARN arn:<partition>:kms:<region>:<account>:key/<id> (wire %s) %s"
            % (name, wire, got(arn))]


@rule(R, "vault_buckets_kms_key_arn")
def _kms_key(v, context):
    return _key_arn("vault_buckets_kms_key_arn", v["vault_buckets_kms_key_arn"], context,
                    "nitro_nodegroup_facts.kms_key_arn")


@rule(R, "vault_buckets_backup_kms_key_arn")
def _backup_kms_key(v, context):
    return _key_arn("vault_buckets_backup_kms_key_arn", v["vault_buckets_backup_kms_key_arn"], context,
                    "nitro_nodegroup_facts.backup_kms_key_arn")


@rule(R, "vault_buckets_namespace")
def _namespace(v, _):
    if not DNS_LABEL_RE.match(v["vault_buckets_namespace"]):
        return ["vault_buckets_namespace: a Kubernetes namespace name (a DNS label such as kms) %s"
                % got(v["vault_buckets_namespace"])]
    return []


@rule(R, "vault_buckets_service_account", "vault_buckets_connector_service_account")
def _service_accounts(v, _):
    return ["%s: a Kubernetes name (lower-case DNS name such as kms-core) %s" % (name, got(v[name]))
            for name in ("vault_buckets_service_account", "vault_buckets_connector_service_account")
            if not HOSTNAME_RE.match(v[name])]


ROLE_NAMES = ("vault_buckets_irsa_role_name", "vault_buckets_connector_role_name",
              "vault_buckets_backup_replication_role_name")


@rule(R, *ROLE_NAMES)
def _role_names(v, _):
    return ["%s: an IAM role name, 1-64 letters, digits or +=,.@_- %s" % (name, got(v[name]))
            for name in ROLE_NAMES if not IAM_ROLE_NAME_RE.match(v[name])]


# ------------------------------------------------------------------------------ lifecycle
@rule(R, "vault_buckets_noncurrent_version_days")
def _noncurrent_days(v, _):
    return range_errors("vault_buckets_noncurrent_version_days", v["vault_buckets_noncurrent_version_days"], 1, None,
                        "a number of days")


@rule(R, "vault_buckets_noncurrent_versions_kept")
def _versions_kept(v, _):
    return range_errors("vault_buckets_noncurrent_versions_kept", v["vault_buckets_noncurrent_versions_kept"], 0, 100,
                        "a number of versions (0 disables)")


@rule(R, "vault_buckets_abort_multipart_days")
def _abort_days(v, _):
    return range_errors("vault_buckets_abort_multipart_days", v["vault_buckets_abort_multipart_days"], 1, None,
                        "a number of days")


# ------------------------------------------------------------------------------ replication
@rule(R, "vault_buckets_backup_replication_region", "vault_buckets_region", "vault_buckets_backup_name")
def _replication_region(v, _):
    region = v["vault_buckets_backup_replication_region"]
    if not region:
        return []
    problems = []
    if region == v["vault_buckets_region"] or not REGION_RE.match(region):
        problems.append("vault_buckets_backup_replication_region: an AWS region other than %s %s"
                        % (v["vault_buckets_region"], got(region)))
    if not v["vault_buckets_backup_name"]:
        problems.append("vault_buckets_backup_replication_region: needs a backup vault (vault_buckets_backup_name)")
    return problems


def _has_replica(v):
    return bool(v["vault_buckets_backup_name"]) and bool(v["vault_buckets_backup_replication_region"])


@rule(R, "vault_buckets_backup_replica_name", "vault_buckets_backup_name", "vault_buckets_backup_replication_region")
def _replica_name(v, _):
    if not _has_replica(v):
        return []
    name = v["vault_buckets_backup_replica_name"]
    return ["vault_buckets_backup_replica_name: %s %s" % (e, got(name)) for e in s3_bucket_name_errors(name)]


@rule(R, "vault_buckets_encryption", "vault_buckets_backup_name", "vault_buckets_backup_replication_region")
def _replica_encryption(v, _):
    if _has_replica(v) and v["vault_buckets_encryption"] == "aws:kms":
        return ["vault_buckets_encryption: aws:kms cannot be combined with vault_buckets_backup_replication_region "
                "(%s): S3 replicates SSE-KMS objects only with a KMS key in the replica region and SSE-KMS selection "
                "in the rule, which this role does not set up; use AES256 for a replicated backup vault or drop the "
                "replication" % v["vault_buckets_backup_replication_region"]]
    return []
