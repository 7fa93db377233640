"""A status controller for the emulator: what kube-controller-manager and the kubelet would report.

The API server never changes ``status`` by itself; on a real cluster controllers do. This
controller watches an emulator (through its listeners) and writes the status of:

* StatefulSets -- readiness decided by a :class:`PodRunner` (the sandbox starts a real KMS node
  simulator and reports ready only once it serves); pods ``<name>-<i>`` are maintained with
  the revision hash, owner reference and container statuses; a pod template change is a new
  revision (the runner restarts the node), deletion stops it;
* Deployments, DaemonSets -- ready at once (``daemonset_nodes`` nodes for a DaemonSet);
* Jobs -- succeeded at once (``Complete`` condition);
* Services of type LoadBalancer -- ``status.loadBalancer.ingress[0].hostname`` from a
  :class:`LoadBalancerProvider` (the sandbox creates a network load balancer in moto).

Work happens in one worker thread per controller, so slow runners (starting a node, AWS calls)
never block the API server. Status is written only when it changes (no timestamp churn), so
``kubernetes.core.k8s`` sees no change between its read and its write on a re-run.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import threading
import time
from typing import Any, Protocol

import kmock

from .emulator import Event, KubeEmulator, now_iso

LOG = logging.getLogger(__name__)

STATEFULSETS = kmock.resource("apps", "v1", "statefulsets")
DEPLOYMENTS = kmock.resource("apps", "v1", "deployments")
DAEMONSETS = kmock.resource("apps", "v1", "daemonsets")
JOBS = kmock.resource("batch", "v1", "jobs")
SERVICES = kmock.resource("", "v1", "services")
PODS = kmock.resource("", "v1", "pods")
CONFIGMAPS = kmock.resource("", "v1", "configmaps")

NODE_NAME = "sandbox-node-1"


@dataclasses.dataclass(frozen=True)
class PodState:
    """What the kubelet would say about the pod(s) of a workload."""
    ready: bool
    reason: str | None = None     # waiting reason when not ready: ContainerCreating, CrashLoopBackOff,
    message: str | None = None    # Init:Error, Init:CrashLoopBackOff (then init_container names the one)
    init_container: str | None = None


class PodRunner(Protocol):
    """Runs what a StatefulSet's pods would run and reports readiness."""

    def sync(self, emulator: KubeEmulator, statefulset: dict, revision: str) -> PodState:
        """Make the running pods match ``statefulset`` at ``revision``; report their state."""

    def stop(self, namespace: str, name: str) -> None:
        """The StatefulSet is gone (or scaled to zero): stop its pods."""

    def close(self) -> None:
        """Stop everything (controller shutdown)."""


class ImmediateRunner:
    """Pods are ready as soon as the StatefulSet exists."""

    def sync(self, emulator: KubeEmulator, statefulset: dict, revision: str) -> PodState:
        return PodState(ready=True)

    def stop(self, namespace: str, name: str) -> None:
        pass

    def close(self) -> None:
        pass


class LoadBalancerProvider(Protocol):
    def ensure(self, service: dict) -> str | None:
        """Create/update the load balancer of ``service``; return its hostname (None: not yet)."""

    def delete(self, service: dict) -> None:
        """Remove the load balancer of ``service`` (no error if there is none)."""


class FakeLoadBalancers:
    """Hostnames shaped like the AWS Load Balancer Controller's, without creating anything."""

    def __init__(self, region: str = "eu-west-1") -> None:
        self.region = region

    def ensure(self, service: dict) -> str | None:
        meta = service["metadata"]
        digest = hashlib.sha256(f"{meta.get('namespace')}/{meta['name']}".encode()).hexdigest()[:16]
        return f"k8s-{meta.get('namespace', '')[:8]}-{meta['name'][:8]}-{digest}.elb.{self.region}.amazonaws.com"

    def delete(self, service: dict) -> None:
        pass


def template_revision(name: str, template: Any) -> str:
    """``<name>-<hash>`` of a pod template, like a ControllerRevision name."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
    return f"{name}-{digest}"


def _conditions(old: list | None, wanted: list[tuple[str, str, str, str]]) -> list[dict]:
    """Conditions keeping the old lastTransitionTime when a condition's status did not change."""
    previous = {c.get("type"): c for c in old or [] if isinstance(c, dict)}
    result = []
    for ctype, status, reason, message in wanted:
        before = previous.get(ctype)
        stamp = before["lastTransitionTime"] if before and before.get("status") == status and before.get("lastTransitionTime") else now_iso()
        condition = {"type": ctype, "status": status, "reason": reason, "message": message,
                     "lastTransitionTime": stamp}
        if before and before.get("status") == status and before.get("lastUpdateTime"):
            condition["lastUpdateTime"] = before["lastUpdateTime"]
        result.append(condition)
    return result


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


class WorkloadController:
    """Status controller for one emulator. Use as a context manager or start()/stop()."""

    def __init__(self, emulator: KubeEmulator, *, statefulset_runner: PodRunner | None = None,
                 load_balancers: LoadBalancerProvider | None = None, daemonset_nodes: int = 1,
                 resync_seconds: float = 1.0) -> None:
        self.emulator = emulator
        self.runner = statefulset_runner or ImmediateRunner()
        self.load_balancers = load_balancers or FakeLoadBalancers()
        self.daemonset_nodes = daemonset_nodes
        self.resync_seconds = resync_seconds
        self._queue: list[tuple] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._lb_services: dict[tuple[str, str], dict] = {}
        self._busy = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "WorkloadController":
        self.emulator.add_listener(self._on_event)
        self._thread = threading.Thread(target=self._run, name=f"controller-{self.emulator.label}", daemon=True)
        self._thread.start()
        for res in (STATEFULSETS, DEPLOYMENTS, DAEMONSETS, JOBS, SERVICES):
            for obj in self.emulator.list_objects(res):
                self._enqueue((res, obj["metadata"].get("namespace"), obj["metadata"]["name"]))
        return self

    def stop(self) -> None:
        try:
            self.emulator.remove_listener(self._on_event)
        except ValueError:
            pass
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.runner.close()

    def __enter__(self) -> "WorkloadController":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def idle(self) -> bool:
        """True when no work is queued or running (for tests)."""
        with self._cond:
            return not self._queue and not self._busy

    # ------------------------------------------------------------------ events
    def _on_event(self, event: Event) -> None:
        if event.subresource == "status":
            return  # our own writes (or another controller's)
        if event.resource in (STATEFULSETS, DEPLOYMENTS, DAEMONSETS, JOBS, SERVICES):
            self._enqueue((event.resource, event.namespace, event.name), event)
        elif event.resource == CONFIGMAPS:
            # A StatefulSet may have been waiting for its ConfigMap.
            for sts in self.emulator.list_objects(STATEFULSETS, event.namespace):
                self._enqueue((STATEFULSETS, event.namespace, sts["metadata"]["name"]))

    def _enqueue(self, key: tuple, event: Event | None = None) -> None:
        if event is not None and event.resource == SERVICES:
            # Remember load-balanced Services, so their load balancer can go with them.
            if (event.object.get("spec") or {}).get("type") == "LoadBalancer":
                self._lb_services.setdefault(key[1:], copy.deepcopy(event.object))
        with self._cond:
            if key not in self._queue:
                self._queue.append(key)
            self._cond.notify_all()

    def _run(self) -> None:
        last_resync = time.monotonic()
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    remaining = self.resync_seconds - (time.monotonic() - last_resync)
                    if remaining <= 0:
                        break
                    self._cond.wait(timeout=remaining)
                if self._stopping:
                    return
                key = self._queue.pop(0) if self._queue else None
                self._busy = True
            try:
                if key is None:
                    last_resync = time.monotonic()
                    for sts in self.emulator.list_objects(STATEFULSETS):
                        self._reconcile((STATEFULSETS, sts["metadata"].get("namespace"), sts["metadata"]["name"]))
                    for ns_name in list(self._lb_services):
                        svc = self.emulator.get_object(SERVICES, *ns_name)
                        if svc is not None and not ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
                            self._reconcile((SERVICES, *ns_name))
                else:
                    self._reconcile(key)
            except Exception:  # keep the controller alive; the next event or resync retries
                LOG.exception("%s: reconciling %s failed", self.emulator.label, key)
            finally:
                with self._cond:
                    self._busy = False

    # ------------------------------------------------------------------ reconcilers
    def _reconcile(self, key: tuple) -> None:
        res, namespace, name = key
        if res == STATEFULSETS:
            self._statefulset(namespace, name)
        elif res == DEPLOYMENTS:
            self._deployment(namespace, name)
        elif res == DAEMONSETS:
            self._daemonset(namespace, name)
        elif res == JOBS:
            self._job(namespace, name)
        elif res == SERVICES:
            self._service(namespace, name)

    def _write(self, res: kmock.resource, obj: dict, status: dict) -> None:
        if not _same(obj.get("status") or {}, status):
            meta = obj["metadata"]
            self.emulator.write_status(res, meta.get("namespace"), meta["name"], status)

    def _statefulset(self, namespace: str, name: str) -> None:
        sts = self.emulator.get_object(STATEFULSETS, namespace, name)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            self.runner.stop(namespace, name)
            return
        spec = sts.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        revision = template_revision(name, spec.get("template") or {})
        if replicas > 0:
            state = self.runner.sync(self.emulator, sts, revision)
        else:
            self.runner.stop(namespace, name)
            state = PodState(ready=True)
        old = sts.get("status") or {}
        current = revision if state.ready else (old.get("currentRevision") or revision)
        ready = replicas if state.ready else 0
        status: dict[str, Any] = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": replicas,
            "currentRevision": current,
            "updateRevision": revision,
            "collisionCount": 0,
        }
        for field, value in (("readyReplicas", ready), ("availableReplicas", ready),
                             ("currentReplicas", replicas if state.ready else (0 if current == revision else replicas)),
                             ("updatedReplicas", ready)):
            if value:
                status[field] = value
        self._sync_pods(sts, replicas, revision, state)
        self._write(STATEFULSETS, sts, status)

    def _sync_pods(self, sts: dict, replicas: int, revision: str, state: PodState) -> None:
        meta = sts["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        spec = sts.get("spec") or {}
        template = copy.deepcopy(spec.get("template") or {})
        existing = {p["metadata"]["name"]: p for p in self.emulator.list_objects(PODS, namespace)
                    if any(ref.get("uid") == meta["uid"] for ref in p["metadata"].get("ownerReferences") or [])}
        wanted = {f"{name}-{i}": i for i in range(replicas)}
        for pod_name, pod in existing.items():
            stale = pod["metadata"].get("labels", {}).get("controller-revision-hash") != revision
            if pod_name not in wanted or stale:
                try:
                    self.emulator.delete_object(PODS, namespace, pod_name)
                except kmock.KubernetesError:
                    pass
        existing = {p["metadata"]["name"]: p for p in self.emulator.list_objects(PODS, namespace)
                    if any(ref.get("uid") == meta["uid"] for ref in p["metadata"].get("ownerReferences") or [])}
        for pod_name, index in wanted.items():
            pod = existing.get(pod_name)
            if pod is None:
                labels = dict((template.get("metadata") or {}).get("labels") or {})
                labels.update({"controller-revision-hash": revision,
                               "statefulset.kubernetes.io/pod-name": pod_name,
                               "apps.kubernetes.io/pod-index": str(index)})
                pod_spec = copy.deepcopy(template.get("spec") or {})
                pod_spec.update({"hostname": pod_name, "nodeName": NODE_NAME})
                if spec.get("serviceName"):
                    pod_spec["subdomain"] = spec["serviceName"]
                body = {
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {
                        "name": pod_name, "namespace": namespace, "labels": labels,
                        "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name,
                                             "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
                    },
                    "spec": pod_spec,
                }
                try:
                    pod = self.emulator.create_object(PODS, namespace, body)
                except kmock.KubernetesError as exc:
                    LOG.warning("%s: cannot create pod %s/%s: %s", self.emulator.label, namespace, pod_name, exc.message)
                    continue
            self._write(PODS, pod, self._pod_status(pod, state))

    def _pod_status(self, pod: dict, state: PodState) -> dict:
        old = pod.get("status") or {}
        spec = pod.get("spec") or {}
        containers = spec.get("containers") or []
        start = old.get("startTime") or now_iso()
        init_statuses, blocked = self._init_statuses(old, spec.get("initContainers") or [], state)
        statuses = []
        previous = {c.get("name"): c for c in old.get("containerStatuses") or []}
        for container in containers:
            before = previous.get(container.get("name")) or {}
            if state.ready:
                running = (before.get("state") or {}).get("running") or {"startedAt": now_iso()}
                cstate = {"running": running}
            elif blocked:
                cstate = {"waiting": {"reason": "PodInitializing"}}
            else:
                cstate = {"waiting": {"reason": state.reason or "ContainerCreating", **({"message": state.message} if state.message else {})}}
            statuses.append({
                "name": container.get("name"), "image": container.get("image"),
                "imageID": "", "ready": state.ready, "started": state.ready,
                "restartCount": int(before.get("restartCount", 0)), "state": cstate,
            })
        ready = "True" if state.ready else "False"
        initialized = ("False", "ContainersNotInitialized", f"containers with incomplete status: [{blocked}]") \
            if blocked else ("True", "", "")
        status = {
            "phase": "Running" if state.ready else "Pending",
            "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": start, "qosClass": old.get("qosClass", "Burstable"),
            "conditions": _conditions(old.get("conditions"), [
                ("PodScheduled", "True", "", ""),
                ("Initialized", *initialized),
                ("ContainersReady", ready, "" if state.ready else "ContainersNotReady", "" if state.ready else (state.message or "containers with unready status")),
                ("Ready", ready, "" if state.ready else "ContainersNotReady", "" if state.ready else (state.message or "containers with unready status")),
            ]),
            "containerStatuses": statuses,
        }
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        return status

    @staticmethod
    def _init_statuses(old: dict, init_containers: list, state: PodState) -> tuple[list[dict], str | None]:
        """initContainerStatuses: completed up to the one that fails (``state.init_container``),
        which is waiting in CrashLoopBackOff (or terminated with Error the first time); the
        ones after it wait. Returns (statuses, name of the failing init container or None)."""
        failing = state.init_container if not state.ready else None
        if failing not in [c.get("name") for c in init_containers]:
            failing = None
        previous = {c.get("name"): c for c in old.get("initContainerStatuses") or []}
        statuses, seen_failing = [], False
        for container in init_containers:
            name = container.get("name")
            before = previous.get(name) or {}
            restarts = int(before.get("restartCount", 0))
            last = {}
            if not state.ready and state.reason == "ContainerCreating":
                cstate = {"waiting": {"reason": "PodInitializing"}}   # volumes not mounted yet
            elif name == failing:
                seen_failing = True
                terminated = {"exitCode": 1, "reason": "Error", **({"message": state.message} if state.message else {})}
                if (state.reason or "").endswith("CrashLoopBackOff"):
                    cstate = {"waiting": {"reason": "CrashLoopBackOff", **({"message": state.message} if state.message else {})}}
                    last = {"terminated": terminated}
                    if not (before.get("state") or {}).get("waiting"):
                        restarts += 1
                else:
                    cstate = {"terminated": terminated}
            elif seen_failing:
                cstate = {"waiting": {"reason": "PodInitializing"}}
            else:
                cstate = {"terminated": {"exitCode": 0, "reason": "Completed"}}
            entry = {"name": name, "image": container.get("image"), "imageID": "",
                     "ready": cstate.get("terminated", {}).get("exitCode") == 0, "started": False, "restartCount": restarts, "state": cstate}
            if last:
                entry["lastState"] = last
            statuses.append(entry)
        return statuses, failing

    def _deployment(self, namespace: str, name: str) -> None:
        obj = self.emulator.get_object(DEPLOYMENTS, namespace, name)
        if obj is None:
            return
        replicas = int((obj.get("spec") or {}).get("replicas", 1))
        old = obj.get("status") or {}
        status: dict[str, Any] = {"observedGeneration": obj["metadata"].get("generation", 1)}
        if replicas:
            status.update(replicas=replicas, updatedReplicas=replicas, readyReplicas=replicas, availableReplicas=replicas)
        status["conditions"] = _conditions(old.get("conditions"), [
            ("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
            ("Progressing", "True", "NewReplicaSetAvailable", f'ReplicaSet "{name}" has successfully progressed.'),
        ])
        self._write(DEPLOYMENTS, obj, status)

    def _daemonset(self, namespace: str, name: str) -> None:
        obj = self.emulator.get_object(DAEMONSETS, namespace, name)
        if obj is None:
            return
        nodes = self.daemonset_nodes
        status = {
            "observedGeneration": obj["metadata"].get("generation", 1),
            "currentNumberScheduled": nodes, "desiredNumberScheduled": nodes,
            "numberMisscheduled": 0, "numberReady": nodes,
        }
        if nodes:
            status.update(numberAvailable=nodes, updatedNumberScheduled=nodes)
        self._write(DAEMONSETS, obj, status)

    def _job(self, namespace: str, name: str) -> None:
        obj = self.emulator.get_object(JOBS, namespace, name)
        if obj is None:
            return
        old = obj.get("status") or {}
        if old.get("succeeded"):
            return
        completions = int((obj.get("spec") or {}).get("completions", 1) or 1)
        start = old.get("startTime") or now_iso()
        status = {
            "startTime": start, "completionTime": now_iso(), "succeeded": completions, "ready": 0,
            "terminating": 0, "uncountedTerminatedPods": {},
            "conditions": _conditions(old.get("conditions"), [
                ("SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number of succeeded pods"),
                ("Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods"),
            ]),
        }
        self._write(JOBS, obj, status)

    def _service(self, namespace: str, name: str) -> None:
        obj = self.emulator.get_object(SERVICES, namespace, name)
        remembered = self._lb_services.get((namespace, name))
        if obj is None or (obj.get("spec") or {}).get("type") != "LoadBalancer":
            if remembered is not None:
                self.load_balancers.delete(remembered)
                self._lb_services.pop((namespace, name), None)
            if obj is not None and ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
                self._write(SERVICES, obj, {"loadBalancer": {}})
            return
        self._lb_services[(namespace, name)] = copy.deepcopy(obj)
        hostname = self.load_balancers.ensure(obj)
        if hostname:
            self._write(SERVICES, obj, {"loadBalancer": {"ingress": [{"hostname": hostname}]}})
