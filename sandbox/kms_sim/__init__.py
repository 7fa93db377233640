"""KMS node simulator: the real gRPC surface of a threshold KMS node, for local tests.

    from sandbox.kms_sim.testing import node_with_keys
    node = node_with_keys(config)   # parsed threshold.toml; runs kms-gen-keys first
    node.start(); ...; node.stop()

An independent witness: it never imports the collection's own code. proto.py describes the
gRPC messages, config.py applies the server's configuration rules, keygen.py is kms-gen-keys,
node.py the server (behaviour and fault options), network.py builds configurations for a
whole network, faults.py endpoints that misbehave; ``python -m sandbox.kms_sim --help``
for the command line.
"""
from .config import ConfigError  # noqa: F401
from .node import MODES, SimNode, StartRefused  # noqa: F401
