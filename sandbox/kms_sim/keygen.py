"""``kms-gen-keys --config-file FILE`` for the simulator: a party's signing key and CA certificate.

Reads the key-generation configuration the real tool reads (``[keygen]`` required; the node's
``[aws]``, ``[public_vault]``, ``[private_vault]``, ``[backup_vault]``, ``[enclave_bootstrap]``;
``[threshold]`` with ``my_id`` and ``tls_subject`` for one threshold party; unknown keys
refused) and writes, like it:

* ``<PRIV>/SigningKey/<id>``: a secp256k1 private key (PKCS#8 PEM in the simulator);
* ``<PUB>/VerfKey/<id>``: its public key; ``<PUB>/VerfAddress/<id>``: an address derived from it;
* threshold mode only: ``<PUB>/CACert/<id>``: a self-signed X.509 CA certificate whose subject
  CN is the party's ``tls_subject``, signed with the signing key (ECDSA secp256k1, SHA-256).

``<id>`` is one fixed request id (the server keeps its signing material at one fixed id, derived
from a name; the simulator uses its own fixed value, ``SIGNING_KEY_ID``). An existing signing key
is never replaced unless ``[keygen] overwrite = true``: missing verification material or CA
certificate are written again from it, and the run succeeds ("already exist, skipping").

    python -m sandbox.kms_sim.keygen --config-file keygen.toml
"""
import argparse
import datetime
import hashlib
import sys

from . import config as C
from .storage import StorageError, VaultStore

SIGNING_KEY_ID = hashlib.sha256(b"kms_sim SIGNING_KEY_ID").hexdigest()
PUBLIC_FOLDERS = ("VerfKey", "VerfAddress", "CACert")

KEYGEN_CONFIG = C.Table(
    required={"keygen": C.Table(optional={"overwrite": C.Bool(), "show_existing": C.Bool(),
                                          "repopulate": C.Bool(), "deterministic": C.Bool()})},
    optional={"aws": C.AWS, "public_vault": C.VAULT, "private_vault": C.VAULT, "backup_vault": C.VAULT,
              "enclave_bootstrap": C.Table(required={"web_identity_token_port": C.PORT}),
              "mock_enclave": C.Bool(),
              "threshold": C.Table(optional={"my_id": C.Int(1, digits_string=True),
                                             "tls_subject": C.Str(pattern=r"\S", what="a non-empty subject"),
                                             "tls_wildcard": C.Bool(), "peers": C.List(C.PEER)})})


class KeygenError(Exception):
    pass


def check_keygen_config(doc):
    """Errors kms-gen-keys would give for this key-generation configuration."""
    errors = []
    KEYGEN_CONFIG.check(doc, "", errors)
    if errors:
        return errors
    modes = [m for m in ("show_existing", "repopulate", "overwrite") if doc["keygen"].get(m)]
    if len(modes) > 1:
        errors.append("keygen: %s are mutually exclusive, set at most one of them per run" % " and ".join(modes))
    kinds = C.vault_kinds(doc)
    keychain = ((doc.get("private_vault") or {}).get("keychain") or {})
    if ("s3" in kinds.values() or "aws_kms" in keychain) and "aws" not in doc:
        errors.append("aws: required when using S3 storage or an AWS KMS keychain")
    threshold = doc.get("threshold")
    if threshold is not None:
        if threshold.get("my_id") is None:
            errors.append("threshold.my_id: required when generating threshold signing keys")
        elif not (threshold.get("tls_subject") or "").strip() and _subject_from_peers(threshold) is None:
            errors.append("threshold.tls_subject: not set, and threshold.peers has no entry for party %s "
                          "to derive it from" % threshold.get("my_id"))
    return errors


def _subject_from_peers(threshold):
    my_id = int(threshold["my_id"])
    for peer in threshold.get("peers") or []:
        if int(peer["party_id"]) == my_id:
            subject = (peer.get("mpc_identity") or "").strip() or peer["address"].strip()
            return subject or None
    return None


def _tls_subject(threshold):
    return (threshold.get("tls_subject") or "").strip() or _subject_from_peers(threshold)


def _stores(doc, stores=None):
    if stores is not None:
        return stores["private"], stores["public"]
    aws = doc.get("aws") or {}
    private = C.vault_of(doc, "private_vault") or C.Vault("ram")
    public = C.vault_of(doc, "public_vault") or C.Vault("ram")
    return (VaultStore(private, aws.get("region"), aws.get("s3_endpoint")),
            VaultStore(public, aws.get("region"), aws.get("s3_endpoint")))


def _verification(key_pem):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_pem, password=None)
    public = key.public_key()
    verf = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    address = "0x" + hashlib.sha3_256(point[1:]).hexdigest()[-40:]   # keccak in the server; sha3 here
    return key, verf, address.encode("ascii")


def ca_certificate(key, subject, wildcard=False):
    """PEM of a self-signed CA certificate for ``subject``, signed by ``key`` (secp256k1)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.timezone.utc)
    dns = ["*.%s" % subject, subject] if wildcard else [subject]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def generate_keys(doc, stores=None, log=None):
    """Run key generation for the parsed key-generation config ``doc``.

    Returns {"generated": bool, "id": SIGNING_KEY_ID, "written": [keys], "existing": {...}}.
    ``stores``: optional {"private": VaultStore, "public": VaultStore} (RAM vaults shared with a node).
    Raises KeygenError naming the cause.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    errors = check_keygen_config(doc)
    if errors:
        raise KeygenError("invalid kms-gen-keys config file: " + "; ".join(errors))
    say = log or (lambda msg: None)
    private_keychain = ((doc.get("private_vault") or {}).get("keychain") or {})
    if "aws_kms" in private_keychain:
        raise KeygenError("private_vault.keychain.aws_kms: key generation must run inside the attested Nitro "
                          "enclave; the simulator cannot attest")
    if "private_vault" not in doc:
        say("warning: no [private_vault] section; the signing key goes to a throw-away store")
    private, public = _stores(doc, stores)
    threshold = doc.get("threshold")
    opts = doc["keygen"]
    key_name = private.vault.key("SigningKey", SIGNING_KEY_ID)
    pub_names = {f: public.vault.key(f, SIGNING_KEY_ID) for f in PUBLIC_FOLDERS}
    try:
        if opts.get("show_existing"):
            existing = {"SigningKey": private.list_names("SigningKey")}
            existing.update({f: public.list_names(f) for f in PUBLIC_FOLDERS})
            for folder, names in sorted(existing.items()):
                say("%s: %s" % (folder, ", ".join(names) or "none"))
            return {"generated": False, "id": SIGNING_KEY_ID, "written": [], "existing": existing}
        if opts.get("overwrite"):
            private.delete(key_name)
            for name in pub_names.values():
                public.delete(name)
        key_pem = private.get(key_name)
        if opts.get("repopulate") and key_pem is None:
            raise KeygenError("keygen.repopulate: no signing key at %s to repopulate from" % key_name)
        written = []
        generated = key_pem is None
        if generated:
            key = ec.generate_private_key(ec.SECP256K1())
            key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
            private.put(key_name, key_pem)
            written.append(key_name)
        else:
            say("Signing keys already exist, skipping generation")
        key, verf, address = _verification(key_pem)
        folders = ("VerfKey", "VerfAddress") + (("CACert",) if threshold is not None else ())
        for folder in folders:
            name = pub_names[folder]
            rewrite = generated or (opts.get("repopulate") and folder != "CACert")
            if not rewrite and public.get(name) is not None:
                continue   # kept: derived from the existing key
            if folder == "CACert":
                body = ca_certificate(key, _tls_subject(threshold), bool(threshold.get("tls_wildcard")))
            else:
                body = verf if folder == "VerfKey" else address
            public.put(name, body)
            written.append(name)
    except StorageError as exc:
        raise KeygenError(str(exc))
    for name in written:
        say("wrote %s" % name)
    return {"generated": generated, "id": SIGNING_KEY_ID, "written": written, "existing": {}}


def load(path):
    try:
        import tomllib
    except ImportError:  # pragma: no cover
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise KeygenError("failed to load kms-gen-keys config file %s: %s" % (path, exc.strerror or exc))
    except ValueError as exc:
        raise KeygenError("failed to load kms-gen-keys config file %s: %s" % (path, exc))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m sandbox.kms_sim.keygen",
                                 description="The simulator's kms-gen-keys.")
    ap.add_argument("--config-file", "-f", required=True)
    args = ap.parse_args(argv)
    try:
        result = generate_keys(load(args.config_file), log=lambda msg: print(msg, flush=True))
    except KeygenError as exc:
        print("Error: %s" % exc, file=sys.stderr)
        return 1
    print("Keygen finished successfully (%s)." % ("generated" if result["generated"] else "kept existing keys"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
