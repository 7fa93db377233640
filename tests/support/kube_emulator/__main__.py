"""Serve emulators in the foreground: ``python -m tests.support.kube_emulator --parties 2``."""
from __future__ import annotations

import argparse
import signal
import threading

from .runner import start_emulators


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.kube_emulator", description=__doc__)
    parser.add_argument("--parties", type=int, default=1, help="number of emulators (party i on base+i)")
    parser.add_argument("--base-port", type=int, default=6440)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--crds", default="", help="comma-separated CRD sets to install (monitoring)")
    parser.add_argument("--no-controller", action="store_true", help="never write workload status")
    parser.add_argument("--request-log-dir", default=None)
    args = parser.parse_args(argv)
    running = start_emulators(args.parties, args.base_port, host=args.host,
                              crds=[c for c in args.crds.split(",") if c],
                              controller=not args.no_controller, request_log_dir=args.request_log_dir)
    for party in range(1, args.parties + 1):
        print(f"party{party}: {running.url(party)}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    running.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
