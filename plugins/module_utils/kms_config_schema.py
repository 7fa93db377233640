# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Strict check of a KMS server configuration (``threshold.toml``), release line 0.15.

The KMS server refuses to start on one unknown key in any section, on a missing required
key, or when the peer list does not have exactly 3t + 1 entries. This module applies those
rules (and a few of the collection's own safety rules, marked "policy" below) to the parsed
document, so a bad configuration fails the Ansible run before anything is applied.

Pure Python, no Ansible: the module ``kms_config_check``, the role ``kms_config`` and the unit
tests call it directly. Every problem is reported as ``<key path>: <rule>``, e.g.
``threshold.peers[2].party_id: must be unique (also used by threshold.peers[0])``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

try:  # Python >= 3.11
    import tomllib as _toml
except ImportError:  # pragma: no cover - older controllers with the tomli backport
    try:
        import tomli as _toml
    except ImportError:
        _toml = None

DECRYPTION_MODES = ("NoiseFloodSmall", "NoiseFloodLarge", "BitDecSmall", "BitDecLarge")
ROOT_KEY_SPECS = ("symm", "asymm")
ENVIRONMENTS = ("testnet", "mainnet")
VAULT_TYPE_NAMES = {"public_vault": "PUB", "private_vault": "PRIV", "backup_vault": "BACKUP"}
PCR_RE = re.compile(r"^[0-9a-f]{96}$")
ETH_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
URL_RE = re.compile(r"^https?://[^\s/]+(/\S*)?$")
BIND_RE = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")
PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_/-]*$")
MAX_GRPC_MESSAGE = 2 ** 31 - 1

# (allowed keys, required keys) per table. Sub-tables with structure of their own are
# checked by dedicated functions.
TOP_LEVEL = (
    {"service", "telemetry", "aws", "public_vault", "private_vault", "backup_vault",
     "rate_limiter_conf", "threshold", "internal_config", "mock_enclave"},
    ("service",),
)
SERVICE = ({"listen_address", "listen_port", "timeout_secs", "grpc_max_message_size"},
           ("listen_address", "listen_port", "timeout_secs", "grpc_max_message_size"))
THRESHOLD = (
    {"listen_address", "listen_port", "threshold", "dec_capacity", "min_dec_cache",
     "decryption_mode", "my_id", "num_sessions_preproc", "peers", "tls", "core_to_core_net"},
    ("listen_address", "listen_port", "threshold", "dec_capacity", "min_dec_cache", "decryption_mode"),
)
PEER = ({"party_id", "address", "port", "mpc_identity", "tls_cert", "verification_address"},
        ("party_id", "address", "port"))
CORE_TO_CORE_NET = (
    {"message_limit", "multiplier", "max_interval", "max_elapsed_time", "initial_interval_ms",
     "network_timeout", "network_timeout_bk", "network_timeout_bk_sns",
     "max_en_decode_message_size", "session_update_interval_secs",
     "session_cleanup_interval_secs", "discard_inactive_sessions_interval",
     "max_waiting_time_for_message_queue", "max_opened_inactive_sessions_per_party"},
    ("message_limit", "multiplier", "max_interval", "network_timeout", "network_timeout_bk",
     "network_timeout_bk_sns", "max_en_decode_message_size"),
)
TLS_AUTO = ({"trusted_releases", "attest_private_vault_root_key", "renew_slack_after_expiration",
             "renew_fail_retry_timeout"}, ("trusted_releases",))
AWS = ({"region", "role_arn", "imds_endpoint", "sts_endpoint", "s3_endpoint", "awskms_endpoint"},
       ("region",))
VAULT = ({"storage", "storage_cache_size", "keychain"}, ("storage",))
TELEMETRY = ({"tracing_service_name", "tracing_endpoint", "tracing_otlp_timeout_ms",
              "metrics_bind_address", "enable_sys_metrics", "refresh_interval_ms", "batch"}, ())
TELEMETRY_BATCH = ({"max_queue_size", "max_export_batch_size", "scheduled_delay_ms"}, ())
RATE_LIMITER_KEYS = ("bucket_size", "pub_decrypt", "user_decrypt", "crsgen", "preproc", "keygen", "new_epoch")
RATE_LIMITER = (set(RATE_LIMITER_KEYS), RATE_LIMITER_KEYS)
INTERNAL_CONFIG = ({"num_tokio_threads", "num_rayon_threads"}, ("num_tokio_threads", "num_rayon_threads"))


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


class _Checker(object):
    def __init__(self, environment=None):
        self.errors = []
        self.environment = environment

    def err(self, path, rule):
        self.errors.append("%s: %s" % (path, rule))

    # --- generic helpers -------------------------------------------------------------------
    def table(self, value, path, spec):
        """Check a table's keys; return it (or None when it is not a table)."""
        allowed, required = spec
        if not isinstance(value, dict):
            self.err(path, "must be a table (got %s)" % _type_name(value))
            return None
        for key in sorted(set(value) - allowed):
            self.err(_join(path, key), "unknown key; the server rejects it (allowed in [%s]: %s)"
                     % (path or "top level", ", ".join(sorted(allowed))))
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
        if maximum is not None and value > maximum:
            self.err(where, "must be at most %d (got %d)" % (maximum, value))
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

    def string(self, table, key, path, pattern=None, rule=None, choices=None):
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
        if choices is not None and value not in choices:
            self.err(where, "must be one of %s (got %r)" % (", ".join(choices), value))
            return None
        if pattern is not None and not pattern.match(value):
            self.err(where, "%s (got %r)" % (rule, value))
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
        elif kind == "pem" and "-----BEGIN " not in content:
            self.err(_join(path, kind), "must hold a PEM-encoded %s (no '-----BEGIN' line found)" % what)

    # --- sections ---------------------------------------------------------------------------
    def service(self, doc):
        table = self.table(doc["service"], "service", SERVICE)
        if table is None:
            return None
        self.string(table, "listen_address", "service")
        port = self.integer(table, "listen_port", "service", 1, 65535)
        self.integer(table, "timeout_secs", "service", 1)
        self.integer(table, "grpc_max_message_size", "service", 1, MAX_GRPC_MESSAGE)
        return port

    def threshold(self, doc, service_port):
        table = self.table(doc["threshold"], "threshold", THRESHOLD)
        if table is None:
            return
        path = "threshold"
        self.string(table, "listen_address", path)
        port = self.integer(table, "listen_port", path, 1, 65535)
        if port is not None and port == service_port:
            self.err("threshold.listen_port", "must differ from service.listen_port (both are %d)" % port)
        t = self.integer(table, "threshold", path, 1, 255)
        capacity = self.integer(table, "dec_capacity", path, 0)
        cache = self.integer(table, "min_dec_cache", path, 0)
        if capacity is not None and cache is not None and cache > capacity:
            self.err("threshold.min_dec_cache", "must not exceed threshold.dec_capacity (%d > %d)" % (cache, capacity))
        self.string(table, "decryption_mode", path, choices=DECRYPTION_MODES)
        my_id = self.integer(table, "my_id", path, 1)
        self.integer(table, "num_sessions_preproc", path, 2, 65535)
        tls_on = "tls" in table
        if tls_on:
            self.tls(table["tls"], "threshold.tls")
        if "core_to_core_net" in table:
            self.core_to_core_net(table["core_to_core_net"])
        if "peers" in table:
            self.peers(table["peers"], t, my_id, tls_on)

    def peers(self, peers, t, my_id, tls_on):
        path = "threshold.peers"
        if not isinstance(peers, list) or not all(isinstance(p, dict) for p in peers):
            self.err(path, "must be an array of tables ([[threshold.peers]])")
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
            self.string(peer, "verification_address", where, ETH_ADDRESS_RE, "must be an Ethereum address 0x + 40 hex digits")
            for field, value, rule in (
                ("party_id", pid, "party ids must be unique"),
                ("mpc_identity", identity or address, "mpc_identity (defaults to address) must be unique: it is the CN peers check"),
                ("port", (address, port) if address and port else None, "(address, port) must be unique"),
            ):
                if value is None:
                    continue
                key = (field, value)
                if key in owners:
                    self.err(_join(where, field), "%s (also used by %s)" % (rule, owners[key]))
                else:
                    owners[key] = where
        if my_id is None:
            self.err("threshold.my_id", "required when threshold.peers is set (this party's id in the peer list)")
        elif ids and my_id not in ids:
            self.err("threshold.my_id", "must be the party_id of one of the peers (got %d; peers: %s)"
                     % (my_id, ", ".join(str(i) for i in sorted(ids))))

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
                        self.err(_join(path, "manual.key.pem"), "not allowed (policy): the configuration is published "
                                 "as a ConfigMap; mount the key from a Secret and use key.path")
        elif kind == "auto":
            where = _join(path, "auto")
            table = self.table(body, where, TLS_AUTO)
            if table is None:
                return
            self.boolean(table, "attest_private_vault_root_key", where)
            self.integer(table, "renew_slack_after_expiration", where, 0)
            self.integer(table, "renew_fail_retry_timeout", where, 0)
            releases = table.get("trusted_releases")
            if "trusted_releases" not in table:
                return
            if not isinstance(releases, list) or not releases:
                self.err(_join(where, "trusted_releases"), "must be a non-empty array of {pcr0, pcr1, pcr2}")
                return
            for index, release in enumerate(releases):
                rel_path = "%s.trusted_releases[%d]" % (where, index)
                rel = self.table(release, rel_path, ({"pcr0", "pcr1", "pcr2"}, ("pcr0", "pcr1", "pcr2")))
                if rel is None:
                    continue
                for pcr in ("pcr0", "pcr1", "pcr2"):
                    self.string(rel, pcr, rel_path, PCR_RE,
                                "must be 96 lowercase hexadecimal characters (a SHA-384 measurement)")

    def core_to_core_net(self, value):
        path = "threshold.core_to_core_net"
        table = self.table(value, path, CORE_TO_CORE_NET)
        if table is None:
            return
        for key in sorted(CORE_TO_CORE_NET[0]):
            if key == "multiplier":
                self.number(table, key, path, 1)
            else:
                self.integer(table, key, path, 0)

    def aws(self, doc):
        table = self.table(doc["aws"], "aws", AWS)
        if table is None:
            return
        self.string(table, "region", "aws")
        self.string(table, "role_arn", "aws", re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"), "must be an IAM role ARN")
        for key in ("imds_endpoint", "sts_endpoint", "s3_endpoint", "awskms_endpoint"):
            self.string(table, key, "aws", URL_RE, "must be an http(s) URL")

    def vault(self, doc, name, locations):
        table = self.table(doc[name], name, VAULT)
        if table is None:
            return
        self.integer(table, "storage_cache_size", name, 1)
        if "storage" in table:
            self.storage(table["storage"], name, locations)
        if "keychain" in table:
            if name == "public_vault":
                self.err(_join(name, "keychain"), "not allowed on the public vault (policy: only private and backup material is encrypted with the enclave key)")
            else:
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
            self.err(_join(where, "prefix"), "required (policy): set it explicitly, by convention %s-p<id>; "
                     "a missing prefix silently falls back to %r" % (VAULT_TYPE_NAMES[vault], VAULT_TYPE_NAMES[vault]))
            return
        prefix = table["prefix"]
        if not isinstance(prefix, str) or not prefix:
            self.err(_join(where, "prefix"), "must be a non-empty string (an empty prefix makes object keys start with '/')")
            return
        if not PREFIX_RE.match(prefix):
            self.err(_join(where, "prefix"), "use letters, digits, '-', '_' and '/' only, starting with a letter or digit (got %r)" % prefix)
        for other, type_name in sorted(VAULT_TYPE_NAMES.items()):
            if other != vault and prefix.startswith(type_name):
                self.err(_join(where, "prefix"), "must not start with another vault's type name %r (got %r)" % (type_name, prefix))
        if location is not None:
            key = (kind, location, prefix.rstrip("/"))
            if key in locations:
                self.err(_join(where, "prefix"), "%s and %s share the same %s and prefix %r; their objects would collide"
                         % (locations[key], vault, "bucket" if kind == "s3" else "path", prefix))
            else:
                locations[key] = vault

    def keychain(self, value, path):
        kind, body = self.one_of(value, path, ("aws_kms",))
        if kind is None:
            return
        where = _join(path, kind)
        table = self.table(body, where, ({"root_key_id", "root_key_spec"}, ("root_key_id", "root_key_spec")))
        if table is not None:
            self.string(table, "root_key_id", where)
            self.string(table, "root_key_spec", where, choices=ROOT_KEY_SPECS)

    def telemetry(self, doc):
        path = "telemetry"
        table = self.table(doc[path], path, TELEMETRY)
        if table is None:
            return
        self.string(table, "tracing_service_name", path)
        self.string(table, "tracing_endpoint", path, URL_RE, "must be an http(s) URL")
        self.integer(table, "tracing_otlp_timeout_ms", path, 1)
        bind = self.string(table, "metrics_bind_address", path, BIND_RE, "must be host:port, e.g. 0.0.0.0:9646")
        if bind is not None and not 1 <= int(BIND_RE.match(bind).group(2)) <= 65535:
            self.err(_join(path, "metrics_bind_address"), "port must be in 1..65535 (got %r)" % bind)
        self.boolean(table, "enable_sys_metrics", path)
        self.integer(table, "refresh_interval_ms", path, 1)
        if "batch" in table:
            batch = self.table(table["batch"], "telemetry.batch", TELEMETRY_BATCH)
            if batch is not None:
                for key in sorted(TELEMETRY_BATCH[0]):
                    self.integer(batch, key, "telemetry.batch", 1)

    def rate_limiter(self, doc):
        path = "rate_limiter_conf"
        value = doc[path]
        if isinstance(value, dict):
            missing = [k for k in RATE_LIMITER_KEYS if k not in value]
            if missing and len(missing) < len(RATE_LIMITER_KEYS):
                self.err(path, "all-or-nothing: when the section is present every key is required "
                         "(%s), and all parties must use the same values" % ", ".join(RATE_LIMITER_KEYS))
        table = self.table(value, path, RATE_LIMITER)
        if table is None:
            return
        self.integer(table, "bucket_size", path, 1)
        for key in RATE_LIMITER_KEYS[1:]:
            self.integer(table, key, path, 0)

    def internal_config(self, doc):
        table = self.table(doc["internal_config"], "internal_config", INTERNAL_CONFIG)
        if table is not None:
            self.integer(table, "num_tokio_threads", "internal_config", 1)
            self.integer(table, "num_rayon_threads", "internal_config", 1)

    def mock_enclave(self, doc):
        value = self.boolean(doc, "mock_enclave", "")
        if value is True and self.environment == "mainnet":
            self.err("mock_enclave", "must never be true on mainnet (it exists for tests only)")


def _join(path, key):
    return "%s.%s" % (path, key) if path else key


def check_config(doc, environment=None, require_threshold=True):
    """Return the list of problems of a parsed configuration (empty when it is valid).

    environment: ``testnet`` / ``mainnet`` / None; mainnet forbids ``mock_enclave = true``.
    require_threshold: a party of a threshold network needs [threshold] and both vaults.
    """
    if environment not in (None,) + ENVIRONMENTS:
        return ["environment: must be one of %s (got %r)" % (", ".join(ENVIRONMENTS), environment)]
    checker = _Checker(environment)
    if checker.table(doc, "", TOP_LEVEL) is None:
        return checker.errors
    if require_threshold:
        for key in ("threshold", "public_vault", "private_vault"):
            if key not in doc:
                checker.err(key, "required section is missing (a threshold party needs it)")
    service_port = checker.service(doc) if "service" in doc else None
    if "threshold" in doc:
        checker.threshold(doc, service_port)
    if "aws" in doc:
        checker.aws(doc)
    locations = {}
    for vault in ("public_vault", "private_vault", "backup_vault"):
        if vault in doc:
            checker.vault(doc, vault, locations)
    uses_s3 = any(isinstance(doc.get(v), dict) and isinstance(doc[v].get("storage"), dict) and "s3" in doc[v]["storage"]
                  for v in VAULT_TYPE_NAMES)
    uses_kms = isinstance(doc.get("private_vault"), dict) and "keychain" in doc["private_vault"]
    if (uses_s3 or uses_kms) and "aws" not in doc:
        checker.err("aws", "required section is missing: S3 storage and the AWS KMS keychain need [aws] region")
    if "telemetry" in doc:
        checker.telemetry(doc)
    if "rate_limiter_conf" in doc:
        checker.rate_limiter(doc)
    if "internal_config" in doc:
        checker.internal_config(doc)
    if "mock_enclave" in doc:
        checker.mock_enclave(doc)
    return checker.errors


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


def validate_text(text, environment=None, require_threshold=True):
    """Parse and check; return the document or raise KmsConfigError with every problem."""
    doc = parse_toml(text)
    errors = check_config(doc, environment=environment, require_threshold=require_threshold)
    if errors:
        raise KmsConfigError(errors)
    return doc


def summarize(doc):
    """A short, secret-free summary of a valid configuration (for module results)."""
    threshold = doc.get("threshold") or {}
    peers = threshold.get("peers") or []
    tls = threshold.get("tls") or {}
    private = doc.get("private_vault") or {}

    def storage_of(vault):
        storage = (doc.get(vault) or {}).get("storage") or {}
        for kind, body in storage.items():
            return {"kind": kind, "location": body.get("bucket") or body.get("path") or "", "prefix": body.get("prefix", "")}
        return None

    return {
        "n": len(peers),
        "t": threshold.get("threshold"),
        "my_id": threshold.get("my_id"),
        "client_port": (doc.get("service") or {}).get("listen_port"),
        "peer_port": threshold.get("listen_port"),
        "tls": next(iter(tls), "none"),
        "decryption_mode": threshold.get("decryption_mode"),
        "sections": sorted(k for k, v in doc.items() if isinstance(v, dict)),
        "vaults": {v: storage_of(v) for v in VAULT_TYPE_NAMES if v in doc},
        "keychain": "aws_kms" in (private.get("keychain") or {}),
    }
