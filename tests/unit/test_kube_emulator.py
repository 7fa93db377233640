"""The Kubernetes API emulator, exercised the way the roles use it.

* real ``kubernetes.core.k8s`` / ``k8s_info`` runs (ansible-playbook, kubeconfig pointing at
  the emulator over plain HTTP): create, re-run changed=0, ``apply: true`` twice, a spec
  change bumping the generation, check mode, label selectors, delete, ``wait: true`` on a
  StatefulSet decided by the status controller, a ServiceMonitor with and without its CRD;
* the API itself over HTTP: Status errors, PUT, the patch formats, the status subresource,
  finalizers, cascades, CRD discovery, selectors, dry run, request log;
* the patch and selector functions.

Ports: 21000-21049 (+150 per pytest-xdist worker).
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
import yaml

from sandbox.kube_emulator import PodState, run_emulators
from sandbox.kube_emulator.merge import json_merge_patch, strategic_merge_patch
from sandbox.kube_emulator.selectors import parse_label_selector

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
BASE_PORT = 21000 + 150 * WORKER


class GatedRunner:
    """StatefulSet pods are ready unless their name is blocked (a node that is not up yet)."""

    def __init__(self):
        self.blocked = set()

    def sync(self, emulator, statefulset, revision):
        if statefulset["metadata"]["name"] not in self.blocked:
            return PodState(ready=True)
        return PodState(ready=False, reason="Unhealthy", message="the node does not serve yet")

    def stop(self, namespace, name):
        pass

    def close(self):
        pass


@pytest.fixture(scope="module")
def kube(tmp_path_factory):
    runner = GatedRunner()
    logs = tmp_path_factory.mktemp("kube-logs")
    with run_emulators(2, base_port=BASE_PORT, statefulset_runner=lambda party, emu: runner,
                       request_log_dir=str(logs), resync_seconds=0.3) as running:
        running.emulator(2).install_crds("monitoring")  # party 2 has the Prometheus Operator CRDs
        running.runner = runner
        running.logs = logs
        yield running


@pytest.fixture(scope="module")
def kubeconfigs(kube, tmp_path_factory):
    folder = tmp_path_factory.mktemp("kubeconfig")
    return {party: kube.write_kubeconfig(party, folder / f"p{party}.yaml") for party in (1, 2)}


# --------------------------------------------------------------------------- ansible helpers
def run_playbook(tmp_path, kubeconfigs, tasks, extra_vars=None, hosts=(1,), check=False, expect_rc=0):
    """Run ``tasks`` on hosts p<i> (kubeconfig of party i); return {task_name: {host: result}}."""
    inventory = {"all": {"hosts": {f"p{i}": {"kubeconfig": str(kubeconfigs[i]),
                                             "ansible_connection": "local",
                                             "ansible_python_interpreter": sys.executable} for i in hosts}}}
    play = [{"hosts": "all", "gather_facts": False,
             "module_defaults": {"group/kubernetes.core.k8s": {"kubeconfig": "{{ kubeconfig }}"}},
             "tasks": tasks}]
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    (tmp_path / "vars.json").write_text(json.dumps(extra_vars or {}))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1")
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
               "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml"),
               "-e", f"@{tmp_path / 'vars.json'}"] + (["--check"] if check else [])
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == expect_rc, proc.stdout[-4000:] + proc.stderr[-4000:]
    output = json.loads(proc.stdout[proc.stdout.index("{"):])
    return {task["task"]["name"]: task["hosts"] for play in output["plays"] for task in play["tasks"]}


def manifests(ns, checksum="v1", env_value="1", config="listen_port = 50100\n"):
    """One object of each kind a party deploys (namespace first)."""
    labels = {"app.kubernetes.io/name": "kms-core", "app.kubernetes.io/instance": ns}
    selector = {"matchLabels": labels}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kms-config", "namespace": ns, "labels": labels},
         "data": {"threshold.toml": config}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kms-tls", "namespace": ns},
         "stringData": {"ca.pem": "-----BEGIN CERTIFICATE-----"}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "kms", "namespace": ns,
                      "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::100000000001:role/kms"}}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "kms-core", "namespace": ns, "labels": labels},
         "spec": {"replicas": 1, "serviceName": "kms-core", "podManagementPolicy": "Parallel", "selector": selector,
                  "template": {"metadata": {"labels": labels, "annotations": {"kms/config-checksum": checksum}},
                               "spec": {"serviceAccountName": "kms",
                                        "securityContext": {"runAsUser": 10002, "runAsGroup": 10003, "runAsNonRoot": True},
                                        "containers": [
                                            {"name": "kms-core", "image": "ghcr.io/zama-ai/kms/core-service:v0.14.1-0",
                                             "args": ["--config-file", "/etc/kms/threshold.toml"],
                                             "env": [{"name": "RUST_LOG", "value": env_value}],
                                             "ports": [{"name": "peer", "containerPort": 50001},
                                                       {"name": "client", "containerPort": 50100},
                                                       {"name": "metrics", "containerPort": 9646}],
                                             "readinessProbe": {"grpc": {"port": 50100}},
                                             "volumeMounts": [{"name": "config", "mountPath": "/etc/kms"}]}],
                                        "volumes": [{"name": "config", "configMap": {"name": "kms-config"}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kms-core", "namespace": ns, "labels": labels},
         "spec": {"clusterIP": "None", "selector": labels,
                  "ports": [{"name": "peer", "port": 50001}, {"name": "client", "port": 50100}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kms-peer", "namespace": ns},
         "spec": {"type": "LoadBalancer", "selector": labels,
                  "ports": [{"name": "peer", "port": 50001, "targetPort": 50001}]}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "nitro-device-plugin", "namespace": ns},
         "spec": {"selector": {"matchLabels": {"name": "nitro-device-plugin"}},
                  "template": {"metadata": {"labels": {"name": "nitro-device-plugin"}},
                               "spec": {"containers": [{"name": "plugin",
                                                        "image": "public.ecr.aws/aws-nitro-enclaves/aws-nitro-enclaves-k8s-device-plugin:v0.3",
                                                        "env": [{"name": "ENCLAVE_CPU_ADVERTISEMENT", "value": "TRUE"}]}]}}}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "kms-core", "namespace": ns},
         "spec": {"maxUnavailable": 1, "selector": selector}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "kms-core", "namespace": ns},
         "spec": {"podSelector": selector, "policyTypes": ["Ingress"],
                  "ingress": [{"ports": [{"port": 50001, "protocol": "TCP"}]},
                              {"from": [{"podSelector": {}}], "ports": [{"port": 50100, "protocol": "TCP"}]}]}},
    ]


def k8s_task(name, definition, **params):
    return {"name": name, "kubernetes.core.k8s": {"definition": definition, **params}, "register": "out"}


def changes(result):
    """{kind/name: changed} of a k8s task that applied a list of definitions."""
    return {f"{r['result']['kind']}/{r['result']['metadata']['name']}": r["changed"] for r in result["result"]["results"]}


# --------------------------------------------------------------------------- kubernetes.core runs
def test_state_present_creates_every_kind_then_rerun_changes_nothing(kube, kubeconfigs, tmp_path):
    defs = manifests("present")
    out = run_playbook(tmp_path, kubeconfigs, [k8s_task("create", defs), k8s_task("rerun", defs)])
    first, second = out["create"]["p1"], out["rerun"]["p1"]
    assert set(changes(first).values()) == {True} and len(changes(first)) == len(defs)
    assert set(changes(second).values()) == {False}
    objects = {f"{r['result']['kind']}/{r['result']['metadata']['name']}": r["result"] for r in first["result"]["results"]}
    for obj in objects.values():
        meta = obj["metadata"]
        assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["resourceVersion"].isdigit()
    assert objects["StatefulSet/kms-core"]["metadata"]["generation"] == 1
    assert "generation" not in objects["ConfigMap/kms-config"]["metadata"]
    assert objects["Secret/kms-tls"]["data"] == {"ca.pem": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"}
    assert "stringData" not in objects["Secret/kms-tls"]
    assert objects["Service/kms-core"]["spec"]["clusterIP"] == "None"
    assert objects["Namespace/present"]["metadata"]["labels"] == {"kubernetes.io/metadata.name": "present"}

    stored = kube.emulator(1).get_object("apps/v1/statefulsets", "present", "kms-core")
    assert stored["metadata"]["generation"] == 1
    # The controller marked the workloads ready (what a real cluster's controllers report).
    assert stored["status"]["readyReplicas"] == 1
    assert stored["status"]["currentRevision"] == stored["status"]["updateRevision"]
    ds = kube.emulator(1).get_object("apps/v1/daemonsets", "present", "nitro-device-plugin")
    assert ds["status"]["numberReady"] == ds["status"]["desiredNumberScheduled"] == 1
    lb = kube.emulator(1).get_object("v1/services", "present", "kms-peer")
    assert lb["status"]["loadBalancer"]["ingress"][0]["hostname"].endswith(".elb.eu-west-1.amazonaws.com")
    pod = kube.emulator(1).get_object("v1/pods", "present", "kms-core-0")
    assert pod["status"]["phase"] == "Running"
    assert pod["metadata"]["labels"]["controller-revision-hash"] == stored["status"]["updateRevision"]


def test_apply_twice_then_a_spec_change_bumps_the_generation(kube, kubeconfigs, tmp_path):
    ns = "applied"
    changed = manifests(ns, checksum="v2", env_value="debug", config="listen_port = 50101\n")
    out = run_playbook(tmp_path, kubeconfigs, [
        k8s_task("first", manifests(ns), apply=True), k8s_task("second", manifests(ns), apply=True),
        k8s_task("third", changed, apply=True), k8s_task("fourth", changed, apply=True)])
    first = out["first"]["p1"]
    assert set(changes(first).values()) == {True}
    sts = next(r["result"] for r in first["result"]["results"] if r["result"]["kind"] == "StatefulSet")
    assert "kubectl.kubernetes.io/last-applied-configuration" in sts["metadata"]["annotations"]
    assert set(changes(out["second"]["p1"]).values()) == {False}
    flags = changes(out["third"]["p1"])
    assert {key for key, value in flags.items() if value} == {"StatefulSet/kms-core", "ConfigMap/kms-config"}
    assert set(changes(out["fourth"]["p1"]).values()) == {False}

    stored = kube.emulator(1).get_object("apps/v1/statefulsets", ns, "kms-core")
    assert stored["metadata"]["generation"] == 2
    container = stored["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "RUST_LOG", "value": "debug"}]
    assert [p["containerPort"] for p in container["ports"]] == [50001, 50100, 9646]
    # The status controller rolled to the new revision.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = kube.emulator(1).get_object("apps/v1/statefulsets", ns, "kms-core")["status"]
        if status.get("observedGeneration") == 2 and status["currentRevision"] == status["updateRevision"]:
            break
        time.sleep(0.1)
    assert status["observedGeneration"] == 2 and status["readyReplicas"] == 1
    pod = kube.emulator(1).get_object("v1/pods", ns, "kms-core-0")
    assert pod["metadata"]["annotations"]["kms/config-checksum"] == "v2"


def test_check_mode_reports_the_change_and_stores_nothing(kube, kubeconfigs, tmp_path):
    ns = "checked"
    extra = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new-one", "namespace": ns}, "data": {"a": "b"}}
    out = run_playbook(tmp_path, kubeconfigs, [
        k8s_task("setup", manifests(ns), apply=True),
        dict(k8s_task("change", manifests(ns, checksum="v9"), apply=True), check_mode=True),
        dict(k8s_task("new", extra), check_mode=True),
        {"name": "read", "kubernetes.core.k8s_info": {"api_version": "apps/v1", "kind": "StatefulSet",
                                                      "namespace": ns, "name": "kms-core"}},
    ])
    assert changes(out["change"]["p1"])["StatefulSet/kms-core"] is True
    assert out["new"]["p1"]["changed"] is True
    before = next(r["result"] for r in out["setup"]["p1"]["result"]["results"] if r["result"]["kind"] == "StatefulSet")
    after = out["read"]["p1"]["resources"][0]
    assert after["metadata"]["generation"] == 1
    assert after["spec"]["template"] == before["spec"]["template"]
    assert kube.emulator(1).get_object("v1/configmaps", ns, "new-one") is None


def test_info_with_label_selectors_then_delete(kube, kubeconfigs, tmp_path):
    ns = "deleted"
    workloads = [d for d in manifests(ns) if d["kind"] != "Namespace"]
    out = run_playbook(tmp_path, kubeconfigs, [
        k8s_task("apply", manifests(ns)),
        {"name": "info", "kubernetes.core.k8s_info": {"kind": "ConfigMap", "namespace": ns,
                                                      "label_selectors": ["app.kubernetes.io/name=kms-core"]}},
        {"name": "none", "kubernetes.core.k8s_info": {"kind": "ConfigMap", "namespace": ns,
                                                      "label_selectors": ["app.kubernetes.io/name in (other)"]}},
        {"name": "all-namespaces", "kubernetes.core.k8s_info": {"api_version": "apps/v1", "kind": "StatefulSet"}},
        k8s_task("delete", workloads, state="absent", wait=True, wait_timeout=10),
        {"name": "after", "kubernetes.core.k8s_info": {"kind": "ConfigMap", "namespace": ns}},
        k8s_task("delete-again", workloads, state="absent"),
    ])
    assert [r["metadata"]["name"] for r in out["info"]["p1"]["resources"]] == ["kms-config"]
    assert out["none"]["p1"]["resources"] == []
    assert ns in {r["metadata"]["namespace"] for r in out["all-namespaces"]["p1"]["resources"]}
    assert out["delete"]["p1"]["changed"] is True
    assert out["after"]["p1"]["resources"] == []
    assert out["delete-again"]["p1"]["changed"] is False
    # The StatefulSet's pods went with it (garbage collection by owner reference).
    assert kube.emulator(1).list_objects("v1/pods", ns) == []


def test_wait_on_a_statefulset_returns_once_the_controller_marks_it_ready(kube, kubeconfigs, tmp_path):
    ns = "waited"
    sts = next(d for d in manifests(ns) if d["kind"] == "StatefulSet")
    stuck = dict(sts, metadata={"name": "stuck", "namespace": ns})
    kube.runner.blocked.update({"kms-core", "stuck"})
    timers = []

    def unblock_later(event):  # the node comes up 2 s after its StatefulSet is created
        if (event.type, event.namespace, event.name) == ("ADDED", ns, "kms-core") and event.resource.plural == "statefulsets":
            timers.append(threading.Timer(2.0, kube.runner.blocked.discard, args=("kms-core",)))
            timers[-1].start()

    kube.emulator(1).add_listener(unblock_later)
    try:
        out = run_playbook(tmp_path, kubeconfigs, [
            k8s_task("ns", manifests(ns)[:2]),
            dict(k8s_task("wait", sts, wait=True, wait_timeout=30, wait_sleep=1), register="waited"),
            dict(k8s_task("stuck", stuck, wait=True, wait_timeout=3, wait_sleep=1), ignore_errors=True),
        ])
    finally:
        kube.emulator(1).remove_listener(unblock_later)
        for timer in timers:
            timer.cancel()
        kube.runner.blocked.clear()
    result = out["wait"]["p1"]
    assert result["changed"] is True and result["duration"] >= 1
    assert result["result"]["status"]["readyReplicas"] == 1
    assert result["result"]["status"]["observedGeneration"] == result["result"]["metadata"]["generation"]
    # A node that never comes up: the wait fails and says so.
    failed = out["stuck"]["p1"]
    assert failed["failed"] is True and "timed out" in failed["msg"].lower()
    pod = kube.emulator(1).get_object("v1/pods", ns, "stuck-0")
    assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"] == "the node does not serve yet"


def test_servicemonitor_only_where_its_crd_is_installed(kube, kubeconfigs, tmp_path):
    ns = "monitoring-test"
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
               "metadata": {"name": "kms-core", "namespace": ns, "labels": {"release": "prometheus"}},
               "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "kms-core"}},
                        "endpoints": [{"port": "metrics", "interval": "30s"}]}}
    out = run_playbook(tmp_path, kubeconfigs, [
        k8s_task("ns", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        {"name": "cluster", "kubernetes.core.k8s_cluster_info": {"kubeconfig": "{{ kubeconfig }}",
                                                                "invalidate_cache": True}},
        {"name": "crd", "kubernetes.core.k8s_info": {"api_version": "apiextensions.k8s.io/v1",
                                                     "kind": "CustomResourceDefinition",
                                                     "name": "servicemonitors.monitoring.coreos.com"}},
        {"name": "api", "register": "api",
         "kubernetes.core.k8s_info": {"api_version": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "namespace": ns}},
        dict(k8s_task("monitor", monitor), when="api.api_found"),
        dict(k8s_task("monitor-again", monitor), when="api.api_found"),
        dict(k8s_task("without-crd", monitor), when="not api.api_found", ignore_errors=True),
    ], hosts=(1, 2))
    assert "monitoring.coreos.com/v1" not in out["cluster"]["p1"]["apis"]
    assert {"ServiceMonitor", "PrometheusRule"} <= set(out["cluster"]["p2"]["apis"]["monitoring.coreos.com/v1"])
    assert out["cluster"]["p2"]["version"]["server"]["kubernetes"]["minor"] == "32"
    assert out["crd"]["p1"]["resources"] == []
    assert out["crd"]["p2"]["resources"][0]["status"]["conditions"][1]["type"] == "Established"
    assert out["api"]["p1"]["api_found"] is False and out["api"]["p2"]["api_found"] is True
    assert out["monitor"]["p1"]["skipped"] is True
    assert out["monitor"]["p2"]["changed"] is True
    assert out["monitor-again"]["p2"]["changed"] is False  # strategic merge refused (415) -> merge patch
    stored = kube.emulator(2).get_object("monitoring.coreos.com/v1/servicemonitors", ns, "kms-core")
    assert stored["metadata"]["generation"] == 1 and stored["spec"]["endpoints"][0]["port"] == "metrics"
    # Without the CRD the module cannot create one.
    assert out["without-crd"]["p1"]["failed"] is True and "ServiceMonitor" in out["without-crd"]["p1"]["msg"]


# --------------------------------------------------------------------------- the API over HTTP
def call(kube, method, path, body=None, content_type="application/json", party=1):
    data = (body if isinstance(body, bytes) else json.dumps(body).encode()) if body is not None else None
    request = urllib.request.Request(kube.url(party) + path, data=data, method=method,
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture()
def ns(kube, request):
    name = request.node.name.replace("_", "-")[5:40].strip("-")
    assert call(kube, "POST", "/api/v1/namespaces", {"metadata": {"name": name}})[0] == 201
    yield name
    call(kube, "DELETE", f"/api/v1/namespaces/{name}")


def configmap(name, **extra):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **extra}, "data": {"a": "1"}}


def test_errors_are_kubernetes_status_objects(kube, ns):
    code, body = call(kube, "GET", f"/api/v1/namespaces/{ns}/configmaps/missing")
    assert code == 404 and body["kind"] == "Status" and body["reason"] == "NotFound"
    assert body["message"] == 'configmaps "missing" not found'
    assert body["details"] == {"name": "missing", "group": "", "kind": "configmaps"}

    assert call(kube, "POST", f"/api/v1/namespaces/{ns}/configmaps", configmap("c"))[0] == 201
    code, body = call(kube, "POST", f"/api/v1/namespaces/{ns}/configmaps", configmap("c"))
    assert (code, body["reason"], body["message"]) == (409, "AlreadyExists", 'configmaps "c" already exists')

    code, body = call(kube, "POST", "/api/v1/namespaces/nowhere/configmaps", configmap("c"))
    assert (code, body["message"]) == (404, 'namespaces "nowhere" not found')

    code, body = call(kube, "POST", f"/api/v1/namespaces/{ns}/configmaps",
                      configmap("d", labels={"checksum": "a" * 64}))
    assert code == 422 and body["reason"] == "Invalid"
    assert "metadata.labels" in body["message"] and "must be no more than 63 characters" in body["message"]

    code, body = call(kube, "POST", f"/api/v1/namespaces/{ns}/configmaps", configmap("Upper"))
    assert code == 422 and "metadata.name" in body["message"]

    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"},
           "spec": {"selector": {"matchLabels": {"app": "a"}},
                    "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}}
    code, body = call(kube, "POST", f"/apis/apps/v1/namespaces/{ns}/statefulsets", sts)
    assert code == 422 and "`selector` does not match template `labels`" in body["message"]

    code, body = call(kube, "GET", "/apis/example.com/v1/things")
    assert code == 404 and body["reason"] == "NotFound"


def test_put_replaces_and_checks_the_resource_version(kube, ns):
    _, created = call(kube, "POST", f"/api/v1/namespaces/{ns}/configmaps",
                      {"metadata": {"name": "c", "labels": {"x": "y"}}, "data": {"a": "1", "b": "2"}})
    replacement = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"b": "3"}}
    code, replaced = call(kube, "PUT", f"/api/v1/namespaces/{ns}/configmaps/c", replacement)
    assert code == 200 and replaced["data"] == {"b": "3"} and "labels" not in replaced["metadata"]
    assert replaced["metadata"]["uid"] == created["metadata"]["uid"]
    assert int(replaced["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    stale = dict(replacement, metadata={"name": "c", "resourceVersion": created["metadata"]["resourceVersion"]})
    code, body = call(kube, "PUT", f"/api/v1/namespaces/{ns}/configmaps/c", stale)
    assert code == 409 and body["reason"] == "Conflict" and "the object has been modified" in body["message"]

    # An unchanged write keeps the resourceVersion (a no-op is not a change).
    code, same = call(kube, "PUT", f"/api/v1/namespaces/{ns}/configmaps/c", replacement)
    assert same["metadata"]["resourceVersion"] == replaced["metadata"]["resourceVersion"]


def test_patch_formats(kube, ns):
    base = f"/api/v1/namespaces/{ns}/configmaps/c"
    call(kube, "POST", f"/api/v1/namespaces/{ns}/configmaps",
         {"metadata": {"name": "c", "labels": {"keep": "1", "drop": "1"}}, "data": {"a": "1"}})
    _, merged = call(kube, "PATCH", base, {"metadata": {"labels": {"drop": None}}, "data": {"b": "2"}},
                     "application/merge-patch+json")
    assert merged["metadata"]["labels"] == {"keep": "1"} and merged["data"] == {"a": "1", "b": "2"}
    _, patched = call(kube, "PATCH", base, [{"op": "replace", "path": "/data/a", "value": "9"},
                                            {"op": "remove", "path": "/data/b"}], "application/json-patch+json")
    assert patched["data"] == {"a": "9"}
    code, body = call(kube, "PATCH", base, [{"op": "remove", "path": "/data/none"}], "application/json-patch+json")
    assert code == 422
    code, body = call(kube, "PATCH", base, {"data": {}}, "text/plain")
    assert code == 415 and body["reason"] == "UnsupportedMediaType"
    # Server-side apply (approximation): creates when missing.
    code, applied = call(kube, "PATCH", f"/api/v1/namespaces/{ns}/configmaps/ssa?fieldManager=t",
                         b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {k: v}\n",
                         "application/apply-patch+yaml")
    assert code == 200 and applied["data"] == {"k": "v"} and applied["metadata"]["namespace"] == ns


def test_generation_status_subresource_and_dry_run(kube, ns):
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"selector": {"matchLabels": {"app": "d"}},
                    "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}}
    code, created = call(kube, "POST", path + "?dryRun=All", dep)
    assert code == 201 and call(kube, "GET", path + "/d")[0] == 404
    _, created = call(kube, "POST", path, dep)
    assert created["metadata"]["generation"] == 1 and created["spec"]["replicas"] == 1
    smp = "application/strategic-merge-patch+json"
    _, labelled = call(kube, "PATCH", path + "/d", {"metadata": {"labels": {"x": "y"}}}, smp)
    assert labelled["metadata"]["generation"] == 1
    _, scaled = call(kube, "PATCH", path + "/d", {"spec": {"replicas": 2}, "status": {"replicas": 99}}, smp)
    assert scaled["metadata"]["generation"] == 2 and scaled["status"].get("replicas") != 99
    _, status = call(kube, "PATCH", path + "/d/status", {"status": {"replicas": 7}, "spec": {"replicas": 5}},
                     "application/merge-patch+json")
    assert status["status"]["replicas"] == 7 and status["spec"]["replicas"] == 2
    assert status["metadata"]["generation"] == 2
    code, immutable = call(kube, "PATCH", path + "/d", {"spec": {"selector": {"matchLabels": {"app": "e"}}}},
                           "application/merge-patch+json")
    assert code == 422 and "field is immutable" in immutable["message"]


def test_statefulset_spec_fields_are_immutable_except_the_allowed_ones(kube, ns):
    path = f"/apis/apps/v1/namespaces/{ns}/statefulsets"
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"},
           "spec": {"serviceName": "s", "selector": {"matchLabels": {"app": "s"}},
                    "template": {"metadata": {"labels": {"app": "s"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}}
    assert call(kube, "POST", path, sts)[0] == 201
    code, body = call(kube, "PATCH", path + "/s", {"spec": {"serviceName": "other"}}, "application/merge-patch+json")
    assert code == 422 and "updates to statefulset spec for fields other than" in body["message"]
    code, body = call(kube, "PATCH", path + "/s", {"spec": {"replicas": 3}}, "application/merge-patch+json")
    assert code == 200 and body["spec"]["replicas"] == 3


def test_finalizers_namespace_cascade_and_selectors(kube):
    call(kube, "POST", "/api/v1/namespaces", {"metadata": {"name": "cascade"}})
    base = "/api/v1/namespaces/cascade/configmaps"
    call(kube, "POST", base, configmap("held", finalizers=["example.com/hold"], labels={"tier": "a"}))
    call(kube, "POST", base, configmap("free", labels={"tier": "b"}))
    call(kube, "POST", base, configmap("bare"))
    assert [i["metadata"]["name"] for i in call(kube, "GET", base + "?labelSelector=tier%20in%20(a,b)")[1]["items"]] == ["free", "held"]
    assert [i["metadata"]["name"] for i in call(kube, "GET", base + "?labelSelector=!tier")[1]["items"]] == ["bare"]
    assert [i["metadata"]["name"] for i in call(kube, "GET", base + "?labelSelector=tier!%3Da")[1]["items"]] == ["bare", "free"]
    assert [i["metadata"]["name"] for i in call(kube, "GET", base + "?fieldSelector=metadata.name%3Dfree")[1]["items"]] == ["free"]
    listed = call(kube, "GET", base)[1]
    assert (listed["kind"], listed["apiVersion"]) == ("ConfigMapList", "v1") and listed["metadata"]["resourceVersion"]

    code, held = call(kube, "DELETE", base + "/held")
    assert code == 200 and held["metadata"]["deletionTimestamp"]
    assert call(kube, "GET", base + "/held")[0] == 200
    call(kube, "PATCH", base + "/held", {"metadata": {"finalizers": None}}, "application/merge-patch+json")
    assert call(kube, "GET", base + "/held")[0] == 404

    assert call(kube, "DELETE", "/api/v1/namespaces/cascade")[0] == 200
    assert call(kube, "GET", "/api/v1/namespaces/cascade")[0] == 404
    assert kube.emulator(1).list_objects("v1/configmaps", "cascade") == []


def test_a_crd_created_through_the_api_becomes_discoverable(kube, ns):
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                    "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    assert call(kube, "GET", "/apis/example.com/v1alpha1")[0] == 404
    assert call(kube, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)[0] == 201
    _, doc = call(kube, "GET", "/apis/example.com/v1alpha1")
    assert [(r["name"], r["kind"], r["namespaced"]) for r in doc["resources"]] == [("widgets", "Widget", True)]
    groups = {g["name"] for g in call(kube, "GET", "/apis")[1]["groups"]}
    assert "example.com" in groups
    widget = {"apiVersion": "example.com/v1alpha1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}}
    assert call(kube, "POST", f"/apis/example.com/v1alpha1/namespaces/{ns}/widgets", widget)[0] == 201
    code, _ = call(kube, "PATCH", f"/apis/example.com/v1alpha1/namespaces/{ns}/widgets/w", {"spec": {"size": 2}},
                   "application/strategic-merge-patch+json")
    assert code == 415  # as on a real server: custom resources take no strategic merge patch
    assert call(kube, "DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")[0] == 200
    assert call(kube, "GET", "/apis/example.com/v1alpha1")[0] == 404
    assert kube.emulator(1).list_objects("example.com/v1alpha1/widgets") == []


def test_discovery_is_the_real_document_set(kube):
    _, apis = call(kube, "GET", "/apis")
    preferred = {g["name"]: g["preferredVersion"]["version"] for g in apis["groups"]}
    assert preferred["autoscaling"] == "v2" and preferred["apps"] == "v1"
    assert "monitoring.coreos.com" not in preferred  # CRDs are off unless asked for
    _, core = call(kube, "GET", "/api/v1")
    names = {r["name"]: r for r in core["resources"]}
    assert names["namespaces"]["namespaced"] is False and names["configmaps"]["namespaced"] is True
    assert "statefulsets/status" in {r["name"] for r in call(kube, "GET", "/apis/apps/v1")[1]["resources"]}
    assert "monitoring.coreos.com" in {g["name"] for g in call(kube, "GET", "/apis", party=2)[1]["groups"]}


def test_every_request_is_logged(kube):
    call(kube, "GET", "/api/v1/namespaces/default?probe=logged")
    assert ("GET", "/api/v1/namespaces/default?probe=logged", 200) in kube.emulator(1).api_requests
    lines = (kube.logs / "kube-p1.requests.log").read_text().splitlines()
    assert any(line.split()[1:5] == ["party1", "GET", "/api/v1/namespaces/default?probe=logged", "200"]
               for line in lines)


# --------------------------------------------------------------------------- pure functions
def test_strategic_merge_patch_merges_keyed_lists():
    target = {"kind": "StatefulSet", "spec": {"template": {"spec": {
        "containers": [{"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                        "ports": [{"containerPort": 1, "name": "p"}]},
                       {"name": "b", "image": "b:1"}],
        "volumes": [{"name": "v", "configMap": {"name": "c"}}],
        "tolerations": [{"key": "t1"}]}}}}
    patch = {"spec": {"template": {"spec": {
        "containers": [{"name": "a", "env": [{"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}]},
                       {"name": "b", "$patch": "delete"}, {"name": "c", "image": "c:1"}],
        "tolerations": [{"key": "t2"}]}}}}
    result = strategic_merge_patch(target, patch)
    spec = result["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["a", "c"]
    assert spec["containers"][0]["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}]
    assert spec["containers"][0]["ports"] == [{"containerPort": 1, "name": "p"}] and spec["containers"][0]["image"] == "a:1"
    assert spec["tolerations"] == [{"key": "t2"}]  # no patch strategy: replaced
    assert spec["volumes"] == [{"name": "v", "configMap": {"name": "c"}}]
    assert target["spec"]["template"]["spec"]["containers"][1]["name"] == "b"  # input untouched
    service = strategic_merge_patch({"kind": "Service", "spec": {"ports": [{"port": 1, "nodePort": 30001}]}},
                                    {"spec": {"ports": [{"port": 1, "name": "p"}, {"port": 2}]}})
    assert service["spec"]["ports"] == [{"port": 1, "nodePort": 30001, "name": "p"}, {"port": 2}]
    replaced = strategic_merge_patch({"metadata": {"labels": {"a": "1"}}}, {"metadata": {"labels": {"$patch": "replace", "b": "2"}}})
    assert replaced["metadata"]["labels"] == {"b": "2"}


def test_json_merge_patch_and_label_selectors():
    assert json_merge_patch({"a": {"b": 1, "c": [1, 2]}, "d": 1}, {"a": {"b": None, "c": [3]}, "e": {"f": 1}}) == \
        {"a": {"c": [3]}, "d": 1, "e": {"f": 1}}
    match = parse_label_selector("app=kms, tier in (a,b), !legacy, env!=prod")
    assert match({"app": "kms", "tier": "a"}) is True
    assert match({"app": "kms", "tier": "c"}) is False
    assert match({"app": "kms", "tier": "b", "legacy": "1"}) is False
    assert match({"app": "kms", "tier": "b", "env": "prod"}) is False
    assert parse_label_selector("")({"any": "thing"}) is True


# --------------------------------------------------------------------------- port-forward
class EchoServer:
    """A TCP server that echoes what it receives and records every caller's address."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.callers = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            self.callers.append(peer[0])
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn):
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)

    def close(self):
        self.sock.close()


def test_port_forward_bridges_a_pod_port_from_the_party_source_address(kube, kubeconfigs, ns):
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException
    from kubernetes.stream import portforward

    echo = EchoServer()
    emulator = kube.emulator(1)
    targets = {(ns, "kms-core-0", 50100): ("127.0.0.1", echo.port)}

    def target(namespace, pod, port):
        if (namespace, pod) != (ns, "kms-core-0"):
            raise KeyError(f'pods "{pod}" not found')
        if (namespace, pod, port) not in targets:
            raise LookupError("connect: connection refused")
        return targets[(namespace, pod, port)]

    emulator.port_forward_target, emulator.source_address = target, "127.0.1.7"
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfigs[1])))
    try:
        forward = portforward(api.connect_get_namespaced_pod_portforward, "kms-core-0", ns, ports="50100")
        sock = forward.socket(50100)
        sock.settimeout(5)
        sock.sendall(b"hello pod")
        received = b""
        while len(received) < 9:
            received += sock.recv(64)
        assert received == b"hello pod"
        assert echo.callers == ["127.0.1.7"]  # the emulator dialled from the party's address
        sock.close()
        # a port nothing listens on: the error channel says so and the stream ends
        forward = portforward(api.connect_get_namespaced_pod_portforward, "kms-core-0", ns, ports="50001")
        sock = forward.socket(50001)
        sock.settimeout(5)
        assert sock.recv(64) == b""
        deadline = time.monotonic() + 5
        while forward.error(50001) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "connection refused" in forward.error(50001)
        assert "error forwarding port 50001 to pod kms-core-0" in forward.error(50001)
        # a pod that does not exist: refused before the upgrade, as a NotFound Status
        with pytest.raises(ApiException) as refused:
            portforward(api.connect_get_namespaced_pod_portforward, "kms-core-9", ns, ports="50100")
        assert "Handshake status 404" in str(refused.value)
        assert 'pods \\"kms-core-9\\" not found' in str(refused.value)
        logged = [line for line in kube.emulator(1).api_requests if "portforward" in line[1]]
        assert ("GET", f"/api/v1/namespaces/{ns}/pods/kms-core-0/portforward?ports=50100", 101) in logged
    finally:
        emulator.port_forward_target, emulator.source_address = None, None
        echo.close()
