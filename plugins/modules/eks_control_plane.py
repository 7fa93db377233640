#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: eks_control_plane
short_description: Create an EKS cluster with its access, endpoint, logging and encryption settings at once
version_added: 0.1.0
description:
  - Creates the EKS cluster O(name) when it does not exist, giving C(CreateCluster) the
    authentication mode, the API endpoint access, the control-plane log types and the secrets
    encryption key along with the role, subnets and security groups; returns the cluster as
    C(DescribeCluster) reports it when it exists.
  - C(community.aws.eks_cluster) 10 creates a cluster with none of those settings, so a new
    cluster then needed three or four EKS updates (authentication mode, logging, endpoint,
    encryption), one at a time and a few minutes each, before its node group could be created.
    A cluster created here needs none; M(threshold_kms.mpc_party.eks_cluster_access) then finds
    nothing to update, and makes the access entries.
  - An existing cluster is never changed here (M(threshold_kms.mpc_party.eks_cluster_access)
    converges its access settings; its Kubernetes version is reported, not upgraded). Subnets or
    security groups other than the cluster's are an error naming the option.
  - Does not wait for the new cluster to become C(ACTIVE) (10-15 minutes); wait with
    M(threshold_kms.mpc_party.resource_ready) O(kind=eks_cluster), which reports progress.
  - Check mode reports whether the cluster would be created, and the request, without creating it.
options:
  name:
    description: Name of the cluster.
    type: str
    required: true
  version:
    description: Kubernetes minor version of a new cluster (EKS's default when unset).
    type: str
  role_arn:
    description: IAM role of the control plane. Required to create the cluster.
    type: str
  subnets:
    description: Subnet IDs of the control plane's network interfaces (two or more, in different zones). Required to create the cluster.
    type: list
    elements: str
  security_groups:
    description: Security group IDs added to the control plane's network interfaces.
    type: list
    elements: str
    default: []
  tags:
    description: Tags of a new cluster.
    type: dict
    default: {}
author:
  - threshold_kms.mpc_party contributors
extends_documentation_fragment:
  - threshold_kms.mpc_party.eks_cluster_settings
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The cluster, created with its final access settings (no EKS update needed after)
  threshold_kms.mpc_party.eks_control_plane:
    name: kms-prod-p1
    version: "1.32"
    role_arn: arn:aws:iam::111122223333:role/kms-prod-p1-cluster
    subnets: [subnet-0123456789abcdef0, subnet-0fedcba9876543210]
    security_groups: [sg-0123456789abcdef0]
    authentication_mode: API_AND_CONFIG_MAP
    endpoint_private_access: true
    endpoint_public_access: false
    logging_types: [api, audit, authenticator]
    secrets_encryption_key_arn: arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
  register: __cluster

- name: Wait until it is ACTIVE, with a line of progress about once a minute
  threshold_kms.mpc_party.resource_ready:
    kind: eks_cluster
    name: kms-prod-p1
  register: __ready
  until: __ready.ready
  retries: 20
  delay: 0
  when: __cluster.status != 'ACTIVE'
"""

RETURN = r"""
request:
  description: The C(CreateCluster) request made (or, in check mode, that would be made); C({}) when the cluster existed.
  returned: always
  type: dict
  sample: {"name": "kms-prod-p1", "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"}}
name:
  description: Name of the cluster.
  returned: when the cluster exists or was created
  type: str
status:
  description: C(CREATING) right after creation; C(ACTIVE), C(UPDATING), C(DELETING) or C(FAILED) later.
  returned: when the cluster exists or was created
  type: str
version:
  description: Kubernetes minor version the cluster runs.
  returned: when the cluster exists or was created
  type: str
endpoint:
  description: API server URL (once ACTIVE).
  returned: when the cluster exists or was created
  type: str
certificate_authority:
  description: C(data), the base64 CA bundle of the API server (once ACTIVE).
  returned: when the cluster exists or was created
  type: dict
identity:
  description: C(oidc.issuer), the issuer URL of the cluster's service account tokens (once ACTIVE).
  returned: when the cluster exists or was created
  type: dict
resources_vpc_config:
  description: C(vpc_id), C(subnet_ids), C(security_group_ids), C(cluster_security_group_id) and the endpoint access.
  returned: when the cluster exists or was created
  type: dict
"""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports it

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_retry
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import eks_access


def creation_errors(params, cluster):
    """Broken rules of the inputs given what exists (``cluster`` as DescribeCluster returns it, or
    None), each naming its option (empty: all good)."""
    errors = []
    if cluster is None:
        if not params["role_arn"]:
            errors.append("role_arn: required to create cluster %s" % params["name"])
        if len(params["subnets"] or []) < 2:
            errors.append("subnets: two or more subnet IDs (in different zones) are required to create cluster %s"
                          % params["name"])
        return errors
    vpc = cluster.get("resourcesVpcConfig") or {}
    for option, field in (("subnets", "subnetIds"), ("security_groups", "securityGroupIds")):
        if params[option] and sorted(params[option]) != sorted(vpc.get(field) or []):
            errors.append("%s: cluster %s has %s; this module does not change an existing cluster's network"
                          % (option, params["name"], ", ".join(sorted(vpc.get(field) or [])) or "none"))
    return errors


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            version=dict(type="str"),
            role_arn=dict(type="str"),
            subnets=dict(type="list", elements="str"),
            security_groups=dict(type="list", elements="str", default=[]),
            tags=dict(type="dict", default={}),
            **eks_access.SETTINGS_SPEC,
        ),
        supports_check_mode=True,
    )
    params = module.params
    name = params["name"]
    errors = eks_access.validate(params)
    if errors:
        module.fail_json(msg="eks_control_plane: " + "; ".join(errors))

    eks = aws_retry.client(module, "eks")
    try:
        cluster = eks.describe_cluster(aws_retry=True, name=name)["cluster"]
    except is_boto3_error_code("ResourceNotFoundException"):
        cluster = None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="Could not read cluster %s" % name)
    errors = creation_errors(params, cluster)
    if errors:
        module.fail_json(msg="eks_control_plane: " + "; ".join(errors))
    if cluster is not None:
        module.exit_json(changed=False, request={}, **camel_dict_to_snake_dict(cluster, ignore_list=["tags"]))

    settings, endpoint = eks_access.create_settings(params)
    request = dict(settings, name=name, roleArn=params["role_arn"],
                   resourcesVpcConfig=dict(endpoint, subnetIds=params["subnets"],
                                           securityGroupIds=params["security_groups"]))
    if params["version"]:
        request["version"] = params["version"]
    if params["tags"]:
        request["tags"] = params["tags"]
    if module.check_mode:
        module.exit_json(changed=True, request=request)
    try:
        cluster = eks.create_cluster(aws_retry=True, **request)["cluster"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(e, msg="Could not create cluster %s" % name, request=request)
    module.exit_json(changed=True, request=request, **camel_dict_to_snake_dict(cluster, ignore_list=["tags"]))


if __name__ == "__main__":
    main()
