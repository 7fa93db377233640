#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: eks_managed_nodegroup
short_description: EKS managed node group with a launch template, AL2023 AMI types, labels and taints
version_added: 0.1.0
description:
  - Creates, updates or deletes an EKS managed node group.
  - Updates what EKS can update in place (scaling, labels, taints, update strategy, launch
    template version, AMI release version, tags), one EKS update at a time, waiting for the group
    to be C(ACTIVE) between them when O(wait=true). A change EKS cannot make in place (role,
    subnets, AMI type, capacity type, instance types, launch template identity) fails naming
    the property instead of replacing the group.
  - A group EKS reports C(CREATE_FAILED), C(DEGRADED) or C(DELETE_FAILED) fails the task with
    every health issue EKS lists (code, message, resources) and what to do, whether found at the
    start or while waiting.
  - Why not M(community.aws.eks_nodegroup) (community.aws 10.0.0) - it refuses O(ami_type) together
    with a launch template and does not know the AL2023 AMI types, does not update taints (its
    taint update builds an invalid request), compares labels by key only, ignores the release
    version and launch template version on update and reports no label/tag change in check mode.
  - Supports check mode and C(--diff).
options:
  name:
    description: Node group name.
    type: str
    required: true
  cluster_name:
    description: EKS cluster name.
    type: str
    required: true
  state:
    description: Whether the node group should exist.
    type: str
    choices: [present, absent]
    default: present
  node_role:
    description: ARN of the node IAM role. Required when O(state=present).
    type: str
  subnets:
    description: Subnet ids of the nodes. Required when O(state=present).
    type: list
    elements: str
  ami_type:
    description: AMI type; AL2023 types are supported.
    type: str
    choices: [AL2023_x86_64_STANDARD, AL2023_ARM_64_STANDARD, AL2023_x86_64_NEURON, AL2023_x86_64_NVIDIA,
              AL2023_ARM_64_NVIDIA, AL2_x86_64, AL2_x86_64_GPU, AL2_ARM_64, BOTTLEROCKET_x86_64,
              BOTTLEROCKET_ARM_64, BOTTLEROCKET_x86_64_NVIDIA, BOTTLEROCKET_ARM_64_NVIDIA, CUSTOM]
  release_version:
    description: EKS-optimised AMI release version to pin, for example C(1.32.3-20250620).
    type: str
  instance_types:
    description: Instance types (allowed with a launch template that names none).
    type: list
    elements: str
  capacity_type:
    description: On-demand or spot capacity.
    type: str
    choices: [ON_DEMAND, SPOT]
    default: ON_DEMAND
  disk_size:
    description: Root volume size in GiB; only without a launch template.
    type: int
  launch_template:
    description: Launch template of the nodes. Changing O(launch_template.version) rolls the nodes.
    type: dict
    suboptions:
      id:
        description: Template id.
        type: str
      name:
        description: Template name.
        type: str
      version:
        description: Template version to use (a number as a string).
        type: str
  scaling:
    description: Auto Scaling sizes.
    type: dict
    default: {}
    suboptions:
      min_size:
        description: Minimum number of nodes.
        type: int
        default: 1
      max_size:
        description: Maximum number of nodes.
        type: int
        default: 1
      desired_size:
        description: Desired number of nodes.
        type: int
        default: 1
  update_config:
    description: How many nodes may be unavailable during a rolling update.
    type: dict
    default: {}
    suboptions:
      max_unavailable:
        description: Absolute number of nodes.
        type: int
      max_unavailable_percentage:
        description: Percentage of nodes.
        type: int
  labels:
    description: Kubernetes labels of the nodes (exactly these; others are removed).
    type: dict
    default: {}
  taints:
    description: Kubernetes taints of the nodes (exactly these; others are removed).
    type: list
    elements: dict
    default: []
    suboptions:
      key:
        description: Taint key.
        type: str
        required: true
        no_log: false
      value:
        description: Taint value.
        type: str
      effect:
        description: Taint effect.
        type: str
        required: true
        choices: [NO_SCHEDULE, NO_EXECUTE, PREFER_NO_SCHEDULE]
  tags:
    description: Tags of the node group. Omit to leave tags alone.
    type: dict
    aliases: [resource_tags]
  purge_tags:
    description: Remove tags not listed in O(tags).
    type: bool
    default: true
  wait:
    description:
      - Wait for the node group to be C(ACTIVE) (or gone) after the last change. Between two changes it
        always waits, as EKS takes one update at a time.
      - With V(false), M(threshold_kms.mpc_party.resource_ready) can wait for the final state, reporting progress.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for each change.
    type: int
    default: 1800
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
author:
  - threshold_kms.mpc_party contributors
"""

EXAMPLES = r"""
- name: Enclave node group
  threshold_kms.mpc_party.eks_managed_nodegroup:
    name: kms-party1-nitro
    cluster_name: kms-party1
    node_role: arn:aws:iam::123456789012:role/kms-party1-nitro-node
    subnets: [subnet-0123456789abcdef0, subnet-0fedcba9876543210]
    ami_type: AL2023_x86_64_STANDARD
    release_version: 1.32.3-20250620
    instance_types: [c7a.16xlarge]
    launch_template:
      id: lt-0123456789abcdef0
      version: "3"
    scaling: {min_size: 1, max_size: 1, desired_size: 1}
    labels:
      nodepool: kms
      party-id: "1"
      node.kubernetes.io/enclave-enabled: "true"
    taints:
      - key: node.kubernetes.io/enclave-enabled
        value: "true"
        effect: NO_SCHEDULE
"""

RETURN = r"""
nodegroup:
  description: The node group as EKS describes it (snake_case keys; tags and labels untouched).
  returned: state=present and not (check mode and absent before)
  type: dict
updates:
  description: EKS update requests made (or that would be made in check mode).
  returned: always
  type: list
  elements: dict
"""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing dependency

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_retry
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_eks_nodegroup as ngu


def describe(module, eks):
    try:
        return eks.describe_nodegroup(aws_retry=True, clusterName=module.params["cluster_name"],
                                      nodegroupName=module.params["name"])["nodegroup"]
    except is_boto3_error_code("ResourceNotFoundException"):
        return None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="Could not describe node group %s" % module.params["name"])


def wait_for(module, eks, waiter_name, between_changes=False):
    """Wait for the node group's state. EKS takes one update at a time, so a wait before a further
    change happens even with wait=false; only the wait for the final state follows O(wait)."""
    if not module.params["wait"] and not between_changes:
        return
    waiter = eks.get_waiter(waiter_name)
    attempts = 1 + int(module.params["wait_timeout"] / waiter.config.delay)
    try:
        waiter.wait(clusterName=module.params["cluster_name"], nodegroupName=module.params["name"],
                    WaiterConfig={"Delay": waiter.config.delay, "MaxAttempts": attempts})
    except botocore.exceptions.WaiterError as e:
        # CREATE_FAILED / DEGRADED: show what EKS says is wrong rather than the waiter's state.
        current = describe(module, eks)
        unhealthy = ngu.health_failure(current)
        if unhealthy:
            module.fail_json(msg=unhealthy, nodegroup=output(current))
        module.fail_json_aws(e, msg="Node group %s did not reach the expected state (%s) within %ss"
                             % (module.params["name"], waiter_name, module.params["wait_timeout"]))


def output(nodegroup):
    """snake_case, except the user-controlled maps (labels, tags) which keep their keys."""
    labels = nodegroup.get("labels")
    tags = nodegroup.get("tags")
    out = camel_dict_to_snake_dict(dict((k, v) for k, v in nodegroup.items() if k not in ("labels", "tags")))
    out["labels"] = labels or {}
    out["tags"] = tags or {}
    return out


def ensure_present(module, eks):
    for option in ("node_role", "subnets"):
        if not module.params[option]:
            module.fail_json(msg="%s: required when state=present" % option)
    current = describe(module, eks)
    if current is None:
        request = ngu.build_create_request(module.params)
        diff = {"before": {}, "after": ngu.comparable(request)}
        if module.check_mode:
            module.exit_json(changed=True, updates=[{"create": request}], diff=diff)
        try:
            eks.create_nodegroup(aws_retry=True, **request)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            module.fail_json_aws(e, msg="Could not create node group %s" % module.params["name"])
        wait_for(module, eks, "nodegroup_active")
        module.exit_json(changed=True, updates=[{"create": request}], nodegroup=output(describe(module, eks)), diff=diff)

    unhealthy = ngu.health_failure(current)
    if unhealthy:
        module.fail_json(msg=unhealthy, nodegroup=output(current))
    change = ngu.plan_update(module.params, current)
    if change["errors"]:
        module.fail_json(msg="; ".join(change["errors"]), errors=change["errors"])
    diff = {"before": ngu.comparable(current), "after": ngu.expected_after(current, change, module.params)}
    updates = []
    names = dict(clusterName=module.params["cluster_name"], nodegroupName=module.params["name"])
    if change["config"]:
        updates.append({"config": change["config"]})
    if change["version"]:
        updates.append({"version": change["version"]})
    if change["tags_set"] or change["tags_unset"]:
        updates.append({"tags_set": change["tags_set"], "tags_unset": change["tags_unset"]})
    if module.check_mode or not change["changed"]:
        module.exit_json(changed=change["changed"], updates=updates, nodegroup=output(current), diff=diff)

    try:
        if change["config"]:
            wait_for(module, eks, "nodegroup_active", between_changes=True)
            eks.update_nodegroup_config(aws_retry=True, **dict(names, **change["config"]))
        if change["version"]:
            wait_for(module, eks, "nodegroup_active", between_changes=True)
            eks.update_nodegroup_version(aws_retry=True, **dict(names, **change["version"]))
        if change["tags_unset"]:
            eks.untag_resource(aws_retry=True, resourceArn=current["nodegroupArn"], tagKeys=change["tags_unset"])
        if change["tags_set"]:
            eks.tag_resource(aws_retry=True, resourceArn=current["nodegroupArn"], tags=change["tags_set"])
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(e, msg="Could not update node group %s" % module.params["name"], updates=updates)
    wait_for(module, eks, "nodegroup_active")
    module.exit_json(changed=True, updates=updates, nodegroup=output(describe(module, eks)), diff=diff)


def ensure_absent(module, eks):
    current = describe(module, eks)
    if current is None:
        module.exit_json(changed=False, updates=[], diff={"before": {}, "after": {}})
    diff = {"before": ngu.comparable(current), "after": {}}
    if current.get("status") == "DELETING":
        wait_for(module, eks, "nodegroup_deleted")
        module.exit_json(changed=False, updates=[], diff=diff)
    if not module.check_mode:
        try:
            eks.delete_nodegroup(aws_retry=True, clusterName=module.params["cluster_name"], nodegroupName=module.params["name"])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            module.fail_json_aws(e, msg="Could not delete node group %s" % module.params["name"])
        wait_for(module, eks, "nodegroup_deleted")
    module.exit_json(changed=True, updates=[{"delete": module.params["name"]}], diff=diff)


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        cluster_name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        node_role=dict(type="str"),
        subnets=dict(type="list", elements="str"),
        ami_type=dict(type="str", choices=list(ngu.AMI_TYPES)),
        release_version=dict(type="str"),
        instance_types=dict(type="list", elements="str"),
        capacity_type=dict(type="str", choices=["ON_DEMAND", "SPOT"], default="ON_DEMAND"),
        disk_size=dict(type="int"),
        launch_template=dict(type="dict", options=dict(id=dict(type="str"), name=dict(type="str"),
                                                       version=dict(type="str"))),
        scaling=dict(type="dict", default={}, options=dict(
            min_size=dict(type="int", default=1), max_size=dict(type="int", default=1),
            desired_size=dict(type="int", default=1))),
        update_config=dict(type="dict", default={}, options=dict(
            max_unavailable=dict(type="int"), max_unavailable_percentage=dict(type="int"))),
        labels=dict(type="dict", default={}),
        taints=dict(type="list", elements="dict", default=[], options=dict(
            key=dict(type="str", required=True, no_log=False), value=dict(type="str"),
            effect=dict(type="str", required=True, choices=list(ngu.TAINT_EFFECTS)))),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=1800),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    errors = ngu.validate_params(module.params)
    if errors:
        module.fail_json(msg="Invalid input: " + "; ".join(errors), errors=errors)
    eks = aws_retry.client(module, "eks", extra_codes=["ResourceInUseException"])
    if module.params["state"] == "present":
        ensure_present(module, eks)
    else:
        ensure_absent(module, eks)


if __name__ == "__main__":
    main()
