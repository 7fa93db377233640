#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: s3_object_versions_info
short_description: List every object version and delete marker of an S3 bucket
version_added: 0.1.0
description:
  - Reads what deleting a bucket would destroy - current objects, noncurrent versions and
    delete markers - with counts over the whole bucket and the first O(max_items) entries.
  - In a versioned bucket a "deleted" key still holds its data in noncurrent versions, so a
    bucket is only empty when both versions and delete markers are zero.
  - M(amazon.aws.s3_object_info) and M(amazon.aws.s3_object) list current keys only.
  - Read-only; runs in check mode.
options:
  bucket:
    description: Bucket to inspect.
    type: str
    required: true
  prefix:
    description: Only keys under this prefix.
    type: str
    default: ""
  max_items:
    description: How many versions and markers to return in RV(entries) (counts cover everything).
    type: int
    default: 100
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
author:
  - threshold_kms.mpc_party contributors
"""

EXAMPLES = r"""
- name: What removing the private vault would delete
  threshold_kms.mpc_party.s3_object_versions_info:
    bucket: kms-prod-p1-private
  register: __vault_buckets_contents

- name: Refuse to remove a vault that still holds key material
  ansible.builtin.assert:
    that: __vault_buckets_contents.empty
"""

RETURN = r"""
exists:
  description: Whether the bucket exists.
  returned: always
  type: bool
empty:
  description: True when the bucket (or prefix) holds no version and no delete marker.
  returned: always
  type: bool
objects:
  description: Current (latest, not deleted) objects.
  returned: always
  type: int
versions:
  description: Stored versions, current and noncurrent.
  returned: always
  type: int
delete_markers:
  description: Delete markers.
  returned: always
  type: int
key_count:
  description: Distinct keys.
  returned: always
  type: int
bytes:
  description: Total size of all versions.
  returned: always
  type: int
entries:
  description: The first O(max_items) versions and markers.
  returned: always
  type: list
  elements: dict
  contains:
    key: {description: Object key., type: str}
    version_id: {description: Version id., type: str}
    is_latest: {description: Whether this is the current version., type: bool}
    delete_marker: {description: Whether this entry is a delete marker., type: bool}
    size: {description: Size in bytes., type: int}
    last_modified: {description: ISO 8601 time., type: str}
truncated:
  description: Whether RV(entries) was cut at O(max_items).
  returned: always
  type: bool
"""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing dependency

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_retry
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_s3_vault


def list_pages(s3, bucket, prefix):
    """Every page of the listing; each page is one call through the client's retry policy
    (a paginator's own calls would bypass it)."""
    pages = []
    request = dict(Bucket=bucket, Prefix=prefix)
    while True:
        page = s3.list_object_versions(aws_retry=True, **request)
        pages.append(page)
        if not page.get("IsTruncated"):
            return pages
        request.update(KeyMarker=page.get("NextKeyMarker", ""), VersionIdMarker=page.get("NextVersionIdMarker", ""))


def main():
    argument_spec = dict(
        bucket=dict(type="str", required=True),
        prefix=dict(type="str", default=""),
        max_items=dict(type="int", default=100),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    if module.params["max_items"] < 0:
        module.fail_json(msg="max_items: must be >= 0 (got %s)" % module.params["max_items"])
    s3 = aws_retry.client(module, "s3")
    bucket = module.params["bucket"]
    try:
        pages = list_pages(s3, bucket, module.params["prefix"])
    except is_boto3_error_code("NoSuchBucket"):
        module.exit_json(changed=False, exists=False, **aws_s3_vault.summarise_versions([], module.params["max_items"]))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="Could not list the object versions of %s" % bucket)
    module.exit_json(changed=False, exists=True, **aws_s3_vault.summarise_versions(pages, module.params["max_items"]))


if __name__ == "__main__":
    main()
