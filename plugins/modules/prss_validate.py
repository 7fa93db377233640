#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: prss_validate
short_description: Whether a KMS party's PRSS epoch is in its private vault
version_added: 0.1.0
description:
  - Looks for C(<prefix>/EpochData/<epoch_id>) and C(<prefix>/Context/<context_id>) in the
    party's private vault bucket, the objects the KMS server writes when a PRSS epoch
    completes, and tells apart C(present), C(missing), C(empty) and C(access_denied) (for
    each object and overall). Returns the objects' metadata, never their content.
  - Optionally cross-checks with the node itself through C(GetEpochResult) - on this party's
    own node through a Kubernetes port-forward (O(pod)), or on an address
    (O(cross_check_endpoint)) - and says whether both agree. The vault is the proof; after a
    restart the server answers C(NOT_FOUND) for an epoch that is done (results live in
    memory), which agrees with an EpochData object that is present.
  - Read-only; runs the same in check mode.
  - Uses amazon.aws's AnsibleAWSModule, so credentials, O(endpoint_url), O(region) and
    retries behave like amazon.aws modules; the module is in the
    C(threshold_kms.mpc_party.aws) action group, which extends C(amazon.aws.aws), so
    C(module_defaults) for C(group/amazon.aws.aws) apply.
author:
  - threshold_kms.mpc_party maintainers
options:
  bucket:
    description: The party's private vault bucket.
    type: str
    required: true
  prefix:
    description:
      - Private vault prefix, by the server's convention C(PRIV-p<party_id>).
      - An empty prefix means keys starting with C(/), as the server writes them.
    type: str
    required: true
  epoch_id:
    description: Epoch id, 64 lower-case hex characters.
    type: str
    default: "0800000000000000000000000000000000000000000000000000000000000001"
  context_id:
    description: MPC context id, 64 lower-case hex characters.
    type: str
    default: "0700000000000000000000000000000000000000000000000000000000000001"
  check_context:
    description: Also require the C(Context/<context_id>) object.
    type: bool
    default: true
  cross_check_endpoint:
    description:
      - Client gRPC endpoint (C(host:port)) of this party's node; when set, C(GetEpochResult)
        is asked too and RV(cross_check) reports the node's view.
      - Not with O(pod), which reaches the node through a port-forward instead.
    type: str
  timeout:
    description: Seconds allowed for the cross-check call.
    type: float
    default: 5.0
extends_documentation_fragment:
  - threshold_kms.mpc_party.kms_tls
  - threshold_kms.mpc_party.kms_port_forward
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
requirements:
  - boto3
  - grpcio (only for O(cross_check_endpoint) or O(pod))
  - protobuf (only for O(cross_check_endpoint) or O(pod))
seealso:
  - module: threshold_kms.mpc_party.prss_epoch
"""

EXAMPLES = r"""
- name: Is party 1 initialised?
  threshold_kms.mpc_party.prss_validate:
    bucket: kms-mainnet-p1-private
    prefix: PRIV-p1
  register: prss

- name: With the own node's view, through a port-forward to its pod
  threshold_kms.mpc_party.prss_validate:
    bucket: kms-mainnet-p1-private
    prefix: PRIV-p1
    kubeconfig: ~/.kube/kms-party1.yaml
    namespace: kms
    pod: kms-core-0

- name: Against the sandbox's AWS stand-in, with the node's view at an address
  threshold_kms.mpc_party.prss_validate:
    bucket: kms-sandbox-p2-private
    prefix: PRIV-p2
    cross_check_endpoint: "127.0.0.1:50102"
  module_defaults:
    group/amazon.aws.aws:
      endpoint_url: http://127.0.0.1:4566
      region: eu-west-1
"""

RETURN = r"""
initialized:
  description: Every required object is present and not empty.
  returned: always
  type: bool
state:
  description: present, missing, empty or access_denied (the worst of the objects).
  returned: always
  type: str
  sample: present
objects:
  description:
    - C(epoch_data) and (with O(check_context)) C(context) - each with key, state, size,
      last_modified, etag, version_id, bucket_exists and error.
  returned: always
  type: dict
  sample:
    epoch_data:
      key: PRIV-p1/EpochData/0800000000000000000000000000000000000000000000000000000000000001
      state: present
      size: 1843
      last_modified: "2026-11-24T10:00:00+00:00"
      etag: 9b2cf535f27731c974343645a3985328
      version_id: null
      bucket_exists: true
      error: ""
cross_check:
  description:
    - With O(cross_check_endpoint) or O(pod) - the node's answer to C(GetEpochResult) (C(state)
      done, running, not_found, failed, unreachable, error; C(error)), C(consistent) and C(note).
      C(consistent) is false when the node says done but the vault has no epoch, or the vault
      has it but the node reports it running or failed; C(not_found) with the vault present is
      consistent (a restarted node).
  returned: when O(cross_check_endpoint) or O(pod) is set
  type: dict
  sample: {endpoint: "127.0.0.1:50101", state: done, code: OK, error: "", consistent: true, note: ""}
bucket:
  description: The bucket checked.
  returned: always
  type: str
prefix:
  description: The prefix used.
  returned: always
  type: str
epoch_id:
  description: The epoch id checked.
  returned: always
  type: str
context_id:
  description: The context id checked.
  returned: always
  type: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_retry
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_grpc as G
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_proto as P
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kube_portforward as K
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import prss

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    pass


def main():
    argument_spec = dict(
        bucket=dict(type="str", required=True),
        prefix=dict(type="str", required=True),
        epoch_id=dict(type="str", default=P.DEFAULT_EPOCH_ID),
        context_id=dict(type="str", default=P.DEFAULT_CONTEXT_ID),
        check_context=dict(type="bool", default=True),
        cross_check_endpoint=dict(type="str"),
    )
    argument_spec.update(G.CONNECTION_ARGUMENT_SPEC)
    argument_spec.update(K.PORT_FORWARD_ARGUMENT_SPEC)
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True,
                              mutually_exclusive=[("cross_check_endpoint", "pod")])
    p = module.params
    try:
        prss.check_ids(epoch_id=p["epoch_id"], context_id=p["context_id"])
        if not p["bucket"].strip():
            raise G.KmsInputError("bucket: must not be empty")
        if p["prefix"] != p["prefix"].strip("/ ") and p["prefix"] != "":
            raise G.KmsInputError("prefix: must not start or end with '/' or spaces, got %r" % p["prefix"])
        tls = None
        if p["cross_check_endpoint"] or p["pod"]:
            if not (G.HAS_GRPC and P.HAS_PROTOBUF):
                module.fail_json(msg="cross_check_endpoint and pod need the grpcio and protobuf Python packages")
            tls = G.TlsSettings.from_params(p)
        if p["cross_check_endpoint"]:
            G.normalize_endpoints([p["cross_check_endpoint"]], field="cross_check_endpoint")
        if p["pod"]:
            problem = K.check_params(p)
            if problem:
                raise G.KmsInputError(problem)
    except G.KmsInputError as exc:
        module.fail_json(msg=str(exc))

    client = aws_retry.client(module, "s3")

    def head_object(**kwargs):
        return client.head_object(aws_retry=True, **kwargs)

    def head_bucket(**kwargs):
        return client.head_bucket(aws_retry=True, **kwargs)

    try:
        result = prss.validate_vault(head_object, head_bucket, p["bucket"], p["prefix"], p["epoch_id"],
                                     p["context_id"], p["check_context"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg="cannot read s3://%s/%s" % (p["bucket"], p["prefix"]))

    check = None
    if p["cross_check_endpoint"]:
        check = prss.cross_check(p["cross_check_endpoint"], p["epoch_id"], p["timeout"], tls)
    elif p["pod"]:
        label = "%s/%s:%d" % (p["namespace"], p["pod"], p["port"])
        try:
            forward = K.open_forward(p)
        except K.PortForwardError as exc:
            check = {"endpoint": label, "state": "unreachable", "code": None, "error": str(exc)}
        else:
            try:
                ep = K.endpoint(forward, p["party_id"])
                check = prss.cross_check(ep, p["epoch_id"], p["timeout"], tls)
            finally:
                forward.close()
            check["endpoint"] = label
            check["error"] = (check["error"] or "").replace(ep["address"], label)
    if check is not None:
        check["consistent"], check["note"] = prss.node_agrees(result["initialized"], check["state"])
        result["cross_check"] = check
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
