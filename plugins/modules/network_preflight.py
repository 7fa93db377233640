#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: network_preflight
short_description: Validate a threshold KMS network definition and one party's variables
version_added: 0.1.0
description:
  - Checks the network definition shared by all parties and the deploying party's own
    variables against the rules the KMS server and AWS enforce, before any cloud call.
  - Every broken rule is reported at once, each naming the field and the rule.
  - Returns the normalised network as the fact-ready dictionary C(mpc) used by every role.
  - Makes no network call; safe in check mode.
options:
  network:
    description: The network definition (C(mpc_network)); see docs/architecture.md.
    type: dict
    required: true
  party:
    description:
      - The deploying party's own variables C(mpc_party_id), C(mpc_aws_region),
        C(mpc_cluster_name), C(mpc_namespace), C(mpc_private_bucket), C(mpc_public_bucket),
        C(mpc_backup_bucket), C(mpc_vault_prefixes), C(mpc_aws_endpoint_url), C(mpc_kube_api_server),
        C(mpc_aws_connect_timeout), C(mpc_aws_read_timeout).
    type: dict
    required: true
author:
  - threshold_kms.mpc_party contributors
"""

EXAMPLES = r"""
- name: Validate the network before anything else
  threshold_kms.mpc_party.network_preflight:
    network: "{{ mpc_network }}"
    party:
      mpc_party_id: "{{ mpc_party_id }}"
      mpc_aws_region: "{{ mpc_aws_region }}"
      mpc_cluster_name: "{{ mpc_cluster_name }}"
      mpc_private_bucket: "{{ mpc_private_bucket }}"
      mpc_public_bucket: "{{ mpc_public_bucket }}"
  register: __preflight_result
"""

RETURN = r"""
mpc:
  description: Normalised network and party facts.
  returned: success
  type: dict
  contains:
    n: {description: Number of parties., type: int}
    t: {description: Threshold., type: int}
    party_id: {description: This party's id., type: int}
    party: {description: This party's network entry (with defaults and prefixes)., type: dict}
    peers: {description: The other parties' entries., type: list}
    buckets: {description: private/public/backup bucket names., type: dict}
    prefixes: {description: public/private/backup vault prefixes., type: dict}
    trusted_pcr0: {description: PCR0 values of every trusted enclave release., type: list}
errors:
  description: Every rule the input breaks, one line each (on failure).
  returned: failure
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.network_model import NetworkError, validate


def main():
    module = AnsibleModule(
        argument_spec=dict(network=dict(type="dict", required=True), party=dict(type="dict", required=True)),
        supports_check_mode=True,
    )
    try:
        mpc = validate(module.params["network"], module.params["party"])
    except NetworkError as exc:
        module.fail_json(
            msg="Preflight: the network definition or party variables break %d rule(s):\n- %s"
            % (len(exc.errors), "\n- ".join(exc.errors)),
            errors=exc.errors,
        )
    module.exit_json(changed=False, mpc=mpc)


if __name__ == "__main__":
    main()
