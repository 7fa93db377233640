#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vpc_endpoint_service
short_description: Manage a VPC endpoint service (AWS PrivateLink provider side)
version_added: 0.1.0
description:
  - Creates, updates and deletes a VPC endpoint service configuration backed by one or more
    network load balancers, and keeps its allowed principals equal to an exact set.
  - An existing service is found by its network load balancers (a service owning any of
    O(network_load_balancer_arns)), otherwise by its C(Name) tag (O(tags.Name)); the module never
    guesses when several services match.
  - Options that are not set are not managed (for example O(allowed_principals) unset leaves the
    permissions as they are; set it to V([]) to remove every principal).
  - Supports check mode and C(--diff) (the allowed principals, supported regions, acceptance,
    load balancers, private DNS name and tags, before and after).
  - No module in amazon.aws or community.aws manages endpoint services; this one uses the
    amazon.aws module utilities, so it has their authentication options and retries.
  - It belongs to the action group C(threshold_kms.mpc_party.aws), which extends
    C(amazon.aws.aws). C(module_defaults) for C(group/threshold_kms.mpc_party.aws) reach this
    module and every amazon.aws module (C(group/amazon.aws.aws) alone does not reach it).
options:
  state:
    description: Whether the endpoint service should exist.
    type: str
    choices: [present, absent]
    default: present
  network_load_balancer_arns:
    description:
      - ARNs of the network load balancers behind the service; the exact set (load balancers
        missing from the list are detached).
      - Required when O(state=present). With O(state=absent), used to find the service.
    type: list
    elements: str
    aliases: [nlb_arns]
  acceptance_required:
    description:
      - Whether each consumer's endpoint connection must be accepted by the service owner.
      - When unset on an existing service, left as it is; a new service uses V(true) (the AWS default).
    type: bool
  allowed_principals:
    description:
      - The exact set of IAM principals allowed to create endpoints to the service, for example
        C(arn:aws:iam::123456789012:root) for a whole account. Principals missing from the list are removed.
      - When unset, the permissions are not managed (unless O(allowed_account_ids) is set).
      - Together with O(allowed_account_ids), the union of both is the exact set.
    type: list
    elements: str
  allowed_account_ids:
    description:
      - AWS account ids whose whole account (its C(root) principal) may create endpoints to the
        service, for example the other parties' accounts.
      - The principal ARNs are built in the partition of the caller (C(aws), C(aws-cn),
        C(aws-us-gov), ...), read from C(sts get-caller-identity); no partition is assumed.
    type: list
    elements: str
  supported_regions:
    description:
      - The exact set of regions, besides the service's own, whose consumers may connect to the
        service (AWS cross-region PrivateLink, C(SupportedRegions)). Regions missing from the
        list are removed; the service's own region is always supported and is ignored here.
      - A consumer in another region must also name the service's region when it creates its
        endpoint (C(ServiceRegion), see M(threshold_kms.mpc_party.vpc_interface_endpoint)).
      - When unset, the supported regions are not managed.
    type: list
    elements: str
  private_dns_name:
    description:
      - Private DNS name of the service. V("") removes it. Unset leaves it unmanaged.
      - AWS requires the domain to be verified before consumers can use it.
    type: str
  wait:
    description: Wait until the service is C(Available) after a change.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait with O(wait=true).
    type: int
    default: 300
notes:
  - Deleting a service that still has accepted endpoint connections fails on AWS; the error is reported.
  - Accepting or rejecting pending endpoint connections is not done by this module.
author:
  - threshold_kms.mpc_party contributors
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Offer the node's peer port to the other parties over PrivateLink
  threshold_kms.mpc_party.vpc_endpoint_service:
    network_load_balancer_arns:
      - arn:aws:elasticloadbalancing:eu-west-1:100000000001:loadbalancer/net/kms-p1-peer/0123456789abcdef
    acceptance_required: false
    allowed_account_ids: ["100000000002", "100000000003", "100000000004"]
    supported_regions: [us-east-1, ap-southeast-1]
    tags:
      Name: kms-mainnet-p1-peer
    wait: true
  register: __privatelink_service

- name: Publish the service name
  ansible.builtin.debug:
    msg: "Give the other parties {{ __privatelink_service.service_name }}"

- name: Remove the service
  threshold_kms.mpc_party.vpc_endpoint_service:
    state: absent
    tags:
      Name: kms-mainnet-p1-peer
"""

RETURN = r"""
service_id:
  description: Id of the endpoint service (V(null) when there is none, including a creation in check mode).
  returned: always
  type: str
  sample: vpce-svc-0123456789abcdef0
service_name:
  description: The name consumers use to create interface endpoints; what this party publishes.
  returned: always
  type: str
  sample: com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0
state:
  description: The service state as AWS reports it (C(Pending), C(Available), ...), or C(absent) when no service exists.
  returned: always
  type: str
  sample: Available
allowed_principals:
  description: The allowed principals, sorted (in check mode, the set they would have).
  returned: always
  type: list
  elements: str
  sample: ["arn:aws:iam::100000000002:root"]
principals_added:
  description: Principals added by this run (or that would be, in check mode).
  returned: always
  type: list
  elements: str
supported_regions:
  description: The regions other than its own from which the service may be reached, sorted (in check mode, those it would have).
  returned: always
  type: list
  elements: str
  sample: ["ap-southeast-1", "us-east-1"]
service_region:
  description: The region of the service (where its load balancers are).
  returned: always
  type: str
  sample: eu-west-1
partition:
  description: The AWS partition the principals of O(allowed_account_ids) were built in (only when that option is set).
  returned: when O(allowed_account_ids) is set
  type: str
  sample: aws
principals_removed:
  description: Principals removed by this run (or that would be, in check mode).
  returned: always
  type: list
  elements: str
network_load_balancer_arns:
  description: The load balancers behind the service.
  returned: always
  type: list
  elements: str
acceptance_required:
  description: Whether endpoint connections need acceptance.
  returned: always
  type: bool
base_endpoint_dns_names:
  description: The service's base DNS names.
  returned: always
  type: list
  elements: str
private_dns_name:
  description: The private DNS name, if any.
  returned: always
  type: str
tags:
  description: The service's tags.
  returned: always
  type: dict
service:
  description: The service configuration as AWS describes it, in snake case.
  returned: always
  type: dict
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_retry
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.vpc_endpoint_service import (
    EndpointService,
    EndpointServiceError,
    desired_principals,
    partition_of,
    validate_params,
)


def main():
    argument_spec = dict(
        state=dict(type="str", default="present", choices=["present", "absent"]),
        network_load_balancer_arns=dict(type="list", elements="str", aliases=["nlb_arns"]),
        acceptance_required=dict(type="bool"),
        allowed_principals=dict(type="list", elements="str"),
        allowed_account_ids=dict(type="list", elements="str"),
        supported_regions=dict(type="list", elements="str"),
        private_dns_name=dict(type="str"),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=300),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)

    errors = validate_params(module.params)
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)

    client = aws_retry.client(module, "ec2")
    service = EndpointService(module, client)
    partition = None
    try:
        if module.params["allowed_account_ids"] is not None:
            try:
                caller = aws_retry.client(module, "sts").get_caller_identity(aws_retry=True)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                module.fail_json_aws(e, msg="Failed to read the caller identity (sts get-caller-identity), "
                                           "needed for the partition of allowed_account_ids")
            partition = partition_of(caller["Arn"])
            module.params["allowed_principals"] = desired_principals(module.params, partition)
        if module.params["state"] == "present":
            result = service.ensure_present(module.params)
        else:
            result = service.ensure_absent(module.params)
    except EndpointServiceError as e:
        module.fail_json(msg=str(e))

    if partition:
        result["partition"] = partition
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
