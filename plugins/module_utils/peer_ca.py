# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Peer CA certificates: where a party publishes its CA, and the checks a peer applies to it.

Each party publishes the CA certificate of its peer-to-peer TLS identity in its public vault
(docs/privatelink.md, "The first start of a network"):

* tls_mode ``auto``: the KMS server's key generation (``kms-gen-keys``) writes it under
  ``<PUB>/CACert/<signing key id>``, an id (64 lowercase hex digits) a peer cannot know in
  advance. A peer lists ``<PUB>/CACert/`` anonymously (S3 ListObjectsV2; the vault_buckets
  role allows that listing of the public prefix) and expects exactly one such object.
* tls_mode ``manual``: the party's TLS identity certificate (the Secret kms-core-tls), which
  the deploy publishes under ``<PUB>/TlsIdentity/<object name>`` (``tls.crt``): a folder of its
  own, so that it is never confused with the ``CACert/<id>`` key generation also writes.

Before a peer's CA reaches the threshold configuration it must:

* be exactly one PEM certificate (and no private key);
* have a subject CN equal to the party's ``mpc_identity`` (the server checks the same name);
* be valid now (not before its start, not after its end), with at least ``min_days_valid``
  days left.

Pure Python on top of ``cryptography`` (an ansible-core dependency); the fetch uses
ansible's ``open_url`` so proxies and CA bundles behave as in ``ansible.builtin.uri``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re
import xml.etree.ElementTree as ET

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as e:  # pragma: no cover - ansible-core requires it
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = e

PEM_CERT_RE = re.compile(r"-----BEGIN CERTIFICATE-----\s+[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")
PRIVATE_KEY_MARK = "PRIVATE KEY-----"
CA_FOLDER = "CACert"  # written by the server's key generation (tls_mode auto)
TLS_IDENTITY_FOLDER = "TlsIdentity"  # the party's TLS identity certificate (tls_mode manual)
DEFAULT_OBJECT_NAME = "tls.crt"
REQUEST_ID_RE = re.compile(r"^[0-9a-f]{64}$")
TLS_MODES = ("manual", "auto")


class PeerCaError(Exception):
    """The certificate (or its location) breaks a rule; the message says which."""


class PeerCaMissing(PeerCaError):
    """No readable CA certificate where the party publishes it (not published yet, or the
    public vault does not allow anonymous reads). ``url`` is the object that was checked.
    Callers may wait for it, or report it, rather than treat it as a broken certificate."""

    def __init__(self, message, url=None):
        super(PeerCaMissing, self).__init__(message)
        self.url = url


def public_prefix(party_id):
    """The public vault prefix of a party, fixed by the server's convention."""
    return "PUB-p%d" % int(party_id)


def ca_folder(party_id, prefix=None, tls_mode="auto"):
    """The folder of a party's public vault holding its CA: ``<PUB>/CACert/`` (auto, written by
    key generation) or ``<PUB>/TlsIdentity/`` (manual, published by the deploy)."""
    if tls_mode not in TLS_MODES:
        raise PeerCaError("tls_mode: must be one of %s (got %r)" % (", ".join(TLS_MODES), tls_mode))
    folder = CA_FOLDER if tls_mode == "auto" else TLS_IDENTITY_FOLDER
    return "%s/%s/" % (prefix or public_prefix(party_id), folder)


def ca_key(party_id, object_name=DEFAULT_OBJECT_NAME, prefix=None):
    """Object key of a party's TLS identity certificate (tls_mode manual) in its public bucket."""
    if not object_name or "/" in object_name:
        raise PeerCaError("object_name: must be a plain object name without '/' (got %r)" % (object_name,))
    return ca_folder(party_id, prefix, "manual") + object_name


def ca_url(public_vault_url, party_id, object_name=DEFAULT_OBJECT_NAME, prefix=None):
    """URL of a party's TLS identity certificate (tls_mode manual) under its public vault URL."""
    return "%s/%s" % (public_vault_url.rstrip("/"), ca_key(party_id, object_name, prefix))


def list_url(public_vault_url, party_id, prefix=None):
    """S3 ListObjectsV2 URL of the party's CACert folder (path-style and host-style URLs alike)."""
    return "%s/?list-type=2&prefix=%s" % (public_vault_url.rstrip("/"), ca_folder(party_id, prefix, "auto"))


def pick_keygen_ca(keys, folder):
    """The one key under `folder` that key generation wrote (``<folder><64 hex>``).

    Raises PeerCaMissing when there is none (not generated yet), PeerCaError when the folder
    holds anything else: several ids (keys generated twice?) or objects key generation does not
    write. Waiting would not fix those: a person must look.
    """
    objects = sorted(k for k in keys if k.startswith(folder) and not k.endswith("/"))
    if not objects:
        raise PeerCaMissing("the folder %s is empty: key generation has not run yet" % folder)
    names = [k[len(folder):] for k in objects]
    odd = [n for n in names if not REQUEST_ID_RE.match(n)]
    if odd:
        raise PeerCaError("the folder %s holds %s, which key generation does not write (it writes one "
                          "object named by the signing key id, 64 lowercase hex digits)" % (folder, ", ".join(odd)))
    if len(objects) > 1:
        raise PeerCaError("the folder %s holds %d CA certificates (%s): expected exactly one, written by the "
                          "party's key generation; the party must remove the stale one" % (folder, len(objects), ", ".join(names)))
    return objects[0]


def keys_from_listing(xml_text):
    """Object keys of an S3 ListObjectsV2 (or V1) XML response."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as e:
        raise PeerCaError("the bucket listing is not S3 XML: %s" % e)
    keys = []
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "Key" and element.text:
            keys.append(element.text)
    return keys


def _utc(cert, attr):
    value = getattr(cert, attr + "_utc", None)
    if value is None:  # cryptography < 42
        value = getattr(cert, attr).replace(tzinfo=datetime.timezone.utc)
    return value


def parse_certificate(pem_text):
    """The single certificate in `pem_text`, or PeerCaError saying why not."""
    if not HAS_CRYPTOGRAPHY:
        raise PeerCaError("the python 'cryptography' package is required: %s" % CRYPTOGRAPHY_IMPORT_ERROR)
    if isinstance(pem_text, bytes):
        try:
            pem_text = pem_text.decode("ascii")
        except UnicodeDecodeError:
            raise PeerCaError("not a PEM certificate: the content is binary (DER?) rather than ASCII PEM")
    if not isinstance(pem_text, str) or not pem_text.strip():
        raise PeerCaError("not a PEM certificate: the content is empty")
    if PRIVATE_KEY_MARK in pem_text:
        raise PeerCaError("the PEM contains a private key: a CA certificate is public, its key must never "
                          "be published or passed around")
    blocks = PEM_CERT_RE.findall(pem_text)
    if not blocks:
        raise PeerCaError("not a PEM certificate: no '-----BEGIN CERTIFICATE-----' block found")
    if len(blocks) > 1:
        raise PeerCaError("expected exactly one CA certificate, found %d PEM certificates" % len(blocks))
    try:
        return x509.load_pem_x509_certificate(blocks[0].encode("ascii"))
    except ValueError as e:
        raise PeerCaError("not a valid PEM certificate: %s" % e)


def subject_cn(cert):
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return names[0].value if names else None


def describe(cert, now=None):
    """Facts about a certificate, as plain JSON-able values."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = _utc(cert, "not_valid_before"), _utc(cert, "not_valid_after")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = None
    return {
        "subject_cn": subject_cn(cert),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial_number": format(cert.serial_number, "x"),
        "not_before": not_before.isoformat(),
        "not_after": not_after.isoformat(),
        "days_left": int((not_after - now).total_seconds() // 86400),
        "is_ca": is_ca,
        "fingerprint_sha256": cert.fingerprint(hashes.SHA256()).hex(),
        "pem": cert.public_bytes(Encoding.PEM).decode("ascii"),
    }


def check_ca(pem_text, expected_cn, now=None, min_days_valid=0):
    """Check a peer CA; return describe() of it, or raise PeerCaError naming the broken rule.

    Rules: one PEM certificate without a private key; CN == expected_cn (DNS names compare
    case-insensitively); valid at `now`; at least `min_days_valid` days left.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    cert = parse_certificate(pem_text)
    info = describe(cert, now)
    cn = info["subject_cn"]
    if cn is None:
        raise PeerCaError("the certificate has no subject CN; expected CN=%s (the party's mpc_identity)" % expected_cn)
    if cn.lower() != (expected_cn or "").lower():
        raise PeerCaError("subject CN is %r but the party's mpc_identity is %r: the server would reject "
                          "this peer's TLS identity" % (cn, expected_cn))
    not_before, not_after = _utc(cert, "not_valid_before"), _utc(cert, "not_valid_after")
    if now < not_before:
        raise PeerCaError("the certificate is not valid yet (not before %s)" % info["not_before"])
    if now > not_after:
        raise PeerCaError("the certificate expired on %s" % info["not_after"])
    if info["days_left"] < int(min_days_valid or 0):
        raise PeerCaError("the certificate expires on %s, in %d days (fewer than the %d required)"
                          % (info["not_after"], info["days_left"], int(min_days_valid)))
    return info
