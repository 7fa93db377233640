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
