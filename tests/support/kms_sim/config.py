"""Read a KMS server configuration (parsed ``threshold.toml``) the way the simulator needs it.

The simulator refuses what the real server refuses (unknown keys, missing required keys,
n != 3t + 1) by running the collection's own checker, ``kms_config_schema.check_config``,
so a configuration rendered by the ``kms_config`` role is exercised here as well. It also
applies ``KMS_CORE__SECTION__KEY`` environment overrides like the server does (the
StatefulSet may set ``KMS_CORE__THRESHOLD__MY_ID`` per pod).
"""
import copy

from ._collection import kms_config_schema, kms_proto


class ConfigError(ValueError):
    """The configuration would not start a real KMS server (or lacks what the simulator needs)."""

    def __init__(self, errors):
        self.errors = list(errors) if isinstance(errors, (list, tuple)) else [str(errors)]
        super(ConfigError, self).__init__("; ".join(self.errors))


def _coerce(text):
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def apply_env_overrides(config, env):
    """Return a copy of ``config`` with ``KMS_CORE__A__B=value`` entries of ``env`` applied."""
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
        node[path[-1]] = _coerce(value)
    return config


class Peer(object):
    def __init__(self, party_id, address, port, mpc_identity):
        self.party_id = party_id
        self.address = address
        self.port = port
        self.mpc_identity = mpc_identity

    @property
    def endpoint(self):
        return "%s:%d" % (self.address, self.port)

    def __repr__(self):
        return "Peer(%d, %s)" % (self.party_id, self.endpoint)


class Vault(object):
    """Where one vault lives: kind s3 (bucket, prefix), file (path, prefix) or ram."""

    def __init__(self, kind, prefix="", bucket=None, path=None):
        self.kind = kind
        self.prefix = prefix
        self.bucket = bucket
        self.path = path

    def key(self, *parts):
        """Object key under the vault prefix; an empty prefix gives keys starting with '/'."""
        return "/".join((self.prefix,) + parts)

    def describe(self):
        if self.kind == "s3":
            return "s3 storage, bucket '%s', prefix '%s'" % (self.bucket, self.prefix)
        if self.kind == "file":
            return "file storage with root_path '%s/%s'" % (self.path, self.prefix)
        return "ram storage"


def _vault(config, section):
    table = config.get(section)
    if not isinstance(table, dict):
        return Vault("ram")
    storage = table.get("storage") or {}
    if "s3" in storage:
        s3 = storage["s3"]
        return Vault("s3", prefix=s3.get("prefix", ""), bucket=s3.get("bucket"))
    if "file" in storage:
        f = storage["file"]
        return Vault("file", prefix=f.get("prefix", ""), path=f.get("path"))
    return Vault("ram")


class SimConfig(object):
    """What the simulator takes from the configuration."""

    def __init__(self, config, env=None, strict=True):
        config = apply_env_overrides(config, env)
        if strict:
            if kms_config_schema is None:  # pragma: no cover
                raise ConfigError("strict checking needs plugins/module_utils/kms_config_schema.py")
            errors = kms_config_schema.check_config(config, require_threshold=True)
            if errors:
                raise ConfigError(errors)
        self.raw = config
        try:
            service = config["service"]
            threshold = config["threshold"]
            self.client_port = int(service["listen_port"])
            self.peer_port = int(threshold["listen_port"])
            self.t = int(threshold["threshold"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError("missing or invalid key %s (service.listen_port, threshold.listen_port "
                              "and threshold.threshold are required)" % exc)
        if "my_id" not in threshold:
            raise ConfigError("threshold.my_id: required by the simulator (set it in the file or "
                              "with KMS_CORE__THRESHOLD__MY_ID)")
        self.party_id = int(threshold["my_id"])
        self.peers = []
        seen = set()
        for i, peer in enumerate(threshold.get("peers") or []):
            try:
                pid, address, port = int(peer["party_id"]), str(peer["address"]), int(peer["port"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError("threshold.peers[%d]: %s" % (i, exc))
            seen.add(pid)
            if pid != self.party_id:
                self.peers.append(Peer(pid, address, port, peer.get("mpc_identity", address)))
        seen.add(self.party_id)
        self.n = len(seen)
        if self.n != 3 * self.t + 1:
            raise ConfigError("threshold.peers: %d parties but threshold = %d needs n = 3t + 1 = %d"
                              % (self.n, self.t, 3 * self.t + 1))
        self.peers.sort(key=lambda p: p.party_id)
        aws = config.get("aws") or {}
        self.region = aws.get("region")
        self.s3_endpoint = aws.get("s3_endpoint")
        self.private_vault = _vault(config, "private_vault")
        self.public_vault = _vault(config, "public_vault")
        self.tls = "tls" in threshold
        self.default_context_id = kms_proto.DEFAULT_CONTEXT_ID
