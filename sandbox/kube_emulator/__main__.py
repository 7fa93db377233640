"""Serve emulators in the foreground: ``python -m sandbox.kube_emulator --parties 2``.

``--port-forward 1:kms/kms-core-0:50100=127.0.0.1:50101`` (repeatable) makes that pod port of
party 1's emulator reach 127.0.0.1:50101 through ``pods/portforward`` (its namespace is created);
``--source-prefix 127.0.1.`` makes party i's emulator connect from 127.0.1.<i>.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import threading

from .runner import start_emulators


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.kube_emulator", description=__doc__)
    parser.add_argument("--parties", type=int, default=1, help="number of emulators (party i on base+i)")
    parser.add_argument("--base-port", type=int, default=6440)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--crds", default="", help="comma-separated CRD sets to install (monitoring)")
    parser.add_argument("--no-controller", action="store_true", help="never write workload status")
    parser.add_argument("--request-log-dir", default=None)
    parser.add_argument("--port-forward", action="append", default=[],
                        help="PARTY:NAMESPACE/POD:PORT=HOST:PORT, a pod port reachable through pods/portforward")
    parser.add_argument("--source-prefix", default="", help="party i's port-forwards connect from <prefix><i>")
    parser.add_argument("--kubeconfig-dir", default=None, help="write kubeconfig-p<i>.yaml there")
    parser.add_argument("--pidfile", default=None)
    args = parser.parse_args(argv)
    forwards: dict[int, dict[tuple[str, str, int], tuple[str, int]]] = {}
    for spec in args.port_forward:
        match = re.match(r"^(\d+):([^/]+)/([^:]+):(\d+)=([^:]+):(\d+)$", spec)
        if not match:
            parser.error(f"--port-forward {spec!r}: expected PARTY:NAMESPACE/POD:PORT=HOST:PORT")
        party, namespace, pod, port, host, target = match.groups()
        forwards.setdefault(int(party), {})[(namespace, pod, int(port))] = (host, int(target))
    running = start_emulators(args.parties, args.base_port, host=args.host,
                              crds=[c for c in args.crds.split(",") if c],
                              controller=not args.no_controller, request_log_dir=args.request_log_dir)
    for party in range(1, args.parties + 1):
        emulator = running.emulator(party)
        if args.source_prefix:
            emulator.source_address = f"{args.source_prefix}{party}"
        table = forwards.get(party, {})
        for namespace in sorted({key[0] for key in table}):
            if emulator.get_object("v1/namespaces", None, namespace) is None:
                emulator.create_object("v1/namespaces", None, {"metadata": {"name": namespace}})

        def target(namespace: str, pod: str, port: int, table=table) -> tuple[str, int]:
            if not any(key[:2] == (namespace, pod) for key in table):
                raise KeyError(f'pods "{pod}" not found')
            if (namespace, pod, port) not in table:
                raise LookupError("connect: connection refused")
            return table[(namespace, pod, port)]

        emulator.port_forward_target = target
        if args.kubeconfig_dir:
            running.write_kubeconfig(party, os.path.join(args.kubeconfig_dir, f"kubeconfig-p{party}.yaml"))
        print(f"party{party}: {running.url(party)}", flush=True)
    if args.pidfile:
        with open(args.pidfile, "w", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
    print("ready", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    running.close()
    if args.pidfile:
        try:
            os.unlink(args.pidfile)
        except FileNotFoundError:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
