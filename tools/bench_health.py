#!/usr/bin/env python3
"""Benchmark (not a test): wall time of a health check of 13 KMS endpoints, 4 of which never answer.

    .venv/bin/python tools/bench_health.py [--timeout 2] [--runs 1]

Starts a 13-party simulated network (t = 4) on 127.0.0.1 (peer ports 22801-22813, client
ports 22821-22833); parties 10-13 are replaced by sockets that accept TCP connections and
never send a byte. Then checks all 13 client endpoints with kms_health's logic, concurrently
(one thread per endpoint, as the module does) and one by one, and prints both wall times.
Everything it starts is stopped before it exits.
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sandbox.kube_process import install_collection_loader  # noqa: E402

install_collection_loader()

from sandbox.kms_sim.faults import HangingEndpoint  # noqa: E402
from sandbox.kms_sim.testing import SimNetwork  # noqa: E402

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_grpc as G  # noqa: E402

PEER_BASE, CLIENT_BASE = 22800, 22820
HANGING = (10, 11, 12, 13)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timeout", type=float, default=2.0, help="seconds per endpoint (default %(default)s)")
    ap.add_argument("--runs", type=int, default=1, help="repetitions of each mode (default %(default)s)")
    args = ap.parse_args()

    network = SimNetwork(13, PEER_BASE, CLIENT_BASE, name="bench", storage="ram", peer_timeout=0.5)
    hanging = []
    try:
        network.start([p for p in range(1, 14) if p not in HANGING])
        hanging = [HangingEndpoint(CLIENT_BASE + p).start() for p in HANGING]
        endpoints = G.normalize_endpoints(network.endpoints())

        def concurrent():
            return G.check_endpoints(endpoints, args.timeout)

        def sequential():
            return G.annotate_peer_views([G.check_endpoint(ep, args.timeout) for ep in endpoints])

        rows = []
        for label, fn in (("concurrent (kms_health)", concurrent), ("one by one", sequential)):
            times = []
            for _ in range(args.runs):
                started = time.monotonic()
                nodes = fn()
                times.append(time.monotonic() - started)
            summary = G.summarize(nodes, "Healthy")
            rows.append((label, min(times), max(times), summary))

        print("13 endpoints, %d never answer (TCP accepted, no reply), timeout %.1f s, %d run(s) each"
              % (len(HANGING), args.timeout, args.runs))
        print("%-26s %10s %10s  %s" % ("mode", "best [s]", "worst [s]", "result"))
        for label, best, worst, summary in rows:
            print("%-26s %10.2f %10.2f  overall %s, %s" % (
                label, best, worst, summary["overall"],
                ", ".join("%d %s" % (v, k) for k, v in summary["counts"].items() if v)))
        print("speed-up: %.1fx" % (rows[1][1] / rows[0][1]))
        print("example failure line: %s" % G.failure_message(rows[0][3], "Healthy").splitlines()[-1])
    finally:
        for h in hanging:
            h.stop()
        network.stop()


if __name__ == "__main__":
    main()
