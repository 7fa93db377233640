"""The kubelet of the sandbox: a StatefulSet's pod is a KMS node simulator.

When a StatefulSet is applied to a party's emulator, :class:`KmsNodeRunner` runs its pod the
way the kubelet would, as far as the KMS node is concerned:

1. Volumes: every ConfigMap and Secret volume the containers mount is resolved from the
   emulator and written to a private temporary directory of the pod (Secret files mode 0600);
   a missing object shows as ``ContainerCreating`` (``MountVolume.SetUp failed``). Paths in the
   node's configuration that point into such a mount (``tls.manual`` cert/key, peers'
   ``tls_cert.path``) are read from there.
2. Init containers, in order: one that runs ``kms-gen-keys --config-file PATH`` (as its command
   and args, or inside ``sh -c``) runs the simulator's key generation (sandbox.kms_sim.keygen)
   with that file, after ``KMS_CORE__*`` overrides from its environment, against the vaults it
   names. A failure shows as ``Init:Error`` and then ``Init:CrashLoopBackOff`` with the cause.
   Other init containers are taken as completed.
3. The server container (the one with ``--config-file``): its ``threshold.toml`` is parsed with
   ``tomllib`` and started as ``sandbox.kms_sim.node.SimNode`` with the container's literal
   environment. A configuration the server refuses, or a missing signing key, shows as
   ``CrashLoopBackOff`` with the reason, retried every ``retry_seconds``.

The StatefulSet is ready only once the node serves. A new pod template revision (for example a
changed config checksum annotation) restarts the pod; deleting the StatefulSet (or scaling it
to 0) stops it. Every call on the node's client port (source address, method, time, status)
is kept across restarts and listed by :meth:`KmsNodeRunner.describe`;
:meth:`KmsNodeRunner.forward_target` tells the emulator's port-forward where a pod's port is.

Differences from a real cluster: one pod per StatefulSet whatever ``replicas`` says (the KMS
party runs one); ``valueFrom`` environment entries are not resolved; a ConfigMap change
without a template change does not reach the running node (as on Kubernetes, where only a
restart re-reads the file); RAM vaults are kept per StatefulSet so an init container's keys
reach the server (as a vault on a volume shared by both would).
"""
from __future__ import annotations

import base64
import dataclasses
import logging
import os
import re
import shlex
import shutil
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable
from typing import Any

from sandbox.kube_emulator import KubeEmulator, PodState

LOG = logging.getLogger(__name__)
CONFIGMAPS = "v1/configmaps"
SECRETS = "v1/secrets"
SHELLS = ("sh", "bash", "ash", "dash")
NodeFactory = Callable[..., Any]


def _sim_node_factory(config: dict, env: dict, stores: dict | None = None) -> Any:
    from sandbox.kms_sim.node import SimNode  # imported lazily: grpc
    return SimNode(config, env=env, stores=stores)


@dataclasses.dataclass
class _Pod:
    revision: str
    node: Any = None
    error: str | None = None
    reason: str | None = None
    failed_at: float = 0.0
    failures: int = 0
    init_container: str | None = None
    ports: tuple[int | None, int | None] = (None, None)
    workdir: str | None = None
    init: list = dataclasses.field(default_factory=list)


class ConfigProblem(Exception):
    def __init__(self, reason: str, message: str, init_container: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.init_container = init_container


def _words(container: dict) -> list[str]:
    return [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]


def _config_path(words: list[str]) -> str | None:
    for index, word in enumerate(words):
        if word == "--config-file" and index + 1 < len(words):
            return words[index + 1]
        if word.startswith("--config-file="):
            return word.split("=", 1)[1]
    return None


def keygen_config_path(container: dict) -> str | None:
    """PATH when the container runs ``kms-gen-keys --config-file PATH`` (directly or in ``sh -c``)."""
    words = _words(container)
    if words and os.path.basename(words[0]) in SHELLS and "-c" in words:
        script = words[words.index("-c") + 1] if words.index("-c") + 1 < len(words) else ""
        try:
            words = shlex.split(script.replace(";", " ; ").replace("&&", " && "))
        except ValueError:
            return None
    for index, word in enumerate(words):
        if os.path.basename(word) == "kms-gen-keys":
            return _config_path(words[index + 1:]) or ""
    return None


def _mounts(container: dict, volumes: dict) -> list[dict]:
    """The container's mounts of ConfigMap/Secret volumes, longest mount path first."""
    return sorted((m for m in container.get("volumeMounts") or [] if m.get("name") in volumes),
                  key=lambda m: len(m.get("mountPath", "")), reverse=True)


def _source(volume: dict) -> tuple[str, str, list]:
    if volume.get("configMap") is not None:
        return "configmap", volume["configMap"].get("name"), volume["configMap"].get("items") or []
    return "secret", volume["secret"].get("secretName"), volume["secret"].get("items") or []


def locate_config(statefulset: dict) -> tuple[str, str, dict]:
    """(ConfigMap name, key, container) holding the node's threshold.toml, from the pod template."""
    pod = ((statefulset.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = pod.get("containers") or []
    volumes = {v.get("name"): v for v in pod.get("volumes") or [] if isinstance(v, dict) and v.get("configMap")}
    if not containers:
        raise ConfigProblem("CreateContainerConfigError", "the pod template has no containers")
    container = next((c for c in containers if _config_path(_words(c))), containers[0])
    path = _config_path(_words(container))
    if path:
        for mount in _mounts(container, volumes):
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


class PodFiles:
    """ConfigMap and Secret volumes of one pod, written to a private directory."""

    def __init__(self, emulator: KubeEmulator, namespace: str, pod_spec: dict, workdir: str) -> None:
        self.volumes = {v.get("name"): v for v in pod_spec.get("volumes") or []
                        if isinstance(v, dict) and (v.get("configMap") is not None or v.get("secret") is not None)}
        self.emulator, self.namespace, self.workdir = emulator, namespace, workdir
        self._written: set[str] = set()

    def _materialise(self, name: str) -> str:
        folder = os.path.join(self.workdir, "volumes", name)
        if name in self._written:
            return folder
        kind, obj_name, items = _source(self.volumes[name])
        obj = self.emulator.get_object(CONFIGMAPS if kind == "configmap" else SECRETS, self.namespace, obj_name)
        if obj is None:
            raise ConfigProblem("ContainerCreating",
                                f'MountVolume.SetUp failed for volume "{name}": {kind} "{obj_name}" not found')
        if kind == "configmap":
            data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
        else:
            data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
            data.update({k: str(v).encode() for k, v in (obj.get("stringData") or {}).items()})
        files = {item.get("path"): item.get("key") for item in items} if items else {k: k for k in data}
        os.makedirs(folder, mode=0o700, exist_ok=True)
        for path, key in files.items():
            if key not in data:
                raise ConfigProblem("ContainerCreating", f'MountVolume.SetUp failed for volume "{name}": '
                                    f'{kind} "{obj_name}" has no key "{key}"')
            target = os.path.join(folder, path)
            os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if kind == "secret" else 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data[key])
        self._written.add(name)
        return folder

    def mount_all(self) -> None:
        """Write every ConfigMap/Secret volume (the kubelet mounts them all before any container
        starts); ContainerCreating naming each one that cannot be mounted."""
        problems = []
        for name, volume in self.volumes.items():
            if (volume.get("configMap") or volume.get("secret") or {}).get("optional"):
                continue
            try:
                self._materialise(name)
            except ConfigProblem as exc:
                problems.append(exc.message)
        if problems:
            raise ConfigProblem("ContainerCreating", "; ".join(problems))

    def host_path(self, container: dict, path: str) -> str | None:
        """Where the container's ``path`` is, when it lies in a ConfigMap/Secret mount (else None)."""
        for mount in _mounts(container, self.volumes):
            mount_path = mount.get("mountPath", "").rstrip("/")
            if path != mount_path and not path.startswith(mount_path + "/"):
                continue
            folder = self._materialise(mount["name"])
            if mount.get("subPath"):
                return os.path.join(folder, mount["subPath"]) if path == mount_path else None
            return os.path.join(folder, path[len(mount_path):].lstrip("/"))
        return None

    def read(self, container: dict, path: str, what: str) -> str:
        host = self.host_path(container, path)
        if host is None:
            raise ConfigProblem("CrashLoopBackOff", f"{what} {path} is not on a ConfigMap or Secret volume mount")
        try:
            with open(host, encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            raise ConfigProblem("CrashLoopBackOff", f"{what} {path}: no such file in the mounted volume") from None


def _translate_paths(node: Any, container: dict, files: PodFiles) -> Any:
    """Copy of a parsed config with ``path`` values inside ConfigMap/Secret mounts made host paths."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "path" and isinstance(value, str) and value.startswith("/"):
                out[key] = files.host_path(container, value) or value
            else:
                out[key] = _translate_paths(value, container, files)
        return out
    if isinstance(node, list):
        return [_translate_paths(v, container, files) for v in node]
    return node


def _env(container: dict) -> dict:
    return {e["name"]: str(e["value"]) for e in container.get("env") or []
            if isinstance(e, dict) and "name" in e and "value" in e}


_BIND = re.compile(r"cannot bind [^\s:]+:(\d+)")


def explain(exc: Exception) -> str:
    """The node's start-up error as the pod's status message; a port it could not bind names the
    process holding it (sandbox.procs.describe_port), which the rollout wait of
    kms_workload prints with the pod's conditions."""
    message = f"{type(exc).__name__}: {exc}"
    match = _BIND.search(str(exc))
    if match:
        from .procs import describe_port, port_free

        port = int(match.group(1))
        if not port_free(port):  # first: the wait cuts a condition's message at 300 characters
            message = f"{describe_port(port)}; {message}"
    return message


class KmsNodeRunner:
    """:class:`~sandbox.kube_emulator.PodRunner` starting KMS node simulators."""

    def __init__(self, node_factory: NodeFactory | None = None, retry_seconds: float = 5.0,
                 label: str = "kube") -> None:
        self.node_factory = node_factory or _sim_node_factory
        self.retry_seconds = retry_seconds
        self.label = label
        self._pods: dict[tuple[str, str], _Pod] = {}
        self._calls: dict[tuple[str, str], list] = {}      # calls of nodes already stopped
        self._ram: dict[tuple[str, str], dict] = {}        # RAM vault stores per StatefulSet
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
                    return self._state(pod)
            self._stop_pod(key)  # new revision (rolling update) or a retry after a failure
            previous = pod if pod is not None and pod.revision == revision else None
            pod = _Pod(revision=revision, failures=previous.failures if previous else 0)
            self._pods[key] = pod
            pod.workdir = tempfile.mkdtemp(prefix=f"kms-pod-{meta['name']}-")
            try:
                pod_spec = ((statefulset.get("spec") or {}).get("template") or {}).get("spec") or {}
                files = PodFiles(emulator, key[0], pod_spec, pod.workdir)
                files.mount_all()
                self._run_init_containers(key, pod, pod_spec, files)
                config, env, container = self._read_config(emulator, statefulset)
                config = _translate_paths(config, container, files)
                node = self._make_node(key, config, env)
                node.start()
            except ConfigProblem as exc:
                return self._failed(key, pod, exc.reason, exc.message, previous, exc.init_container)
            except Exception as exc:  # the real server would exit: crash loop
                return self._failed(key, pod, "CrashLoopBackOff", explain(exc), previous)
            pod.node = node
            pod.failures = 0
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
        """One entry per StatefulSet: namespace, name, revision, state, ports, error, init
        containers run, and every client-port call of its nodes (``calls``)."""
        with self._lock:
            rows = []
            for (namespace, name), pod in sorted(self._pods.items()):
                serving = pod.node is not None and bool(pod.node.is_serving())
                state = "serving" if serving else (pod.reason or "starting") if pod.node is None else "not serving"
                rows.append({"namespace": namespace, "name": name, "revision": pod.revision, "state": state,
                             "client_port": pod.ports[0], "peer_port": pod.ports[1], "error": pod.error,
                             "init_containers": [dict(i) for i in pod.init],
                             "calls": self.calls(namespace, name)})
            return rows

    def calls(self, namespace: str, name: str) -> list[dict]:
        """Client-port calls of every node this StatefulSet has run: {at, peer, method, code}."""
        with self._lock:
            past = list(self._calls.get((namespace, name), []))
            pod = self._pods.get((namespace, name))
            current = pod.node.calls() if pod is not None and pod.node is not None and hasattr(pod.node, "calls") else []
            return past + current

    def forward_target(self, namespace: str, pod: str, port: int) -> tuple[str, int]:
        """(host, port) behind ``port`` of pod ``<statefulset>-<i>`` for the emulator's port-forward.

        The node's own client and peer ports map to themselves; the real server's defaults
        (50100 client, 50001 peer) map to the node's configured ports. KeyError when there is no
        such pod, LookupError when the pod does not serve that port (not running, or no such port).
        """
        with self._lock:
            owner = None
            for (ns, name), candidate in self._pods.items():
                suffix = pod[len(name) + 1:] if pod.startswith(name + "-") else ""
                if ns == namespace and suffix.isdigit() and int(suffix) == 0:
                    owner = candidate
            if owner is None:
                raise KeyError(f'pods "{pod}" not found')
            if owner.node is None or not owner.node.is_serving():
                raise LookupError(f"pod {pod} is not running: {owner.reason or 'starting'}"
                                  + (f": {owner.error}" if owner.error else ""))
            client, peer = owner.ports
            wanted = {client: client, peer: peer, 50100: client, 50001: peer}.get(port)
            if wanted is None:
                raise LookupError(f"pod {pod}: nothing listens on port {port} (client {client}, peer {peer})")
            host = getattr(owner.node, "bind_host", "127.0.0.1")
            return ("127.0.0.1" if host in ("0.0.0.0", "") else host), wanted

    def node(self, namespace: str, name: str) -> Any:
        with self._lock:
            pod = self._pods.get((namespace, name))
            return pod.node if pod else None

    # -------------------------------------------------------------- internals
    def _make_node(self, key: tuple[str, str], config: dict, env: dict) -> Any:
        if self.node_factory is _sim_node_factory:
            return _sim_node_factory(config, env, stores=self._ram_stores(key, config, env))
        return self.node_factory(config, env)

    def _ram_stores(self, key: tuple[str, str], config: dict, env: dict) -> dict | None:
        from sandbox.kms_sim.config import apply_env_overrides, vault_of
        from sandbox.kms_sim.storage import VaultStore

        config = apply_env_overrides(config, env)
        vaults = {kind: vault_of(config, kind + "_vault") for kind in ("private", "public")}
        if any(v is not None and v.kind != "ram" for v in vaults.values()):
            return None
        if key not in self._ram:
            from sandbox.kms_sim.config import Vault

            self._ram[key] = {kind: VaultStore(Vault("ram")) for kind in ("private", "public")}
        return self._ram[key]

    def _run_init_containers(self, key: tuple[str, str], pod: _Pod, pod_spec: dict, files: PodFiles) -> None:
        from sandbox.kms_sim.config import apply_env_overrides
        from sandbox.kms_sim.keygen import KeygenError, generate_keys

        for container in pod_spec.get("initContainers") or []:
            name = container.get("name")
            path = keygen_config_path(container)
            if path is None:
                pod.init.append({"name": name, "result": "completed (not run by the sandbox)"})
                continue
            if not path:
                raise ConfigProblem("Init:Error", "kms-gen-keys: the required argument --config-file was not "
                                    "provided", name)
            text = files.read(container, path, "kms-gen-keys --config-file")
            try:
                doc = apply_env_overrides(tomllib.loads(text), _env(container))
            except (tomllib.TOMLDecodeError, ValueError) as exc:
                raise ConfigProblem("Init:Error", f"failed to load kms-gen-keys config file {path}: {exc}",
                                    name) from exc
            stores = self._ram_stores(key, doc, {})
            output: list[str] = []
            try:
                result = generate_keys(doc, stores=stores, log=output.append)
            except KeygenError as exc:
                raise ConfigProblem("Init:Error", f"kms-gen-keys: {exc}", name) from exc
            pod.init.append({"name": name, "result": "completed", "generated": result["generated"],
                             "written": result["written"], "output": output})
            LOG.info("%s: %s/%s init container %s: kms-gen-keys %s", self.label, key[0], key[1], name,
                     "generated keys" if result["generated"] else "kept the existing keys")

    def _state(self, pod: _Pod) -> PodState:
        reason = pod.reason
        if reason == "Init:Error" and pod.failures > 1:
            reason = "Init:CrashLoopBackOff"
        return PodState(ready=False, reason=reason, message=pod.error, init_container=pod.init_container)

    def _failed(self, key: tuple[str, str], pod: _Pod, reason: str, message: str, previous: _Pod | None,
                init_container: str | None = None) -> PodState:
        pod.error, pod.reason, pod.failed_at = message, reason, time.monotonic()
        pod.init_container = init_container
        pod.failures += 1
        if previous is None or message != previous.error:
            LOG.warning("%s: StatefulSet %s/%s not started: %s: %s",
                        self.label, key[0], key[1], reason, message)
        return self._state(pod)

    def _stop_pod(self, key: tuple[str, str]) -> None:
        pod = self._pods.get(key)
        if pod is None:
            return
        if pod.node is not None:
            if hasattr(pod.node, "calls"):
                self._calls.setdefault(key, []).extend(pod.node.calls())
            try:
                pod.node.stop()
            except Exception:
                LOG.exception("%s: stopping the KMS node of %s/%s failed", self.label, *key)
            LOG.info("%s: stopped KMS node of StatefulSet %s/%s", self.label, *key)
            pod.node = None
        if pod.workdir:
            shutil.rmtree(pod.workdir, ignore_errors=True)
            pod.workdir = None

    @staticmethod
    def _read_config(emulator: KubeEmulator, statefulset: dict) -> tuple[dict, dict, dict]:
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
        return config, _env(container), container
