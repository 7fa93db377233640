#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: s3_vault_plan
short_description: What a run of vault_buckets would create or change in one vault bucket
version_added: 0.1.0
description:
  - Reads one bucket once (head, then one Get each of versioning, default encryption, object
    ownership, public access block, bucket policy, tags, the lifecycle and the public vault's
    CORS) and compares it with O(settings), the settings vault_buckets applies (the
    P(threshold_kms.mpc_party.vault_bucket_settings#filter) filter builds both).
  - Each setting is compared as the module that sets it compares it. M(amazon.aws.s3_bucket) sets
    versioning, the encryption algorithm, KMS key and bucket key, object ownership, the public
    access block, the policy (compared as that module does) and the tags (purged, so an extra
    tag differs); M(community.aws.s3_cors) the CORS rules; M(community.aws.s3_lifecycle) the
    C(noncurrent-versions) rule, compared whole. RV(run) says which of the three has anything
    to do; vault_buckets runs only those, on every run. What is not recognised differs, so the
    module runs and decides. Lifecycle rules with other IDs are ignored, as s3_lifecycle leaves
    them alone.
  - It never writes. The S3 modules have no check mode; in check mode RV(changed) means that a
    run would create the bucket or change one of its settings, and the diff (C(--diff)) shows
    the differing settings before and after. Outside check mode it reports no change (the
    modules RV(run) names report their own).
options:
  settings:
    description:
      - One entry of the P(threshold_kms.mpc_party.vault_bucket_settings#filter) filter's list
        (C(name), C(vault), C(prefix), C(public), C(encryption), C(public_access), C(policy),
        C(cors_rules), C(lifecycle), ...).
    type: dict
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
author:
  - threshold_kms.mpc_party contributors
"""

EXAMPLES = r"""
- name: What a run would create or change (check mode)
  threshold_kms.mpc_party.s3_vault_plan:
    settings: "{{ item }}"
  loop: "{{ _vaults | threshold_kms.mpc_party.vault_bucket_settings(require_tls=true) }}"
  loop_control:
    label: "{{ item.name }}"
  vars:
    _vaults:
      - {vault: private, name: kms-prod-p1-private, prefix: PRIV-p1, public: false}
"""

RETURN = r"""
msg:
  description: C(would create bucket ...), C(would change <bucket> (<vault> vault) - <settings> differ ...) or C(<bucket> - up to date).
  returned: always
  type: str
name:
  description: The bucket.
  returned: always
  type: str
vault:
  description: Its vault (C(private), C(public), C(backup), ...).
  returned: always
  type: str
exists:
  description: Whether the bucket exists.
  returned: always
  type: bool
drift:
  description:
    - Names of the settings that differ from O(settings) (empty when the bucket does not exist), among
      C(versioning), C(encryption), C(encryption key), C(bucket key), C(object ownership), C(public access block),
      C(bucket policy), C(tags), C(lifecycle), C(CORS).
  returned: always
  type: list
  elements: str
run:
  description: For each S3 module of vault_buckets' tasks/buckets.yml, whether it has anything to do on this bucket.
  returned: always
  type: dict
  contains:
    s3_bucket:
      description: The bucket is missing, or one of the settings M(amazon.aws.s3_bucket) sets differs.
      type: bool
    s3_cors:
      description: The public vault is missing or its CORS rules differ (always false for the other vaults).
      type: bool
    s3_lifecycle:
      description: The bucket is missing or its C(noncurrent-versions) lifecycle rule differs.
      type: bool
  sample: {s3_bucket: false, s3_cors: false, s3_lifecycle: true}
before:
  description: The differing settings as they are.
  returned: always
  type: dict
after:
  description: The differing settings as a run would set them (all of them when the bucket would be created).
  returned: always
  type: dict
"""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing dependency

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_retry
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import s3_vault_plan as lib

# Each read, and the error codes with which S3 answers "not configured".
READS = (
    ("versioning", lambda s3, name: s3.get_bucket_versioning(aws_retry=True, Bucket=name), []),
    ("encryption", lambda s3, name: s3.get_bucket_encryption(aws_retry=True, Bucket=name),
     ["ServerSideEncryptionConfigurationNotFoundError"]),
    ("ownership", lambda s3, name: s3.get_bucket_ownership_controls(aws_retry=True, Bucket=name),
     ["OwnershipControlsNotFoundError"]),
    ("public_access_block", lambda s3, name: s3.get_public_access_block(aws_retry=True, Bucket=name),
     ["NoSuchPublicAccessBlockConfiguration"]),
    ("policy", lambda s3, name: s3.get_bucket_policy(aws_retry=True, Bucket=name), ["NoSuchBucketPolicy"]),
    ("tags", lambda s3, name: s3.get_bucket_tagging(aws_retry=True, Bucket=name), ["NoSuchTagSet", "NoSuchTagSetError"]),
    ("cors", lambda s3, name: s3.get_bucket_cors(aws_retry=True, Bucket=name), ["NoSuchCORSConfiguration"]),
    ("lifecycle", lambda s3, name: s3.get_bucket_lifecycle_configuration(aws_retry=True, Bucket=name),
     ["NoSuchLifecycleConfiguration"]),
)
MISSING_BUCKET = ["NoSuchBucket", "404", "NotFound"]


def read_bucket(module, s3, name, public):
    """The raw answers observed() takes, or {"exists": False}."""
    bucket = {"exists": True, "public": public}
    try:
        s3.head_bucket(aws_retry=True, Bucket=name)
    except is_boto3_error_code(MISSING_BUCKET):
        return {"exists": False}
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="Could not read bucket %s" % name)
    for key, read, absent in READS:
        if key == "cors" and not public:
            continue
        try:
            answer = read(s3, name)
        except is_boto3_error_code(absent):
            answer = None
        except is_boto3_error_code("NoSuchBucket"):  # pylint: disable=duplicate-except
            return {"exists": False}  # deleted while being read
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
            module.fail_json_aws(e, msg="Could not read the %s of bucket %s" % (key.replace("_", " "), name))
        bucket[key] = answer.get("Policy") if (key == "policy" and answer) else answer
    return bucket


def main():
    module = AnsibleAWSModule(argument_spec=dict(settings=dict(type="dict", required=True)), supports_check_mode=True)
    settings = module.params["settings"]
    missing = [k for k in ("name", "vault", "prefix", "public", "encryption", "object_ownership", "versioning",
                           "public_access", "policy", "tags", "cors_rules", "lifecycle") if k not in settings]
    if missing:
        module.fail_json(msg="settings: missing %s (pass an entry of the vault_bucket_settings filter)" % ", ".join(missing))
    s3 = aws_retry.client(module, "s3")
    have = lib.observed(read_bucket(module, s3, settings["name"], bool(settings["public"])),
                        settings["lifecycle"].get("rule_id", lib.LIFECYCLE_RULE_ID))
    result = lib.plan(settings, have)
    # Only check mode reports what a run would change; a run's S3 modules report their own changes.
    result["changed"] = result["changed"] and module.check_mode
    module.exit_json(diff={"before": result["before"], "after": result["after"]}, **result)


if __name__ == "__main__":
    main()
