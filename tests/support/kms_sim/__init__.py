"""KMS node simulator: the real gRPC surface of a threshold KMS node, for local tests.

    from tests.support.kms_sim.node import SimNode
    node = SimNode(config)   # parsed threshold.toml
    node.start(); ...; node.stop()

See node.py for the behaviour and the fault options, network.py to build configurations
for a whole network, faults.py for endpoints that misbehave, and ``python -m
tests.support.kms_sim --help`` for the command line.
"""
from .config import ConfigError  # noqa: F401
from .node import MODES, SimNode  # noqa: F401
