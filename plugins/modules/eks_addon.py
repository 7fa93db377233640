#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: eks_addon
short_description: An EKS add-on (such as vpc-cni) with its configuration values
version_added: 0.1.0
description:
  - Creates or updates an EKS managed add-on so that its version, service account role and
    configuration values are those given, or removes it. community.aws 10 has no add-on module.
  - Configuration values are compared as JSON documents (key order does not matter); unset
    options are left as they are. Waits until the add-on is C(ACTIVE).
  - With O(verify_only=true) nothing is changed - the module fails, naming the add-on and the
    difference, when the add-on is missing, at another version, or lacks one of the given
    configuration values (other values it has are accepted).
options:
  cluster_name:
    description: Name of the cluster.
    type: str
    required: true
  name:
    description: Add-on name, for example C(vpc-cni).
    type: str
    required: true
  addon_version:
    description: Pinned add-on version (for example C(v1.19.2-eksbuild.1)). Unset keeps the current one (EKS's default on creation).
    type: str
  configuration_values:
    description: The add-on's configuration as a dict (sent as JSON), for example C(enableNetworkPolicy) set to the string C("true") for vpc-cni.
    type: dict
  service_account_role_arn:
    description: IAM role (IRSA) of the add-on's service account; empty string to remove it.
    type: str
  resolve_conflicts:
    description:
      - What EKS does with fields the add-on manages that were changed in the cluster (a self-managed
        vpc-cni becoming managed, edits to the aws-node DaemonSet). C(PRESERVE) only applies to updates.
    type: str
    default: OVERWRITE
    choices: [OVERWRITE, NONE, PRESERVE]
  state:
    description: C(present) or C(absent) (C(absent) keeps the add-on's software in the cluster, C(preserve=true)).
    type: str
    default: present
    choices: [present, absent]
  verify_only:
    description: Only check that the add-on exists as described; fail otherwise. Nothing is changed.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for the add-on to become C(ACTIVE).
    type: int
    default: 900
author:
  - threshold_kms.mpc_party contributors
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: VPC CNI as a managed add-on, enforcing Kubernetes NetworkPolicies
  threshold_kms.mpc_party.eks_addon:
    cluster_name: kms-prod-p1
    name: vpc-cni
    configuration_values:
      enableNetworkPolicy: "true"
"""

RETURN = r"""
addon:
  description: The add-on as C(DescribeAddon) reports it (keys in snake case), C({}) when absent.
  returned: always
  type: dict
  contains:
    addon_version:
      description: Version.
      type: str
    status:
      description: C(ACTIVE), C(CREATING), C(UPDATING), C(DEGRADED), ...
      type: str
    configuration_values:
      description: Configuration values (JSON text).
      type: str
request:
  description: The create or update request sent (or, in check mode, that would be sent).
  returned: when changed
  type: dict
"""

import time

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing dependency

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_retry
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import eks_access


def describe(module, eks):
    try:
        return eks.describe_addon(aws_retry=True, clusterName=module.params["cluster_name"],
                                  addonName=module.params["name"])["addon"]
    except is_boto3_error_code("ResourceNotFoundException"):
        return None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="Could not describe add-on %s of cluster %s"
                             % (module.params["name"], module.params["cluster_name"]))


def wait_active(module, eks):
    deadline = time.time() + module.params["wait_timeout"]
    while True:
        addon = describe(module, eks)
        if addon is not None and addon["status"] == "ACTIVE":
            return addon
        if addon is not None and addon["status"] in ("CREATE_FAILED", "UPDATE_FAILED", "DEGRADED"):
            module.fail_json(msg="add-on %s of cluster %s is %s: %s" % (module.params["name"], module.params["cluster_name"],
                                                                       addon["status"], addon.get("health")))
        if time.time() > deadline:
            module.fail_json(msg="add-on %s of cluster %s not ACTIVE after wait_timeout=%ss"
                             % (module.params["name"], module.params["cluster_name"], module.params["wait_timeout"]))
        time.sleep(10)


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            cluster_name=dict(type="str", required=True),
            name=dict(type="str", required=True),
            addon_version=dict(type="str"),
            configuration_values=dict(type="dict"),
            service_account_role_arn=dict(type="str"),
            resolve_conflicts=dict(type="str", default="OVERWRITE", choices=["OVERWRITE", "NONE", "PRESERVE"]),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            verify_only=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=900),
        ),
        supports_check_mode=True,
    )
    params = module.params
    where = "add-on %s of cluster %s" % (params["name"], params["cluster_name"])
    eks = aws_retry.client(module, "eks", extra_codes=["ResourceInUseException"])
    current = describe(module, eks)

    if params["state"] == "absent":
        if current is None:
            module.exit_json(changed=False, addon={})
        if not module.check_mode:
            try:
                eks.delete_addon(aws_retry=True, clusterName=params["cluster_name"], addonName=params["name"], preserve=True)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
                module.fail_json_aws(e, msg="Could not delete %s" % where)
        module.exit_json(changed=True, addon={})

    plan = eks_access.plan_addon(current, params, subset=params["verify_only"])
    if params["verify_only"]:
        if plan is not None:
            module.fail_json(msg="%s: %s; expected %s" % (
                where, "missing" if current is None else "differs (configuration %s, version %s)"
                % (current.get("configurationValues") or "{}", current.get("addonVersion")), plan[1]))
        module.exit_json(changed=False, addon=camel_dict_to_snake_dict(current, ignore_list=["tags"]))
    if plan is None:
        module.exit_json(changed=False, addon=camel_dict_to_snake_dict(current, ignore_list=["tags"]))
    kind, request = plan
    if kind == "create" and request.get("resolveConflicts") == "PRESERVE":
        module.fail_json(msg="resolve_conflicts: PRESERVE applies to updates only; %s does not exist yet" % where)
    if module.check_mode:
        module.exit_json(changed=True, request=request,
                         addon=camel_dict_to_snake_dict(current or {}, ignore_list=["tags"]))
    try:
        if kind == "create":
            eks.create_addon(aws_retry=True, clusterName=params["cluster_name"], **request)
        else:
            eks.update_addon(aws_retry=True, clusterName=params["cluster_name"], **request)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(e, msg="Could not %s %s" % (kind, where))
    addon = wait_active(module, eks)
    module.exit_json(changed=True, request=request, addon=camel_dict_to_snake_dict(addon, ignore_list=["tags"]))


if __name__ == "__main__":
    main()
