# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""A party's TLS identity for ``[threshold.tls.manual]``: one self-signed certificate and its key.

The certificate is both what the node presents on the peer port and what its peers trust as the
party's CA (``[[threshold.peers]] tls_cert``), so it is self-signed, not a CA (``CA:FALSE``: the
TLS stack refuses a CA certificate presented as an end entity), with subject CN = the party's
``mpc_identity`` (the name peers check) and that name in the subjectAltName. Pure functions;
the module kms_tls_identity stores the result in a Kubernetes Secret.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import datetime
import re

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - reported by the module
    HAS_CRYPTOGRAPHY = False

CURVES = ("P-256", "P-384")
CERT_KEY = "tls.crt"
KEY_KEY = "tls.key"
_DNS_RE = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


class IdentityError(Exception):
    """Bad input or an unusable existing Secret; the message names the field and the rule."""


def _curve(name):
    return {"P-256": (ec.SECP256R1(), hashes.SHA256()), "P-384": (ec.SECP384R1(), hashes.SHA384())}[name]


def dns_names(common_name, extra=None, wildcard=False):
    """The subjectAltName DNS names: the CN first, its wildcard when asked, then the extra names."""
    names = [common_name] + (["*." + common_name] if wildcard else []) + list(extra or [])
    out = []
    for name in names:
        if name not in out:
            out.append(name)
    return out


def check_inputs(common_name, extra_dns_names, curve, validity_days):
    """Every rule the inputs break, each naming its option (empty when they are fine)."""
    errs = []
    if not isinstance(common_name, str) or len(common_name) > 64 or not _DNS_RE.match(common_name or "") \
            or common_name.startswith("*."):
        errs.append("common_name: must be a lower-case DNS name of at most 64 characters, the party's "
                    "mpc_identity (got %r)" % (common_name,))
    for name in extra_dns_names or []:
        if not isinstance(name, str) or len(name) > 253 or not _DNS_RE.match(name):
            errs.append("dns_names: %r is not a lower-case DNS name (a leading '*.' is allowed)" % (name,))
    if curve not in CURVES:
        errs.append("curve: must be one of %s (got %r)" % (", ".join(CURVES), curve))
    if not isinstance(validity_days, int) or not 1 <= validity_days <= 36500:
        errs.append("validity_days: must be an integer in 1..36500 (got %r)" % (validity_days,))
    return errs


def generate(common_name, extra_dns_names=None, wildcard=False, curve="P-256", validity_days=3650, now=None):
    """A new key and its self-signed certificate, as (certificate PEM, key PEM) text."""
    errs = check_inputs(common_name, extra_dns_names, curve, validity_days)
    if errs:
        raise IdentityError("; ".join(errs))
    curve_obj, digest = _curve(curve)
    key = ec.generate_private_key(curve_obj)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=validity_days))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(n) for n in dns_names(common_name, extra_dns_names, wildcard)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    cert = builder.sign(key, digest)
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert_pem, key_pem


def describe(cert_pem):
    """What a caller may log about a certificate (never anything about its key)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError as exc:
        raise IdentityError("%s: not a PEM certificate (%s)" % (CERT_KEY, exc))
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        sans = []
    public = cert.public_key()
    return {
        "subject_cn": cns[0].value if cns else "",
        "dns_names": list(sans),
        "not_before": cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sha256_fingerprint": cert.fingerprint(hashes.SHA256()).hex(),
        "curve": {"secp256r1": "P-256", "secp384r1": "P-384"}.get(getattr(getattr(public, "curve", None), "name", ""), "other"),
    }


def secret_manifest(namespace, name, cert_pem, key_pem, labels=None):
    """The Secret (type kubernetes.io/tls) holding the identity."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
        "data": {
            CERT_KEY: base64.b64encode(cert_pem.encode()).decode(),
            KEY_KEY: base64.b64encode(key_pem.encode()).decode(),
        },
    }


def certificate_from_secret(secret, namespace, name):
    """The certificate PEM an existing Secret holds; an IdentityError when it holds no usable pair."""
    data = secret.get("data") or {}
    missing = [k for k in (CERT_KEY, KEY_KEY) if not data.get(k)]
    if missing:
        raise IdentityError(
            "Secret %s/%s exists but has no %s: it is not a TLS identity this module can use, and it is "
            "never overwritten (delete it yourself if it may go, or set another name)"
            % (namespace, name, " / ".join(missing)))
    try:
        return base64.b64decode(data[CERT_KEY]).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise IdentityError("Secret %s/%s: %s is not base64 PEM text (%s)" % (namespace, name, CERT_KEY, exc))


def check_existing(info, common_name, namespace, name):
    """An existing certificate must carry the party's identity; it is never replaced."""
    if info["subject_cn"] != common_name or common_name not in info["dns_names"]:
        raise IdentityError(
            "Secret %s/%s holds a certificate for CN %r (DNS names %s), not for the party's mpc_identity %r: "
            "peers would refuse it. It is key material and is never replaced by this module; delete the "
            "Secret yourself to have a new identity generated (its peers must then get the new certificate)."
            % (namespace, name, info["subject_cn"], info["dns_names"], common_name))
