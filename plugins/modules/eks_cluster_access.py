#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: eks_cluster_access
short_description: Who may reach an EKS cluster's API, from where, and what the control plane logs and encrypts
version_added: 0.1.0
description:
  - On an existing cluster, sets the authentication mode, the EKS access entries and their access
    policy associations, the API endpoint access (private, public, public CIDRs), the control-plane
    log types and the envelope encryption of Kubernetes secrets.
  - C(community.aws.eks_cluster) 10 carries none of these; this module covers them with
    C(UpdateClusterConfig), C(AssociateEncryptionConfig) and the access entry API.
  - EKS takes one kind of change per update and one update at a time (each takes a few minutes); the
    module waits for each update before the next. With O(wait=false) it makes the changes up to and
    including the next update only and returns that update as RV(pending_update), for the playbook to
    wait on it with progress (M(threshold_kms.mpc_party.resource_ready), O(kind=eks_update)) and call
    the module again until RV(pending_update) is null. The authentication mode only moves C(CONFIG_MAP) -> C(API_AND_CONFIG_MAP)
    -> C(API); the secrets encryption key cannot be changed once set. Asking for either is an error
    naming the option, before any change.
  - Access policy names are turned into ARNs in the partition of the caller (from STS), not C(arn:aws).
  - Options left unset are left as they are. Check mode reports the planned calls and changes nothing.
options:
  name:
    description: Name of the cluster.
    type: str
    required: true
  access_entries:
    description:
      - IAM principals given access to the cluster's API, each with its access policies. A listed
        principal's policies are exactly those given (others are disassociated).
    type: list
    elements: dict
    default: []
    suboptions:
      principal_arn:
        description: IAM role or user ARN.
        type: str
        required: true
      kubernetes_groups:
        description: Kubernetes groups of the principal (for your own RBAC bindings).
        type: list
        elements: str
        default: []
      policies:
        description: EKS access policies to associate.
        type: list
        elements: dict
        default: []
        suboptions:
          policy:
            description: C(AmazonEKSClusterAdminPolicy), C(AmazonEKSAdminPolicy), C(AmazonEKSEditPolicy), C(AmazonEKSViewPolicy) or a policy ARN.
            type: str
            required: true
          scope:
            description: C(cluster) or C(namespace).
            type: str
            default: cluster
            choices: [cluster, namespace]
          namespaces:
            description: Namespaces when O(access_entries[].policies[].scope=namespace).
            type: list
            elements: str
            default: []
  purge_access_entries:
    description:
      - Delete access entries of type C(STANDARD) that O(access_entries) does not list. Entries EKS
        made for node roles (other types) and the caller's own entry are never deleted.
    type: bool
    default: false
  wait:
    description:
      - Wait for each update before starting the next (silently, up to O(wait_timeout) each). V(false)
        starts at most one update and returns it as RV(pending_update) without waiting.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for each cluster update (O(wait=true)).
    type: int
    default: 1200
author:
  - threshold_kms.mpc_party contributors
extends_documentation_fragment:
  - threshold_kms.mpc_party.eks_cluster_settings
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Access for the operators and AWX, private endpoint, audit logs, encrypted secrets
  threshold_kms.mpc_party.eks_cluster_access:
    name: kms-prod-p1
    authentication_mode: API_AND_CONFIG_MAP
    access_entries:
      - principal_arn: arn:aws:iam::111122223333:role/kms-operators
        policies:
          - policy: AmazonEKSClusterAdminPolicy
      - principal_arn: arn:aws:iam::111122223333:role/awx
        policies:
          - policy: AmazonEKSAdminPolicy
            scope: namespace
            namespaces: [kms]
    endpoint_private_access: true
    endpoint_public_access: false
    logging_types: [api, audit, authenticator]
    secrets_encryption_key_arn: arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
"""

RETURN = r"""
pending_update:
  description:
    - The update this run started and did not wait for (O(wait=false)), or the update an earlier run
      started that EKS is still making (this run then made no change it would have made after it);
      null when there is none, which is when the cluster is as asked (or, in check mode, always).
  returned: always
  type: dict
  contains:
    id:
      description: The update id (M(threshold_kms.mpc_party.resource_ready) O(name)).
      type: str
    type:
      description: C(AccessConfigUpdate), C(LoggingUpdate), C(AssociateEncryptionConfig) or C(EndpointAccessUpdate).
      type: str
  sample: {"id": "7551c64b-1d27-4b1e-9f8e-c45f056eb6fd", "type": "LoggingUpdate"}
calls:
  description:
    - The EKS calls made (or, in check mode, that would be made), in order, with their parameters; with
      O(wait=false), those of this run only (up to the update it started).
  returned: always
  type: list
  elements: dict
  sample: [{"call": "update_cluster_config", "params": {"accessConfig": {"authenticationMode": "API"}}}]
cluster_access:
  description: The access settings read back after the changes.
  returned: always
  type: dict
  contains:
    authentication_mode:
      description: C(CONFIG_MAP), C(API_AND_CONFIG_MAP) or C(API).
      type: str
    endpoint_private_access:
      description: Private endpoint on.
      type: bool
    endpoint_public_access:
      description: Public endpoint on.
      type: bool
    public_access_cidrs:
      description: CIDRs allowed to the public endpoint.
      type: list
    logging_types:
      description: Enabled control-plane log types.
      type: list
    secrets_encryption_key_arns:
      description: KMS keys encrypting secrets.
      type: list
    access_entries:
      description: Principal ARN to its type, Kubernetes groups and associated policy ARNs with their scope.
      type: dict
"""

import time

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports it

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_retry
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import eks_access



def aws_errors():
    return (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


@aws_retry.jittered_backoff()
def all_pages(eks, operation, **kwargs):
    """Every page of a listing. A paginator's calls bypass the client's retry (aws_retry=True
    applies to direct calls only), so the whole listing is retried as one."""
    return list(eks.get_paginator(operation).paginate(**kwargs))


def read_entries(eks, name):
    """Access entries of the cluster with their policies, or {} while the mode is CONFIG_MAP."""
    current = {}
    principals = []
    for page in all_pages(eks, "list_access_entries", clusterName=name):
        principals.extend(page.get("accessEntries", []))
    for principal in principals:
        entry = eks.describe_access_entry(aws_retry=True, clusterName=name, principalArn=principal)["accessEntry"]
        policies = {}
        for page in all_pages(eks, "list_associated_access_policies", clusterName=name, principalArn=principal):
            for item in page.get("associatedAccessPolicies", []):
                policies[item["policyArn"]] = item.get("accessScope") or {}
        current[principal] = {"type": entry.get("type", "STANDARD"),
                              "kubernetes_groups": sorted(entry.get("kubernetesGroups") or []),
                              "policies": policies}
    return current


def summary(cluster, entries):
    vpc = cluster.get("resourcesVpcConfig") or {}
    logging_types = sorted(t for item in (cluster.get("logging") or {}).get("clusterLogging", [])
                           if item.get("enabled") for t in item.get("types", []))
    return {
        "authentication_mode": (cluster.get("accessConfig") or {}).get("authenticationMode", "CONFIG_MAP"),
        "endpoint_private_access": bool(vpc.get("endpointPrivateAccess")),
        "endpoint_public_access": bool(vpc.get("endpointPublicAccess")),
        "public_access_cidrs": sorted(vpc.get("publicAccessCidrs") or []),
        "logging_types": logging_types,
        "secrets_encryption_key_arns": [c.get("provider", {}).get("keyArn") for c in cluster.get("encryptionConfig") or []],
        "access_entries": {p: {"type": e["type"], "kubernetes_groups": e["kubernetes_groups"],
                               "policies": e["policies"]} for p, e in entries.items()},
    }


UPDATE_CALLS = ("update_cluster_config", "associate_encryption_config")  # each an EKS update


def update_in_progress(eks, name):
    """The update of the cluster itself that EKS is making now (an earlier run's), or None."""
    ids, token = [], None
    while True:
        page = eks.list_updates(aws_retry=True, name=name, **({"nextToken": token} if token else {}))
        ids += page.get("updateIds") or []
        token = page.get("nextToken")
        if not token:
            break
    for update_id in ids:
        update = eks.describe_update(aws_retry=True, name=name, updateId=update_id)["update"]
        if update.get("status") == "InProgress" and update.get("type") != "AddonUpdate":
            return update
    return None


def wait_for_update(module, eks, name, update_id):
    deadline = time.time() + module.params["wait_timeout"]
    while True:
        update = eks.describe_update(aws_retry=True, name=name, updateId=update_id)["update"]
        if update["status"] == "Successful":
            return
        if update["status"] in ("Failed", "Cancelled"):
            module.fail_json(msg="EKS update %s (%s) of cluster %s ended %s: %s"
                             % (update_id, update.get("type"), name, update["status"], update.get("errors")))
        if time.time() > deadline:
            module.fail_json(msg="EKS update %s (%s) of cluster %s still %s after wait_timeout=%ss"
                             % (update_id, update.get("type"), name, update["status"], module.params["wait_timeout"]))
        time.sleep(10)


def main():
    policy_spec = dict(policy=dict(type="str", required=True),
                       scope=dict(type="str", default="cluster", choices=["cluster", "namespace"]),
                       namespaces=dict(type="list", elements="str", default=[]))
    entry_spec = dict(principal_arn=dict(type="str", required=True),
                      kubernetes_groups=dict(type="list", elements="str", default=[]),
                      policies=dict(type="list", elements="dict", default=[], options=policy_spec))
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            access_entries=dict(type="list", elements="dict", default=[], options=entry_spec),
            purge_access_entries=dict(type="bool", default=False),
            wait=dict(type="bool", default=True),
            **eks_access.SETTINGS_SPEC,
            wait_timeout=dict(type="int", default=1200),
        ),
        supports_check_mode=True,
    )
    params = module.params
    name = params["name"]
    errors = eks_access.validate(params)
    if params["access_entries"] and not params["authentication_mode"]:
        errors.append("access_entries: set authentication_mode (API or API_AND_CONFIG_MAP) with them")
    if errors:
        module.fail_json(msg="eks_cluster_access: " + "; ".join(errors))

    # Waiting, an update still in progress (EKS makes one at a time) is retried; without waiting it is
    # returned as the pending update, for the playbook to wait on with progress.
    eks = aws_retry.client(module, "eks", extra_codes=["ResourceInUseException"] if params["wait"] else [])
    sts = aws_retry.client(module, "sts")
    try:
        caller = sts.get_caller_identity(aws_retry=True)["Arn"]
        cluster = eks.describe_cluster(aws_retry=True, name=name)["cluster"]
    except is_boto3_error_code("ResourceNotFoundException"):
        module.fail_json(msg="eks_cluster_access: cluster %s does not exist (create it first)" % name)
    except aws_errors() as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="Could not read cluster %s or the caller identity" % name)
    partition = eks_access.partition_of(caller)
    try:
        cluster_calls = eks_access.plan_cluster(cluster, params)
    except eks_access.AccessInputError as e:
        module.fail_json(msg="eks_cluster_access: %s" % e)

    mode_after = (params["authentication_mode"]
                  or (cluster.get("accessConfig") or {}).get("authenticationMode", "CONFIG_MAP"))
    try:
        current = {} if (cluster.get("accessConfig") or {}).get("authenticationMode", "CONFIG_MAP") == "CONFIG_MAP" \
            else read_entries(eks, name)
    except aws_errors() as e:
        module.fail_json_aws(e, msg="Could not read the access entries of cluster %s" % name)
    entry_calls = []
    if mode_after != "CONFIG_MAP":
        entry_calls = eks_access.plan_entries(current, eks_access.desired_entries(params, partition),
                                              eks_access.caller_principal(caller), params["purge_access_entries"])

    # Endpoint access goes last, after the access entries: closing the public endpoint first
    # could cut off this very run.
    endpoint = [c for c in cluster_calls if "resourcesVpcConfig" in c[1]]
    ordered = [c for c in cluster_calls if c not in endpoint] + entry_calls + endpoint
    if module.check_mode or not ordered:
        module.exit_json(changed=bool(ordered), calls=[{"call": call, "params": request} for call, request in ordered],
                         cluster_access=summary(cluster, current), pending_update=None)

    done, pending = [], None
    for call, request in ordered:
        done.append({"call": call, "params": request})
        try:
            if call in UPDATE_CALLS:
                if call == "update_cluster_config":
                    update = eks.update_cluster_config(aws_retry=True, name=name, **request)["update"]
                else:
                    update = eks.associate_encryption_config(aws_retry=True, clusterName=name, **request)["update"]
                if not params["wait"]:
                    pending = {"id": update["id"], "type": update.get("type")}
                    break  # one update at a time: the playbook waits for it, then calls again
                wait_for_update(module, eks, name, update["id"])
            else:
                getattr(eks, call)(aws_retry=True, clusterName=name, **request)
        except is_boto3_error_code("ResourceInUseException") as e:
            # an update an earlier run started (and did not see end) is still in progress
            running = None if params["wait"] or call not in UPDATE_CALLS else update_in_progress(eks, name)
            if running is None:
                module.fail_json_aws(e, msg="EKS %s on cluster %s failed (%s)" % (call, name, request), calls=done)
            done.pop()  # not made: the playbook waits for the running update, then calls again
            pending = {"id": running["id"], "type": running.get("type")}
            break
        except aws_errors() as e:  # pylint: disable=duplicate-except
            module.fail_json_aws(e, msg="EKS %s on cluster %s failed (%s)" % (call, name, request), calls=done)
    try:
        cluster = eks.describe_cluster(aws_retry=True, name=name)["cluster"]
        current = read_entries(eks, name) if mode_after != "CONFIG_MAP" else {}
    except aws_errors() as e:
        module.fail_json_aws(e, msg="Could not read cluster %s back" % name)
    module.exit_json(changed=bool(done), calls=done, cluster_access=summary(cluster, current), pending_update=pending)


if __name__ == "__main__":
    main()
