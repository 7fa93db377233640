"""Read a KMS server configuration (parsed ``threshold.toml``) the way the real server does.

Written from the reference facts about the server, independently of the collection's own
checker: the simulator refuses what the server refuses (unknown keys outside
``[rate_limiter_conf]`` and ``[telemetry.batch]``, missing required keys, values below the
server's minima, ``storage_cache_size``, n != 3t + 1) and accepts what it accepts
(``[enclave_bootstrap]``, ``[migration]``, a partial ``[threshold.core_to_core_net]``, a
``my_id`` given as a string or absent, ...). ``KMS_CORE__SECTION__KEY`` environment entries
override the file like the server's ``KMS_CORE`` prefix with the ``__`` separator.
"""
import copy
import re

from . import proto


class ConfigError(ValueError):
    """The configuration would not start a real KMS server (or lacks what the simulator needs)."""

    def __init__(self, errors):
        self.errors = list(errors) if isinstance(errors, (list, tuple)) else [str(errors)]
        super(ConfigError, self).__init__("; ".join(self.errors))


# ----------------------------------------------------------------------------- value rules

class _Rule(object):
    def check(self, value, path, errors):
        raise NotImplementedError


class Int(_Rule):
    def __init__(self, minimum=None, maximum=None, digits_string=False):
        self.minimum, self.maximum, self.digits_string = minimum, maximum, digits_string

    def check(self, value, path, errors):
        if self.digits_string and isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append("%s: must be an integer, got %r" % (path, value))
            return
        if self.minimum is not None and value < self.minimum:
            errors.append("%s: must be at least %d, got %d" % (path, self.minimum, value))
        if self.maximum is not None and value > self.maximum:
            errors.append("%s: must be at most %d, got %d" % (path, self.maximum, value))


class Num(_Rule):
    def check(self, value, path, errors):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            errors.append("%s: must be a non-negative number, got %r" % (path, value))


class Str(_Rule):
    def __init__(self, choices=None, pattern=None, what=None):
        self.choices, self.pattern, self.what = choices, pattern, what

    def check(self, value, path, errors):
        if not isinstance(value, str):
            errors.append("%s: must be a string, got %r" % (path, value))
        elif self.choices and value not in self.choices:
            errors.append("%s: must be one of %s, got %r" % (path, ", ".join(self.choices), value))
        elif self.pattern and not re.match(self.pattern, value):
            errors.append("%s: must be %s, got %r" % (path, self.what, value))


class Bool(_Rule):
    def check(self, value, path, errors):
        if not isinstance(value, bool):
            errors.append("%s: must be true or false, got %r" % (path, value))


class Anything(_Rule):
    def check(self, value, path, errors):
        pass


class List(_Rule):
    def __init__(self, item):
        self.item = item

    def check(self, value, path, errors):
        if not isinstance(value, list):
            errors.append("%s: must be an array, got %r" % (path, value))
            return
        for index, item in enumerate(value):
            self.item.check(item, "%s[%d]" % (path, index), errors)


class Table(_Rule):
    """required/optional: {key: rule}; open: unknown keys are ignored (as the server does there);
    removed: {key: why} keys the server refuses with a reason; one_of: exactly one of these keys."""

    def __init__(self, required=None, optional=None, open=False, removed=None, one_of=None):
        self.required = required or {}
        self.optional = optional or {}
        self.open = open
        self.removed = removed or {}
        self.one_of = one_of

    def check(self, value, path, errors):
        if not isinstance(value, dict):
            errors.append("%s: must be a table, got %r" % (path or "configuration", value))
            return
        where = "[%s]" % path if path else "the top level"
        for key in sorted(value):
            sub = "%s.%s" % (path, key) if path else key
            if key in self.removed:
                errors.append("%s: %s" % (sub, self.removed[key]))
            elif key in self.required or key in self.optional:
                (self.required.get(key) or self.optional[key]).check(value[key], sub, errors)
            elif not self.open:
                errors.append("%s: unknown key (the server refuses unknown keys in %s)" % (sub, where))
        for key in sorted(self.required):
            if key not in value:
                errors.append("%s: required key missing" % ("%s.%s" % (path, key) if path else key))
        if self.one_of:
            present = [k for k in self.one_of if k in value]
            if len(present) != 1:
                errors.append("%s: exactly one of %s must be set, got %s"
                              % (path, ", ".join(self.one_of), ", ".join(present) or "none"))


PORT = Int(1, 65535)
HEX96 = Str(pattern=r"^[0-9a-f]{96}$", what="96 lower-case hex characters")
FILE_OR_PEM = Table(optional={"path": Str(), "pem": Str()}, one_of=("path", "pem"))
COUNT = Int(0)

VAULT = Table(
    required={"storage": Table(optional={
        "s3": Table(required={"bucket": Str()}, optional={"prefix": Str()}),
        "file": Table(required={"path": Str()}, optional={"prefix": Str()}),
        "ram": Table()}, one_of=("s3", "file", "ram"))},
    optional={"keychain": Table(optional={
        "aws_kms": Table(required={"root_key_id": Str()},
                         optional={"root_key_spec": Str(choices=("symm", "asymm"))}),
        "secret_sharing": Anything()}, one_of=("aws_kms", "secret_sharing"))})

AWS = Table(required={"region": Str()},
            optional={k: Str() for k in ("role_arn", "imds_endpoint", "sts_endpoint", "s3_endpoint",
                                         "awskms_endpoint")})

PEER = Table(required={"party_id": Int(1), "address": Str(), "port": PORT},
             optional={"mpc_identity": Str(), "tls_cert": FILE_OR_PEM, "verification_address": Str()})

CORE_TO_CORE_NET = Table(optional=dict(
    {"message_limit": Int(1), "max_en_decode_message_size": Int(1024), "multiplier": Num()},
    **{k: Num() for k in ("max_interval", "max_elapsed_time", "initial_interval_ms", "network_timeout",
                          "network_timeout_bk", "network_timeout_bk_sns", "session_update_interval_secs",
                          "session_cleanup_interval_secs", "discard_inactive_sessions_interval",
                          "max_waiting_time_for_message_queue", "max_opened_inactive_sessions_per_party",
                          "max_future_rounds", "max_buffered_future_msgs")}))

TLS = Table(optional={
    "manual": Table(required={"cert": FILE_OR_PEM, "key": FILE_OR_PEM}),
    "auto": Table(required={"trusted_releases": List(Table(required={"pcr0": HEX96, "pcr1": HEX96,
                                                                      "pcr2": HEX96}))},
                  optional={"attest_private_vault_root_key": Bool(), "renew_slack_after_expiration": COUNT,
                            "renew_fail_retry_timeout": COUNT, "eif_signing_cert": Anything()}),
}, one_of=("manual", "auto"))

DECRYPTION_MODES = ("NoiseFloodSmall", "NoiseFloodLarge", "BitDecSmall", "BitDecLarge")

THRESHOLD = Table(
    required={"listen_address": Str(), "listen_port": PORT, "threshold": Int(0), "dec_capacity": COUNT,
              "min_dec_cache": COUNT, "decryption_mode": Str(choices=DECRYPTION_MODES)},
    optional={"my_id": Int(1, digits_string=True), "num_sessions_preproc": Int(), "peers": List(PEER),
              "tls": TLS, "core_to_core_net": CORE_TO_CORE_NET})

SERVER = Table(
    required={
        "service": Table(required={"listen_address": Str(), "listen_port": PORT, "timeout_secs": Int(1),
                                   "grpc_max_message_size": Int(1, 2 ** 31 - 1)}),
    },
    optional={
        "threshold": THRESHOLD,
        "aws": AWS,
        "public_vault": VAULT, "private_vault": VAULT, "backup_vault": VAULT,
        "telemetry": Table(optional={"tracing_service_name": Str(), "tracing_endpoint": Str(),
                                     "tracing_otlp_timeout_ms": COUNT, "metrics_bind_address": Str(),
                                     "enable_sys_metrics": Bool(), "refresh_interval_ms": COUNT,
                                     "batch": Table(open=True)}),
        "rate_limiter_conf": Table(open=True, optional={k: Int(1) for k in (
            "bucket_size", "pub_decrypt", "user_decrypt", "crsgen", "preproc", "keygen", "new_epoch")}),
        "internal_config": Table(optional={"num_tokio_threads": Int(1), "num_rayon_threads": Int(1)}),
        "enclave_bootstrap": Table(required={"web_identity_token_port": PORT}),
        "migration": Table(optional={"context_associations": List(Table(
            required={"context_id": Str(), "epoch_ids": List(Str())}))}),
        "bandwidth_benchmark": Anything(),
        "mock_enclave": Bool(),
    },
    removed={"storage_cache_size": "removed after 0.13; the server refuses it"})


def vault_kinds(config):
    """Storage kind of each configured vault: {"private_vault": "s3", ...}."""
    kinds = {}
    for section in ("public_vault", "private_vault", "backup_vault"):
        storage = (config.get(section) or {}).get("storage") or {}
        if isinstance(storage, dict) and storage:
            kinds[section] = sorted(storage)[0]
    return kinds


def check_server_config(config):
    """Errors the real server would give for this configuration ([] when it starts)."""
    errors = []
    SERVER.check(config, "", errors)
    if not errors and "aws" not in config and "s3" in vault_kinds(config).values():
        errors.append("aws: required when a vault uses S3 storage ([aws] region)")
    return errors


# ----------------------------------------------------------------------------- environment

def _coerce(text):
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def apply_env_overrides(config, env):
    """Copy of ``config`` with ``KMS_CORE__A__B=value`` entries of ``env`` applied (keys lower-cased)."""
    config = copy.deepcopy(config)
    for name, value in sorted((env or {}).items()):
        if not name.startswith("KMS_CORE__"):
            continue
        path = [p.lower() for p in name[len("KMS_CORE__"):].split("__") if p]
        if not path:
            continue
        node = config
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError("%s: cannot override inside a non-table value" % name)
        node[path[-1]] = _coerce(str(value))
    return config


# ----------------------------------------------------------------------------- what the node uses

class Peer(object):
    def __init__(self, party_id, address, port, mpc_identity, tls_cert=None):
        self.party_id = party_id
        self.address = address
        self.port = port
        self.mpc_identity = mpc_identity
        self.tls_cert = tls_cert      # {"path": ...} or {"pem": ...} or None

    @property
    def endpoint(self):
        return "%s:%d" % (self.address, self.port)

    def __repr__(self):
        return "Peer(%d, %s)" % (self.party_id, self.endpoint)


class Vault(object):
    """Where one vault lives: kind s3 (bucket, prefix), file (path, prefix) or ram."""

    def __init__(self, kind, prefix="", bucket=None, path=None, keychain=None):
        self.kind = kind
        self.prefix = prefix
        self.bucket = bucket
        self.path = path
        self.keychain = keychain

    def key(self, *parts):
        """Object key under the vault prefix; an empty prefix gives keys starting with '/'."""
        return "/".join((self.prefix,) + parts)

    def describe(self):
        if self.kind == "s3":
            return "s3 storage, bucket '%s', prefix '%s'" % (self.bucket, self.prefix)
        if self.kind == "file":
            return "file storage with root_path '%s/%s'" % (self.path, self.prefix)
        return "ram storage"


def vault_of(config, section):
    table = config.get(section)
    if not isinstance(table, dict):
        return None
    storage = table.get("storage") or {}
    keychain = sorted(table.get("keychain") or {})[:1]
    keychain = keychain[0] if keychain else None
    if "s3" in storage:
        return Vault("s3", prefix=storage["s3"].get("prefix", ""), bucket=storage["s3"]["bucket"], keychain=keychain)
    if "file" in storage:
        return Vault("file", prefix=storage["file"].get("prefix", ""), path=storage["file"]["path"],
                     keychain=keychain)
    return Vault("ram", keychain=keychain)


def read_pem(source, what):
    """Bytes of a {path|pem} table."""
    if "pem" in source:
        return source["pem"].encode("utf-8")
    try:
        with open(source["path"], "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError("%s: cannot read %s: %s" % (what, source["path"], exc.strerror or exc))


class SimConfig(object):
    """A server configuration checked by the server's rules, with what the simulator takes from it."""

    def __init__(self, config, env=None, strict=True):
        config = apply_env_overrides(config, env)
        errors = check_server_config(config)
        if strict and errors:
            raise ConfigError(errors)
        self.raw = config
        self.warnings = []
        threshold = config.get("threshold")
        if not isinstance(threshold, dict):
            raise ConfigError("threshold: the simulator runs threshold nodes only ([threshold] is missing)")
        try:
            self.client_port = int(config["service"]["listen_port"])
            self.peer_port = int(threshold["listen_port"])
            self.t = int(threshold["threshold"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError("missing or invalid key %s" % exc)
        my_id = threshold.get("my_id")
        self.party_id = int(my_id) if my_id is not None else None
        peers = []
        for peer in threshold.get("peers") or []:
            peers.append(Peer(int(peer["party_id"]), str(peer["address"]), int(peer["port"]),
                              str(peer.get("mpc_identity") or peer["address"]), peer.get("tls_cert")))
        ids = [p.party_id for p in peers]
        duplicates = sorted(set(i for i in ids if ids.count(i) > 1))
        if duplicates:
            raise ConfigError("threshold.peers: party_id %s listed twice" % duplicates)
        self.n = len(peers)
        if peers and self.n != 3 * self.t + 1:
            raise ConfigError("threshold.peers: %d parties but threshold = %d; the server needs n = 3t + 1 "
                              "exactly (t = %d needs %d parties)" % (self.n, self.t, self.t, 3 * self.t + 1))
        if self.party_id is not None and peers and self.party_id not in ids:
            self.warnings.append("threshold.my_id %d is not among the peers' party_id %s"
                                 % (self.party_id, sorted(ids)))
        self.all_peers = sorted(peers, key=lambda p: p.party_id)
        self.peers = [p for p in self.all_peers if p.party_id != self.party_id]
        self.me = next((p for p in self.all_peers if p.party_id == self.party_id), None)
        aws = config.get("aws") or {}
        self.region = aws.get("region")
        self.s3_endpoint = aws.get("s3_endpoint")
        self.private_vault = vault_of(config, "private_vault") or Vault("ram")
        self.public_vault = vault_of(config, "public_vault") or Vault("ram")
        backup = vault_of(config, "backup_vault")
        if backup is not None and backup.keychain is None:
            self.warnings.append("backup_vault has no keychain: the server copies private material there "
                                 "in plaintext")
        tls = threshold.get("tls") or {}
        self.tls_mode = sorted(tls)[0] if tls else None
        self.tls_manual = tls.get("manual")
        self.default_context_id = proto.INIT_CONTEXT_ID
