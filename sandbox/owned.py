"""Run a stand-in module that stops when its owner process stops.

    python -m sandbox.owned OWNER MODULE [ARGS...]

``OWNER`` is ``PID:START:BOOT`` (sandbox.procs.format_owner) or ``-`` for none.
``tools/sandbox up`` starts every stand-in this way, in a process group of its own. With an
owner (``SANDBOX_OWNER_PID``: a test session), the stand-in gets SIGTERM as soon as that
process has ended, however it ended (success, failure, SIGINT, SIGTERM or SIGKILL), and its
whole process group SIGKILL ten seconds later if it is still there. The module then runs in
this process as ``python -m MODULE ARGS...`` would run it.
"""
from __future__ import annotations

import os
import runpy
import signal
import sys
import threading

from .procs import parse_owner, watch_owner

GRACE_SECONDS = 10.0


def _owner_gone(owner: dict) -> None:
    print(f"owned: owner pid {owner['pid']} has ended: stopping", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)

    def last_resort() -> None:
        if os.getpgrp() == os.getpid():  # a group of our own (tools/sandbox starts us so)
            os.killpg(os.getpid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    timer = threading.Timer(GRACE_SECONDS, last_resort)
    timer.daemon = True
    timer.start()


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit("usage: python -m sandbox.owned OWNER MODULE [ARGS...]")
    owner = parse_owner(argv[0])
    if owner is not None:
        watch_owner(owner, lambda: _owner_gone(owner))
    module = argv[1]
    sys.argv = [module] + argv[2:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
