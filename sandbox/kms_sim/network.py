"""Build server configurations (threshold.toml documents) for a whole simulated network.

Used by the unit tests, the Molecule scenario and the CLI: from a network definition
(``mpc_network`` as in ``inventories/*/group_vars/all/network.yml``, or just n) produce one
configuration per party, in the real server's schema, optionally with the ports moved into
a range of one's own (``peer_base + i`` / ``client_base + i``).
"""
import copy

DEFAULT_SERVICE = {"listen_address": "0.0.0.0", "timeout_secs": 360, "grpc_max_message_size": 104857600}


def load_network(path):
    """mpc_network from a group_vars file (or a file holding just the definition)."""
    import yaml

    with open(path) as handle:
        doc = yaml.safe_load(handle)
    return doc.get("mpc_network", doc)


def make_network(n, name="sim", address="127.0.0.1", peer_base=50000, client_base=50100):
    """A minimal network definition with n = 3t + 1 parties on one host."""
    if (n - 1) % 3:
        raise ValueError("n must be 3t + 1, got %d" % n)
    parties = [{"party_id": i, "name": "party%d" % i, "address": address,
                "mpc_identity": "party%d.%s.kms.local" % (i, name),
                "peer_port": peer_base + i, "client_port": client_base + i} for i in range(1, n + 1)]
    return {"name": name, "n": n, "t": (n - 1) // 3, "parties": parties}


def shift_ports(network, peer_base=None, client_base=None):
    """Copy of ``network`` with ports moved to ``peer_base + party_id`` / ``client_base + party_id``."""
    network = copy.deepcopy(network)
    for party in network["parties"]:
        if peer_base is not None:
            party["peer_port"] = peer_base + int(party["party_id"])
        if client_base is not None:
            party["client_port"] = client_base + int(party["party_id"])
    return network


def threshold_config(network, party_id, s3_endpoint=None, region="eu-west-1",
                     private_bucket=None, public_bucket=None, storage="s3"):
    """The threshold.toml document of one party (dict), valid for the real server's schema.

    storage: "s3" (buckets ``kms-<name>-p<id>-private`` / the party's public_bucket by default,
    at ``s3_endpoint``) or "ram".
    """
    party_id = int(party_id)
    name = network.get("name", "sim")
    me = [p for p in network["parties"] if int(p["party_id"]) == party_id]
    if not me:
        raise ValueError("party %d is not in the network" % party_id)
    me = me[0]
    peers = [{"party_id": int(p["party_id"]), "address": str(p["address"]), "port": int(p["peer_port"]),
              "mpc_identity": str(p.get("mpc_identity", p["address"]))} for p in network["parties"]]
    doc = {
        "service": dict(DEFAULT_SERVICE, listen_port=int(me["client_port"])),
        "threshold": {
            "listen_address": "0.0.0.0", "listen_port": int(me["peer_port"]),
            "my_id": party_id, "threshold": int(network["t"]),
            "dec_capacity": 10000, "min_dec_cache": 6000, "decryption_mode": "NoiseFloodSmall",
            "num_sessions_preproc": 2, "peers": peers,
        },
        "aws": {"region": region},
    }
    if storage == "s3":
        if s3_endpoint:
            doc["aws"]["s3_endpoint"] = s3_endpoint
        private_bucket = private_bucket or "kms-%s-p%d-private" % (name, party_id)
        public_bucket = public_bucket or me.get("public_bucket") or "kms-%s-p%d-public" % (name, party_id)
        doc["private_vault"] = {"storage": {"s3": {"bucket": private_bucket, "prefix": "PRIV-p%d" % party_id}}}
        doc["public_vault"] = {"storage": {"s3": {"bucket": public_bucket, "prefix": "PUB-p%d" % party_id}}}
    else:
        doc["private_vault"] = {"storage": {"ram": {}}}
        doc["public_vault"] = {"storage": {"ram": {}}}
    return doc


def network_configs(network, **kwargs):
    """{party_id: threshold config} for every party of the network."""
    return {int(p["party_id"]): threshold_config(network, p["party_id"], **kwargs) for p in network["parties"]}
