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
  - Optionally cross-checks with the node itself through C(GetEpochResult) on its client
    endpoint (O(cross_check_endpoint)) and says whether both agree.
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
    type: str
  timeout:
    description: Seconds allowed for the cross-check call.
    type: float
    default: 5.0
extends_documentation_fragment:
  - threshold_kms.mpc_party.kms_tls
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
requirements:
  - boto3
  - grpcio (only for O(cross_check_endpoint))
  - protobuf (only for O(cross_check_endpoint))
seealso:
  - module: threshold_kms.mpc_party.prss_epoch
"""

EXAMPLES = r"""
- name: Is party 1 initialised?
  threshold_kms.mpc_party.prss_validate:
    bucket: kms-mainnet-p1-private
    prefix: PRIV-p1
  register: prss

- name: Against the sandbox's AWS stand-in, with the node's own view
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
    - With O(cross_check_endpoint) - the node's answer to C(GetEpochResult) (C(state) done,
      running, not_found, failed, unreachable, error; C(error)) and C(consistent), true when
      the node reports done exactly when the vault is initialised.
  returned: when O(cross_check_endpoint) is set
  type: dict
  sample: {endpoint: "127.0.0.1:50101", state: done, code: OK, error: "", consistent: true}
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
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    try:
        prss.check_ids(epoch_id=p["epoch_id"], context_id=p["context_id"])
        if not p["bucket"].strip():
            raise G.KmsInputError("bucket: must not be empty")
        if p["prefix"] != p["prefix"].strip("/ ") and p["prefix"] != "":
            raise G.KmsInputError("prefix: must not start or end with '/' or spaces, got %r" % p["prefix"])
        tls = None
        if p["cross_check_endpoint"]:
            if not (G.HAS_GRPC and P.HAS_PROTOBUF):
                module.fail_json(msg="cross_check_endpoint needs the grpcio and protobuf Python packages")
            tls = G.TlsSettings.from_params(p)
            G.normalize_endpoints([p["cross_check_endpoint"]], field="cross_check_endpoint")
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

    if p["cross_check_endpoint"]:
        check = prss.cross_check(p["cross_check_endpoint"], p["epoch_id"], p["timeout"], tls)
        check["consistent"] = (check["state"] == "done") == result["initialized"]
        result["cross_check"] = check
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
