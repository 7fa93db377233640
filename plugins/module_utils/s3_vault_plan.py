# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""The settings of the party's vault buckets, defined once, and the plan of a run against them.

``bucket_settings()`` is the one definition: vault_buckets applies it (tasks/buckets.yml, through
the ``vault_bucket_settings`` filter) and the ``s3_vault_plan`` module compares it with what S3
answers (``observed()`` + ``plan()``) on every run: for check mode and ``--diff``, and so that
the role runs amazon.aws.s3_bucket, community.aws.s3_cors and community.aws.s3_lifecycle only on
a bucket where that module has something to do. Each comparison is the one the module makes
(amazon.aws 10.1 / community.aws 10.0), so "no drift" means the module would report no change.
Pure functions on plain dicts in the boto3 shapes; nothing here calls AWS.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible.module_utils.common.dict_transformations import snake_dict_to_camel_dict
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.amazon.aws.plugins.module_utils.policy import compare_policies

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
#
# observed() and wanted() give each compared setting in the shape in which the module that sets
# it compares it (boto3's answer; the request the module would make), in_place() compares the two
# as that module does, and shown() is what --diff prints. Anything not recognised differs, so the
# module runs and decides for itself.

# The settings each S3 module of tasks/buckets.yml reconciles, by their names in ``drift``.
S3_BUCKET_SETTINGS = ("versioning", "encryption", "encryption key", "bucket key", "object ownership",
                      "public access block", "bucket policy", "tags")
S3_CORS_SETTINGS = ("CORS",)
S3_LIFECYCLE_SETTINGS = ("lifecycle",)


def _as_list(value):
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def normal_policy(policy):
    """Statements as a sorted list, Action and Resource as sorted lists (AWS may shorten a
    one-element list to a string): the --diff view of a policy."""
    statements = (policy or {}).get("Statement", [])
    out = []
    for st in [statements] if isinstance(statements, dict) else statements:
        st = dict(st)
        for key in ("Action", "Resource"):
            if key in st:
                st[key] = sorted(_as_list(st[key]))
        out.append(st)
    return sorted(out, key=lambda s: json.dumps(s, sort_keys=True))


def policy_view(policy):
    """The --diff view of a policy document ({} when there is none): its statements as
    normal_policy() orders them, beside its Version and any other top-level key."""
    return dict(policy, Statement=normal_policy(policy)) if policy else {}


def cors_rules(rules):
    """The CORS rules as s3_cors puts them (its ``rules`` option, CamelCased)."""
    return snake_dict_to_camel_dict(list(rules or []), capitalize_first=True)


def lifecycle_rule(lifecycle):
    """The rule community.aws.s3_lifecycle builds (build_rule()) from the parameters tasks/buckets.yml
    gives it: rule_id, status enabled, prefix "", noncurrent_version_expiration_days,
    noncurrent_version_keep_newer (omitted when 0) and abort_incomplete_multipart_upload_days."""
    days, kept, abort = lifecycle["noncurrent_days"], lifecycle["noncurrent_versions_kept"], lifecycle["abort_multipart_days"]
    kept = kept if kept > 0 else None
    rule = {"Filter": {"Prefix": ""}, "Status": "Enabled", "ID": lifecycle["rule_id"]}
    if abort:
        rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": abort}
    if days or kept:
        rule["NoncurrentVersionExpiration"] = {}
    if days is not None:
        rule["NoncurrentVersionExpiration"]["NoncurrentDays"] = days
    if kept is not None:
        rule["NoncurrentVersionExpiration"]["NewerNoncurrentVersions"] = kept
    return rule


def lifecycle_view(rule):
    """The --diff view of a lifecycle rule ({} when there is none): what vault_buckets sets, by
    name, and under ``other`` whatever else the rule holds."""
    if not rule:
        return {}
    noncurrent = rule.get("NoncurrentVersionExpiration") or {}
    view = {"status": rule.get("Status", ""),
            "prefix": (rule.get("Filter") or {}).get("Prefix", rule.get("Prefix", "")),
            "noncurrent_days": noncurrent.get("NoncurrentDays"),
            "noncurrent_versions_kept": noncurrent.get("NewerNoncurrentVersions", 0),
            "abort_multipart_days": (rule.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")}
    other = dict((k, v) for k, v in rule.items()
                 if k not in ("ID", "Status", "Filter", "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload"))
    if rule.get("Filter") != {"Prefix": view["prefix"]}:
        other["Filter"] = rule.get("Filter")
    if other:
        view["other"] = other
    return view


def s3_bucket_tags(tags):
    """The tags as s3_bucket compares them (merge_tags(): keys and values as text)."""
    return dict((to_text(k), to_text(v)) for k, v in (tags or {}).items())


def observed(bucket, lifecycle_rule_id=LIFECYCLE_RULE_ID):
    """The compared settings of a bucket as S3 answered, from the raw answers of its Get* calls
    (``None`` for a setting that is not configured), or {} when the bucket does not exist.

    ``bucket``: {exists, public, versioning, encryption, ownership, public_access_block, policy
    (the JSON text), tags, cors, lifecycle} with the boto3 responses."""
    if not bucket.get("exists"):
        return {}
    sse_rules = ((bucket.get("encryption") or {}).get("ServerSideEncryptionConfiguration") or {}).get("Rules") or [{}]
    sse = sse_rules[0].get("ApplyServerSideEncryptionByDefault") or {}
    own_rules = ((bucket.get("ownership") or {}).get("OwnershipControls") or {}).get("Rules") or [{}]
    block = (bucket.get("public_access_block") or {}).get("PublicAccessBlockConfiguration") or {}
    rules = (bucket.get("lifecycle") or {}).get("Rules") or []
    have = {
        "versioning": (bucket.get("versioning") or {}).get("Status", ""),
        "encryption": sse.get("SSEAlgorithm", ""),
        "encryption key": sse.get("KMSMasterKeyID"),
        "bucket key": sse_rules[0].get("BucketKeyEnabled"),
        "object ownership": own_rules[0].get("ObjectOwnership", ""),
        "public access block": camel_dict_to_snake_dict(block),
        "bucket policy": json.loads(bucket.get("policy") or "{}"),
        "tags": dict((t["Key"], t["Value"]) for t in (bucket.get("tags") or {}).get("TagSet") or []),
        "lifecycle": next((r for r in rules if r.get("ID") == lifecycle_rule_id), None),
    }
    if bucket.get("public"):
        have["CORS"] = (bucket.get("cors") or {}).get("CORSRules") or []
    return have


def wanted(settings):
    """The compared settings of one entry of bucket_settings(), in the shape of observed(): what
    the task of each module passes it, as that module builds its request."""
    kms = settings["encryption"] == "aws:kms"
    want = {
        "versioning": "Enabled" if settings["versioning"] else "Suspended",
        "encryption": settings["encryption"],
    }
    if kms:  # s3_bucket compares the key only with aws:kms; the task omits an empty one (None)
        want["encryption key"] = settings.get("encryption_key_id") or None
    if settings.get("bucket_key_enabled") is not None:
        want["bucket key"] = bool(settings["bucket_key_enabled"])
    want.update({
        "object ownership": settings["object_ownership"],
        "public access block": dict(settings["public_access"]),
        "bucket policy": settings["policy"] or {},
        "tags": s3_bucket_tags(settings["tags"]),
        "lifecycle": lifecycle_rule(settings["lifecycle"]),
    })
    if settings["public"]:
        want["CORS"] = cors_rules(settings["cors_rules"])
    return want


def in_place(key, have, want):
    """Whether the module that sets ``key`` would leave ``have`` as it is, given ``want``."""
    if key == "bucket policy":  # s3_bucket's handle_bucket_policy()
        return not have if not want else not compare_policies(have or {}, want)
    if key == "CORS":  # s3_cors: compare_policies() of the rule lists
        return not compare_policies(want, have or [])
    if key == "versioning":  # s3_bucket only enables when not Enabled, only suspends when Enabled
        return (have == "Enabled") == (want == "Enabled")
    # encryption (algorithm; KMS key and bucket key when wanted), ownership, public access block,
    # tags (purged: equal dicts), lifecycle (s3_lifecycle's compare_rule(): the rule of the ID,
    # equal as a whole): s3_bucket and s3_lifecycle compare for equality
    return have == want


def shown(key, value):
    """The --diff view of one compared setting."""
    if key == "bucket policy":
        return policy_view(value)
    if key == "lifecycle":
        return lifecycle_view(value)
    return value


def plan(settings, have):
    """What a run would do to one bucket: {name, vault, exists, drift (the differing setting
    names, in a fixed order), before, after (the differing settings only, or everything when
    the bucket would be created), changed, run (for each S3 module of tasks/buckets.yml, whether
    it has anything to do), msg}."""
    want = wanted(settings)
    exists = bool(have)
    drift = [key for key in want if not in_place(key, have.get(key), want[key])] if exists else []
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

    def needed(keys):
        return not exists or any(key in drift for key in keys)

    return {
        "name": settings["name"],
        "vault": settings["vault"],
        "exists": exists,
        "drift": drift,
        "before": dict((k, shown(k, have[k])) for k in drift),
        "after": dict((k, shown(k, want[k])) for k in (want if not exists else drift)),
        "changed": not exists or bool(drift),
        "run": {"s3_bucket": needed(S3_BUCKET_SETTINGS),
                "s3_cors": bool(settings["public"]) and needed(S3_CORS_SETTINGS),
                "s3_lifecycle": needed(S3_LIFECYCLE_SETTINGS)},
        "msg": msg,
    }
