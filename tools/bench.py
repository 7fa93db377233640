#!/usr/bin/env python3
"""Deployment benchmarks on the local stand-ins; prints a table (see docs/performance.md).

    .venv/bin/python tools/bench.py [--skip-13]

Figures:
  1. wall time of deploying ONE sandbox party (inventories/sandbox, --limit party1, without
     prss_init, which needs every party), on fresh stand-ins;
  2. wall time of deploying ALL 13 parties of inventories/sandbox13 from one controller with
     forks (same tags), on fresh stand-ins, and the ratio 13-party / 1-party;
  3. the first start of the 4-party sandbox as `make sandbox` runs it: a deploy (the service names
     are not published yet: PRSS waits), `tools/sandbox publish` (the coordinators) and the deploy
     that connects the parties and initialises PRSS; then wall time and AWS / Kubernetes API
     request counts of a re-run with nothing to change, counted on the stand-ins' request logs;
The health fan-out figure comes from tools/bench_health.py (`make bench` runs both).

Stand-ins run on their own ports (SANDBOX_AWS_PORT 30000, SANDBOX_KUBE_BASE_PORT 30100) in a
temporary SANDBOX_DIR, so a developer's `make sandbox` is not disturbed; the KMS node ports are
those of the inventories, so stop a running `make sandbox` first (`make sandbox-down`).
"""
import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def run(cmd, env, timeout=7200):
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-2000:])
        raise SystemExit("failed: %s" % " ".join(cmd))
    return elapsed, proc.stdout


def recap_changed(output):
    return {h: int(c) for h, c in re.findall(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", output, re.M)}


class Sandbox:
    def __init__(self, inventory):
        self.dir = tempfile.mkdtemp(prefix="bench-sandbox-")
        self.env = dict(os.environ, SANDBOX_DIR=self.dir, SANDBOX_AWS_PORT="30000", SANDBOX_KUBE_BASE_PORT="30100",
                        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
        self.env["PATH"] = BIN + os.pathsep + self.env.get("PATH", "")
        self.inventory = inventory

    def __enter__(self):
        run([sys.executable, "tools/sandbox", "up", "--inventory", self.inventory], self.env)
        with open(os.path.join(self.dir, "env")) as fh:
            for line in fh:
                if line.startswith("export "):
                    key, value = line[len("export "):].strip().split("=", 1)
                    self.env[key] = value
        return self

    def __exit__(self, *exc):
        subprocess.run([sys.executable, "tools/sandbox", "down"], cwd=ROOT, env=self.env, capture_output=True)

    def requests(self):
        """(AWS requests, Kubernetes API requests) logged so far, probes excluded."""
        logs = os.path.join(self.dir, "logs")
        with open(os.path.join(logs, "aws.log"), errors="replace") as fh:
            aws = sum(1 for line in fh if '" 20' in line or '" 4' in line or '" 5' in line)
        kube = 0
        for name in os.listdir(logs):
            if name.startswith("kube-p") and name.endswith(".requests.log"):
                with open(os.path.join(logs, name), errors="replace") as fh:
                    kube += sum(1 for line in fh if "sandbox-probe" not in line)
        return aws, kube

    def publish(self):
        """The coordinators' part; the -e arguments that load the names."""
        run([sys.executable, "tools/sandbox", "publish", "--inventory", self.inventory], self.env)
        return ["-e", "@" + os.path.join(self.dir, "network-overrides.yml")]

    def deploy(self, *extra):
        return run([os.path.join(BIN, "ansible-playbook"), "playbooks/deploy_party.yml", "-i", self.inventory] + list(extra),
                   self.env)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-13", action="store_true", help="skip the 13-party deploy (slow on 2 cores)")
    args = parser.parse_args()
    rows = []

    with Sandbox("inventories/sandbox") as sbx:
        one, _ = sbx.deploy("--limit", "party1", "--skip-tags", "prss_init")
    rows.append(("deploy 1 sandbox party (fresh, no prss_init)", "%.1f s" % one))

    if not args.skip_13:
        with Sandbox("inventories/sandbox13") as sbx:
            thirteen, _ = sbx.deploy("--forks", "13", "--skip-tags", "prss_init")
        rows.append(("deploy 13 parties, forks=13 (fresh, no prss_init)", "%.1f s" % thirteen))
        rows.append(("ratio 13 parties / 1 party", "%.2f" % (thirteen / one)))

    with Sandbox("inventories/sandbox") as sbx:
        first, _ = sbx.deploy()
        started = time.monotonic()
        names = sbx.publish()
        connect, _ = sbx.deploy(*names)
        connect = time.monotonic() - started
        aws0, kube0 = sbx.requests()
        rerun, out = sbx.deploy(*names)
        aws1, kube1 = sbx.requests()
        changed = recap_changed(out)
    rows.append(("deploy 4 parties (fresh; PRSS waits for the service names)", "%.1f s" % first))
    rows.append(("publish the names + deploy again (connect, prss_init)", "%.1f s" % connect))
    rows.append(("re-run 4 parties, nothing to change", "%.1f s (changed: %s)" % (rerun, sum(changed.values()))))
    rows.append(("re-run AWS API requests (all 4 parties)", "%d (%.0f per party)" % (aws1 - aws0, (aws1 - aws0) / 4)))
    rows.append(("re-run Kubernetes API requests (all 4 parties)", "%d (%.0f per party)" % (kube1 - kube0, (kube1 - kube0) / 4)))

    print("threshold_kms.mpc_party deployment benchmarks — %s, %s, %d CPUs, %s" % (
        time.strftime("%Y-%m-%d"), platform.machine(), os.cpu_count(), platform.python_version()))
    width = max(len(r[0]) for r in rows)
    print("%-*s  %s" % (width, "figure", "value"))
    for name, value in rows:
        print("%-*s  %s" % (width, name, value))


if __name__ == "__main__":
    main()
