#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: resource_ready
short_description: Wait a bounded time for an AWS resource that takes minutes to create, reporting where it is
version_added: 0.1.0
description:
  - Describes the resource every O(poll_interval) seconds until it is ready or O(report_after) seconds have
    passed, then returns its state, how long ago it was created and a one-line RV(progress).
  - Meant for a task that retries it C(until) RV(ready) is true, so that a wait of minutes prints a line at a
    steady interval (Ansible's retry line; the C(threshold_kms.mpc_party.progress) callback adds RV(progress))
    instead of staying silent - the modules that create these resources wait without a word.
  - Fails at once, with the state, when the resource is in a state it will not leave by waiting
    (C(FAILED), C(CREATE_FAILED), C(DEGRADED), C(failed), C(deleting), an update C(Failed) or C(Cancelled)
    with EKS's errors ...) or does not exist.
  - In check mode it describes once and never waits (a resource check mode did not create is RV(exists=false),
    RV(ready=true)).
options:
  kind:
    description: What to wait for.
    type: str
    required: true
    choices: [eks_cluster, eks_nodegroup, eks_update, db_instance, nat_gateway]
  name:
    description:
      - The cluster name, node group name, EKS update id (what C(UpdateClusterConfig) or
        C(AssociateEncryptionConfig) returned), DB instance identifier or NAT gateway id.
    type: str
    required: true
  cluster_name:
    description: The node group's or the update's cluster (O(kind=eks_nodegroup) and O(kind=eks_update) only).
    type: str
  poll_interval:
    description: Seconds between two describes.
    type: int
    default: 15
  report_after:
    description: Seconds after which the module returns RV(ready=false) to report progress (the task retries it).
    type: int
    default: 60
author:
  - threshold_kms.mpc_party contributors
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: EKS cluster, created without waiting
  community.aws.eks_cluster:
    name: kms-prod-p1
    role_arn: "{{ cluster_role_arn }}"
    subnets: "{{ private_subnet_ids }}"
    wait: false
  register: __cluster

- name: Wait until the cluster is ACTIVE (a line of progress a minute, for at most 30 minutes)
  threshold_kms.mpc_party.resource_ready:
    kind: eks_cluster
    name: kms-prod-p1
  register: __cluster_ready
  until: __cluster_ready.ready
  retries: 30
  delay: 0
  when: __cluster.status | default('ACTIVE') != 'ACTIVE'
"""

RETURN = r"""
exists:
  description: Whether the resource exists.
  returned: always
  type: bool
ready:
  description: Whether it is in its ready state (C(ACTIVE), C(available), an update C(Successful)).
  returned: always
  type: bool
state:
  description: Its state as AWS reports it.
  returned: when it exists
  type: str
  sample: CREATING
age:
  description: Seconds since AWS created it (from its own creation time).
  returned: when it exists and AWS reports a creation time
  type: float
progress:
  description: One line for the operator.
  returned: always
  type: str
  sample: "EKS cluster kms-prod-p1: CREATING, created 4m 05s ago (AWS typically takes 10-15 min)"
resource:
  description: The description AWS returned, keys in snake case (tags as they are).
  returned: when it exists
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

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_eks_nodegroup as ngu
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_retry
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import resource_ready as rr

NOT_FOUND = ("ResourceNotFoundException", "DBInstanceNotFound", "NatGatewayNotFound", "InvalidNatGatewayID.NotFound")


def describe(module, client):
    kind, name = module.params["kind"], module.params["name"]
    try:
        if kind == "eks_cluster":
            return client.describe_cluster(aws_retry=True, name=name)["cluster"]
        if kind == "eks_nodegroup":
            return client.describe_nodegroup(aws_retry=True, clusterName=module.params["cluster_name"],
                                              nodegroupName=name)["nodegroup"]
        if kind == "eks_update":
            return client.describe_update(aws_retry=True, name=module.params["cluster_name"], updateId=name)["update"]
        if kind == "db_instance":
            return client.describe_db_instances(aws_retry=True, DBInstanceIdentifier=name)["DBInstances"][0]
        found = client.describe_nat_gateways(aws_retry=True, NatGatewayIds=[name])["NatGateways"]
        return found[0] if found else None
    except is_boto3_error_code(NOT_FOUND):
        return None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="Could not describe %s %s" % (rr.KINDS[kind][0], name))


def result(kind, name, description, cluster_name=None):
    state = rr.state_of(kind, description)
    age = rr.age_seconds(kind, description)
    shown = rr.display_name(kind, name, description, cluster_name)
    out = dict(changed=False, exists=description is not None, ready=rr.verdict(kind, state) == "ready",
               progress=rr.progress_line(kind, shown, state, age))
    if description is not None:
        out.update(state=state, resource=camel_dict_to_snake_dict(description, ignore_list=["tags", "Tags"]))
        if age is not None:
            out["age"] = round(age, 1)
    return out


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            kind=dict(type="str", required=True, choices=sorted(rr.KINDS)),
            name=dict(type="str", required=True),
            cluster_name=dict(type="str"),
            poll_interval=dict(type="int", default=15),
            report_after=dict(type="int", default=60),
        ),
        required_if=[("kind", "eks_nodegroup", ["cluster_name"]), ("kind", "eks_update", ["cluster_name"])],
        supports_check_mode=True,
    )
    kind, name = module.params["kind"], module.params["name"]
    if module.params["poll_interval"] < 1 or module.params["report_after"] < 0:
        module.fail_json(msg="poll_interval must be at least 1 and report_after at least 0 (seconds); got %s and %s"
                         % (module.params["poll_interval"], module.params["report_after"]))
    service = {"eks_cluster": "eks", "eks_nodegroup": "eks", "eks_update": "eks", "db_instance": "rds",
               "nat_gateway": "ec2"}[kind]
    client = aws_retry.client(module, service)

    started = time.monotonic()
    while True:
        description = describe(module, client)
        out = result(kind, name, description, module.params["cluster_name"])
        if module.check_mode and description is None:
            out["ready"] = True  # check mode created nothing: nothing to wait for
            module.exit_json(**out)
        verdict = rr.verdict(kind, out.get("state"))
        if verdict == "failed":
            # a node group says why (CREATE_FAILED, DEGRADED: its health issues and what to do)
            why = ngu.health_failure(description) if kind == "eks_nodegroup" else rr.failure(kind, description, module.params["cluster_name"])
            module.fail_json(msg=why or "%s; waiting will not make it ready" % out["progress"], **out)
        if verdict == "ready" or module.check_mode:
            module.exit_json(**out)
        if time.monotonic() - started + module.params["poll_interval"] > module.params["report_after"]:
            module.exit_json(**out)
        time.sleep(module.params["poll_interval"])


if __name__ == "__main__":
    main()
