"""Mutations of a network definition and a party's host vars, for the bad-input cases.

Each helper returns ``mutate(network, host_vars)``, which changes its arguments in place. The
preflight unit cases (tests/unit/test_network_model.py) and the playbook-level bad-input suite
(tests/integration/test_bad_input.py) build their cases from the same helpers.
"""
import copy


def party(net, pid):
    """The party ``pid`` of a network definition."""
    return next(p for p in net["parties"] if p["party_id"] == pid)


def net_set(path, value):
    """Set ``path`` in the network: dotted keys, ``#<id>`` selects a party (``parties.#2.port``)."""
    def mutate(net, hv):
        target = net
        keys = path.split(".")
        for key in keys[:-1]:
            target = party(target, int(key[1:])) if key.startswith("#") else target[key]
        target[keys[-1]] = value
    return mutate


def party_set(pid, key, value):
    def mutate(net, hv):
        party(net, pid)[key] = value
    return mutate


def party_set_from(pid, key, source):
    """Set a key of party ``pid`` to ``source(network)`` (a value read from the inventory)."""
    def mutate(net, hv):
        party(net, pid)[key] = source(net)
    return mutate


def party_del(pid, key):
    def mutate(net, hv):
        del party(net, pid)[key]
    return mutate


def host_set(key, value):
    def mutate(net, hv):
        hv[key] = value
    return mutate


def drop_party(pid):
    def mutate(net, hv):
        net["parties"] = [p for p in net["parties"] if p["party_id"] != pid]
    return mutate


def dup_party(net, hv):
    net["parties"].append(copy.deepcopy(net["parties"][1]))


def both(*mutations):
    def mutate(net, hv):
        for m in mutations:
            m(net, hv)
    return mutate


def port_of(pid, key):
    """A port of party ``pid`` in the inventory (suites move them; read, don't hard-code)."""
    def value(net):
        return party(net, pid)[key]
    return value


def self_signed_pem(common_name):
    """A real self-signed certificate (PEM text) with subject CN ``common_name``, for a
    ``ca_certificate`` with ``source: pem`` that the preflight parses. Made here with the
    ``cryptography`` package, not with the collection's code: the fixtures stay independent."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def service_name(region, service_id="0123456789abcdef0"):
    """An endpoint service name com.amazonaws.vpce.<region>.vpce-svc-<id>."""
    return "com.amazonaws.vpce.%s.vpce-svc-%s" % (region, service_id)


# Text that looks like a PEM certificate but whose body is not one (the old test fixtures' fake).
FAKE_CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake1\n-----END CERTIFICATE-----\n"
