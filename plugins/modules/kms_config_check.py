#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kms_config_check
short_description: Strictly check a threshold KMS server configuration or key-generation configuration
version_added: 0.1.0
description:
  - Parses a KMS server configuration (C(threshold.toml), release line 0.15) or the
    key-generation configuration read by C(kms-gen-keys), and applies the rules the server
    enforces when it reads the file, so a configuration it would refuse fails the run before
    anything is applied.
  - Server rules - unknown keys refused in every section except C([rate_limiter_conf]) and
    C([telemetry.batch]) (ignored there, with a warning); removed keys (C(storage_cache_size));
    required keys; types and minima (rate limits at least 1, C(core_to_core_net) minima such as
    C(message_limit) >= 1 and C(max_en_decode_message_size) >= 1024);
    n = 3t + 1 between the number of C([[threshold.peers]]) and C(threshold.threshold);
    party ids in 1..n; C(my_id) an integer or a string holding one (a C(${VAR}) placeholder is
    left to the environment); C(decryption_mode) values; vault storage exactly one of C(s3),
    C(file), C(ram); keychain exactly one of C(aws_kms), C(secret_sharing); a CA certificate for
    every peer when TLS is on; C([keygen]) modes mutually exclusive.
  - Policy rules of the collection (reported with "(policy)"; O(policy=false) leaves them out) -
    explicit, distinct vault prefixes not starting with another vault's type name; unique peers;
    C(my_id) in the peer list; no private key inline; trusted PCRs of 96 lowercase hex; a backup
    vault with a keychain when the private vault has one (otherwise the server writes backups in
    plaintext); C(aws.role_arn) an IAM role ARN; C(mock_enclave) never true on mainnet.
  - What the server accepts but only warns about (C(my_id) > n, C(num_sessions_preproc) < 2,
    ignored keys) is returned in RV(warnings) and shown as Ansible warnings.
  - "Every problem is reported at once, each as C(<key path>: <rule>)."
  - Reads only; never changes anything, so it runs in check mode too.
options:
  content:
    description: The TOML text to check. Mutually exclusive with O(path).
    type: str
  path:
    description: A TOML file to check (on the host running the module). Mutually exclusive with O(content).
    type: path
  environment:
    description:
      - The network's environment. V(mainnet) forbids C(mock_enclave = true).
    type: str
    choices: [testnet, mainnet]
  require_threshold:
    description:
      - Require the C([threshold]), C([public_vault]) and C([private_vault]) sections a party of a
        threshold network needs. Set to V(false) to check a centralised configuration.
    type: bool
    default: true
  kind:
    description:
      - V(server) checks a server configuration (read by C(kms-server --config-file));
        V(keygen) checks a key-generation configuration (read by C(kms-gen-keys --config-file)) -
        C([keygen]), C([aws]), the vaults, C([enclave_bootstrap]) and a C([threshold]) holding
        only C(my_id), C(tls_subject), C(tls_wildcard) and C(peers).
    type: str
    choices: [server, keygen]
    default: server
  policy:
    description:
      - Apply the collection's policy rules on top of the server's. V(false) gives exactly the
        verdict of the server.
    type: bool
    default: true
notes:
  - The configuration may hold PEM certificates but never private keys in this collection;
    the module returns only a summary, not the content.
author:
  - threshold_kms.mpc_party contributors
"""

EXAMPLES = r"""
- name: Check the rendered configuration before publishing it
  threshold_kms.mpc_party.kms_config_check:
    content: "{{ lookup('ansible.builtin.file', 'threshold.toml') }}"
    environment: testnet

- name: Check a file on disk
  threshold_kms.mpc_party.kms_config_check:
    path: /srv/render/party1/threshold.toml
    environment: mainnet
  register: __kms_config_check

- name: Check a key-generation configuration
  threshold_kms.mpc_party.kms_config_check:
    path: /srv/render/party1/keygen.toml
    kind: keygen
"""

RETURN = r"""
summary:
  description: What the valid configuration describes.
  returned: success
  type: dict
  contains:
    n:
      description: Number of peers in C([[threshold.peers]]).
      type: int
    t:
      description: C(threshold.threshold).
      type: int
    my_id:
      description: C(threshold.my_id).
      type: int
    client_port:
      description: C(service.listen_port).
      type: int
    peer_port:
      description: C(threshold.listen_port).
      type: int
    tls:
      description: C(manual), C(auto) or C(none).
      type: str
    decryption_mode:
      description: C(threshold.decryption_mode).
      type: str
    sections:
      description: Tables present at the top level.
      type: list
      elements: str
    vaults:
      description: Kind, location and prefix of each vault's storage.
      type: dict
    keychain:
      description: Whether the private vault uses the AWS KMS keychain.
      type: bool
    keychains:
      description: Keychain of each vault present (C(aws_kms), C(secret_sharing) or C(none)).
      type: dict
    kind:
      description: C(server) or C(keygen).
      type: str
    role_arn:
      description: Whether C(aws.role_arn) is set.
      type: bool
    enclave_bootstrap:
      description: Whether C([enclave_bootstrap]) is present.
      type: bool
  sample:
    n: 4
    t: 1
    my_id: 2
    client_port: 50102
    peer_port: 50002
    tls: none
    decryption_mode: NoiseFloodSmall
    sections: [aws, internal_config, private_vault, public_vault, rate_limiter_conf, service, telemetry, threshold]
    vaults:
      public_vault: {kind: s3, location: kms-sandbox-p2-public, prefix: PUB-p2}
    keychain: false
    keychains: {public_vault: none, private_vault: none}
    kind: server
    role_arn: false
    enclave_bootstrap: false
warnings_found:
  description: "What the server accepts but warns about, or ignores, one C(<key path>: <rule>) line each."
  returned: always
  type: list
  elements: str
  sample:
    - "telemetry.batch.export_timeout_ms: unknown key; the server ignores it in [telemetry.batch]"
errors:
  description: "Every problem found, one C(<key path>: <rule>) line each."
  returned: failure
  type: list
  elements: str
  sample:
    - "threshold.peers: the server requires n = 3t + 1 peers: threshold = 2 needs 7 peers, got n = 4 (n = 4 fits threshold = 1)"
    - "service.listen_adress: unknown key; the server rejects it (allowed in [service]: grpc_max_message_size, listen_address, ...)"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.kms_config_schema import (
    KmsConfigError,
    summarize,
    validate_text,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            content=dict(type="str"),
            path=dict(type="path"),
            environment=dict(type="str", choices=["testnet", "mainnet"]),
            require_threshold=dict(type="bool", default=True),
            kind=dict(type="str", default="server", choices=["server", "keygen"]),
            policy=dict(type="bool", default=True),
        ),
        mutually_exclusive=[("content", "path")],
        required_one_of=[("content", "path")],
        supports_check_mode=True,
    )
    source = "content"
    text = module.params["content"]
    if module.params["path"] is not None:
        source = module.params["path"]
        try:
            with open(module.params["path"], "r", encoding="utf-8") as handle:
                text = handle.read()
        except (IOError, OSError) as exc:
            module.fail_json(msg="Cannot read the configuration %s: %s" % (source, exc), errors=["path: %s" % exc])
    warnings = []
    try:
        doc = validate_text(text, environment=module.params["environment"],
                            require_threshold=module.params["require_threshold"],
                            kind=module.params["kind"], policy=module.params["policy"], warnings=warnings)
    except KmsConfigError as exc:
        module.fail_json(
            msg="The KMS %s configuration (%s) breaks %d rule(s):\n- %s"
            % (module.params["kind"], source, len(exc.errors), "\n- ".join(exc.errors)),
            errors=exc.errors, warnings_found=warnings,
        )
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, summary=summarize(doc), warnings_found=warnings)


if __name__ == "__main__":
    main()
