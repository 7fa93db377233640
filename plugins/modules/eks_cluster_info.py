#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: eks_cluster_info
short_description: Describe one EKS cluster (status, network, OIDC issuer) without changing it
version_added: 0.1.0
description:
  - Returns what C(DescribeCluster) reports about the cluster O(name) - status, version, endpoint,
    VPC, subnets, security groups and the OIDC issuer IRSA trusts - or RV(exists=false).
  - community.aws has C(eks_cluster) but no info module, and C(community.aws.eks_cluster) needs the
    cluster's role, subnets and groups even to read it. The teardown uses this one to find the
    OIDC provider and the VPC of a cluster it is about to delete.
  - Read-only; runs in check mode.
options:
  name:
    description: Name of the cluster.
    type: str
    required: true
author:
  - threshold_kms.mpc_party contributors
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Read the cluster
  threshold_kms.mpc_party.eks_cluster_info:
    name: kms-prod-p1
  register: __eks_cluster_info

- name: Remove its IAM OIDC provider
  threshold_kms.mpc_party.iam_oidc_provider:
    url: "{{ __eks_cluster_info.cluster.identity.oidc.issuer }}"
    state: absent
  when: __eks_cluster_info.exists
"""

RETURN = r"""
exists:
  description: Whether the cluster exists.
  returned: always
  type: bool
cluster:
  description: The cluster as C(DescribeCluster) returns it, keys in snake case (tags as they are); C({}) when it does not exist.
  returned: always
  type: dict
  contains:
    status:
      description: C(CREATING), C(ACTIVE), C(DELETING), C(FAILED) or C(UPDATING).
      type: str
    version:
      description: Kubernetes minor version.
      type: str
    identity:
      description: C(oidc.issuer), the issuer URL of the cluster's service account tokens.
      type: dict
    resources_vpc_config:
      description: C(vpc_id), C(subnet_ids), C(security_group_ids), C(cluster_security_group_id).
      type: dict
  sample:
    name: kms-prod-p1
    status: ACTIVE
    version: "1.32"
    identity: {oidc: {issuer: https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE}}
    resources_vpc_config: {vpc_id: vpc-0123456789abcdef0, subnet_ids: [subnet-0123456789abcdef0], security_group_ids: [sg-0123456789abcdef0]}
"""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing dependency

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_retry


def main():
    module = AnsibleAWSModule(argument_spec=dict(name=dict(type="str", required=True)), supports_check_mode=True)
    # the collection's retry policy: EKS throttles with ThrottlingException, which AWSRetry's own list lacks
    eks = aws_retry.client(module, "eks")
    try:
        cluster = eks.describe_cluster(aws_retry=True, name=module.params["name"])["cluster"]
    except is_boto3_error_code("ResourceNotFoundException"):
        module.exit_json(changed=False, exists=False, cluster={})
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="Could not describe EKS cluster %s" % module.params["name"])
    module.exit_json(changed=False, exists=True, cluster=camel_dict_to_snake_dict(cluster, ignore_list=["tags"]))


if __name__ == "__main__":
    main()
