#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: s3_bucket_replication
short_description: Manage the replication configuration of an S3 bucket
version_added: 0.1.0
description:
  - Sets or removes the replication configuration of a versioned S3 bucket, for example the
    cross-region copy of a party's backup vault.
  - The configuration is compared with S3's answer after normalising the defaults S3 fills in,
    so a second run reports no change. Supports check mode and C(--diff).
  - Neither amazon.aws nor community.aws (10.x) has a module for bucket replication.
  - Both buckets must have versioning enabled (S3 refuses replication otherwise).
options:
  bucket:
    description: Source bucket.
    type: str
    required: true
  state:
    description: C(absent) removes the replication configuration (never a bucket or an object).
    type: str
    choices: [present, absent]
    default: present
  role_arn:
    description: IAM role S3 assumes to replicate. Required when O(state=present).
    type: str
  rules:
    description: Replication rules. Required when O(state=present).
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: Rule id.
        type: str
        required: true
      priority:
        description: Rule priority (distinct per rule).
        type: int
        default: 1
      enabled:
        description: Whether the rule is active.
        type: bool
        default: true
      prefix:
        description: Replicate only keys under this prefix (all keys when empty).
        type: str
        default: ""
      destination_bucket:
        description: Destination bucket name or ARN.
        type: str
        required: true
      storage_class:
        description: Storage class of the replicas.
        type: str
        choices: [STANDARD, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER, GLACIER_IR, DEEP_ARCHIVE, REDUCED_REDUNDANCY]
        default: STANDARD
      delete_marker_replication:
        description:
          - Replicate delete markers. Off by default, so deleting in the source never hides
            the replica of a backup.
        type: bool
        default: false
      replica_kms_key_id:
        description: KMS key ARN in the destination region for SSE-KMS replicas.
        type: str
      replicate_kms_encrypted:
        description: Replicate SSE-KMS encrypted objects (with O(rules[].replica_kms_key_id)).
        type: bool
        default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
author:
  - threshold_kms.mpc_party contributors
"""

EXAMPLES = r"""
- name: Copy the backup vault to a second region
  threshold_kms.mpc_party.s3_bucket_replication:
    bucket: kms-prod-p1-backup
    role_arn: arn:aws:iam::123456789012:role/kms-prod-p1-backup-replication
    rules:
      - id: backup-to-replica
        destination_bucket: kms-prod-p1-backup-replica
"""

RETURN = r"""
configuration:
  description: The replication configuration after the run (boto3 shape; empty when absent).
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
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_s3_vault


def current_configuration(module, s3):
    bucket = module.params["bucket"]
    try:
        return s3.get_bucket_replication(aws_retry=True, Bucket=bucket)["ReplicationConfiguration"]
    except is_boto3_error_code("ReplicationConfigurationNotFoundError"):
        return {}
    except is_boto3_error_code("NoSuchBucket"):  # pylint: disable=duplicate-except
        if module.check_mode:
            return {}
        module.fail_json(msg="bucket: %s does not exist" % bucket)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="Could not read the replication configuration of %s" % bucket)


def main():
    argument_spec = dict(
        bucket=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        role_arn=dict(type="str"),
        rules=dict(type="list", elements="dict", default=[], options=dict(
            id=dict(type="str", required=True),
            priority=dict(type="int", default=1),
            enabled=dict(type="bool", default=True),
            prefix=dict(type="str", default=""),
            destination_bucket=dict(type="str", required=True),
            storage_class=dict(type="str", choices=list(aws_s3_vault.STORAGE_CLASSES), default="STANDARD"),
            delete_marker_replication=dict(type="bool", default=False),
            replica_kms_key_id=dict(type="str"),
            replicate_kms_encrypted=dict(type="bool", default=True),
        )),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True,
                              required_if=[("state", "present", ("role_arn", "rules"))])
    errors = aws_s3_vault.validate_rules(module.params["rules"])
    if module.params["state"] == "present" and not module.params["rules"]:
        errors.append("rules: at least one rule is required when state=present")
    if errors:
        module.fail_json(msg="Invalid input: " + "; ".join(errors), errors=errors)
    s3 = aws_retry.client(module, "s3")
    bucket = module.params["bucket"]
    current = current_configuration(module, s3)

    if module.params["state"] == "absent":
        if not current:
            module.exit_json(changed=False, configuration={}, diff={"before": {}, "after": {}})
        if not module.check_mode:
            try:
                s3.delete_bucket_replication(aws_retry=True, Bucket=bucket)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
                module.fail_json_aws(e, msg="Could not remove the replication configuration of %s" % bucket)
        module.exit_json(changed=True, configuration={}, diff={"before": current, "after": {}})

    desired = aws_s3_vault.build_configuration(module.params["role_arn"], module.params["rules"])
    diff = {"before": aws_s3_vault.normalise_configuration(current), "after": aws_s3_vault.normalise_configuration(desired)}
    if aws_s3_vault.configuration_matches(desired, current):
        module.exit_json(changed=False, configuration=current, diff=diff)
    if not module.check_mode:
        try:
            s3.put_bucket_replication(aws_retry=True, Bucket=bucket, ReplicationConfiguration=desired)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            module.fail_json_aws(e, msg="Could not set the replication configuration of %s" % bucket)
        current = current_configuration(module, s3)
    else:
        current = desired
    module.exit_json(changed=True, configuration=current, diff=diff)


if __name__ == "__main__":
    main()
