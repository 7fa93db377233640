# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""The settings of the party's vault buckets, defined once, and the plan of a run against them.

``bucket_settings()`` is the one definition: vault_buckets applies it (tasks/buckets.yml, through
the ``vault_bucket_settings`` filter) and the ``s3_vault_plan`` module compares it with what S3
answers (``observed()`` + ``plan()``), for check mode and ``--diff``. Pure functions on plain
dicts in the boto3 shapes; nothing here calls AWS.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.module_utils.parsing.convert_bool import boolean

LIFECYCLE_RULE_ID = "noncurrent-versions"
OBJECT_OWNERSHIP = "BucketOwnerEnforced"

BLOCK_ALL = dict(block_public_acls=True, ignore_public_acls=True, block_public_policy=True, restrict_public_buckets=True)
# The public vault: ACLs stay blocked (ownership is enforced anyway); only the bucket policy may
# grant public access, and it grants exactly what bucket_policy() lists.
BLOCK_PUBLIC_VAULT = dict(block_public_acls=True, ignore_public_acls=True, block_public_policy=False,
                          restrict_public_buckets=False)


def bucket_policy(vault, partition="aws", require_tls=True, public_list=True):
    """Policy document of one vault bucket ({} when it has no statement: s3_bucket then removes it)."""
    arn = "arn:%s:s3:::%s" % (partition, vault["name"])
    statements = []
    if require_tls:
        statements.append({"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                           "Resource": [arn, arn + "/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    if vault.get("public"):
        statements.append({"Sid": "PublicReadOfPublicVault", "Effect": "Allow", "Principal": "*",
                           "Action": "s3:GetObject", "Resource": "%s/%s/*" % (arn, vault["prefix"])})
        if public_list:
            statements.append({"Sid": "PublicListOfPublicVault", "Effect": "Allow", "Principal": "*",
                               "Action": "s3:ListBucket", "Resource": arn,
                               "Condition": {"StringLike": {"s3:prefix": [vault["prefix"] + "/*"]}}})
    return {"Version": "2012-10-17", "Statement": statements} if statements else {}


def bucket_settings(vaults, partition="aws", encryption="AES256", encryption_key_id="", require_tls=True,
                    public_list=True, cors_allowed_origins=("*",), noncurrent_days=365, noncurrent_versions_kept=3,
                    abort_multipart_days=7, tags=None):
    """What a run sets on each vault bucket: one dict per entry of ``vaults`` ({vault, name, prefix, public}).

    The public vault always uses SSE-S3 (anonymous readers cannot use a KMS key) and gets CORS
    rules (s3_cors's option names); the others use ``encryption``."""
    require_tls, public_list = boolean(require_tls, strict=True), boolean(public_list, strict=True)
    out = []
    for vault in vaults:
        public = boolean(vault.get("public", False), strict=True)
        sse = "AES256" if public else encryption
        kms = sse == "aws:kms"
        out.append({
            "vault": vault["vault"],
            "name": vault["name"],
            "prefix": vault["prefix"],
            "public": public,
            "object_ownership": OBJECT_OWNERSHIP,
            "versioning": True,
            "encryption": sse,
            "encryption_key_id": encryption_key_id if kms and encryption_key_id else None,
            "bucket_key_enabled": True if kms else None,
            "public_access": dict(BLOCK_PUBLIC_VAULT if public else BLOCK_ALL),
            "policy": bucket_policy(vault, partition, require_tls, public_list),
            "tags": dict(tags or {}, **{"mpc-vault": vault["vault"]}),
            "cors_rules": [{
                "allowed_origins": list(cors_allowed_origins),
                "allowed_methods": ["GET", "HEAD"],
                "allowed_headers": ["*"],
                "expose_headers": ["ETag", "Content-Length", "Last-Modified"],
                "max_age_seconds": 3600,
            }] if public else [],
            "lifecycle": {
                "rule_id": LIFECYCLE_RULE_ID,
                "noncurrent_days": int(noncurrent_days),
                "noncurrent_versions_kept": int(noncurrent_versions_kept),
                "abort_multipart_days": int(abort_multipart_days),
            },
        })
    return out


# ------------------------------------------------------------------ comparison --

def _as_list(value):
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def normal_policy(policy):
    """Statements as a sorted list, Action and Resource as sorted lists (AWS may shorten a
    one-element list to a string): two policies are equal when they grant the same."""
    statements = []
    for st in (policy or {}).get("Statement", []):
        st = dict(st, Action=sorted(_as_list(st.get("Action"))), Resource=sorted(_as_list(st.get("Resource"))))
        statements.append(st)
    return sorted(statements, key=lambda s: json.dumps(s, sort_keys=True))


def normal_cors(rules):
    """CORS rules as AWS returns them (CamelCase) or as s3_cors takes them (snake_case), in one
    shape; only what s3_cors sets is kept (moto may add an ID)."""
    out = []
    for rule in rules or []:
        def pick(camel, snake, default):
            return rule.get(camel, rule.get(snake, default))
        out.append({"AllowedOrigins": sorted(pick("AllowedOrigins", "allowed_origins", [])),
                    "AllowedMethods": sorted(pick("AllowedMethods", "allowed_methods", [])),
                    "AllowedHeaders": sorted(pick("AllowedHeaders", "allowed_headers", [])),
                    "ExposeHeaders": sorted(pick("ExposeHeaders", "expose_headers", [])),
                    "MaxAgeSeconds": pick("MaxAgeSeconds", "max_age_seconds", None)})
    return out


def _lifecycle_have(rules):
    rule = next((r for r in rules or [] if r.get("ID") == LIFECYCLE_RULE_ID), None)
    if rule is None:
        return {}
    noncurrent = rule.get("NoncurrentVersionExpiration") or {}
    return {"status": rule.get("Status", ""),
            "prefix": (rule.get("Filter") or {}).get("Prefix", rule.get("Prefix", "")),
            "noncurrent_days": noncurrent.get("NoncurrentDays"),
            "noncurrent_versions_kept": noncurrent.get("NewerNoncurrentVersions", 0),
            "abort_multipart_days": (rule.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")}


def observed(bucket):
    """The compared settings of a bucket as S3 answered, from the raw answers of its Get* calls
    (``None`` for a setting that is not configured), or {} when the bucket does not exist.

    ``bucket``: {exists, public, versioning, encryption, ownership, public_access_block, policy
    (the JSON text), cors, lifecycle} with the boto3 responses."""
    if not bucket.get("exists"):
        return {}
    sse_rules = ((bucket.get("encryption") or {}).get("ServerSideEncryptionConfiguration") or {}).get("Rules") or [{}]
    own_rules = ((bucket.get("ownership") or {}).get("OwnershipControls") or {}).get("Rules") or [{}]
    block = (bucket.get("public_access_block") or {}).get("PublicAccessBlockConfiguration") or {}
    have = {
        "versioning": (bucket.get("versioning") or {}).get("Status", ""),
        "encryption": (sse_rules[0].get("ApplyServerSideEncryptionByDefault") or {}).get("SSEAlgorithm", ""),
        "object ownership": own_rules[0].get("ObjectOwnership", ""),
        "public access block": {"block_public_acls": block.get("BlockPublicAcls", False),
                                "ignore_public_acls": block.get("IgnorePublicAcls", False),
                                "block_public_policy": block.get("BlockPublicPolicy", False),
                                "restrict_public_buckets": block.get("RestrictPublicBuckets", False)},
        "bucket policy": normal_policy(json.loads(bucket.get("policy") or "{}")),
        "lifecycle": _lifecycle_have((bucket.get("lifecycle") or {}).get("Rules")),
    }
    if bucket.get("public"):
        have["CORS"] = normal_cors((bucket.get("cors") or {}).get("CORSRules"))
    return have


def wanted(settings):
    """The compared settings of one entry of bucket_settings(), in the shape of observed()."""
    lifecycle = settings["lifecycle"]
    want = {
        "versioning": "Enabled" if settings["versioning"] else "Suspended",
        "encryption": settings["encryption"],
        "object ownership": settings["object_ownership"],
        "public access block": dict(settings["public_access"]),
        "bucket policy": normal_policy(settings["policy"]),
        "lifecycle": {"status": "Enabled", "prefix": "",
                      "noncurrent_days": lifecycle["noncurrent_days"],
                      "noncurrent_versions_kept": lifecycle["noncurrent_versions_kept"],
                      "abort_multipart_days": lifecycle["abort_multipart_days"]},
    }
    if settings["public"]:
        want["CORS"] = normal_cors(settings["cors_rules"])
    return want


def plan(settings, have):
    """What a run would do to one bucket: {name, vault, exists, drift (the differing setting
    names, in a fixed order), before, after (the differing settings only, or everything when
    the bucket would be created), changed, msg}."""
    want = wanted(settings)
    exists = bool(have)
    drift = [key for key in want if have.get(key) != want[key]] if exists else []
    label = "%s (%s vault)" % (settings["name"], settings["vault"])
    if not exists:
        parts = ["ownership enforced", "versioning", "%s encryption" % settings["encryption"], "public access block"]
        if any(st.get("Sid") == "DenyInsecureTransport" for st in (settings["policy"] or {}).get("Statement", [])):
            parts.append("TLS-only policy")
        if settings["public"]:
            parts.append("public read of %s/*" % settings["prefix"])
        parts.append("lifecycle")
        if settings["public"]:
            parts.append("CORS")
        msg = "would create bucket %s: %s" % (label, ", ".join(parts))
    elif drift:
        msg = "would change %s: %s differ from what this role sets (--diff shows before and after)" % (
            label, ", ".join(drift))
    else:
        msg = "%s: up to date" % settings["name"]
    return {
        "name": settings["name"],
        "vault": settings["vault"],
        "exists": exists,
        "drift": drift,
        "before": dict((k, have[k]) for k in drift),
        "after": want if not exists else dict((k, want[k]) for k in drift),
        "changed": not exists or bool(drift),
        "msg": msg,
    }
