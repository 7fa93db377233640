#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: peer_ca_info
short_description: Fetch a party's published CA certificate and check it
version_added: 0.1.0
description:
  - Reads the CA certificate a party publishes in its public vault, or takes it from O(pem).
  - O(tls_mode=manual) (the party's TLS identity certificate) reads
    C(<public_vault_url>/<prefix>/TlsIdentity/<object_name>).
  - O(tls_mode=auto) (the CA the KMS server's key generation writes under its signing key id, which
    a peer cannot know in advance) lists C(<prefix>/CACert/) anonymously (S3 ListObjectsV2) and
    reads its only object, which must be named by a 64-hex-digit id.
  - Checks it is exactly one PEM certificate (no private key), that its subject CN equals the
    party's C(mpc_identity) (O(expected_cn)), and that it is valid now with at least
    O(min_days_valid) days left. Fails naming the party and the broken rule.
  - A CA that is not there (not published yet, or not readable anonymously) fails with
    RV(missing=true) and the RV(url) checked, so that a caller can tell it from a bad certificate
    (or an ambiguous C(CACert/) folder, which fails with RV(missing=false)).
  - Read only; runs the same in check mode.
options:
  party_id:
    description: The party whose CA this is (used in the object key and in messages).
    type: int
    required: true
  expected_cn:
    description: The party's C(mpc_identity); the certificate's subject CN must equal it.
    type: str
    required: true
  public_vault_url:
    description: Base URL of the party's public vault (its C(public_vault_url) in the network definition).
    type: str
  tls_mode:
    description:
      - Where the party publishes its CA; the network's C(tls_mode).
      - V(manual) reads C(<prefix>/TlsIdentity/<object_name>); V(auto) discovers C(<prefix>/CACert/<id>).
    type: str
    choices: [manual, auto]
    default: manual
  object_name:
    description: Object name under C(<prefix>/TlsIdentity/) (O(tls_mode=manual)). Every party of a network uses the same one.
    type: str
    default: tls.crt
  prefix:
    description: The party's public vault prefix, when it is not the convention C(PUB-p<party_id>).
    type: str
  pem:
    description: The certificate itself, instead of fetching it (a network entry's C(ca_certificate.pem)).
    type: str
  min_days_valid:
    description: Fail when the certificate expires in fewer days than this.
    type: int
    default: 0
  timeout:
    description: HTTP timeout in seconds.
    type: int
    default: 15
  validate_certs:
    description: Verify the TLS certificate of an C(https) vault URL.
    type: bool
    default: true
  ca_path:
    description: A PEM bundle of the certificate authorities to trust for an C(https) vault URL (default the system's).
    type: path
requirements:
  - cryptography (an ansible-core dependency)
author:
  - threshold_kms.mpc_party contributors
"""

EXAMPLES = r"""
- name: Fetch and check party 2's CA
  threshold_kms.mpc_party.peer_ca_info:
    party_id: 2
    expected_cn: party2.mainnet.kms.example
    public_vault_url: https://kms-mainnet-p2-public.s3.eu-west-1.amazonaws.com
    tls_mode: auto
    min_days_valid: 14
  register: __privatelink_peer_ca

- name: Check a CA given inline in the network definition
  threshold_kms.mpc_party.peer_ca_info:
    party_id: 3
    expected_cn: party3.mainnet.kms.example
    pem: "{{ lookup('ansible.builtin.file', 'files/party3-ca.pem') }}"
"""

RETURN = r"""
pem:
  description: The certificate, re-encoded as PEM.
  returned: success
  type: str
url:
  description:
    - Where the certificate was read (V(null) when given with O(pem)).
    - On failure with RV(missing=true), the object that was checked.
  returned: always
  type: str
missing:
  description:
    - V(true) only on a failure because no readable CA certificate is there (the party has not
      published it yet, or its public vault refuses anonymous reads), as opposed to a certificate
      that breaks a rule. A caller may wait for it, or report the party as not published yet.
  returned: always
  type: bool
subject_cn:
  description: Subject common name (equals O(expected_cn), ignoring case).
  returned: success
  type: str
subject:
  description: Full subject (RFC 4514).
  returned: success
  type: str
issuer:
  description: Issuer (RFC 4514).
  returned: success
  type: str
not_before:
  description: Start of validity (ISO 8601, UTC).
  returned: success
  type: str
not_after:
  description: End of validity (ISO 8601, UTC).
  returned: success
  type: str
days_left:
  description: Whole days until the end of validity.
  returned: success
  type: int
is_ca:
  description: The basicConstraints CA flag (V(null) when the extension is absent).
  returned: success
  type: bool
fingerprint_sha256:
  description: SHA-256 fingerprint of the DER certificate, hex.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.six.moves.urllib.error import HTTPError
from ansible.module_utils.six.moves.urllib.error import URLError
from ansible.module_utils.urls import open_url

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import peer_ca


def _get(module, url):
    """(status, body) of a GET; body None on 403/404 (S3 answers 403 for a missing object when
    the reader may not list the bucket, so both mean "not readable here")."""
    try:
        response = open_url(url, method="GET", timeout=module.params["timeout"],
                            validate_certs=module.params["validate_certs"], ca_path=module.params["ca_path"])
        return response.getcode(), response.read()
    except HTTPError as e:
        if e.code in (403, 404):
            return e.code, None
        raise peer_ca.PeerCaError("GET %s: HTTP %s %s" % (url, e.code, e.reason))
    except (URLError, OSError) as e:
        raise peer_ca.PeerCaError("GET %s: %s" % (url, getattr(e, "reason", e)))


def _why(status):
    return "HTTP %d%s" % (status, " (missing, or the bucket does not allow public reads)" if status == 403 else "")


def fetch_manual(module, base):
    """(url, body) of the party's TLS identity certificate."""
    p = module.params
    url = peer_ca.ca_url(base, p["party_id"], p["object_name"], p["prefix"])
    status, body = _get(module, url)
    if body is None:
        raise peer_ca.PeerCaMissing("nothing at %s, %s: the party has not published its TLS identity "
                                    "certificate yet" % (url, _why(status)), url)
    return url, body


def fetch_auto(module, base):
    """(url, body) of the CA the party's key generation wrote: the only object of its CACert/ folder."""
    p = module.params
    folder = peer_ca.ca_folder(p["party_id"], p["prefix"], "auto")
    listing_url = peer_ca.list_url(base, p["party_id"], p["prefix"])
    status, listing = _get(module, listing_url)
    if listing is None:
        raise peer_ca.PeerCaMissing("the folder %s cannot be listed at %s, %s: the party has not published its "
                                    "CA yet, or its public vault does not allow the anonymous listing of its "
                                    "public prefix" % (folder, listing_url, _why(status)), listing_url)
    try:
        key = peer_ca.pick_keygen_ca(peer_ca.keys_from_listing(listing), folder)
    except peer_ca.PeerCaMissing as e:
        raise peer_ca.PeerCaMissing("%s (listed at %s)" % (e, listing_url), listing_url)
    url = "%s/%s" % (base, key)
    status, body = _get(module, url)
    if body is None:
        raise peer_ca.PeerCaMissing("GET %s: %s although the folder lists it (the bucket does not allow "
                                    "public reads?)" % (url, _why(status)), url)
    return url, body


def main():
    module = AnsibleModule(
        argument_spec=dict(
            party_id=dict(type="int", required=True),
            expected_cn=dict(type="str", required=True),
            public_vault_url=dict(type="str"),
            tls_mode=dict(type="str", choices=list(peer_ca.TLS_MODES), default="manual"),
            object_name=dict(type="str", default=peer_ca.DEFAULT_OBJECT_NAME),
            prefix=dict(type="str"),
            pem=dict(type="str"),
            min_days_valid=dict(type="int", default=0),
            timeout=dict(type="int", default=15),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
        ),
        required_one_of=[["public_vault_url", "pem"]],
        mutually_exclusive=[["public_vault_url", "pem"]],
        supports_check_mode=True,
    )
    if not peer_ca.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=str(peer_ca.CRYPTOGRAPHY_IMPORT_ERROR))

    party = module.params["party_id"]
    url = None
    try:
        if module.params["pem"] is not None:
            body = module.params["pem"]
        else:
            base = module.params["public_vault_url"].rstrip("/")
            fetch = fetch_auto if module.params["tls_mode"] == "auto" else fetch_manual
            url, body = fetch(module, base)
        info = peer_ca.check_ca(body, module.params["expected_cn"], min_days_valid=module.params["min_days_valid"])
    except peer_ca.PeerCaMissing as e:
        module.fail_json(msg="party %s CA certificate: %s" % (party, e), party_id=party, url=e.url, missing=True)
    except peer_ca.PeerCaError as e:
        module.fail_json(msg="party %s CA certificate%s: %s" % (party, " (%s)" % url if url else "", e),
                         party_id=party, url=url, missing=False)
    module.exit_json(changed=False, url=url, missing=False, **info)


if __name__ == "__main__":
    main()
