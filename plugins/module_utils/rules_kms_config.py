# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Rules of kms_config's inputs (registry and conventions: role_rules.py).

The server settings and the overrides are checked with the strict server schema
(kms_config_schema.check_partial), the rules the configuration meets again once it is built.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.kms_config_schema import (
    RATE_LIMITER_KEYS, ROLE_ARN_RE, check_partial)
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.peer_ca import PRIVATE_KEY_MARK
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.role_rules import got, rule

def _schema(pairs, policy=True):
    """Messages of the strict server schema on ``[(variable, section, key, value)]``, each named
    after its variable and quoting the server key."""
    doc = {}
    for _name, section, key, value in pairs:
        if "." in section:
            outer, inner = section.split(".")
            doc.setdefault(outer, {}).setdefault(inner, {})[key] = value
        else:
            doc.setdefault(section, {})[key] = value
    errors, _warnings = check_partial(doc, policy=policy)
    problems = []
    for error in errors:
        path = error.split(": ", 1)[0]
        for name, section, key, _value in pairs:
            where = "%s.%s" % (section, key)
            if path == where or path.startswith(where + ".") or path.startswith(where + "["):
                problems.append("%s: %s (server key %s)" % (name, error.split(": ", 1)[1], path))
                break
        else:
            problems.append("%s: %s" % (pairs[0][0], error))
    return problems


# ------------------------------------------------------------------------------ network and party
@rule("kms_config", "kms_config_party_id", "kms_config_parties", "kms_config_threshold")
def _party_and_shape(v, _):
    party_id, parties, t = v["kms_config_party_id"], v["kms_config_parties"], v["kms_config_threshold"]
    ids = [p.get("party_id") for p in parties]
    problems = []
    if ids.count(party_id) != 1:
        problems.append("kms_config_party_id: party %s must appear exactly once among the party ids %s"
                        % (party_id, ids))
    if len(parties) != 3 * t + 1:
        problems.append("kms_config_parties: the network must have n = 3t + 1 = %d parties for t = %d (got %d)"
                        % (3 * t + 1, t, len(parties)))
    return problems


def _has_ca(party):
    ca = party.get("ca_certificate") or {}
    return isinstance(ca, dict) and bool(ca.get("pem") or ca.get("path"))


@rule("kms_config", "kms_config_tls_mode", "kms_config_parties", "kms_config_peer_ca_pems")
def _peer_cas(v, context):
    # The key-generation configuration holds no peer: phase 1 of a new network runs before any
    # peer CA exists. The CAs come from privatelink_facts, an earlier role's output.
    if v["kms_config_tls_mode"] == "none" or context.get("entry_point") != "main":
        return []
    given = set(str(k) for k, pem in v["kms_config_peer_ca_pems"].items() if pem)
    missing = [str(p.get("party_id")) for p in v["kms_config_parties"]
               if str(p.get("party_id")) not in given and not _has_ca(p)]
    if missing:
        return ["kms_config_peer_ca_pems: tls_mode is %s, so every party needs its CA certificate (PEM) in "
                "[threshold.peers].tls_cert; missing for party id(s) %s. Give them in kms_config_peer_ca_pems (the "
                "privatelink role publishes them as privatelink_facts.peer_ca_pems) or as ca_certificate.pem / .path "
                "in the network definition" % (v["kms_config_tls_mode"], ", ".join(missing))]
    return []


# ------------------------------------------------------------------------------ TLS
@rule("kms_config", "kms_config_tls_mode", "kms_config_tls_cert_path", "kms_config_tls_key_path")
def _manual_tls_paths(v, _):
    if v["kms_config_tls_mode"] != "manual":
        return []
    return ["%s: an absolute path inside the pod in tls_mode manual; the key is mounted from a Secret, never "
            "written into the configuration %s" % (name, got(v[name]))
            for name in ("kms_config_tls_cert_path", "kms_config_tls_key_path") if not str(v[name]).startswith("/")]


@rule("kms_config", "kms_config_tls_mode", "kms_config_enclave")
def _auto_tls_needs_enclave(v, _):
    if v["kms_config_tls_mode"] == "auto" and not v["kms_config_enclave"]:
        return ["kms_config_tls_mode: auto ([threshold.tls.auto], Nitro attestation against trusted_releases) needs "
                "kms_config_enclave true, and it is false. Run the party in enclave mode, or use tls_mode manual "
                "(certificate and key from a Secret) or none where no Nitro enclave runs"]
    return []


# ------------------------------------------------------------------------------ enclave
@rule("kms_config", "kms_config_enclave", "kms_config_kms_key_id")
def _enclave_key(v, _):
    if v["kms_config_enclave"] and not v["kms_config_kms_key_id"]:
        return ["kms_config_kms_key_id: required in enclave mode (kms_config_enclave is true): the AWS KMS key that "
                "wraps the private vault, from nitro_nodegroup_facts. Set kms_config_enclave to false only where no "
                "Nitro enclave runs (the sandbox)"]
    return []


@rule("kms_config", "kms_config_enclave", "kms_config_role_arn")
def _enclave_role(v, _):
    if v["kms_config_enclave"] and not ROLE_ARN_RE.match(v["kms_config_role_arn"] or ""):
        return ["kms_config_role_arn: required in enclave mode, the party's IAM role ARN "
                "(arn:<partition>:iam::<12-digit account>:role/<name>, e.g. vault_buckets_facts.irsa_role_arn) %s"
                % got(repr(v["kms_config_role_arn"]))]
    return []


@rule("kms_config", "kms_config_enclave", "kms_config_enclave_web_identity_token_port")
def _enclave_token_port(v, _):
    if not v["kms_config_enclave"]:
        return []
    return _schema([("kms_config_enclave_web_identity_token_port", "enclave_bootstrap", "web_identity_token_port",
                     v["kms_config_enclave_web_identity_token_port"])])


# ------------------------------------------------------------------------------ vaults
@rule("kms_config", "kms_config_backup_bucket", "kms_config_backup_keychain", "kms_config_enclave")
def _backup_keychain(v, _):
    if v["kms_config_backup_bucket"] and v["kms_config_backup_keychain"] == "none" and v["kms_config_enclave"]:
        return ["kms_config_backup_keychain: with a backup vault (kms_config_backup_bucket %s), none is refused next "
                "to the enclave-protected private vault (the server would write the signing key, key shares and "
                "epoch data into it in plaintext); use aws_kms (its own asymmetric AWS KMS key in "
                "kms_config_backup_kms_key_id) or secret_sharing" % v["kms_config_backup_bucket"]]
    return []


# The key is nitro_nodegroup's output: in preflight the playbook's wiring of it is pending, and this
# rule runs when kms_config starts.
@rule("kms_config", "kms_config_backup_bucket", "kms_config_backup_keychain", "kms_config_backup_kms_key_id")
def _backup_key(v, _):
    if v["kms_config_backup_bucket"] and v["kms_config_backup_keychain"] == "aws_kms" \
            and not v["kms_config_backup_kms_key_id"]:
        return ["kms_config_backup_kms_key_id: required with the backup vault %s and kms_config_backup_keychain "
                "aws_kms: the backup vault's own asymmetric AWS KMS key (nitro_nodegroup_facts.backup_kms_key_arn)"
                % v["kms_config_backup_bucket"]]
    return []


@rule("kms_config", "kms_config_public_bucket", "kms_config_private_bucket", "kms_config_backup_bucket",
      "kms_config_prefixes")
def _buckets_and_prefixes(v, _):
    problems = ["%s: required, a bucket name %s" % (name, got(repr(v[name])))
                for name in ("kms_config_public_bucket", "kms_config_private_bucket") if not v[name]]
    prefixes = v["kms_config_prefixes"]
    vaults = ["public", "private"] + (["backup"] if v["kms_config_backup_bucket"] else [])
    for vault in vaults:
        if not prefixes.get(vault):
            problems.append("kms_config_prefixes.%s: required, a non-empty prefix of the %s vault %s"
                            % (vault, vault, got(prefixes)))
    return problems


# ------------------------------------------------------------------------------ server settings
@rule("kms_config", "kms_config_listen_address", "kms_config_timeout_secs", "kms_config_grpc_max_message_size")
def _service(v, _):
    return _schema([("kms_config_listen_address", "service", "listen_address", v["kms_config_listen_address"]),
                    ("kms_config_timeout_secs", "service", "timeout_secs", v["kms_config_timeout_secs"]),
                    ("kms_config_grpc_max_message_size", "service", "grpc_max_message_size",
                     v["kms_config_grpc_max_message_size"])])


@rule("kms_config", "kms_config_dec_capacity", "kms_config_min_dec_cache")
def _decryption_cache(v, _):
    return _schema([("kms_config_dec_capacity", "threshold", "dec_capacity", v["kms_config_dec_capacity"]),
                    ("kms_config_min_dec_cache", "threshold", "min_dec_cache", v["kms_config_min_dec_cache"])])


@rule("kms_config", "kms_config_num_sessions_preproc")
def _sessions(v, _):
    if v["kms_config_num_sessions_preproc"] is None:
        return []
    return _schema([("kms_config_num_sessions_preproc", "threshold", "num_sessions_preproc",
                     v["kms_config_num_sessions_preproc"])])


@rule("kms_config", "kms_config_core_to_core_net")
def _core_to_core_net(v, _):
    net = v["kms_config_core_to_core_net"]
    return _schema([("kms_config_core_to_core_net", "threshold.core_to_core_net", k, net[k]) for k in net]) if net else []


@rule("kms_config", "kms_config_rate_limiter")
def _rate_limiter(v, _):
    limits = v["kms_config_rate_limiter"]
    if not limits:
        return []
    problems = ["kms_config_rate_limiter: all seven keys %s or an empty dict; %s is missing"
                % (", ".join(RATE_LIMITER_KEYS), key) for key in RATE_LIMITER_KEYS if key not in limits]
    return problems + _schema([("kms_config_rate_limiter", "rate_limiter_conf", k, limits[k]) for k in limits])


@rule("kms_config", "kms_config_num_tokio_threads", "kms_config_num_rayon_threads")
def _threads(v, _):
    tokio, rayon = v["kms_config_num_tokio_threads"], v["kms_config_num_rayon_threads"]
    if tokio is None and rayon is None:
        return []
    if tokio is None or rayon is None:
        return ["kms_config_num_tokio_threads / kms_config_num_rayon_threads: both null (the server sizes its pools "
                "from the CPUs it sees; inside an enclave, the enclave's vCPUs) or both set (the chart uses 10 / 40 "
                "for a 48-vCPU enclave) (got %s / %s)" % (tokio, rayon)]
    return _schema([("kms_config_num_tokio_threads", "internal_config", "num_tokio_threads", tokio),
                    ("kms_config_num_rayon_threads", "internal_config", "num_rayon_threads", rayon)])


@rule("kms_config", "kms_config_overrides")
def _overrides(v, _):
    """Merged into the built document: an unknown section or key, or a value of the wrong type,
    is refused here by the strict server schema (the whole document is checked once built)."""
    errors, _warnings = check_partial(v["kms_config_overrides"], policy=False)
    return ["kms_config_overrides.%s" % e if not e.startswith("top level") else "kms_config_overrides: %s" % e
            for e in errors]


# ------------------------------------------------------------------------------ no private key
def _private_key(name, value):
    if PRIVATE_KEY_MARK in json.dumps(value, default=str):
        return ["%s: a PEM private key was given (the value is not shown). The configuration is published as a "
                "ConfigMap, so it never carries a key: keep the TLS key in the Secret the workload mounts "
                "(kms_workload_tls_secret_name) and point kms_config_tls_key_path at it; peer entries take CA "
                "certificates only" % name]
    return []


@rule("kms_config", "kms_config_overrides")
def _no_key_in_overrides(v, _):
    return _private_key("kms_config_overrides", v["kms_config_overrides"])


@rule("kms_config", "kms_config_peer_ca_pems")
def _no_key_in_peer_cas(v, _):
    return _private_key("kms_config_peer_ca_pems", v["kms_config_peer_ca_pems"])


@rule("kms_config", "kms_config_parties")
def _no_key_in_party_cas(v, _):
    return _private_key("kms_config_parties[].ca_certificate",
                        [p.get("ca_certificate") for p in v["kms_config_parties"] if p.get("ca_certificate")])
