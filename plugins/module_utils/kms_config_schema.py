# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Strict check of the KMS server configuration (release line 0.15) and of the key-generation
configuration read by ``kms-gen-keys``.

Two kinds of rules, kept apart:

* **server rules** - what the KMS server (or ``kms-gen-keys``) itself refuses when it reads the
  file: an unknown key in any section except ``[rate_limiter_conf]`` and ``[telemetry.batch]``
  (whose unknown keys it ignores), a missing required key, a value below a minimum, a peer list
  that does not have exactly 3t + 1 entries, a removed key such as ``storage_cache_size``;
* **policy rules** - the collection's own safety rules (explicit vault prefixes, unique peers, no
  private key inline, no plaintext backup next to an encrypted private vault, ...). Their
  messages say "(policy)". ``policy=False`` checks the server rules only: a configuration then
  passes exactly when the server would accept it.

Things the server accepts but only warns about (``my_id`` greater than n, ``num_sessions_preproc``
below 2, keys it ignores) are returned as warnings, never as errors.

Pure Python, no Ansible: the module ``kms_config_check``, the role ``kms_config`` and the unit
tests call it directly. Every problem is reported as ``<key path>: <rule>``, e.g.
``threshold.peers[2].party_id: must be in 1..n = 1..4 (got 7)``, and all of them at once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.input_rules import (
    PCR_RE, ROLE_ARN_RE)
try:  # Python >= 3.11
    import tomllib as _toml
except ImportError:  # pragma: no cover - older controllers with the tomli backport
    try:
        import tomli as _toml
    except ImportError:
        _toml = None

KINDS = ("server", "keygen")
DECRYPTION_MODES = ("NoiseFloodSmall", "NoiseFloodLarge", "BitDecSmall", "BitDecLarge")
ROOT_KEY_SPECS = ("symm", "asymm")
KEYCHAINS = ("aws_kms", "secret_sharing")
ENVIRONMENTS = ("testnet", "mainnet")
VAULT_TYPE_NAMES = {"public_vault": "PUB", "private_vault": "PRIV", "backup_vault": "BACKUP"}
HEX_RE = re.compile(r"^(?:[0-9a-fA-F]{2})*$")
REQUEST_ID_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
ETH_ADDRESS_RE = re.compile(r"^(0x)?[0-9a-fA-F]{40}$")
URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")
BIND_RE = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")
PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_/-]*$")
# A value the chart leaves to environment substitution, e.g. "${KMS_CORE__THRESHOLD__MY_ID}".
PLACEHOLDER_RE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
MAX_GRPC_MESSAGE = 2 ** 31 - 1
U16 = 2 ** 16 - 1
U32 = 2 ** 32 - 1
U64 = 2 ** 64 - 1

# Keys the server once read and now refuses, with what to do instead.
REMOVED = {
    "storage_cache_size": "removed after release 0.13; the server refuses it now (delete the key)",
}

# (allowed keys, required keys) per table; sub-tables with structure of their own are checked by
# dedicated methods. Source: the serde structs of zama-ai/kms core/service/src/conf/mod.rs,
# conf/threshold.rs, bin/kms-gen-keys.rs, threshold-networking grpc/config.rs,
# observability conf.rs and util/rate_limiter.rs.
SERVER_TOP = ({"service", "enclave_bootstrap", "telemetry", "aws", "public_vault", "private_vault",
               "backup_vault", "rate_limiter_conf", "bandwidth_benchmark", "threshold",
               "internal_config", "migration", "mock_enclave"}, ("service",))
KEYGEN_TOP = ({"keygen", "aws", "public_vault", "private_vault", "backup_vault", "threshold",
               "enclave_bootstrap", "mock_enclave"}, ("keygen",))
SERVICE = ({"listen_address", "listen_port", "timeout_secs", "grpc_max_message_size"},
           ("listen_address", "listen_port", "timeout_secs", "grpc_max_message_size"))
ENCLAVE_BOOTSTRAP = ({"web_identity_token_port"}, ("web_identity_token_port",))
THRESHOLD = (
    {"listen_address", "listen_port", "threshold", "dec_capacity", "min_dec_cache",
     "decryption_mode", "my_id", "num_sessions_preproc", "peers", "tls", "core_to_core_net"},
    ("listen_address", "listen_port", "threshold", "dec_capacity", "min_dec_cache", "decryption_mode"),
)
KEYGEN_THRESHOLD = ({"my_id", "tls_subject", "tls_wildcard", "peers"}, ())
KEYGEN = ({"overwrite", "show_existing", "repopulate", "deterministic"}, ())
PEER = ({"party_id", "address", "port", "mpc_identity", "tls_cert", "verification_address"},
        ("party_id", "address", "port"))
# Every key optional; the minimum each one must respect (None: any unsigned integer).
CORE_TO_CORE_NET = {
    "message_limit": 1, "multiplier": 1.0, "max_interval": 1, "max_elapsed_time": 1,
    "initial_interval_ms": 1, "network_timeout": 1, "network_timeout_bk": 1,
    "network_timeout_bk_sns": 1, "max_en_decode_message_size": 1024,
    "session_update_interval_secs": 1, "session_cleanup_interval_secs": 1,
    "discard_inactive_sessions_interval": 1, "max_waiting_time_for_message_queue": 1,
    "max_opened_inactive_sessions_per_party": None, "max_future_rounds": None,
    "max_buffered_future_msgs": None,
}
TLS_AUTO = ({"eif_signing_cert", "trusted_releases", "attest_private_vault_root_key",
             "renew_slack_after_expiration", "renew_fail_retry_timeout"}, ("trusted_releases",))
AWS = ({"region", "role_arn", "imds_endpoint", "sts_endpoint", "s3_endpoint", "awskms_endpoint"},
       ("region",))
VAULT = ({"storage", "keychain"}, ("storage",))
TELEMETRY = ({"tracing_service_name", "tracing_endpoint", "tracing_otlp_timeout_ms",
              "metrics_bind_address", "enable_sys_metrics", "refresh_interval_ms", "batch"}, ())
TELEMETRY_BATCH_KEYS = ("max_queue_size", "max_export_batch_size", "scheduled_delay_ms")
RATE_LIMITER_KEYS = ("bucket_size", "pub_decrypt", "user_decrypt", "crsgen", "preproc", "keygen", "new_epoch")
BANDWIDTH_BENCHMARK_KEYS = ("max_payload_bytes", "max_sessions", "max_total_bytes", "max_duration_secs",
                            "max_concurrent_runs")
INTERNAL_CONFIG = ({"num_tokio_threads", "num_rayon_threads"}, ("num_tokio_threads", "num_rayon_threads"))
MIGRATION = ({"context_associations"}, ())
CONTEXT_ASSOCIATION = ({"context_id", "epoch_ids"}, ("context_id", "epoch_ids"))


class KmsConfigError(Exception):
    """Raised with every problem found; ``errors`` holds one ``path: rule`` string each."""

    def __init__(self, errors):
        self.errors = list(errors)
        super(KmsConfigError, self).__init__("\n".join(self.errors))


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _type_name(value):
    return {dict: "table", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "float"}.get(type(value), type(value).__name__)


def _join(path, key):
    return "%s.%s" % (path, key) if path else key


def is_placeholder(value):
    """True for a string the chart leaves to environment substitution (``"${NAME}"``)."""
    return isinstance(value, str) and bool(PLACEHOLDER_RE.match(value))


class _Checker(object):
    def __init__(self, environment=None, policy=True, kind="server"):
        self.errors = []
        self.warnings = []
        self.environment = environment
        self.policy = policy
        self.kind = kind

    def err(self, path, rule):
        self.errors.append("%s: %s" % (path, rule))

    def policy_err(self, path, rule):
        """A rule of the collection, not of the server: skipped when policy is off."""
        if self.policy:
            self.errors.append("%s: %s (policy)" % (path, rule))

    def warn(self, path, rule):
        self.warnings.append("%s: %s" % (path, rule))

    # --- generic helpers -------------------------------------------------------------------
    def table(self, value, path, spec, ignore_unknown=False):
        """Check a table's keys; return it (or None when it is not a table)."""
        allowed, required = spec
        if not isinstance(value, dict):
            self.err(path or "top level", "must be a table (got %s)" % _type_name(value))
            return None
        for key in sorted(set(value) - set(allowed)):
            where = _join(path, key)
            if key in REMOVED:
                self.err(where, REMOVED[key])
            elif ignore_unknown:
                self.warn(where, "unknown key; the server ignores it in [%s]" % path)
            else:
                self.err(where, "unknown key; the server rejects it (allowed in [%s]: %s)"
                         % (path or "top level", ", ".join(sorted(allowed)) or "nothing"))
        for key in required:
            if key not in value:
                self.err(_join(path, key), "required key is missing")
        return value

    def integer(self, table, key, path, minimum=None, maximum=None):
        if key not in table:
            return None
        value = table[key]
        where = _join(path, key)
        if not _is_int(value):
            self.err(where, "must be an integer (got %s %r)" % (_type_name(value), value))
            return None
        if minimum is not None and value < minimum:
            self.err(where, "must be at least %d (got %d)" % (minimum, value))
            return None
        if maximum is not None and value > maximum:
            self.err(where, "must be at most %d (got %d)" % (maximum, value))
            return None
        return value

    def number(self, table, key, path, minimum=None):
        if key not in table:
            return None
        value = table[key]
        where = _join(path, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.err(where, "must be a number (got %s %r)" % (_type_name(value), value))
            return None
        if minimum is not None and value < minimum:
            self.err(where, "must be at least %s (got %s)" % (minimum, value))
        return value

    def string(self, table, key, path, choices=None):
        """A non-empty string (every string the server reads has length >= 1)."""
        if key not in table:
            return None
        value = table[key]
        where = _join(path, key)
        if not isinstance(value, str):
            self.err(where, "must be a string (got %s %r)" % (_type_name(value), value))
            return None
        if not value:
            self.err(where, "must not be empty")
            return None
        if is_placeholder(value):
            self.warn(where, "%s is substituted from the environment when the server starts; not checked here" % value)
            return None
        if choices is not None and value not in choices:
            self.err(where, "must be one of %s (got %r)" % (", ".join(choices), value))
            return None
        return value

    def boolean(self, table, key, path):
        if key in table and not isinstance(table[key], bool):
            self.err(_join(path, key), "must be true or false (got %s %r)" % (_type_name(table[key]), table[key]))
            return None
        return table.get(key)

    def one_of(self, value, path, variants):
        """A table holding exactly one of ``variants`` (the server's externally tagged enums)."""
        if not isinstance(value, dict):
            self.err(path, "must be a table with exactly one of %s (got %s)" % (", ".join(variants), _type_name(value)))
            return None, None
        present = [k for k in value if k in variants]
        for key in sorted(set(value) - set(variants)):
            self.err(_join(path, key), "unknown key; the server rejects it (allowed: exactly one of %s)" % ", ".join(variants))
        if len(present) != 1:
            self.err(path, "must set exactly one of %s (got %s)"
                     % (", ".join(variants), ", ".join(sorted(present)) if present else "none"))
            return None, None
        return present[0], value[present[0]]

    def cert_source(self, value, path, what):
        """``{path = ...}`` or ``{pem = ...}``, exactly one."""
        kind, content = self.one_of(value, path, ("path", "pem"))
        if kind is None:
            return
        if not isinstance(content, str) or not content:
            self.err(_join(path, kind), "must be a non-empty string")
        elif kind == "pem" and "-----BEGIN " not in content and not is_placeholder(content):
            self.err(_join(path, kind), "must hold a PEM-encoded %s (no '-----BEGIN' line found)" % what)

    def my_id(self, table, path):
        """``my_id``: an integer >= 1, or a string holding one (env substitution); may be absent."""
        if "my_id" not in table:
            return None
        value = table["my_id"]
        where = _join(path, "my_id")
        if isinstance(value, str):
            if is_placeholder(value):
                self.warn(where, "%s is substituted from the environment when the server starts "
                                 "(KMS_CORE__THRESHOLD__MY_ID also overrides it); not checked here" % value)
                return None
            if value.strip().isdigit():
                value = int(value.strip())
            else:
                self.err(where, "must be an integer, or a string holding one (got %r)" % value)
                return None
        elif not _is_int(value):
            self.err(where, "must be an integer (got %s %r)" % (_type_name(value), value))
            return None
        if value < 1:
            self.err(where, "must be at least 1 (got %d)" % value)
            return None
        return value

    # --- sections ---------------------------------------------------------------------------
    def service(self, doc):
        table = self.table(doc["service"], "service", SERVICE)
        if table is None:
            return None
        self.string(table, "listen_address", "service")
        port = self.integer(table, "listen_port", "service", 1, 65535)
        self.integer(table, "timeout_secs", "service", 1, U64)
        self.integer(table, "grpc_max_message_size", "service", 1, MAX_GRPC_MESSAGE)
        return port

    def enclave_bootstrap(self, doc):
        table = self.table(doc["enclave_bootstrap"], "enclave_bootstrap", ENCLAVE_BOOTSTRAP)
        if table is not None:
            self.integer(table, "web_identity_token_port", "enclave_bootstrap", 1, 65535)

    def threshold(self, doc, service_port):
        path = "threshold"
        table = self.table(doc[path], path, THRESHOLD)
        if table is None:
            return
        self.string(table, "listen_address", path)
        port = self.integer(table, "listen_port", path, 1, 65535)
        if port is not None and port == service_port:
            self.policy_err("threshold.listen_port", "must differ from service.listen_port (both are %d)" % port)
        t = self.integer(table, "threshold", path, 1, 255)
        capacity = self.integer(table, "dec_capacity", path, 0, U64)
        cache = self.integer(table, "min_dec_cache", path, 0, U64)
        if capacity is not None and cache is not None and cache > capacity:
            self.policy_err("threshold.min_dec_cache", "must not exceed threshold.dec_capacity (%d > %d)" % (cache, capacity))
        self.string(table, "decryption_mode", path, choices=DECRYPTION_MODES)
        my_id = self.my_id(table, path)
        sessions = self.integer(table, "num_sessions_preproc", path, 0, U16)
        if sessions is not None and sessions < 2:
            self.warn("threshold.num_sessions_preproc", "values below 2 are raised to 2 by the server (got %d)" % sessions)
        tls_on = "tls" in table
        if tls_on:
            self.tls(table["tls"], "threshold.tls")
        if "core_to_core_net" in table:
            self.core_to_core_net(table["core_to_core_net"])
        if "peers" in table:
            self.peers(table["peers"], t, my_id, "my_id" in table, tls_on, path)
        elif my_id is None and "my_id" not in table:
            self.warn(path, "no my_id and no peers: the node starts without a context")

    def keygen_threshold(self, doc):
        path = "threshold"
        table = self.table(doc[path], path, KEYGEN_THRESHOLD)
        if table is None:
            return
        my_id = self.my_id(table, path)
        if "my_id" not in table:
            self.err("threshold.my_id", "required when generating threshold signing keys (kms-gen-keys)")
        subject = table.get("tls_subject")
        if "tls_subject" in table and not (isinstance(subject, str) and subject.strip()):
            self.err("threshold.tls_subject", "must be a non-empty string (the CN of this party's CA, its mpc_identity)")
            subject = None
        self.boolean(table, "tls_wildcard", path)
        if "peers" in table:
            self.peers(table["peers"], None, my_id, "my_id" in table, False, path)
        if not subject:
            peers = table.get("peers") if isinstance(table.get("peers"), list) else None
            if peers is None:
                self.err("threshold.tls_subject", "required when threshold.peers is absent "
                         "(kms-gen-keys derives the subject from this party's peer entry otherwise)")
            elif my_id is not None and not any(isinstance(p, dict) and p.get("party_id") == my_id for p in peers):
                self.err("threshold.tls_subject", "not set and threshold.peers has no entry for my_id %d to derive it from" % my_id)

    def peers(self, peers, t, my_id, my_id_given, tls_on, base):
        path = _join(base, "peers")
        if not isinstance(peers, list) or not all(isinstance(p, dict) for p in peers):
            self.err(path, "must be an array of tables ([[%s]])" % path)
            return
        n = len(peers)
        if t is not None and n != 3 * t + 1:
            self.err(path, "the server requires n = 3t + 1 peers: threshold = %d needs %d peers, got n = %d%s"
                     % (t, 3 * t + 1, n, (" (n = %d fits threshold = %d)" % (n, (n - 1) // 3)) if n % 3 == 1 else ""))
        owners = {}
        ids = []
        for index, peer in enumerate(peers):
            where = "%s[%d]" % (path, index)
            self.table(peer, where, PEER)
            pid = self.integer(peer, "party_id", where, 1)
            if pid is not None:
                ids.append(pid)
                if pid > n:
                    self.err(_join(where, "party_id"), "must be in 1..n = 1..%d (got %d)" % (n, pid))
            address = self.string(peer, "address", where)
            port = self.integer(peer, "port", where, 1, 65535)
            identity = self.string(peer, "mpc_identity", where)
            if "tls_cert" in peer:
                self.cert_source(peer["tls_cert"], _join(where, "tls_cert"), "CA certificate")
            elif tls_on:
                self.err(_join(where, "tls_cert"), "required for every peer when threshold.tls is set (the peer's CA certificate)")
            if "verification_address" in peer:
                value = peer["verification_address"]
                if not (isinstance(value, str) and ETH_ADDRESS_RE.match(value)):
                    self.err(_join(where, "verification_address"), "must be an Ethereum address, 40 hex digits (got %r)" % (value,))
            for field, value, rule in (
                ("party_id", pid, "party ids must be unique"),
                ("mpc_identity", identity or address, "mpc_identity (defaults to address) must be unique: it is the CN peers check"),
                ("port", (address, port) if address and port else None, "(address, port) must be unique"),
            ):
                if value is None:
                    continue
                key = (field, value)
                if key in owners:
                    self.policy_err(_join(where, field), "%s (also used by %s)" % (rule, owners[key]))
                else:
                    owners[key] = where
        if my_id is not None and n and my_id > n:
            self.warn(_join(base, "my_id"), "greater than the number of peers n = %d (the server only warns)" % n)
        elif my_id is not None and ids and my_id not in ids:
            rule = "must be the party_id of one of the peers (got %d; peers: %s)" % (my_id, ", ".join(str(i) for i in sorted(ids)))
            if tls_on:  # the server looks up its own certificate's subject in the peer list
                self.err(_join(base, "my_id"), rule + "; with TLS the server needs its own peer entry")
            else:
                self.policy_err(_join(base, "my_id"), rule)
        if not my_id_given and self.kind == "server":
            self.policy_err(_join(base, "my_id"), "required when threshold.peers is set (this party's id in the peer list)")

    def tls(self, value, path):
        kind, body = self.one_of(value, path, ("manual", "auto"))
        if kind == "manual":
            table = self.table(body, _join(path, "manual"), ({"cert", "key"}, ("cert", "key")))
            if table is not None:
                if "cert" in table:
                    self.cert_source(table["cert"], _join(path, "manual.cert"), "certificate")
                if "key" in table:
                    self.cert_source(table["key"], _join(path, "manual.key"), "private key")
                    if isinstance(table["key"], dict) and "pem" in table["key"]:
                        self.policy_err(_join(path, "manual.key.pem"), "not allowed: the configuration is published "
                                        "as a ConfigMap; mount the key from a Secret and use key.path")
        elif kind == "auto":
            where = _join(path, "auto")
            table = self.table(body, where, TLS_AUTO)
            if table is None:
                return
            if "eif_signing_cert" in table:
                self.cert_source(table["eif_signing_cert"], _join(where, "eif_signing_cert"), "certificate")
            self.boolean(table, "attest_private_vault_root_key", where)
            self.integer(table, "renew_slack_after_expiration", where, 0, U64)
            self.integer(table, "renew_fail_retry_timeout", where, 0, U64)
            if "trusted_releases" not in table:
                return
            releases = table["trusted_releases"]
            if not isinstance(releases, list):
                self.err(_join(where, "trusted_releases"), "must be an array of {pcr0, pcr1, pcr2}")
                return
            if not releases:
                self.policy_err(_join(where, "trusted_releases"), "must be non-empty: no peer could be trusted")
            for index, release in enumerate(releases):
                rel_path = "%s.trusted_releases[%d]" % (where, index)
                rel = self.table(release, rel_path, ({"pcr0", "pcr1", "pcr2"}, ("pcr0", "pcr1", "pcr2")))
                if rel is None:
                    continue
                for pcr in ("pcr0", "pcr1", "pcr2"):
                    value = rel.get(pcr)
                    if pcr not in rel:
                        continue
                    if not isinstance(value, str) or not HEX_RE.match(value):
                        self.err(_join(rel_path, pcr), "must be a hexadecimal string of whole bytes (got %r)" % (value,))
                    elif not PCR_RE.match(value):
                        self.policy_err(_join(rel_path, pcr), "must be 96 lowercase hexadecimal characters "
                                        "(a SHA-384 measurement; got %d characters)" % len(value))

    def core_to_core_net(self, value):
        path = "threshold.core_to_core_net"
        table = self.table(value, path, (set(CORE_TO_CORE_NET), ()))
        if table is None:
            return
        for key, minimum in sorted(CORE_TO_CORE_NET.items()):
            if key == "multiplier":
                self.number(table, key, path, minimum)
            else:
                self.integer(table, key, path, minimum if minimum is not None else 0, U64)
        for key in ("max_future_rounds", "max_buffered_future_msgs"):
            if table.get(key) == 0:
                self.warn(_join(path, key), "0 drops every reordered message from a peer ahead of this node")

    def aws(self, doc):
        table = self.table(doc["aws"], "aws", AWS)
        if table is None:
            return
        self.string(table, "region", "aws")
        role_arn = self.string(table, "role_arn", "aws")
        if role_arn is not None and not ROLE_ARN_RE.match(role_arn):
            self.policy_err("aws.role_arn", "must be an IAM role ARN, arn:<partition>:iam::<account>:role/<name> (got %r)" % role_arn)
        for key in ("imds_endpoint", "sts_endpoint", "s3_endpoint", "awskms_endpoint"):
            url = self.string(table, key, "aws")
            if url is not None and not URL_RE.match(url):
                self.err(_join("aws", key), "must be a URL such as https://host:port (got %r)" % url)

    def vault(self, doc, name, locations):
        table = self.table(doc[name], name, VAULT)
        if table is None:
            return
        if "storage" in table:
            self.storage(table["storage"], name, locations)
        if "keychain" in table:
            if name == "public_vault":
                self.policy_err(_join(name, "keychain"), "not allowed on the public vault: only private and "
                                "backup material is encrypted")
            self.keychain(table["keychain"], _join(name, "keychain"))

    def storage(self, value, vault, locations):
        path = _join(vault, "storage")
        kind, body = self.one_of(value, path, ("s3", "file", "ram"))
        if kind is None:
            return
        where = _join(path, kind)
        if kind == "ram":
            self.table(body, where, (set(), ()))
            return
        spec = ({"bucket", "prefix"}, ("bucket",)) if kind == "s3" else ({"path", "prefix"}, ("path",))
        table = self.table(body, where, spec)
        if table is None:
            return
        location = self.string(table, "bucket" if kind == "s3" else "path", where)
        if "prefix" not in table:
            self.policy_err(_join(where, "prefix"), "required: set it explicitly, by convention %s-p<id>; "
                            "a missing prefix silently falls back to %r" % (VAULT_TYPE_NAMES[vault], VAULT_TYPE_NAMES[vault]))
            return
        prefix = table["prefix"]
        if not isinstance(prefix, str):
            self.err(_join(where, "prefix"), "must be a string (got %s %r)" % (_type_name(prefix), prefix))
            return
        if not prefix:
            if kind == "s3":
                self.err(_join(where, "prefix"), "must not be empty (an empty prefix makes object keys start with '/')")
            else:
                self.policy_err(_join(where, "prefix"), "must not be empty (an empty prefix makes object keys start with '/')")
            return
        if is_placeholder(prefix):
            self.warn(_join(where, "prefix"), "%s is substituted from the environment; not checked here" % prefix)
            return
        if not PREFIX_RE.match(prefix):
            self.policy_err(_join(where, "prefix"), "use letters, digits, '-', '_' and '/' only, starting with a letter or digit (got %r)" % prefix)
        for other, type_name in sorted(VAULT_TYPE_NAMES.items()):
            if other != vault and prefix.startswith(type_name):
                self.policy_err(_join(where, "prefix"), "must not start with another vault's type name %r (got %r)" % (type_name, prefix))
        if location is not None:
            key = (kind, location, prefix.rstrip("/"))
            if key in locations:
                self.policy_err(_join(where, "prefix"), "%s and %s share the same %s and prefix %r; their objects would collide"
                                % (locations[key], vault, "bucket" if kind == "s3" else "path", prefix))
            else:
                locations[key] = vault

    def keychain(self, value, path):
        kind, body = self.one_of(value, path, KEYCHAINS)
        if kind is None:
            return
        where = _join(path, kind)
        if kind == "secret_sharing":
            # The server's struct has no fields and does not refuse unknown ones.
            if not isinstance(body, dict):
                self.err(where, "must be a table (got %s)" % _type_name(body))
            else:
                for key in sorted(body):
                    self.warn(_join(where, key), "unknown key; the server ignores it (the custodian keychain takes no settings)")
            return
        table = self.table(body, where, ({"root_key_id", "root_key_spec"}, ("root_key_id", "root_key_spec")))
        if table is not None:
            self.string(table, "root_key_id", where)
            self.string(table, "root_key_spec", where, choices=ROOT_KEY_SPECS)

    def backup_keychain_policy(self, doc):
        """The server copies key material into the backup vault in plaintext when it has no keychain."""
        backup = doc.get("backup_vault")
        private = doc.get("private_vault")
        if not isinstance(backup, dict) or "keychain" in backup:
            return
        if isinstance(private, dict) and "keychain" in private:
            self.policy_err("backup_vault.keychain", "required when private_vault has a keychain: without one the "
                            "server copies the signing key, key shares and epoch data into the backup vault in "
                            "plaintext (set keychain.aws_kms with its own key, or keychain.secret_sharing)")
        else:
            self.warn("backup_vault.keychain", "absent: the server writes backups in plaintext")

    def telemetry(self, doc):
        path = "telemetry"
        table = self.table(doc[path], path, TELEMETRY)
        if table is None:
            return
        self.string(table, "tracing_service_name", path)
        self.string(table, "tracing_endpoint", path)
        self.integer(table, "tracing_otlp_timeout_ms", path, 1, U64)
        bind = self.string(table, "metrics_bind_address", path)
        if bind is not None:
            match = BIND_RE.match(bind)
            if not match or not 1 <= int(match.group(2)) <= 65535:
                self.err(_join(path, "metrics_bind_address"), "must be host:port with a port in 1..65535, e.g. 0.0.0.0:9646 (got %r)" % bind)
        self.boolean(table, "enable_sys_metrics", path)
        self.integer(table, "refresh_interval_ms", path, 1, U64)
        if "batch" in table:
            batch = self.table(table["batch"], "telemetry.batch", (set(TELEMETRY_BATCH_KEYS), ()), ignore_unknown=True)
            if batch is not None:
                for key in TELEMETRY_BATCH_KEYS:
                    self.integer(batch, key, "telemetry.batch", 0, U64)

    def rate_limiter(self, doc):
        path = "rate_limiter_conf"
        table = self.table(doc[path], path, (set(RATE_LIMITER_KEYS), RATE_LIMITER_KEYS), ignore_unknown=True)
        if table is None:
            return
        self.integer(table, "bucket_size", path, 1, U64)
        for key in RATE_LIMITER_KEYS[1:]:
            self.integer(table, key, path, 1, U32)

    def bandwidth_benchmark(self, doc):
        path = "bandwidth_benchmark"
        table = self.table(doc[path], path, (set(BANDWIDTH_BENCHMARK_KEYS), BANDWIDTH_BENCHMARK_KEYS))
        if table is None:
            return
        for key in BANDWIDTH_BENCHMARK_KEYS:
            self.integer(table, key, path, 1, U32 if key in ("max_payload_bytes", "max_sessions") else U64)

    def internal_config(self, doc):
        table = self.table(doc["internal_config"], "internal_config", INTERNAL_CONFIG)
        if table is not None:
            self.integer(table, "num_tokio_threads", "internal_config", 1, U64)
            self.integer(table, "num_rayon_threads", "internal_config", 1, U64)

    def migration(self, doc):
        path = "migration"
        table = self.table(doc[path], path, MIGRATION)
        if table is None or "context_associations" not in table:
            return
        entries = table["context_associations"]
        where = _join(path, "context_associations")
        if not isinstance(entries, list):
            self.err(where, "must be an array of tables ([[migration.context_associations]])")
            return
        seen = {}
        for index, entry in enumerate(entries):
            epath = "%s[%d]" % (where, index)
            if self.table(entry, epath, CONTEXT_ASSOCIATION) is None:
                continue
            context = self.string(entry, "context_id", epath)
            if context is not None and not REQUEST_ID_RE.match(context):
                self.policy_err(_join(epath, "context_id"), "must be 64 hex characters, optionally after 0x (got %r)" % context)
            if "epoch_ids" not in entry:
                continue
            epochs = entry["epoch_ids"]
            if not isinstance(epochs, list) or not all(isinstance(e, str) for e in epochs):
                self.err(_join(epath, "epoch_ids"), "must be an array of strings")
                continue
            for position, epoch in enumerate(epochs):
                epoch_path = "%s.epoch_ids[%d]" % (epath, position)
                if not REQUEST_ID_RE.match(epoch):
                    self.policy_err(epoch_path, "must be 64 hex characters, optionally after 0x (got %r)" % epoch)
                    continue
                normal = epoch.lower()[2:] if epoch.lower().startswith("0x") else epoch.lower()
                if normal in seen:
                    self.policy_err(epoch_path, "an epoch belongs to one context only (also listed at %s)" % seen[normal])
                else:
                    seen[normal] = epoch_path

    def keygen(self, doc):
        path = "keygen"
        table = self.table(doc[path], path, KEYGEN)
        if table is None:
            return
        for key in sorted(KEYGEN[0]):
            self.boolean(table, key, path)
        modes = [k for k in ("show_existing", "repopulate", "overwrite") if table.get(k) is True]
        if len(modes) > 1:
            self.err(path, "%s are mutually exclusive; set at most one of them per run" % " and ".join(modes))
        if table.get("deterministic") is True:
            self.policy_err("keygen.deterministic", "must not be true: it generates fixed test keys")
        if table.get("overwrite") is True:
            self.warn("keygen.overwrite", "deletes the existing signing key before generating a new one")

    def mock_enclave(self, doc):
        value = self.boolean(doc, "mock_enclave", "")
        if value is True and self.environment == "mainnet":
            self.policy_err("mock_enclave", "must never be true on mainnet (it exists for tests only)")


def check(doc, environment=None, require_threshold=True, kind="server", policy=True):
    """Check a parsed configuration; return ``(errors, warnings)``, two lists of ``path: rule``.

    kind: ``server`` (threshold.toml, read by kms-server) or ``keygen`` (the file kms-gen-keys reads).
    environment: ``testnet`` / ``mainnet`` / None; mainnet forbids ``mock_enclave = true`` (policy).
    require_threshold: a party of a threshold network needs [threshold] and both vaults (policy).
    policy: False checks the server's own rules only.
    """
    if kind not in KINDS:
        return ["kind: must be one of %s (got %r)" % (", ".join(KINDS), kind)], []
    if environment not in (None,) + ENVIRONMENTS:
        return ["environment: must be one of %s (got %r)" % (", ".join(ENVIRONMENTS), environment)], []
    checker = _Checker(environment, policy=policy, kind=kind)
    if checker.table(doc, "", SERVER_TOP if kind == "server" else KEYGEN_TOP) is None:
        return checker.errors, checker.warnings
    if require_threshold:
        for key in ("threshold", "public_vault", "private_vault"):
            if key not in doc:
                checker.policy_err(key, "required section is missing: a threshold party needs it")
    service_port = None
    if kind == "server":
        if "service" in doc:
            service_port = checker.service(doc)
        if "threshold" in doc:
            checker.threshold(doc, service_port)
    else:
        if "keygen" in doc:
            checker.keygen(doc)
        if "threshold" in doc:
            checker.keygen_threshold(doc)
    if "enclave_bootstrap" in doc:
        checker.enclave_bootstrap(doc)
    if "aws" in doc:
        checker.aws(doc)
    locations = {}
    for vault in ("public_vault", "private_vault", "backup_vault"):
        if vault in doc:
            checker.vault(doc, vault, locations)
    if kind == "server":
        checker.backup_keychain_policy(doc)
    vaults = [doc[v] for v in VAULT_TYPE_NAMES if isinstance(doc.get(v), dict)]
    uses_s3 = any(isinstance(v.get("storage"), dict) and "s3" in v["storage"] for v in vaults)
    uses_kms = any(isinstance(v.get("keychain"), dict) and "aws_kms" in v["keychain"] for v in vaults)
    if (uses_s3 or uses_kms) and "aws" not in doc:
        checker.err("aws", "required section is missing: S3 storage and the AWS KMS keychain need [aws] region")
    for section, method in (("telemetry", checker.telemetry), ("rate_limiter_conf", checker.rate_limiter),
                            ("bandwidth_benchmark", checker.bandwidth_benchmark),
                            ("internal_config", checker.internal_config), ("migration", checker.migration)):
        if kind == "server" and section in doc:
            method(doc)
    if "mock_enclave" in doc:
        checker.mock_enclave(doc)
    return checker.errors, checker.warnings


class _PartialChecker(_Checker):
    """The same rules on a part of a document: its required keys come from the rest."""

    def table(self, value, path, spec, ignore_unknown=False):
        return _Checker.table(self, value, path, (spec[0], ()), ignore_unknown)


def check_partial(doc, policy=False):
    """Problems of ``doc``, a part of a server configuration merged into a built one (the role's
    overrides, or a few settings): unknown sections and keys, and the type and range of each value
    it holds, by the rules of :func:`check`. Keys it leaves out are not asked for, and rules across
    sections (vault prefixes, [aws] for S3) are left to the check of the whole document.
    Returns ``(errors, warnings)``.
    """
    checker = _PartialChecker(policy=policy, kind="server")
    if checker.table(doc, "", SERVER_TOP) is None:
        return checker.errors, checker.warnings
    service_port = checker.service(doc) if "service" in doc else None
    if "threshold" in doc:
        checker.threshold(doc, service_port)
    if "enclave_bootstrap" in doc:
        checker.enclave_bootstrap(doc)
    if "aws" in doc:
        checker.aws(doc)
    for vault in ("public_vault", "private_vault", "backup_vault"):
        if vault in doc:
            checker.vault(doc, vault, {})
    for section, method in (("telemetry", checker.telemetry), ("rate_limiter_conf", checker.rate_limiter),
                            ("bandwidth_benchmark", checker.bandwidth_benchmark),
                            ("internal_config", checker.internal_config), ("migration", checker.migration)):
        if section in doc:
            method(doc)
    if "mock_enclave" in doc:
        checker.boolean(doc, "mock_enclave", "")
    return checker.errors, checker.warnings


def check_config(doc, environment=None, require_threshold=True, kind="server", policy=True):
    """Return the list of problems of a parsed configuration (empty when it is valid)."""
    return check(doc, environment=environment, require_threshold=require_threshold, kind=kind, policy=policy)[0]


def parse_toml(text):
    """Parse TOML text; raise KmsConfigError naming the syntax problem."""
    if _toml is None:
        raise KmsConfigError(["toml: no TOML parser available (Python >= 3.11 ships tomllib; else install tomli)"])
    if not isinstance(text, str):
        raise KmsConfigError(["toml: expected text (got %s)" % type(text).__name__])
    try:
        return _toml.loads(text)
    except Exception as exc:  # tomllib.TOMLDecodeError
        raise KmsConfigError(["toml: not valid TOML: %s" % exc])


def validate_text(text, environment=None, require_threshold=True, kind="server", policy=True, warnings=None):
    """Parse and check; return the document or raise KmsConfigError with every problem.

    warnings: a list to which the warnings are appended (optional).
    """
    doc = parse_toml(text)
    errors, found = check(doc, environment=environment, require_threshold=require_threshold, kind=kind, policy=policy)
    if warnings is not None:
        warnings.extend(found)
    if errors:
        raise KmsConfigError(errors)
    return doc


def summarize(doc):
    """A short, secret-free summary of a valid configuration (for module results)."""
    threshold = doc.get("threshold") or {}
    peers = threshold.get("peers") or []
    tls = threshold.get("tls") or {}

    def storage_of(vault):
        storage = (doc.get(vault) or {}).get("storage") or {}
        for kind, body in storage.items():
            return {"kind": kind, "location": body.get("bucket") or body.get("path") or "", "prefix": body.get("prefix", "")}
        return None

    def keychain_of(vault):
        return next(iter((doc.get(vault) or {}).get("keychain") or {}), "none")

    return {
        "kind": "keygen" if "keygen" in doc else "server",
        "n": len(peers),
        "t": threshold.get("threshold"),
        "my_id": threshold.get("my_id"),
        "client_port": (doc.get("service") or {}).get("listen_port"),
        "peer_port": threshold.get("listen_port"),
        "tls": next(iter(tls), "none"),
        "decryption_mode": threshold.get("decryption_mode"),
        "sections": sorted(k for k, v in doc.items() if isinstance(v, dict)),
        "vaults": {v: storage_of(v) for v in VAULT_TYPE_NAMES if v in doc},
        "keychain": keychain_of("private_vault") == "aws_kms",
        "keychains": {v: keychain_of(v) for v in VAULT_TYPE_NAMES if v in doc},
        "role_arn": bool((doc.get("aws") or {}).get("role_arn")),
        "enclave_bootstrap": "enclave_bootstrap" in doc,
    }
