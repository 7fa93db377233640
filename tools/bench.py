#!/usr/bin/env python3
"""Deployment benchmarks on the local stand-ins; prints a table (see docs/performance.md).

    .venv/bin/python tools/bench.py [--skip-13]

Figures:
  1. latency mode (SANDBOX_AWS_LATENCY, --latency seconds per AWS minute, default 15): one party's
     infrastructure (eks_cluster, nitro_nodegroup, vault_buckets, connector_db with enable_rds) as
     deploy_party.yml runs it, its long waits overlapped (tools/bench_overlap.yml), and the same
     roles one after another (tools/bench_sequential.yml), each on fresh stand-ins; against the
     critical path's waits (EKS cluster, any update of its access settings the run made, one at
     a time - EKS creates no node group while one runs; none on a cluster created with them - then
     node group) - the waits' poll interval scaled like the waits (15 s per AWS minute);
  2. wall time of deploying ALL 13 parties of inventories/sandbox13 from one controller with
     forks (without prss_init), on fresh stand-ins, and the ratio to the 4-party first deploy;
  3. the first start of the 4-party sandbox as `make sandbox` runs it: a deploy (the service names
     are not published yet: PRSS waits), `tools/sandbox publish` (the coordinators) and the deploy
     that connects the parties and initialises PRSS; then wall time and AWS / Kubernetes API
     request counts of a re-run with nothing to change, counted on the stand-ins' request logs, and
     the controller's CPU seconds (ansible-playbook and its children) per party of the first deploy;
The health fan-out figure comes from tools/bench_health.py (`make bench` runs both).

Stand-ins run in a temporary SANDBOX_DIR on the inventories' ports (their network definitions name
the AWS stand-in's port in each public vault URL), so stop a running `make sandbox` first
(`make sandbox-down`).
"""
import argparse
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
sys.path.insert(0, ROOT)
from sandbox import aws_latency  # noqa: E402  (the stand-in's own durations)

CRITICAL_PATH = ("eks_cluster", "eks_nodegroup")


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
    def __init__(self, inventory, latency=0.0):
        self.dir = tempfile.mkdtemp(prefix="bench-sandbox-")
        self.env = dict(os.environ, SANDBOX_DIR=self.dir, SANDBOX_AWS_LATENCY=str(latency),
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
        # the playbooks' own requests: the simulated nodes' vault reads and tools/sandbox are not counted
        with open(os.path.join(logs, "aws-requests.log"), errors="replace") as fh:
            aws = sum(1 for line in fh if line.rstrip().endswith(" ansible"))
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

    def deploy(self, *extra, playbook="playbooks/deploy_party.yml"):
        return run([os.path.join(BIN, "ansible-playbook"), playbook, "-i", self.inventory] + list(extra), self.env)


def latency_rows(scale):
    """One party's infrastructure in latency mode, overlapped and not (fresh stand-ins each)."""
    poll = str(max(1, int(round(15 * scale / 60.0))))
    extra = ["--limit", "party1", "-e", "enable_rds=true", "-e", "eks_cluster_wait_poll_interval=" + poll,
             "-e", "nitro_nodegroup_wait_poll_interval=" + poll, "-e", "connector_db_wait_poll_interval=" + poll]
    walls = {}
    for variant in ("overlap", "sequential"):
        with Sandbox("inventories/sandbox", latency=scale) as sbx:
            walls[variant], output = sbx.deploy(*extra, playbook="tools/bench_%s.yml" % variant)
            if variant == "overlap":  # the EKS updates it made (the progress callback's last line for each)
                made = len(set(re.findall(r"EKS update \S+ of cluster \S+ \(([^)]+)\): Successful", output)))
    waits = sum(aws_latency.delay_of(kind, scale) for kind in CRITICAL_PATH) + made * aws_latency.delay_of("eks_update", scale)
    every = waits + sum(aws_latency.delay_of(kind, scale) for kind in ("nat_gateway", "db_instance"))
    return [
        ("latency mode: seconds per AWS minute", "%g" % scale),
        ("critical path's waits (EKS cluster 12 + %d access updates x 3 + node group 4 AWS min)" % made, "%.1f s" % waits),
        ("every long wait of the infrastructure (+ NAT 1.5, RDS 7.5 AWS min)", "%.1f s" % every),
        ("infrastructure of 1 party, waits overlapped (deploy_party.yml)",
         "%.1f s (%.2f x the critical path)" % (walls["overlap"], walls["overlap"] / waits)),
        ("the same, one role after another", "%.1f s (overlap saves %.0f %%)" % (
            walls["sequential"], 100.0 * (1 - walls["overlap"] / walls["sequential"]))),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-13", action="store_true", help="skip the 13-party deploy (slow on 2 cores)")
    parser.add_argument("--latency", type=float, default=15.0,
                        help="seconds per AWS minute for the latency-mode figures (0: skip them)")
    parser.add_argument("--latency-only", action="store_true", help="only the latency-mode figures")
    args = parser.parse_args()
    rows = latency_rows(args.latency) if args.latency > 0 else []
    if args.latency_only:
        return report(rows)

    with Sandbox("inventories/sandbox") as sbx:
        cpu0 = children_cpu()
        first, _ = sbx.deploy()
        first_cpu = children_cpu() - cpu0
        started = time.monotonic()
        names = sbx.publish()
        connect, _ = sbx.deploy(*names)
        connect = time.monotonic() - started
        aws0, kube0 = sbx.requests()
        rerun, out = sbx.deploy(*names)
        aws1, kube1 = sbx.requests()
        changed = recap_changed(out)
    rows.append(("deploy 4 parties (fresh; PRSS waits for the service names)", "%.1f s" % first))
    rows.append(("controller CPU of that deploy, per party", "%.1f s" % (first_cpu / 4)))
    rows.append(("publish the names + deploy again (connect, prss_init)", "%.1f s" % connect))
    rows.append(("re-run 4 parties, nothing to change", "%.1f s (changed: %s)" % (rerun, sum(changed.values()))))
    rows.append(("re-run AWS API requests (all 4 parties)", "%d (%.0f per party)" % (aws1 - aws0, (aws1 - aws0) / 4)))
    rows.append(("re-run Kubernetes API requests (all 4 parties)", "%d (%.0f per party)" % (kube1 - kube0, (kube1 - kube0) / 4)))

    if not args.skip_13:
        with Sandbox("inventories/sandbox13") as sbx:
            thirteen, _ = sbx.deploy("--forks", "13", "--skip-tags", "prss_init")
        rows.append(("deploy 13 parties, forks=13 (fresh, no prss_init)", "%.1f s" % thirteen))
        rows.append(("ratio 13 parties / 4 parties (first deploys)", "%.2f" % (thirteen / first)))

    report(rows)


def report(rows):
    print("threshold_kms.mpc_party deployment benchmarks — %s, %s, %d CPUs, %s" % (
        time.strftime("%Y-%m-%d"), platform.machine(), os.cpu_count(), platform.python_version()))
    width = max(len(r[0]) for r in rows)
    print("%-*s  %s" % (width, "figure", "value"))
    for name, value in rows:
        print("%-*s  %s" % (width, name, value))


if __name__ == "__main__":
    main()
