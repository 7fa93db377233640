#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kms_tls_identity
short_description: Ensure a party's TLS identity Secret exists (tls_mode manual), never replacing it
version_added: 0.1.0
description:
  - For C([threshold.tls.manual]) a party presents one self-signed certificate on its peer port,
    and its peers trust that same certificate as the party's CA. This module keeps it in a
    Kubernetes Secret of type C(kubernetes.io/tls) (keys C(tls.crt) and C(tls.key)).
  - When the Secret does not exist, generates an EC key (O(curve)) and a self-signed certificate
    with subject CN = O(common_name) (the party's C(mpc_identity), the name peers check), the same
    name in the subjectAltName (plus O(dns_names), and C(*.<common_name>) when O(wildcard=true)),
    C(CA:FALSE) and key usages digitalSignature, keyCertSign and cRLSign, then creates the Secret.
    This is what the upstream chart's C(kms-gen-tls-certs --force-self-signed-non-ca) step makes,
    done once and kept.
  - When the Secret exists it is never replaced or changed, whatever the options say (it is key
    material). The module reads it back and returns the certificate. A Secret without C(tls.crt)
    / C(tls.key), or whose certificate is not for O(common_name), fails naming the cause.
  - The private key is never returned, logged or written anywhere but into the Secret.
  - In check mode nothing is generated or created; a missing Secret reports RV(changed=true)
    and RV(would_create=true).
options:
  namespace:
    description: Namespace of the Secret (the node's namespace; it must exist).
    type: str
    required: true
  name:
    description: Name of the Secret (the StatefulSet mounts it as the node's TLS certificate and key).
    type: str
    default: kms-core-tls
  common_name:
    description: The party's C(mpc_identity) (a lower-case DNS name); subject CN and first DNS name.
    type: str
    required: true
  dns_names:
    description: More subjectAltName DNS names, used only when the Secret is created.
    type: list
    elements: str
    default: []
  wildcard:
    description: Also put C(*.<common_name>) in the subjectAltName (only when the Secret is created).
    type: bool
    default: false
  curve:
    description: Elliptic curve of a new key (ECDSA with SHA-256 for P-256, SHA-384 for P-384).
    type: str
    choices: [P-256, P-384]
    default: P-256
  validity_days:
    description: Validity of a new certificate, in days.
    type: int
    default: 3650
  labels:
    description: Labels of a new Secret.
    type: dict
    default: {}
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
requirements:
  - kubernetes >= 24.2.0
  - cryptography
author:
  - threshold_kms.mpc_party contributors
"""

EXAMPLES = r"""
- name: Ensure party 3's TLS identity exists
  threshold_kms.mpc_party.kms_tls_identity:
    kubeconfig: /home/ops/.kube/party3.yaml
    namespace: kms
    name: kms-core-tls
    common_name: p3.kms.example.org
  register: tls_identity

- name: Publish the certificate to the other parties (never the key)
  ansible.builtin.copy:
    content: "{{ tls_identity.certificate }}"
    dest: /srv/handover/party3-ca.pem
    mode: "0644"
"""

RETURN = r"""
certificate:
  description: The certificate PEM in the Secret (empty in check mode when it would be created).
  returned: always
  type: str
created:
  description: Whether this run created the Secret.
  returned: always
  type: bool
would_create:
  description: Whether the Secret is missing (a run out of check mode creates it).
  returned: always
  type: bool
secret:
  description: Namespace and name of the Secret.
  returned: always
  type: dict
  sample: {namespace: kms, name: kms-core-tls}
subject_cn:
  description: Subject CN of the certificate.
  returned: when a certificate exists
  type: str
dns_names:
  description: subjectAltName DNS names of the certificate.
  returned: when a certificate exists
  type: list
  elements: str
not_before:
  description: Start of validity (UTC, ISO 8601).
  returned: when a certificate exists
  type: str
not_after:
  description: End of validity (UTC, ISO 8601).
  returned: when a certificate exists
  type: str
sha256_fingerprint:
  description: SHA-256 fingerprint of the certificate (DER), lower-case hex.
  returned: when a certificate exists
  type: str
curve:
  description: Curve of the certificate's public key (P-256, P-384 or other).
  returned: when a certificate exists
  type: str
"""

import copy

from ansible_collections.kubernetes.core.plugins.module_utils.ansiblemodule import AnsibleModule
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import tls_identity

try:
    from kubernetes.dynamic.exceptions import ConflictError, DynamicApiError, NotFoundError
except ImportError:  # pragma: no cover - AnsibleK8SModule reports the missing library
    pass


def argspec():
    args = copy.deepcopy(AUTH_ARG_SPEC)
    args.update(
        namespace=dict(type="str", required=True),
        name=dict(type="str", default="kms-core-tls"),
        common_name=dict(type="str", required=True),
        dns_names=dict(type="list", elements="str", default=[]),
        wildcard=dict(type="bool", default=False),
        curve=dict(type="str", choices=list(tls_identity.CURVES), default="P-256"),
        validity_days=dict(type="int", default=3650),
        labels=dict(type="dict", default={}),
    )
    return args


def _read(secrets, namespace, name):
    try:
        return secrets.get(name=name, namespace=namespace).to_dict()
    except NotFoundError:
        return None


def _existing_result(module, secret, namespace, name):
    try:
        pem = tls_identity.certificate_from_secret(secret, namespace, name)
        info = tls_identity.describe(pem)
        tls_identity.check_existing(info, module.params["common_name"], namespace, name)
    except tls_identity.IdentityError as exc:
        module.fail_json(msg=str(exc))
    return dict(info, certificate=pem)


def run(module, client):
    p = module.params
    namespace, name = p["namespace"], p["name"]
    result = dict(changed=False, created=False, would_create=False, certificate="",
                  secret=dict(namespace=namespace, name=name))
    errs = tls_identity.check_inputs(p["common_name"], p["dns_names"], p["curve"], p["validity_days"])
    if errs:
        module.fail_json(msg="; ".join(errs), **result)
    secrets = client.resource("Secret", "v1")
    try:
        secret = _read(secrets, namespace, name)
        if secret is not None:
            result.update(_existing_result(module, secret, namespace, name))
            module.exit_json(**result)
        result.update(changed=True, would_create=True)
        if module.check_mode:
            module.exit_json(**result)
        cert_pem, key_pem = tls_identity.generate(p["common_name"], p["dns_names"], p["wildcard"], p["curve"],
                                                  p["validity_days"])
        body = tls_identity.secret_manifest(namespace, name, cert_pem, key_pem, p["labels"])
        del key_pem
        try:
            secrets.create(body=body, namespace=namespace)
        except ConflictError:
            # Created by someone else between the read and the create: theirs is kept, ours dropped.
            result.update(changed=False, would_create=False)
            result.update(_existing_result(module, _read(secrets, namespace, name) or {}, namespace, name))
            module.exit_json(**result)
        result["created"] = True
        result.update(tls_identity.describe(cert_pem), certificate=cert_pem)
    except NotFoundError as exc:
        module.fail_json(msg="Secret %s/%s: the namespace does not exist or the API has no v1 Secrets (%s)"
                         % (namespace, name, exc.summary()), **result)
    except DynamicApiError as exc:
        module.fail_json(msg="Secret %s/%s: the Kubernetes API refused the request: %s"
                         % (namespace, name, exc.summary()), status=exc.status, **result)
    module.exit_json(**result)


def main():
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=argspec(), supports_check_mode=True)
    if not tls_identity.HAS_CRYPTOGRAPHY:
        module.fail_json(msg="kms_tls_identity needs the Python library cryptography on the controller")
    try:
        client = get_api_client(module)
        run(module, client)
    except CoreException as exc:
        module.fail_from_exception(exc)


if __name__ == "__main__":
    main()
