"""Run simulated KMS nodes from the command line until SIGTERM / Ctrl-C.

    # nodes from real configuration files (one process, several nodes)
    python -m sandbox.kms_sim --config p1.toml --config p2.toml

    # a whole network from an inventory's network definition, ports moved into a range
    python -m sandbox.kms_sim --network inventories/sandbox/group_vars/all/network.yml \
        --peer-base 22900 --client-base 22910 --s3-endpoint http://127.0.0.1:22920 \
        --write-configs /tmp/sim-configs

A node does not start without its signing key: with --network the simulator's kms-gen-keys
runs for every node first (its vault buckets must exist); with --config pass --gen-keys for
the same (or run ``python -m sandbox.kms_sim.keygen --config-file FILE`` beforehand).
AWS credentials for the S3 vaults come from the environment (AWS_ACCESS_KEY_ID, ...).
"""
import argparse
import logging
import os
import signal
import sys
import threading

try:
    import tomllib
except ImportError:  # pragma: no cover
    import tomli as tomllib

from . import network as net
from .config import ConfigError
from .keygen import KeygenError
from .node import MODES, SimNode, StartRefused
from .testing import node_with_keys


def _parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m sandbox.kms_sim", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", action="append", metavar="FILE", help="threshold.toml of one node (repeatable)")
    src.add_argument("--network", metavar="FILE", help="YAML holding mpc_network (e.g. group_vars/all/network.yml)")
    ap.add_argument("--party", action="append", type=int, metavar="ID", help="with --network: only these parties")
    ap.add_argument("--peer-base", type=int, help="with --network: peer port = BASE + party_id")
    ap.add_argument("--client-base", type=int, help="with --network: client port = BASE + party_id")
    ap.add_argument("--s3-endpoint", help="with --network: [aws] s3_endpoint of every node")
    ap.add_argument("--region", default="eu-west-1", help="with --network: [aws] region (default %(default)s)")
    ap.add_argument("--storage", choices=("s3", "ram"), default="s3", help="with --network: vault storage")
    ap.add_argument("--write-configs", metavar="DIR", help="with --network: write p<id>.toml files there first")
    ap.add_argument("--mode", choices=MODES, default="full", help="fault mode of every node (default %(default)s)")
    ap.add_argument("--peer-host", help="dial this host for every peer instead of the configured address")
    ap.add_argument("--epoch-timeout", type=float, default=600.0, help="seconds an epoch waits for all parties")
    ap.add_argument("--no-strict", action="store_true", help="do not apply the server's configuration rules")
    ap.add_argument("--gen-keys", action="store_true", help="with --config: run key generation for each node first")
    ap.add_argument("--no-gen-keys", action="store_true", help="with --network: do not run key generation")
    ap.add_argument("--pidfile", help="write the process id there")
    ap.add_argument("--log-level", default="INFO")
    return ap.parse_args(argv)


def _configs(args):
    if args.config:
        docs = []
        for path in args.config:
            with open(path, "rb") as handle:
                docs.append((path, tomllib.load(handle)))
        return docs
    network = net.shift_ports(net.load_network(args.network), args.peer_base, args.client_base)
    wanted = set(args.party or [int(p["party_id"]) for p in network["parties"]])
    docs = []
    for pid in sorted(wanted):
        doc = net.threshold_config(network, pid, s3_endpoint=args.s3_endpoint, region=args.region,
                                   storage=args.storage)
        label = "party %d" % pid
        if args.write_configs:
            import tomli_w

            os.makedirs(args.write_configs, exist_ok=True)
            label = os.path.join(args.write_configs, "p%d.toml" % pid)
            with open(label, "wb") as handle:
                tomli_w.dump(doc, handle)
            with open(label, "rb") as handle:  # run what was written, like the server would
                doc = tomllib.load(handle)
        docs.append((label, doc))
    return docs


def main(argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    nodes = []
    try:
        for label, doc in _configs(args):
            gen_keys = args.gen_keys if args.config else not args.no_gen_keys
            kwargs = dict(mode=args.mode, env=os.environ, strict=not args.no_strict,
                          peer_host=args.peer_host, epoch_timeout=args.epoch_timeout)
            try:
                node = node_with_keys(doc, **kwargs) if gen_keys else SimNode(doc, **kwargs)
            except ConfigError as exc:
                print("%s: the KMS server would refuse this configuration:" % label, file=sys.stderr)
                for error in exc.errors:
                    print("  - %s" % error, file=sys.stderr)
                return 2
            except KeygenError as exc:
                print("%s: key generation failed: %s" % (label, exc), file=sys.stderr)
                return 2
            nodes.append(node)
        for node in nodes:
            node.start()
            for warning in node.warnings:
                print("party %d: warning: %s" % (node.party_id, warning), file=sys.stderr)
    except StartRefused as exc:
        for node in nodes:
            node.stop()
        print("error: the KMS server would exit: %s" % exc, file=sys.stderr)
        return 1
    except Exception as exc:  # bind failures and the like
        for node in nodes:
            node.stop()
        print("error: %s" % exc, file=sys.stderr)
        return 1
    if args.pidfile:
        with open(args.pidfile, "w") as handle:
            handle.write("%d\n" % os.getpid())
    for node in nodes:
        print("party %d (n=%d, t=%d, mode %s): client %s peer %s" % (
            node.party_id, node.n, node.t, node.mode, node.client_endpoint, node.peer_endpoint), flush=True)
    print("ready", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(1):
        pass
    for node in nodes:
        node.stop()
    if args.pidfile and os.path.exists(args.pidfile):
        os.unlink(args.pidfile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
