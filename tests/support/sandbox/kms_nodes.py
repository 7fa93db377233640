"""The kubelet of the sandbox: a StatefulSet's pod is a KMS node simulator.

When a StatefulSet is applied to a party's emulator, :class:`KmsNodeRunner` finds the
``threshold.toml`` its pod template mounts (the ConfigMap volume behind ``--config-file``),
parses it with ``tomllib`` and starts ``tests.support.kms_sim.node.SimNode`` with it, passing
the container's literal environment (the node applies ``KMS_CORE__*`` overrides). The
StatefulSet is ready only once the node serves. A new pod template revision (for example a
changed config checksum annotation) restarts the node; deleting the StatefulSet (or scaling it
to 0) stops it. A config the node refuses shows as ``CrashLoopBackOff`` with the reason,
retried every ``retry_seconds``; a missing ConfigMap as ``ContainerCreating``.

Differences from a real cluster: one node per StatefulSet whatever ``replicas`` says (the KMS
party runs one), ``valueFrom`` environment entries are not resolved, and a ConfigMap change
without a template change does not reach the running node (as on Kubernetes, where only a
restart re-reads the file; the kms_config role rolls the pod through a checksum annotation).
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
import tomllib
from collections.abc import Callable
from typing import Any

from tests.support.kube_emulator import KubeEmulator, PodState

LOG = logging.getLogger(__name__)
CONFIGMAPS = "v1/configmaps"
NodeFactory = Callable[[dict, dict], Any]


def _sim_node_factory(config: dict, env: dict) -> Any:
    from tests.support.kms_sim.node import SimNode  # imported lazily: grpc and the collection loader
    return SimNode(config, env=env)


@dataclasses.dataclass
class _Pod:
    revision: str
    node: Any = None
    error: str | None = None
    reason: str | None = None
    failed_at: float = 0.0
    ports: tuple[int | None, int | None] = (None, None)


class ConfigProblem(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _config_path(container: dict) -> str | None:
    words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
    for index, word in enumerate(words):
        if word == "--config-file" and index + 1 < len(words):
            return words[index + 1]
        if word.startswith("--config-file="):
            return word.split("=", 1)[1]
    return None


def locate_config(statefulset: dict) -> tuple[str, str, dict]:
    """(ConfigMap name, key, container) holding the node's threshold.toml, from the pod template."""
    pod = ((statefulset.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = pod.get("containers") or []
    volumes = {v.get("name"): v for v in pod.get("volumes") or [] if isinstance(v, dict) and v.get("configMap")}
    if not containers:
        raise ConfigProblem("CreateContainerConfigError", "the pod template has no containers")
    container = next((c for c in containers if _config_path(c)), containers[0])
    path = _config_path(container)
    if path:
        mounts = sorted((m for m in container.get("volumeMounts") or [] if m.get("name") in volumes),
                        key=lambda m: len(m.get("mountPath", "")), reverse=True)
        for mount in mounts:
            mount_path = mount.get("mountPath", "").rstrip("/")
            if path != mount_path and not path.startswith(mount_path + "/"):
                continue
            volume = volumes[mount["name"]]["configMap"]
            relative = mount.get("subPath") or path[len(mount_path):].lstrip("/")
            key = relative
            for item in volume.get("items") or []:
                if item.get("path") == relative:
                    key = item.get("key")
            return volume.get("name"), key, container
        raise ConfigProblem("CrashLoopBackOff", f"--config-file {path} is not on a ConfigMap volume mount")
    if not volumes:
        raise ConfigProblem("CrashLoopBackOff", "no --config-file argument and no ConfigMap volume")
    volume = next(iter(volumes.values()))["configMap"]
    return volume.get("name"), "threshold.toml", container


class KmsNodeRunner:
    """:class:`~tests.support.kube_emulator.PodRunner` starting KMS node simulators."""

    def __init__(self, node_factory: NodeFactory | None = None, retry_seconds: float = 5.0,
                 label: str = "kube") -> None:
        self.node_factory = node_factory or _sim_node_factory
        self.retry_seconds = retry_seconds
        self.label = label
        self._pods: dict[tuple[str, str], _Pod] = {}
        self._lock = threading.RLock()

    # -------------------------------------------------------------- PodRunner
    def sync(self, emulator: KubeEmulator, statefulset: dict, revision: str) -> PodState:
        meta = statefulset["metadata"]
        key = (meta["namespace"], meta["name"])
        with self._lock:
            pod = self._pods.get(key)
            on_delete = ((statefulset.get("spec") or {}).get("updateStrategy") or {}).get("type") == "OnDelete"
            if pod is not None and (pod.revision == revision or (on_delete and pod.node is not None)):
                if pod.node is not None:
                    serving = bool(pod.node.is_serving())
                    return PodState(ready=serving, reason=None if serving else "Unhealthy",
                                    message=None if serving else "the KMS node does not serve")
                # A crash loop backs off; a pod waiting for its ConfigMap retries at once.
                if pod.reason != "ContainerCreating" and time.monotonic() - pod.failed_at < self.retry_seconds:
                    return PodState(ready=False, reason=pod.reason, message=pod.error)
            self._stop_pod(key)  # new revision (rolling update) or a retry after a failure
            previous_error = pod.error if pod is not None else None
            pod = _Pod(revision=revision)
            self._pods[key] = pod
            try:
                config, env = self._read_config(emulator, statefulset)
                node = self.node_factory(config, env)
                node.start()
            except ConfigProblem as exc:
                return self._failed(key, pod, exc.reason, exc.message, previous_error)
            except Exception as exc:  # the real server would exit: crash loop
                return self._failed(key, pod, "CrashLoopBackOff", f"{type(exc).__name__}: {exc}", previous_error)
            pod.node = node
            pod.ports = (getattr(getattr(node, "cfg", None), "client_port", None),
                         getattr(getattr(node, "cfg", None), "peer_port", None))
            LOG.info("%s: started KMS node for StatefulSet %s/%s (%s)", self.label, key[0], key[1], revision)
            serving = bool(node.is_serving())
            return PodState(ready=serving, reason=None if serving else "Unhealthy",
                            message=None if serving else "the KMS node does not serve yet")

    def stop(self, namespace: str, name: str) -> None:
        with self._lock:
            self._stop_pod((namespace, name))
            self._pods.pop((namespace, name), None)

    def close(self) -> None:
        with self._lock:
            for key in list(self._pods):
                self.stop(*key)

    # -------------------------------------------------------------- inspection
    def describe(self) -> list[dict]:
        """One entry per StatefulSet: namespace, name, revision, state, ports, error."""
        with self._lock:
            rows = []
            for (namespace, name), pod in sorted(self._pods.items()):
                serving = pod.node is not None and bool(pod.node.is_serving())
                state = "serving" if serving else (pod.reason or "starting") if pod.node is None else "not serving"
                rows.append({"namespace": namespace, "name": name, "revision": pod.revision, "state": state,
                             "client_port": pod.ports[0], "peer_port": pod.ports[1], "error": pod.error})
            return rows

    def node(self, namespace: str, name: str) -> Any:
        with self._lock:
            pod = self._pods.get((namespace, name))
            return pod.node if pod else None

    # -------------------------------------------------------------- internals
    def _failed(self, key: tuple[str, str], pod: _Pod, reason: str, message: str,
                previous_error: str | None) -> PodState:
        pod.error, pod.reason, pod.failed_at = message, reason, time.monotonic()
        if message != previous_error:
            LOG.warning("%s: StatefulSet %s/%s not started: %s: %s",
                        self.label, key[0], key[1], reason, message)
        return PodState(ready=False, reason=reason, message=message)

    def _stop_pod(self, key: tuple[str, str]) -> None:
        pod = self._pods.get(key)
        if pod is not None and pod.node is not None:
            try:
                pod.node.stop()
            except Exception:
                LOG.exception("%s: stopping the KMS node of %s/%s failed", self.label, *key)
            LOG.info("%s: stopped KMS node of StatefulSet %s/%s", self.label, *key)
            pod.node = None

    @staticmethod
    def _read_config(emulator: KubeEmulator, statefulset: dict) -> tuple[dict, dict]:
        namespace = statefulset["metadata"]["namespace"]
        cm_name, key, container = locate_config(statefulset)
        configmap = emulator.get_object(CONFIGMAPS, namespace, cm_name)
        if configmap is None:
            raise ConfigProblem("ContainerCreating", f'MountVolume.SetUp failed: configmap "{cm_name}" not found')
        text = (configmap.get("data") or {}).get(key)
        if text is None:
            raise ConfigProblem("CrashLoopBackOff", f'configmap "{cm_name}" has no key "{key}"')
        try:
            config = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigProblem("CrashLoopBackOff", f"{cm_name}/{key}: invalid TOML: {exc}") from exc
        env = {e["name"]: str(e["value"]) for e in container.get("env") or []
               if isinstance(e, dict) and "name" in e and "value" in e}
        return config, env
