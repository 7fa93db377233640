"""The sandbox's "kube" process: one Kubernetes API emulator per party plus the controllers.

Started by ``tools/sandbox up`` (one process, its own process group); runs until SIGTERM.

* party i's API server on ``127.0.0.1:<base_port + i>``, every request logged to
  ``<state-dir>/logs/kube-p<i>.requests.log`` (time, party, method, path, status, duration);
* a status controller per party; StatefulSets run KMS node simulators
  (:class:`~sandbox.kms_nodes.KmsNodeRunner`), Services of type LoadBalancer get
  a network load balancer in the AWS stand-in
  (:class:`~sandbox.load_balancers.AwsLoadBalancers`), and the AWS Load Balancer
  Controller's Deployment exists in kube-system, unless ``--lb-controller absent`` (default from
  ``SANDBOX_LB_CONTROLLER``) models a cluster without the controller: no Deployment, no load
  balancer, Services of type LoadBalancer stay pending;
* ``<state-dir>/state/kube.json`` rewritten every few seconds with the parties and their nodes
  (read by ``tools/sandbox status``); ``<state-dir>/kube/kubeconfig-p<i>.yaml`` for debugging.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time

from sandbox.kube_emulator import FakeLoadBalancers, start_emulators
from sandbox.kube_emulator.workloads import DEPLOYMENTS

from .kms_nodes import KmsNodeRunner
from .load_balancers import AwsLoadBalancers, NoLoadBalancers, controller_deployment

LOG = logging.getLogger("sandbox.kube")


def _write_json(path: str, data: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.kube_process", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parties", type=int, required=True)
    parser.add_argument("--base-port", type=int, default=6440)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--aws-endpoint", default=None, help="AWS stand-in for load balancers (none: hostnames only)")
    parser.add_argument("--regions", default="", help="comma-separated region of party 1..n (default eu-west-1)")
    parser.add_argument("--cluster-names", default="", help="comma-separated EKS cluster name of party 1..n")
    parser.add_argument("--aws-profiles", default="",
                        help="comma-separated AWS profile of party 1..n: its own account (default: the environment's keys)")
    parser.add_argument("--crds", default="", help="comma-separated CRD sets to pre-install (monitoring)")
    parser.add_argument("--no-kms", action="store_true", help="mark StatefulSets ready without starting KMS nodes")
    parser.add_argument("--lb-controller", choices=("emulated", "absent"),
                        default=os.environ.get("SANDBOX_LB_CONTROLLER", "emulated"),
                        help="emulate the AWS Load Balancer Controller (its Deployment and load balancers) or not")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # requests go to the request logs
    logging.getLogger("botocore.credentials").setLevel(logging.WARNING)
    logs = os.path.join(args.state_dir, "logs")
    state_dir = os.path.join(args.state_dir, "state")
    kube_dir = os.path.join(args.state_dir, "kube")
    for folder in (logs, state_dir, kube_dir):
        os.makedirs(folder, exist_ok=True)
    regions = [r for r in args.regions.split(",") if r]
    clusters = [c for c in args.cluster_names.split(",") if c]
    profiles = args.aws_profiles.split(",") if args.aws_profiles else []

    def region(party: int) -> str:
        return regions[party - 1] if party <= len(regions) else os.environ.get("AWS_DEFAULT_REGION", "eu-west-1")

    runners: dict[int, KmsNodeRunner] = {}

    def runner_factory(party: int, _emulator):
        if args.no_kms:
            return None
        runners[party] = KmsNodeRunner(label=f"party{party}")
        return runners[party]

    def lb_factory(party: int, _emulator):
        if args.lb_controller == "absent":
            return NoLoadBalancers()
        if not args.aws_endpoint:
            return FakeLoadBalancers(region(party))
        # Every party's peer Service is kms/kms-core-peer: the cluster tag keeps one party's load
        # balancer from being taken for another's where parties share an account and region.
        # With profiles, each party's controller works in the party's own account.
        return AwsLoadBalancers(args.aws_endpoint, region(party),
                                clusters[party - 1] if party <= len(clusters) else f"sandbox-party{party}",
                                profile=(profiles[party - 1] if party <= len(profiles) else "") or None)

    running = start_emulators(args.parties, args.base_port,
                              crds=[c for c in args.crds.split(",") if c],
                              statefulset_runner=runner_factory, load_balancers=lb_factory,
                              request_log_dir=logs)
    for party in range(1, args.parties + 1):
        # Port-forwards reach the party's KMS node from the party's own loopback address
        # (127.0.1.<party>), so the node's record of callers tells in-cluster traffic apart
        # from a controller dialling its client port directly (127.0.0.1).
        running.emulator(party).source_address = f"127.0.1.{party}"
        if party in runners:
            running.emulator(party).port_forward_target = runners[party].forward_target
        running.write_kubeconfig(party, os.path.join(kube_dir, f"kubeconfig-p{party}.yaml"))
        if args.lb_controller == "emulated":
            running.emulator(party).create_object(DEPLOYMENTS, "kube-system", controller_deployment())
        LOG.info("party%d: Kubernetes API emulator on %s", party, running.url(party))

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    started = time.time()
    state_file = os.path.join(state_dir, "kube.json")
    try:
        while not stop.is_set():
            parties = []
            for party in range(1, args.parties + 1):
                runner = runners.get(party)
                parties.append({"party": party, "url": running.url(party), "port": running.port(party),
                                "region": region(party), "nodes": runner.describe() if runner else []})
            _write_json(state_file, {"pid": os.getpid(), "started": started, "updated": time.time(),
                                     "parties": parties})
            stop.wait(2.0)
    finally:
        LOG.info("stopping: KMS nodes, controllers, API servers")
        running.close()
        try:
            os.unlink(state_file)
        except FileNotFoundError:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
