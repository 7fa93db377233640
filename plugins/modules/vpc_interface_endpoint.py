#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vpc_interface_endpoint
short_description: Manage an interface VPC endpoint to an endpoint service, across regions (PrivateLink consumer side)
version_added: 0.1.0
description:
  - Creates, updates and deletes an interface VPC endpoint to an endpoint service that may be
    owned by another account and hosted in another region (AWS cross-region PrivateLink).
  - When the service is in another region than the endpoint, the endpoint names that region
    (EC2 C(ServiceRegion)); amazon.aws.ec2_vpc_endpoint has no option for it.
  - Before anything is created the service must be visible to this account. When it is not, the
    module says why. Either the service does not list this region among its supported regions,
    the account sees the service in the service's own region but not from here. Or the service
    does not allow this account's principal, in the partition of the caller.
  - An existing endpoint is found by O(vpc_endpoint_id), else by its VPC, service name and
    C(Name) tag (O(tags.Name)). The module never guesses when several match. An endpoint
    cannot change its service; it reports that and leaves deleting it to the caller.
  - Subnets and security groups are exact sets. Supports check mode and C(--diff).
  - It belongs to the action group C(threshold_kms.mpc_party.aws), which extends C(amazon.aws.aws).
options:
  state:
    description: Whether the endpoint should exist.
    type: str
    choices: [present, absent]
    default: present
  vpc_endpoint_id:
    description:
      - Id of the endpoint to manage. Required with O(state=absent).
    type: str
  vpc_id:
    description: The VPC of the endpoint. Required with O(state=present).
    type: str
  service_name:
    description:
      - The endpoint service, C(com.amazonaws.vpce.<region>.vpce-svc-<id>). Required with O(state=present).
    type: str
  service_region:
    description:
      - The region of the service. When unset, the region its name carries.
      - Must agree with the name. When it differs from the module's region, the endpoint is a
        cross-region endpoint and the service must list the module's region among its supported regions.
    type: str
  service_owner:
    description: Who publishes the service (for example C(party 3)), named in error messages.
    type: str
  subnet_ids:
    description: The subnets of the endpoint's network interfaces (exact set). Required with O(state=present).
    type: list
    elements: str
  security_group_ids:
    description: The security groups of the endpoint (exact set). Unset leaves them unmanaged on an existing endpoint.
    type: list
    elements: str
  private_dns_enabled:
    description: Whether to associate the service's private DNS name with the VPC (new endpoints only).
    type: bool
    default: false
  wait:
    description: Wait until the endpoint is C(available) after a change.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait with O(wait=true).
    type: int
    default: 300
author:
  - threshold_kms.mpc_party contributors
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Endpoint in eu-west-1 to party 3's peer service in us-east-1
  threshold_kms.mpc_party.vpc_interface_endpoint:
    region: eu-west-1
    vpc_id: vpc-0123456789abcdef0
    service_name: com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0
    service_region: us-east-1
    service_owner: party 3
    subnet_ids: [subnet-0123456789abcdef0, subnet-0123456789abcdef1]
    security_group_ids: [sg-0123456789abcdef0]
    tags:
      Name: kms-mainnet-p1-to-p3
  register: __privatelink_endpoint

- name: Remove it
  threshold_kms.mpc_party.vpc_interface_endpoint:
    state: absent
    vpc_endpoint_id: "{{ __privatelink_endpoint.vpc_endpoint_id }}"
"""

RETURN = r"""
vpc_endpoint_id:
  description: Id of the endpoint (V(null) when there is none, including a creation in check mode).
  returned: always
  type: str
  sample: vpce-0123456789abcdef0
state:
  description: The endpoint state as AWS reports it (C(pending), C(available), ...), or C(absent).
  returned: always
  type: str
  sample: available
service_name:
  description: The service the endpoint connects to.
  returned: always
  type: str
service_region:
  description: The region of that service (the endpoint's own region for a same-region endpoint).
  returned: always
  type: str
  sample: us-east-1
dns_name:
  description: The endpoint's first (regional) DNS name, what the peers' traffic is sent to.
  returned: always
  type: str
dns_entries:
  description: All DNS entries of the endpoint.
  returned: always
  type: list
  elements: dict
subnet_ids:
  description: The endpoint's subnets (in check mode, those it would have).
  returned: always
  type: list
  elements: str
security_group_ids:
  description: The endpoint's security groups (in check mode, those it would have).
  returned: always
  type: list
  elements: str
tags:
  description: The endpoint's tags.
  returned: always
  type: dict
endpoint:
  description: The endpoint as AWS describes it, in snake case.
  returned: always
  type: dict
reason:
  description: Why a service is not visible, when the module fails for that, V(region) or V(principal).
  returned: on failure, when the service is not visible
  type: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_retry
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.vpc_interface_endpoint import (
    InterfaceEndpoint,
    InterfaceEndpointError,
    validate_params,
)


def main():
    argument_spec = dict(
        state=dict(type="str", default="present", choices=["present", "absent"]),
        vpc_endpoint_id=dict(type="str"),
        vpc_id=dict(type="str"),
        service_name=dict(type="str"),
        service_region=dict(type="str"),
        service_owner=dict(type="str"),
        subnet_ids=dict(type="list", elements="str"),
        security_group_ids=dict(type="list", elements="str"),
        private_dns_enabled=dict(type="bool", default=False),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=300),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)

    errors = validate_params(module.params)
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)

    own_region = module.region
    endpoint = InterfaceEndpoint(module, lambda region: aws_retry.client(module, "ec2", region=region), own_region)
    try:
        if module.params["state"] == "present":
            result = endpoint.ensure_present(module.params)
        else:
            result = endpoint.ensure_absent(module.params)
    except InterfaceEndpointError as e:
        module.fail_json(msg=str(e))

    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
