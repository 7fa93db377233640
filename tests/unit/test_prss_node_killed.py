"""A KMS node killed during PRSS (issue 18): the prss_init role of the party whose node died
fails within its deadline, naming that party; once the node is back, the re-run of every party
completes. The stand-ins of tests/unit/test_prss.py (a moto process, four simulated nodes
writing their EpochData to it, one Kubernetes API emulator per party) on ports of this module.

Time: two runs of the role on four parties, about 20-40 s on a loaded 2-core machine.
"""
import json
import os
import sys
import subprocess
import tempfile
import threading
import time

import pytest

from sandbox.kms_sim.testing import ROOT, SimNetwork
from tests.unit.test_prss import ROLE, _seconds, _task, hang_after_start, validate

pytestmark = pytest.mark.usefixtures("sim_aws_env")

# This module's own ports (19800-19899): moto, the nodes' peer and client ports, the emulators.
MOTO_PORT = 19802
PEER, CLIENT, KUBE = 19820, 19830, 19840   # + party id


@pytest.fixture(scope="module")
def s3(moto):
    return moto.client()


@pytest.fixture(scope="module")
def parties(moto, s3, tmp_path_factory):
    """Four simulated nodes (their vaults in moto), each party's pod kms/kms-core-0 reached
    through a port-forward of its own Kubernetes API emulator."""
    from sandbox.kube_emulator import run_emulators

    sim = SimNetwork(4, PEER, CLIENT, name="killed", storage="s3", s3_endpoint=moto.url,
                     peer_timeout=0.5, poll_interval=0.05)
    sim.create_buckets(s3)
    sim.start()
    folder = tmp_path_factory.mktemp("kubeconfigs")
    try:
        with run_emulators(4, base_port=KUBE, controller=False) as kube:
            kube.network, kube.kubeconfigs = sim, {}
            for pid in range(1, 5):
                emulator = kube.emulator(pid)
                emulator.create_object("v1/namespaces", None, {"metadata": {"name": "kms"}})

                def target(namespace, pod, port, pid=pid):
                    if (namespace, pod) != ("kms", "kms-core-0"):
                        raise KeyError('pods "%s" not found' % pod)
                    if pid not in sim.nodes or port != 50100:
                        raise LookupError("connect: connection refused")
                    return "127.0.0.1", CLIENT + pid

                emulator.port_forward_target = target
                kube.kubeconfigs[pid] = kube.write_kubeconfig(pid, folder / ("p%d.yaml" % pid))
            yield kube
    finally:
        sim.stop()


def run_role(parties, hosts, wait_for):
    """The prss_init role on one host per party in ``hosts``, in parallel (test_prss's play)."""
    inventory = {"all": {"hosts": {"p%d" % pid: {
        "party_id": pid, "kubeconfig": str(parties.kubeconfigs[pid]),
        "bucket": parties.network.configs[pid]["private_vault"]["storage"]["s3"]["bucket"],
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable} for pid in hosts}}}
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "inventory.json"), "w") as handle:
            json.dump(inventory, handle)
        with open(os.path.join(folder, "play.yml"), "w") as handle:
            handle.write(ROLE)
        cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
               os.path.join(folder, "inventory.json"), "-f", "4", os.path.join(folder, "play.yml"),
               "-e", json.dumps({"s3_url": "http://127.0.0.1:%d" % MOTO_PORT, "wait_for": wait_for})]
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="json")
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    data = json.loads(proc.stdout[proc.stdout.index("{"):]) if "{" in proc.stdout else None
    return proc.returncode, data, proc.stdout + proc.stderr


DEADLINE = 12  # prss_init_timeout of the first run, seconds


def _failure(data, host):
    for play in data["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get(host)
            if result and result.get("failed"):
                return task["task"], result
    return None, None


def test_a_node_killed_during_prss_fails_naming_the_party_and_the_rerun_completes(parties, s3):
    sim = parties.network
    # Party 4's node takes the start, then is wedged in the MPC until it is killed: every party
    # has started the epoch when it dies.
    hang_after_start(sim, 4, seconds=120)
    killed = {}

    def kill_when_started():
        until = time.monotonic() + 60
        while time.monotonic() < until:
            if sim.nodes.get(4) is not None and sim.node(4).requests:
                time.sleep(0.3)
                killed["at"] = time.monotonic()
                sim.stop([4])
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_when_started, daemon=True)
    watcher.start()
    started = time.monotonic()
    rc, data, out = run_role(parties, range(1, 5), DEADLINE)
    elapsed = time.monotonic() - started
    watcher.join(5)
    assert "at" in killed, "party 4's node never received NewMpcEpoch:\n" + out[-4000:]
    assert rc != 0, out[-4000:]
    task, result = _failure(data, "p4")
    assert task is not None, out[-4000:]
    name, msg = task["name"], result["msg"]
    assert "party 4" in msg, (name, msg)
    # Within its deadline: from the moment the role fixed it (now + prss_init_timeout) to the
    # failure, the deadline plus module start-ups of a loaded machine, not the wait of a hang.
    fixed, _ = _task(data, "Fix the deadline of the epoch (now + prss_init_timeout)", "p4")
    after = _seconds({"duration": {"start": fixed["duration"]["end"], "end": task["duration"]["end"]}})
    assert after < DEADLINE + 20, "failed %.0f s after the deadline was fixed (prss_init_timeout %d)" % (after, DEADLINE)
    print("node 4 killed during PRSS: party 4 failed at %r %.0f s after its deadline was set (%.0f s run): %s"
          % (name, after, elapsed, msg[:300]))

    # The node is back (a new process): the same command for every party completes.
    sim.start([4])
    rc, data, out = run_role(parties, range(1, 5), 60)
    failures = {"p%d" % pid: _failure(data, "p%d" % pid) for pid in range(1, 5)} if data else {}
    assert rc == 0, "re-run failed: %r\n%s" % (
        {host: (task["name"], result.get("msg"), result.get("stderr", "")[-800:])
         for host, (task, result) in failures.items() if task}, out[-3000:])
    for pid in range(1, 5):
        _, report = _task(data, "Report the PRSS state of this party", "p%d" % pid)
        assert "PRSS epoch 0800...0001" in report["msg"], report
        bucket = sim.configs[pid]["private_vault"]["storage"]["s3"]["bucket"]
        assert validate(s3, bucket, "PRIV-p%d" % pid)["initialized"], pid
