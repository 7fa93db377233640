"""The sandbox's process records and port checks (sandbox/procs.py), and a KMS node
simulator that cannot bind its port: the pod's status names the port and the process holding it,
which kms_workload's rollout wait prints with the pod's conditions (roles/kms_workload/tasks/wait.yml).

Ports: 18950-18999 (Kubernetes API +1, KMS peer +11..+14, client +21..+24).
"""
import os
import socket
import subprocess
import sys

import pytest
import tomli_w

from sandbox import procs
from tests.unit.test_sandbox_cli import configmap, statefulset, sts_status, wait_for

BASE = 18950


def listener(port):
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen(1)
    return sock


def test_port_holder_is_named_by_pid_and_command():
    with listener(BASE + 30) as sock:
        assert not procs.port_free(BASE + 30)
        assert (os.getpid(), procs.cmdline(os.getpid())) in procs.port_holders(BASE + 30)
        assert procs.describe_port(BASE + 30).startswith("port %d is in use by pid %d (" % (BASE + 30, os.getpid()))
        sock.close()
    assert procs.port_free(BASE + 30) and procs.port_holders(BASE + 30) == []


def test_a_record_names_one_process_across_pid_reuse():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        record = procs.identity(child.pid)
        assert record["pgid"] == child.pid and procs.same_process(record)
        assert procs.owned_members(record) == [child.pid]
        other = dict(record, start=record["start"] + 1)  # another program that got the same pid later
        assert not procs.same_process(other) and procs.owned_members(other) == []
        assert not procs.stop_record(other) and child.poll() is None
        assert procs.stop_record(record, timeout=5)
        child.wait(5)
        assert not procs.same_process(record) and procs.owned_members(record) == []
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)


def test_owner_watch_calls_back_once_the_owner_has_ended():
    import threading

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    ended = threading.Event()
    procs.watch_owner(procs.identity(child.pid), ended.set, interval=0.05)
    assert not ended.wait(0.3)
    child.kill()
    child.wait(5)
    assert ended.wait(5)
    assert procs.parse_owner(procs.format_owner({"pid": 12, "start": 34, "boot": "b"})) == {"pid": 12, "start": 34, "boot": "b"}


def test_a_node_that_cannot_bind_its_port_shows_port_and_holder_in_the_pod_status():
    pytest.importorskip("grpc")
    from sandbox.kms_sim import network as net
    from sandbox.kms_sim.testing import keygen_config
    from sandbox.kube_emulator import run_emulators
    from sandbox.kms_nodes import KmsNodeRunner

    network = net.shift_ports(net.make_network(4), peer_base=BASE + 10, client_base=BASE + 20)
    config = net.threshold_config(network, 1, storage="ram")
    client_port = config["service"]["listen_port"]
    sts = statefulset()
    sts["spec"]["template"]["spec"]["initContainers"] = [{
        "name": "kms-gen-keys", "image": "ghcr.io/zama-ai/kms/core-service:v0.14.1-0", "command": ["kms-gen-keys"],
        "args": ["--config-file", "/etc/kms/keygen/keygen.toml"],
        "volumeMounts": [{"name": "keygen", "mountPath": "/etc/kms/keygen"}]}]
    sts["spec"]["template"]["spec"]["volumes"].append({"name": "keygen", "configMap": {"name": "kms-keygen"}})
    runner = KmsNodeRunner(label="party1", retry_seconds=0.5)
    blocker = listener(client_port)  # what an orphaned node of an earlier run would hold
    try:
        with run_emulators(1, base_port=BASE, statefulset_runner=lambda p, e: runner, resync_seconds=0.2) as kube:
            emu = kube.emulator(1)
            emu.create_object("v1/namespaces", None, {"metadata": {"name": "kms"}})
            emu.create_object("v1/configmaps", "kms", configmap(tomli_w.dumps(config)))
            emu.create_object("v1/configmaps", "kms", {"apiVersion": "v1", "kind": "ConfigMap",
                                                       "metadata": {"name": "kms-keygen"},
                                                       "data": {"keygen.toml": tomli_w.dumps(keygen_config(config))}})
            emu.create_object("apps/v1/statefulsets", "kms", sts)

            def pod_reports_it():
                pod = emu.get_object("v1/pods", "kms", "kms-core-0") or {}
                conditions = {c["type"]: c for c in (pod.get("status") or {}).get("conditions") or []}
                ready = conditions.get("Ready") or {}
                return ready if "port %d is in use by pid %d" % (client_port, os.getpid()) in ready.get("message", "") else None

            ready = wait_for(pod_reports_it, timeout=20)
            assert ready["status"] == "False"
            assert "cannot bind 127.0.0.1:%d (service.listen_port)" % client_port in ready["message"]
            pod = emu.get_object("v1/pods", "kms", "kms-core-0")
            waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
            assert waiting["reason"] == "CrashLoopBackOff" and "pid %d" % os.getpid() in waiting["message"]
            assert not sts_status(emu).get("readyReplicas")
            # the port is free again: the next retry starts the node
            blocker.close()
            wait_for(lambda: sts_status(emu).get("readyReplicas") == 1, timeout=20)
    finally:
        blocker.close()
