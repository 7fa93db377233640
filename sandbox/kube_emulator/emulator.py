"""A Kubernetes API server stand-in: kmock's ``KubernetesEmulator``, extended.

kmock 0.8 provides the HTTP server, request recording, the discovery scaffold, the bundled
discovery documents of 24 real group-versions, the in-memory object history and watch streams.
This subclass adds what ``kubernetes.core`` needs to behave as against a real cluster:

* paths parsed correctly (``/api/v1/namespaces``, ``/api/v1/namespaces/NAME[/status]``);
* lists with ``kind``/``apiVersion``/``resourceVersion``, label and field selectors;
* PUT mapped to replace; PATCH in the three formats (merge, JSON, strategic merge) plus
  server-side apply as an approximation; ``?dryRun=All``;
* server-managed metadata: uid, creationTimestamp, resourceVersion, generation (bumped on a
  spec change only), ``kubernetes.io/metadata.name`` on Namespaces;
* the ``status`` subresource (writes to the main resource keep the status and vice versa);
* a few server defaults and validations that real clusters apply (Service clusterIP and
  nodePorts, Secret ``stringData``, workload update strategies, pod template defaults, label
  syntax, selector/template match, immutable StatefulSet fields, missing namespaces);
* Status objects for errors (404 NotFound, 409 AlreadyExists/Conflict, 422 Invalid, ...);
* CustomResourceDefinitions that make their resources discoverable when created;
* cascading deletion (Namespace contents, custom objects of a CRD, ownerReferences);
* listeners, so controllers (:mod:`.workloads`) can react to changes and write status;
* a request log (method, path, status) for request counting;
* a fault switch (``POST /_emulator/faults`` with ``{"fail": N, "from_method": "POST",
  "agent": "OpenAPI-Generator"}``, or :meth:`arm_fault`): from the first request of that method
  and user agent on, N requests in a row are answered 503 ServiceUnavailable (etcd timing out),
  as an API server failing in the middle of an apply; ``GET /_emulator/faults`` reports what
  was refused. Port-forwards are never faulted.

Store operations are synchronous and guarded by a thread lock, so controllers running in
other threads can read objects and write status safely.
"""
from __future__ import annotations

import asyncio
import base64
import collections
import copy
import dataclasses
import datetime
import gzip
import importlib.resources
import json
import random
import re
import string
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml
from kmock._internal import rendering as _rendering  # StreamingError (kmock==0.8 pinned)

from . import crds as crds_mod
from .merge import PatchError, json_merge_patch, json_patch, strategic_merge_patch
from .paths import parse_api_path
from .selectors import SelectorError, match_labels, parse_field_selector, parse_label_selector

SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-kmock-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

# Kinds whose registry strategy maintains metadata.generation (custom resources always do).
GENERATION_KINDS = {
    "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob",
    "PodDisruptionBudget", "NetworkPolicy", "Ingress", "HorizontalPodAutoscaler",
    "CustomResourceDefinition", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
}
# Fields of a StatefulSet spec that may change after creation (apps/v1 validation).
STATEFULSET_MUTABLE = {"replicas", "ordinals", "template", "updateStrategy",
                       "persistentVolumeClaimRetentionPolicy", "minReadySeconds"}
SELECTOR_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_PORT_FORWARD_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/portforward/?$")


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_resource(value: Any) -> kmock.resource:
    """``kmock.resource`` from a resource or a string such as ``apps/v1/statefulsets``."""
    return value if isinstance(value, kmock.resource) else kmock.resource(value)


def api_error(code: int, reason: str, message: str, *, name: str | None = None,
              kind: str | None = None, group: str | None = None,
              causes: list[dict] | None = None) -> kmock.KubernetesError:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group is not None and kind:
        details["group"] = group
    if kind:
        details["kind"] = kind
    if causes:
        details["causes"] = causes
    return kmock.KubernetesError(status=code, reason=reason, message=message, details=details)


@dataclasses.dataclass(frozen=True)
class Event:
    """A committed change, as delivered to listeners."""
    type: str                      # ADDED | MODIFIED | DELETED
    resource: kmock.resource
    namespace: str | None
    name: str
    object: dict                   # the new state (the last state for DELETED)
    old: dict | None               # the previous state (None for ADDED)
    subresource: str | None = None  # "status" for status writes


Listener = Callable[[Event], None]


@attrs.define(kw_only=True)
class KubeEmulator(kmock.KubernetesEmulator):
    """One emulated API server (one party's cluster).

    :param label: a name for logs (e.g. ``party1``).
    :param crd_sets: named CRD sets installed at start (see :data:`crds.CRD_SETS`).
    :param request_log: path of a file receiving one line per API request.
    """

    label: str = "kube"
    crd_sets: tuple[str, ...] = ()
    request_log: str | None = None

    _store_lock: threading.RLock = attrs.field(factory=threading.RLock, init=False)
    _rv: int = attrs.field(default=1000, init=False)
    _listeners: list = attrs.field(factory=list, init=False)
    _loop: Any = attrs.field(default=None, init=False)
    _custom: set = attrs.field(factory=set, init=False)
    _builtin: set = attrs.field(factory=set, init=False)
    _next_ip: int = attrs.field(default=10, init=False)
    _next_node_port: int = attrs.field(default=30000, init=False)
    _log_lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)
    api_requests: collections.deque = attrs.field(factory=lambda: collections.deque(maxlen=100000), init=False)
    # Port-forward (see _serve_port_forward): ``port_forward_target(namespace, pod, port)`` gives
    # the (host, port) behind a pod's port or raises LookupError naming why there is none;
    # ``source_address`` is the local address the emulator connects from (the sandbox gives each
    # party's "cluster" its own loopback address, so the node can tell in-cluster callers apart).
    port_forward_target: Callable[[str, str, int], tuple[str, int]] | None = None
    source_address: str | None = None
    # The fault switch (arm_fault): {"left", "from_method", "agent", "started", "refused"}.
    _fault: dict = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # kmock's bundled discovery documents (ResourcesArray.load_bundled, without its
        # deprecated importlib call): 24 real group-versions of a recent cluster.
        bundled = importlib.resources.files("kmock._internal").joinpath("resources.json.gz").read_bytes()
        self.resources.load_data(gzip.decompress(bundled))
        self._builtin = set(self.resources)
        for ns in BUILTIN_NAMESPACES:
            self.create_object("v1/namespaces", None, {"metadata": {"name": ns}})
        for set_name in self.crd_sets:
            self.install_crds(set_name)

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self):  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        return await super().__aenter__()

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` after every committed change (from the writer's thread)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def install_crds(self, set_name: str) -> None:
        """Install a named CRD set (e.g. ``monitoring``), as ``kubectl apply -f crds/`` would."""
        for crd in crds_mod.crd_set(set_name):
            if self.get_object("apiextensions.k8s.io/v1/customresourcedefinitions", None, crd["metadata"]["name"]) is None:
                self.create_object("apiextensions.k8s.io/v1/customresourcedefinitions", None, crd)

    # ------------------------------------------------------------------ fault switch
    def arm_fault(self, fail: int, from_method: str = "POST", agent: str = "") -> None:
        """From the first ``from_method`` request whose user agent starts with ``agent`` on,
        answer ``fail`` requests (of that agent) in a row with 503; ``fail=0`` disarms."""
        with self._log_lock:
            self._fault = {"left": int(fail), "from_method": from_method.upper(), "agent": agent,
                           "started": False, "refused": []} if fail else {}

    def fault_report(self) -> dict:
        with self._log_lock:
            return {k: v for k, v in self._fault.items()}

    def _faulted(self, method: str, path: str, agent: str) -> bool:
        with self._log_lock:
            fault = self._fault
            if not fault or fault["left"] <= 0 or not agent.startswith(fault["agent"]):
                return False
            if not fault["started"] and method.upper() != fault["from_method"]:
                return False
            fault["started"] = True
            fault["left"] -= 1
            fault["refused"].append("%s %s" % (method, path))
            return True

    async def _serve_fault_switch(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if raw_request.method == "POST":
            body = json.loads((await raw_request.read()) or b"{}")
            self.arm_fault(body.get("fail", 0), body.get("from_method", "POST"), body.get("agent", ""))
        return aiohttp.web.json_response(self.fault_report())

    # ------------------------------------------------------------------ HTTP entry
    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """kmock's ``RawHandler.__call__`` with our request parser (kmock's fails on /api/v1/namespaces)."""
        started = time.monotonic()
        forward = _PORT_FORWARD_PATH.match(raw_request.path)
        if forward is not None:
            return await self._serve_port_forward(raw_request, forward.group(1), forward.group(2), started)
        if raw_request.path == "/_emulator/faults":
            return await self._serve_fault_switch(raw_request)
        await raw_request.read()
        agent = ((raw_request.headers.get("User-Agent") or "").split() or ["-"])[0]
        if self._faulted(raw_request.method, raw_request.path_qs, agent):
            response = aiohttp.web.json_response(
                {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                 "message": "etcdserver: request timed out", "reason": "ServiceUnavailable", "code": 503}, status=503)
            self._log_request(raw_request.method, raw_request.path_qs, 503, time.monotonic() - started, agent)
            return response
        raw_response: aiohttp.web.StreamResponse | None = None
        try:
            try:
                if self.limit is not None and len(self._requests) >= self.limit:
                    raise kmock.KMockError("Too many requests have been served so far.")
                request = await self._parse_request(raw_request)
                self._requests.append(request)
                try:
                    response = await self._handle(request)
                except _rendering.StreamingError as exc:
                    raw_response = exc.args[0]
                    raise exc.__cause__ or exc
            except Exception as exc:
                if not self._errors:
                    raise
                self._errors[-1].append(exc)
                if raw_response is None or not raw_response.prepared:
                    response = await self._render_error(exc)
                else:
                    await self._stream_error(exc, raw_response)
                    await raw_response.write_eof()
                    response = raw_response
        finally:
            # kmock keeps every request and error for assertions; bound them in long-running use.
            if len(self._requests) > 5000:
                del self._requests[:-1000]
            if self._errors and len(self._errors[-1]) > 200:
                del self._errors[-1][:-50]
        agent = ((raw_request.headers.get("User-Agent") or "").split() or ["-"])[0]
        self._log_request(raw_request.method, raw_request.path_qs, response.status, time.monotonic() - started, agent)
        return response

    def _log_request(self, method: str, path: str, status: int, seconds: float, agent: str = "-") -> None:
        """One line per request: time, party label, method, path, status, duration, user agent."""
        self.api_requests.append((method, path, status))
        if self.request_log:
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            line = f"{stamp} {self.label} {method} {path} {status} {seconds * 1000:.1f}ms {agent}\n"
            with self._log_lock, open(self.request_log, "a", encoding="utf-8") as handle:
                handle.write(line)

    async def _parse_request(self, raw_request: aiohttp.web.BaseRequest) -> kmock.Request:
        body = await raw_request.read()
        text = body.decode("utf-8", errors="replace")
        try:
            data = json.loads(text) if text.strip() else None
        except ValueError:
            data = None
        method = raw_request.method.upper()
        query = dict(raw_request.query)
        parsed = parse_api_path(raw_request.path)
        resource = namespace = name = subresource = action = None
        if parsed is not None:
            resource = kmock.resource(group=parsed.group, version=parsed.version, plural=parsed.plural)
            namespace, name, subresource = parsed.namespace, parsed.name, parsed.subresource
            if parsed.plural is not None:
                watch = query.get("watch") in ("true", "1")
                action = {
                    "GET": kmock.action.WATCH if watch else kmock.action.FETCH if name else kmock.action.LIST,
                    "POST": kmock.action.CREATE,
                    "PATCH": kmock.action.UPDATE,
                    "PUT": kmock.action.UPDATE,
                    "DELETE": kmock.action.DELETE,
                }.get(method)
        else:
            parts = [p for p in raw_request.path.split("/") if p]
            if len(parts) == 2 and parts[0] == "apis":  # /apis/<group>: the group document
                resource = kmock.resource(group=parts[1])
        return kmock.Request(
            id=len(self._requests), raw_request=raw_request, url=raw_request.url, method=method,
            params=query, headers=dict(raw_request.headers), cookies=dict(raw_request.cookies),
            data=data, body=body, text=text, action=action, resource=resource, namespace=namespace,
            name=name, subresource=subresource,
        )

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        # Skip KubernetesEmulator._handle (its own state logic); our _serve_* methods own it.
        # User reactions (kmock DSL) still take precedence over these fallbacks.
        return await super(kmock.KubernetesEmulator, self)._handle(request)

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if isinstance(exc, kmock.KubernetesError):
            status = {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                      "message": exc.message or repr(exc), "reason": exc.reason or "InternalError",
                      "code": exc.status}
            if exc.details:
                status["details"] = exc.details
            return aiohttp.web.json_response(status, status=exc.status)
        return aiohttp.web.json_response({
            "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
            "message": f"emulator error: {exc!r}", "reason": "InternalError", "code": 500,
            "details": {"causes": [{"message": traceback.format_exc()}]},
        }, status=500)

    # ------------------------------------------------------------------ port-forward
    async def _serve_port_forward(self, raw_request: aiohttp.web.BaseRequest, namespace: str, pod: str,
                                  started: float) -> aiohttp.web.StreamResponse:
        """``/api/v1/namespaces/{ns}/pods/{pod}/portforward?ports=N[,M]`` over a websocket.

        The ``v4.channel.k8s.io`` framing of the API server: every binary message starts with a
        channel byte; port i of the request has data channel 2i and error channel 2i+1, and the
        first message on each channel carries the port number (2 bytes, little-endian). Each
        requested port gets one connection to ``port_forward_target(namespace, pod, port)``,
        opened from ``source_address``; a connection that fails is reported on the error
        channel, and the websocket closes when the pod side closes.
        """
        agent = ((raw_request.headers.get("User-Agent") or "").split() or ["-"])[0]

        def refuse(code: int, reason: str, message: str) -> aiohttp.web.StreamResponse:
            self._log_request(raw_request.method, raw_request.path_qs, code, time.monotonic() - started, agent)
            return aiohttp.web.json_response({"apiVersion": "v1", "kind": "Status", "metadata": {},
                                              "status": "Failure", "message": message, "reason": reason,
                                              "code": code}, status=code)

        if raw_request.method not in ("GET", "POST"):
            return refuse(405, "MethodNotAllowed", f"method {raw_request.method} not allowed for portforward")
        ports: list[int] = []
        for value in raw_request.query.getall("ports", []):
            for item in value.split(","):
                if not item.strip().isdigit() or not 0 < int(item) < 65536:
                    return refuse(400, "BadRequest", f"invalid port {item!r}")
                ports.append(int(item))
        if not ports:
            return refuse(400, "BadRequest", "at least one port must be specified")
        if self.get_object("v1/namespaces", None, namespace) is None:
            return refuse(404, "NotFound", f'namespaces "{namespace}" not found')
        targets: dict[int, tuple[str, int] | str] = {}
        for port in ports:
            if self.port_forward_target is None:
                return refuse(404, "NotFound", f'pods "{pod}" not found')
            try:
                targets[port] = self.port_forward_target(namespace, pod, port)
            except KeyError as exc:  # no such pod
                return refuse(404, "NotFound", str(exc.args[0]) if exc.args else f'pods "{pod}" not found')
            except LookupError as exc:  # the pod exists but nothing serves that port
                targets[port] = str(exc)
        if raw_request.headers.get("Upgrade", "").lower() != "websocket":
            return refuse(400, "BadRequest", "Upgrade request required")
        ws = aiohttp.web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(raw_request)
        self._log_request(raw_request.method, raw_request.path_qs, 101, time.monotonic() - started, agent)
        writers: dict[int, asyncio.StreamWriter] = {}
        pumps: list[asyncio.Task] = []

        async def pump(index: int, reader: asyncio.StreamReader) -> None:
            try:
                while True:
                    data = await reader.read(65536)
                    if not data:
                        break
                    await ws.send_bytes(bytes((2 * index,)) + data)
            except (ConnectionError, RuntimeError):
                pass
            await ws.close()  # the pod side is gone: end the stream

        for index, port in enumerate(ports):
            head = port.to_bytes(2, "little")
            await ws.send_bytes(bytes((2 * index,)) + head)
            await ws.send_bytes(bytes((2 * index + 1,)) + head)
            target = targets[port]
            problem = target if isinstance(target, str) else None
            if problem is None:
                host, target_port = target
                try:
                    reader, writer = await asyncio.open_connection(
                        host, target_port, local_addr=(self.source_address, 0) if self.source_address else None)
                except OSError as exc:
                    problem = f"dial tcp {host}:{target_port}: {exc.strerror or exc}"
                else:
                    writers[index] = writer
                    pumps.append(asyncio.ensure_future(pump(index, reader)))
            if problem is not None:
                await ws.send_bytes(bytes((2 * index + 1,)) + (
                    f"error forwarding port {port} to pod {pod}, uid : {problem}").encode())
        try:
            if not writers:
                return ws
            async for message in ws:
                if message.type != aiohttp.WSMsgType.BINARY or not message.data:
                    continue
                channel = message.data[0]
                writer = writers.get(channel // 2) if channel % 2 == 0 else None
                if writer is not None and len(message.data) > 1:
                    writer.write(message.data[1:])
                    await writer.drain()
        except (ConnectionError, RuntimeError):
            pass
        finally:
            for task in pumps:
                task.cancel()
            for writer in writers.values():
                writer.close()
            await ws.close()
        return ws

    # ------------------------------------------------------------------ discovery
    def _get_resources(self) -> list[kmock.resource]:
        # Declared resources only (kmock would also list resources of deleted objects).
        return list(kmock.KubernetesScaffold._get_resources(self))

    def _group_versions(self) -> dict[str, list[str]]:
        groups: dict[str, set[str]] = collections.defaultdict(set)
        for res in self._get_resources():
            if res.group and res.version:
                groups[res.group].add(res.version)
        return {group: sorted(versions, key=_version_priority) for group, versions in groups.items()}

    def _group_document(self, group: str, versions: list[str]) -> dict:
        return {
            "name": group,
            "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
            "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]},
        }

    async def _serve_apis(self, request: kmock.Request) -> dict:
        groups = self._group_versions()
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [self._group_document(g, groups[g]) for g in sorted(groups)]}

    async def _serve_group(self, request: kmock.Request) -> dict:
        groups = self._group_versions()
        group = request.resource.group if request.resource is not None else None
        if group not in groups:
            raise api_error(404, "NotFound", "the server could not find the requested resource")
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group_document(group, groups[group])}

    async def _serve_server_version(self, request: kmock.Request) -> dict:
        return dict(SERVER_VERSION)

    # ------------------------------------------------------------------ resource lookup
    def info(self, res: kmock.resource) -> kmock.ResourceInfo | None:
        return self.resources[res] if res in self.resources else None

    def resource_for(self, api_version: str, kind: str) -> kmock.resource | None:
        """The resource serving ``kind`` in ``api_version`` (e.g. ``apps/v1``, ``StatefulSet``)."""
        group, _, version = api_version.rpartition("/")
        for res in self._get_resources():
            if res.group == group and res.version == version and self.resources[res].kind == kind:
                return res
        return None

    def _require_resource(self, res: kmock.resource) -> kmock.ResourceInfo:
        info = self.info(res)
        if info is None:
            raise api_error(404, "NotFound", "the server could not find the requested resource")
        return info

    @staticmethod
    def _gv(res: kmock.resource) -> str:
        return f"{res.group}/{res.version}" if res.group else res.version

    def _qualified(self, res: kmock.resource) -> str:
        return f"{res.plural}.{res.group}" if res.group else res.plural

    def _not_found(self, res: kmock.resource, name: str) -> kmock.KubernetesError:
        return api_error(404, "NotFound", f'{self._qualified(res)} "{name}" not found',
                         name=name, kind=res.plural, group=res.group)

    def _tracks_generation(self, res: kmock.resource, info: kmock.ResourceInfo) -> bool:
        return info.kind in GENERATION_KINDS or res in self._custom

    # ------------------------------------------------------------------ store (thread-safe)
    def _key(self, res: kmock.resource, namespace: str | None, name: str) -> tuple:
        return (res, namespace, name)

    def _current(self, key: tuple) -> dict | None:
        if key in self.objects and not self.objects[key].deleted:
            return self.objects[key].raw
        return None

    def get_object(self, res: Any, namespace: str | None, name: str) -> dict | None:
        """A deep copy of the stored object, or None."""
        res = as_resource(res)
        with self._store_lock:
            current = self._current(self._key(res, namespace, name))
            return copy.deepcopy(current) if current is not None else None

    def list_objects(self, res: Any, namespace: str | None = None, label_selector: str | None = None,
                     field_selector: str | None = None) -> list[dict]:
        """Deep copies of the stored objects of a resource, sorted by namespace and name."""
        res = as_resource(res)
        labels_ok = parse_label_selector(label_selector)
        fields_ok = parse_field_selector(field_selector)
        with self._store_lock:
            found = []
            for (r, ns, name), obj in list(self.objects.items()):
                if r != res or obj.deleted or (namespace is not None and ns != namespace):
                    continue
                raw = obj.raw
                if labels_ok((raw.get("metadata") or {}).get("labels") or {}) and fields_ok(raw):
                    found.append(((ns or "", name), copy.deepcopy(raw)))
        return [obj for _, obj in sorted(found, key=lambda item: item[0])]

    def _commit(self, res: kmock.resource, namespace: str | None, name: str, new: dict | None,
                old: dict | None, subresource: str | None = None) -> Event:
        """Store a new state (or a deletion) and queue the event; caller holds the lock."""
        key = self._key(res, namespace, name)
        if new is None:
            self.objects[key].delete()
            event = Event("DELETED", res, namespace, name, old or {}, old, subresource)
        else:
            self._rv += 1
            new.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
            if key in self.objects:
                self.objects[key].history.append(copy.deepcopy(new))
            else:
                self.objects[key] = copy.deepcopy(new)
            event = Event("ADDED" if old is None else "MODIFIED", res, namespace, name, new, old, subresource)
        return event

    def _notify(self, events: Iterable[Event]) -> None:
        for event in events:
            if self._loop is not None and not self._loop.is_closed():
                payload = {"type": event.type, "object": copy.deepcopy(event.object)}
                bus = self._buses[event.resource]
                try:
                    self._loop.call_soon_threadsafe(lambda b=bus, p=payload: self._loop.create_task(b.put(p)))
                except RuntimeError:
                    pass  # loop closed while shutting down
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:  # a broken controller must not break the API
                    traceback.print_exc()

    # --- create
    def create_object(self, res: Any, namespace: str | None, body: Any, *, dry_run: bool = False) -> dict:
        res = as_resource(res)
        info = self._require_resource(res)
        events: list[Event] = []
        with self._store_lock:
            obj = self._prepare_create(res, info, namespace, body)
            meta = obj["metadata"]
            if not dry_run:
                events.append(self._commit(res, meta.get("namespace"), meta["name"], obj, None))
                if info.kind == "CustomResourceDefinition":
                    self._register_crd(obj)
                    obj = self._crd_established(res, obj, events)
        self._notify(events)
        return copy.deepcopy(obj)

    def _prepare_create(self, res: kmock.resource, info: kmock.ResourceInfo, namespace: str | None,
                        body: Any) -> dict:
        if not isinstance(body, dict):
            raise api_error(400, "BadRequest", "the body of the request must be a JSON object")
        obj = copy.deepcopy(body)
        kind = info.kind
        if obj.get("kind") not in (None, kind):
            raise api_error(400, "BadRequest", f"the kind {obj.get('kind')!r} does not match the resource {self._qualified(res)} ({kind})")
        obj["apiVersion"] = self._gv(res)
        obj["kind"] = kind
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        name = meta.get("name")
        if not name and meta.get("generateName"):
            name = meta["generateName"] + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            meta["name"] = name
        if not name:
            raise self._invalid(res, info, "", [("metadata.name", "Required value", "name or generateName is required")])

        if info.namespaced:
            body_ns = meta.get("namespace")
            if namespace and body_ns and body_ns != namespace:
                raise api_error(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
            namespace = namespace or body_ns
            if not namespace:
                raise api_error(400, "BadRequest", "a namespace is required for namespaced resources")
            ns_obj = self._current(self._key(kmock.resource("", "v1", "namespaces"), None, namespace))
            if ns_obj is None:
                raise api_error(404, "NotFound", f'namespaces "{namespace}" not found', name=namespace, kind="namespaces", group="")
            if (ns_obj.get("metadata") or {}).get("deletionTimestamp"):
                raise api_error(403, "Forbidden", f"{kind} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
            namespace = None

        if self._current(self._key(res, namespace, name)) is not None:
            raise api_error(409, "AlreadyExists", f'{self._qualified(res)} "{name}" already exists',
                            name=name, kind=res.plural, group=res.group)
        for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_iso()
        if self._tracks_generation(res, info):
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if "status" in info.subresources:
            obj.pop("status", None)
        self._default(res, info, obj, None)
        self._validate(res, info, obj, None)
        return obj

    # --- update (PATCH / PUT / status writes)
    def update_object(self, res: Any, namespace: str | None, name: str,
                      change: Callable[[dict], dict], *, subresource: str | None = None,
                      dry_run: bool = False, expected_rv: str | None = None,
                      create_if_missing: dict | None = None) -> tuple[dict, bool]:
        """Apply ``change(current) -> new`` to a stored object. Returns (object, changed)."""
        res = as_resource(res)
        info = self._require_resource(res)
        if subresource not in (None, "status") or (subresource == "status" and "status" not in info.subresources):
            raise api_error(404, "NotFound", "the server could not find the requested resource")
        events: list[Event] = []
        with self._store_lock:
            key = self._key(res, namespace if info.namespaced else None, name)
            old = self._current(key)
            if old is None:
                if create_if_missing is not None and subresource is None:
                    body = copy.deepcopy(create_if_missing)
                    body.setdefault("metadata", {})["name"] = name
                    obj = self._prepare_create(res, info, namespace, body)
                    if not dry_run:
                        events.append(self._commit(res, key[1], name, obj, None))
                    changed = True
                    result = obj
                else:
                    raise self._not_found(res, name)
            else:
                old = copy.deepcopy(old)
                if expected_rv and expected_rv != old["metadata"].get("resourceVersion"):
                    raise self._conflict(res, name)
                try:
                    candidate = change(copy.deepcopy(old))
                except PatchError as exc:
                    raise api_error(422 if "cannot be applied" in str(exc) else 400,
                                    "Invalid" if "cannot be applied" in str(exc) else "BadRequest", str(exc))
                if not isinstance(candidate, dict):
                    raise api_error(400, "BadRequest", "the patched object is not a JSON object")
                new = self._merge_update(res, info, old, candidate, subresource)
                changed = new != old
                result = new if changed else old
                if changed and not dry_run:
                    meta = new["metadata"]
                    if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                        events.append(self._commit(res, key[1], name, None, old))
                        events.extend(self._cascade(res, info, new))
                    else:
                        events.append(self._commit(res, key[1], name, new, old, subresource))
        self._notify(events)
        return copy.deepcopy(result), changed

    def _merge_update(self, res: kmock.resource, info: kmock.ResourceInfo, old: dict, candidate: dict,
                      subresource: str | None) -> dict:
        if subresource == "status":
            new = copy.deepcopy(old)
            if "status" in candidate:
                new["status"] = candidate["status"]
            # Writes to /status change the status only; metadata and spec stay as they are.
            return self._finish_update(res, info, old, new, copy.deepcopy(old["metadata"]))
        new = candidate
        if new.get("kind") not in (None, info.kind) or new.get("apiVersion") not in (None, self._gv(res)):
            raise api_error(400, "BadRequest", f"the object's kind/apiVersion {new.get('apiVersion')}/{new.get('kind')} does not match {self._gv(res)}/{info.kind}")
        new["apiVersion"], new["kind"] = self._gv(res), info.kind
        if "status" in info.subresources:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        meta_in = new.get("metadata") if isinstance(new.get("metadata"), dict) else {}
        name, ns = old["metadata"]["name"], old["metadata"].get("namespace")
        if meta_in.get("name") not in (None, name):
            raise api_error(400, "BadRequest", f'the name of the object ({meta_in.get("name")}) does not match the name on the URL ({name})')
        if info.namespaced and meta_in.get("namespace") not in (None, ns):
            raise api_error(400, "BadRequest", "the namespace of the object does not match the namespace on the request")
        return self._finish_update(res, info, old, new, meta_in)

    def _finish_update(self, res: kmock.resource, info: kmock.ResourceInfo, old: dict, new: dict,
                       meta_in: dict) -> dict:
        meta = dict(meta_in)
        old_meta = old["metadata"]
        for field in ("name", "namespace", "uid", "creationTimestamp", "resourceVersion",
                      "generation", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        meta.pop("managedFields", None)
        meta.pop("selfLink", None)
        new["metadata"] = meta
        self._default(res, info, new, old)
        self._validate(res, info, new, old)
        if self._tracks_generation(res, info) and _spec_of(new) != _spec_of(old):
            meta["generation"] = int(old_meta.get("generation") or 0) + 1
        return new

    def replace_object(self, res: Any, namespace: str | None, name: str, body: Any, *,
                       subresource: str | None = None, dry_run: bool = False) -> tuple[dict, bool]:
        """PUT: the body replaces the object (server-managed metadata kept)."""
        if not isinstance(body, dict):
            raise api_error(400, "BadRequest", "the body of the request must be a JSON object")
        expected = (body.get("metadata") or {}).get("resourceVersion")
        return self.update_object(res, namespace, name, lambda _old: copy.deepcopy(body),
                                  subresource=subresource, dry_run=dry_run, expected_rv=expected)

    def patch_object(self, res: Any, namespace: str | None, name: str, patch: Any, patch_type: str, *,
                     subresource: str | None = None, dry_run: bool = False) -> tuple[dict, bool]:
        """PATCH with ``patch_type`` one of ``merge``, ``json``, ``strategic``, ``apply``."""
        res = as_resource(res)
        info = self._require_resource(res)
        if patch_type == "strategic" and res in self._custom:
            raise api_error(415, "UnsupportedMediaType",
                            "the body of the request was in an unknown format - accepted media types include: "
                            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
        expected = None
        if isinstance(patch, dict):
            expected = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch.get("metadata"), dict) else None

        def change(current: dict) -> dict:
            if patch_type == "json":
                return json_patch(current, patch)
            if patch_type == "merge":
                if not isinstance(patch, dict):
                    raise PatchError("a merge patch must be a JSON object")
                return json_merge_patch(current, patch)
            return strategic_merge_patch(current, patch, info.kind)

        create = None
        if patch_type == "apply":
            if not isinstance(patch, dict):
                raise api_error(400, "BadRequest", "an apply patch must be an object")
            create = patch
        return self.update_object(res, namespace, name, change, subresource=subresource, dry_run=dry_run,
                                  expected_rv=expected, create_if_missing=create)

    def write_status(self, res: Any, namespace: str | None, name: str, status: dict) -> dict | None:
        """Replace the status of an object (as a controller would). None if the object is gone."""
        try:
            obj, _changed = self.update_object(res, namespace, name, lambda cur: {**cur, "status": status},
                                               subresource="status")
        except kmock.KubernetesError as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    # --- delete
    def delete_object(self, res: Any, namespace: str | None, name: str, *,
                      options: dict | None = None, dry_run: bool = False) -> dict:
        res = as_resource(res)
        info = self._require_resource(res)
        options = options or {}
        events: list[Event] = []
        with self._store_lock:
            key = self._key(res, namespace if info.namespaced else None, name)
            old = self._current(key)
            if old is None:
                raise self._not_found(res, name)
            old = copy.deepcopy(old)
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != old["metadata"].get("uid"):
                raise self._conflict(res, name, f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {old['metadata'].get('uid')}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"].get("resourceVersion"):
                raise self._conflict(res, name)
            if dry_run:
                return old
            if old["metadata"].get("finalizers"):
                if not old["metadata"].get("deletionTimestamp"):
                    new = copy.deepcopy(old)
                    new["metadata"]["deletionTimestamp"] = now_iso()
                    new["metadata"]["deletionGracePeriodSeconds"] = 0
                    events.append(self._commit(res, key[1], name, new, old))
                    old = new
                result = old
            else:
                events.append(self._commit(res, key[1], name, None, old))
                if options.get("propagationPolicy") != "Orphan":
                    events.extend(self._cascade(res, info, old))
                result = old
        self._notify(events)
        return copy.deepcopy(result)

    def _cascade(self, res: kmock.resource, info: kmock.ResourceInfo, deleted: dict) -> list[Event]:
        """Delete what a real cluster deletes with ``deleted`` (caller holds the lock)."""
        events: list[Event] = []
        uid = deleted["metadata"].get("uid")
        doomed: list[tuple] = []
        for (r, ns, name), obj in list(self.objects.items()):
            if obj.deleted:
                continue
            raw = obj.raw
            if info.kind == "Namespace" and ns == deleted["metadata"]["name"]:
                doomed.append((r, ns, name))
            elif info.kind == "CustomResourceDefinition" and r in crds_mod.resources_of(deleted):
                doomed.append((r, ns, name))
            elif any(ref.get("uid") == uid for ref in (raw.get("metadata") or {}).get("ownerReferences") or []):
                doomed.append((r, ns, name))
        if info.kind == "CustomResourceDefinition":
            self._unregister_crd(deleted)
        for r, ns, name in doomed:
            current = self._current((r, ns, name))
            if current is None:
                continue
            current = copy.deepcopy(current)
            events.append(self._commit(r, ns, name, None, current))
            r_info = self.info(r)
            events.extend(self._cascade(r, r_info or kmock.ResourceInfo(kind=""), current))
        return events

    # --- errors
    def _conflict(self, res: kmock.resource, name: str, detail: str | None = None) -> kmock.KubernetesError:
        message = (f'Operation cannot be fulfilled on {self._qualified(res)} "{name}": '
                   + (detail or "the object has been modified; please apply your changes to the latest version and try again"))
        return api_error(409, "Conflict", message, name=name, kind=res.plural, group=res.group)

    def _invalid(self, res: kmock.resource, info: kmock.ResourceInfo, name: str,
                 problems: list[tuple[str, str, str]]) -> kmock.KubernetesError:
        qualified_kind = f"{info.kind}.{res.group}" if res.group else info.kind
        texts = [f"{field}: {kind}: {detail}" for field, kind, detail in problems]
        message = f'{qualified_kind} "{name}" is invalid: ' + ("; ".join(texts) if len(texts) == 1 else "[" + ", ".join(texts) + "]")
        causes = [{"reason": "Field" + kind.replace(" ", ""), "message": f"{kind}: {detail}", "field": field}
                  for field, kind, detail in problems]
        return api_error(422, "Invalid", message, name=name, kind=info.kind, group=res.group, causes=causes)

    # ------------------------------------------------------------------ defaults & validation
    def _default(self, res: kmock.resource, info: kmock.ResourceInfo, obj: dict, old: dict | None) -> None:
        kind = info.kind
        meta = obj["metadata"]
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else None
        if kind == "Namespace":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = (old or {}).get("status") or {"phase": "Active"}
            if meta.get("deletionTimestamp"):
                obj["status"] = {"phase": "Terminating"}
        elif kind == "Secret":
            string_data = obj.pop("stringData", None) or {}
            if string_data:
                data = obj.get("data") or {}
                for key, value in string_data.items():
                    data[key] = base64.b64encode(str(value).encode()).decode()
                obj["data"] = data
            obj.setdefault("type", "Opaque")
        elif kind == "Service" and spec is not None:
            self._default_service(spec, (old or {}).get("spec") or {})
        elif kind in ("StatefulSet", "Deployment", "DaemonSet") and spec is not None:
            if kind != "DaemonSet":
                spec.setdefault("replicas", 1)
            spec.setdefault("revisionHistoryLimit", 10)
            if kind == "StatefulSet":
                if old is None:
                    # the API server answers a create with the status's non-omitempty counts; a waiter
                    # that reads status.updatedReplicas before the controller has written it sees 0s
                    obj["status"] = {"replicas": 0, "availableReplicas": 0}
                spec.setdefault("podManagementPolicy", "OrderedReady")
                strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
                if strategy.get("type", "RollingUpdate") == "RollingUpdate":
                    strategy["type"] = "RollingUpdate"
                    strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
                spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
            elif kind == "Deployment":
                spec.setdefault("progressDeadlineSeconds", 600)
                strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
                if strategy.get("type", "RollingUpdate") == "RollingUpdate":
                    strategy["type"] = "RollingUpdate"
                    strategy.setdefault("rollingUpdate", {"maxSurge": "25%", "maxUnavailable": "25%"})
            else:
                strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
                if strategy.get("type", "RollingUpdate") == "RollingUpdate":
                    strategy["type"] = "RollingUpdate"
                    strategy.setdefault("rollingUpdate", {"maxSurge": 0, "maxUnavailable": 1})
            _default_pod_template(spec.get("template"))
        elif kind == "Job" and spec is not None:
            spec.setdefault("parallelism", 1)
            spec.setdefault("completions", 1)
            spec.setdefault("backoffLimit", 6)
            _default_pod_template(spec.get("template"), restart_policy=None)
        elif kind == "NetworkPolicy" and spec is not None:
            if "policyTypes" not in spec:
                spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
        elif kind == "ConfigMap":
            pass

    def _default_service(self, spec: dict, old_spec: dict) -> None:
        spec.setdefault("type", "ClusterIP")
        if spec["type"] == "ExternalName":
            spec.pop("clusterIP", None)
        else:
            if not spec.get("clusterIP"):
                spec["clusterIP"] = old_spec.get("clusterIP") or self._allocate_ip()
            if spec["clusterIP"] != "None":
                spec["clusterIPs"] = [spec["clusterIP"]]
            else:
                spec["clusterIPs"] = ["None"]
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("sessionAffinity", "None")
        old_ports = {p.get("port"): p for p in old_spec.get("ports") or [] if isinstance(p, dict)}
        for port in spec.get("ports") or []:
            if not isinstance(port, dict):
                continue
            port.setdefault("protocol", "TCP")
            if "targetPort" not in port and "port" in port:
                port["targetPort"] = port["port"]
            if spec["type"] in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
                port["nodePort"] = old_ports.get(port.get("port"), {}).get("nodePort") or self._allocate_node_port()
            elif spec["type"] not in ("NodePort", "LoadBalancer"):
                port.pop("nodePort", None)
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if spec["type"] == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)

    def _allocate_ip(self) -> str:
        self._next_ip += 1
        return f"10.100.{(self._next_ip >> 8) & 255}.{self._next_ip & 255}"

    def _allocate_node_port(self) -> int:
        self._next_node_port += 1
        return self._next_node_port

    def _validate(self, res: kmock.resource, info: kmock.ResourceInfo, obj: dict, old: dict | None) -> None:
        kind = info.kind
        meta = obj["metadata"]
        name = meta.get("name", "")
        problems: list[tuple[str, str, str]] = []
        if kind in ("Namespace",):
            if len(name) > 63 or not _DNS1123_LABEL.match(name):
                problems.append(("metadata.name", f'Invalid value: "{name}"', "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"))
        elif kind == "Service":
            if len(name) > 63 or not _DNS1035_LABEL.match(name):
                problems.append(("metadata.name", f'Invalid value: "{name}"', "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character"))
        elif len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
            problems.append(("metadata.name", f'Invalid value: "{name}"', "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"))
        problems += _label_problems("metadata.labels", meta.get("labels"))
        problems += _annotation_problems("metadata.annotations", meta.get("annotations"))
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        if kind in ("ConfigMap", "Secret"):
            for field in ("data", "binaryData"):
                for key in (obj.get(field) or {}):
                    if not _CONFIG_KEY.match(key) or len(key) > 253:
                        problems.append((f"{field}[{key}]", f'Invalid value: "{key}"', "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"))
        if kind in SELECTOR_KINDS:
            template = spec.get("template") or {}
            template_labels = (template.get("metadata") or {}).get("labels") or {}
            problems += _label_problems("spec.template.metadata.labels", template_labels)
            selector = spec.get("selector")
            if not selector:
                problems.append(("spec.selector", "Required value", ""))
            elif not match_labels(selector, template_labels):
                problems.append(("spec.template.metadata.labels", f"Invalid value: {template_labels}", "`selector` does not match template `labels`"))
            if old is not None and (old.get("spec") or {}).get("selector") != spec.get("selector"):
                problems.append(("spec.selector", f"Invalid value: {spec.get('selector')}", "field is immutable"))
            if not (template.get("spec") or {}).get("containers"):
                problems.append(("spec.template.spec.containers", "Required value", ""))
        if kind == "StatefulSet" and old is not None:
            old_spec = old.get("spec") or {}
            frozen = {k: v for k, v in spec.items() if k not in STATEFULSET_MUTABLE}
            old_frozen = {k: v for k, v in old_spec.items() if k not in STATEFULSET_MUTABLE}
            if frozen != old_frozen:
                problems.append(("spec", "Forbidden", "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
        if kind == "Service" and old is not None:
            old_ip = (old.get("spec") or {}).get("clusterIP")
            if old_ip and spec.get("clusterIP") not in (None, old_ip) and spec.get("type") != "ExternalName":
                problems.append(("spec.clusterIPs[0]", f'Invalid value: []string{{"{spec.get("clusterIP")}"}}', "may not change once set"))
        if kind in ("ConfigMap", "Secret") and old is not None and old.get("immutable"):
            if {k: obj.get(k) for k in ("data", "binaryData", "immutable")} != {k: old.get(k) for k in ("data", "binaryData", "immutable")}:
                problems.append(("data", "Forbidden", f"field is immutable when `immutable` is set"))
        if problems:
            raise self._invalid(res, info, name, problems)

    # ------------------------------------------------------------------ CRDs
    def _register_crd(self, crd: dict) -> None:
        for res, info in crds_mod.resources_of(crd).items():
            if res in self._builtin:
                continue
            self.resources[res] = info
            self._custom.add(res)

    def _unregister_crd(self, crd: dict) -> None:
        for res in crds_mod.resources_of(crd):
            if res in self._custom:
                del self.resources[res]
                self._custom.discard(res)

    def _crd_established(self, res: kmock.resource, crd: dict, events: list[Event]) -> dict:
        names = (crd.get("spec") or {}).get("names") or {}
        status = {
            "acceptedNames": {k: v for k, v in names.items()},
            "storedVersions": [v["name"] for v in (crd.get("spec") or {}).get("versions") or [] if v.get("storage")],
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now_iso()},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now_iso()},
            ],
        }
        new = copy.deepcopy(crd)
        new["status"] = status
        events.append(self._commit(res, None, crd["metadata"]["name"], new, crd, "status"))
        return new

    # ------------------------------------------------------------------ HTTP handlers (kmock fallbacks)
    @staticmethod
    def _dry_run(request: kmock.Request) -> bool:
        return bool(request.params.get("dryRun"))

    @staticmethod
    def _content_type(request: kmock.Request) -> str:
        for key, value in request.headers.items():
            if key.lower() == "content-type":
                return value.split(";")[0].strip().lower()
        return ""

    @classmethod
    def _body(cls, request: kmock.Request) -> Any:
        content_type = cls._content_type(request)
        text = request.body.decode("utf-8") if request.body else ""
        if not text.strip():
            return None
        try:
            if content_type.endswith("yaml"):
                return yaml.safe_load(text)
            return json.loads(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise api_error(400, "BadRequest", f"the body of the request cannot be decoded: {exc}")

    async def _serve_list(self, request: kmock.Request) -> Any:
        res = request.resource
        info = self._require_resource(res)
        if request.namespace is not None and not info.namespaced:
            raise api_error(404, "NotFound", "the server could not find the requested resource")
        try:
            items = self.list_objects(res, request.namespace, request.params.get("labelSelector"),
                                      request.params.get("fieldSelector"))
        except SelectorError as exc:
            raise api_error(400, "BadRequest", str(exc))
        with self._store_lock:
            rv = str(self._rv)
        return {"kind": f"{info.kind}List", "apiVersion": self._gv(res),
                "metadata": {"resourceVersion": rv}, "items": items}

    async def _serve_fetch(self, request: kmock.Request) -> Any:
        res = request.resource
        info = self._require_resource(res)
        if request.subresource not in (None, "status") or (request.subresource == "status" and "status" not in info.subresources):
            raise api_error(404, "NotFound", "the server could not find the requested resource")
        obj = self.get_object(res, request.namespace if info.namespaced else None, request.name)
        if obj is None:
            raise self._not_found(res, request.name)
        return obj

    async def _serve_create(self, request: kmock.Request) -> Any:
        if request.name is not None:
            raise api_error(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        obj = self.create_object(request.resource, request.namespace, self._body(request),
                                 dry_run=self._dry_run(request))
        return kmock.Response(status=201, payload=obj)

    async def _serve_update(self, request: kmock.Request) -> Any:
        if request.name is None:
            raise api_error(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        body = self._body(request)
        dry_run = self._dry_run(request)
        if request.method == kmock.method.PUT:
            obj, _ = self.replace_object(request.resource, request.namespace, request.name, body,
                                         subresource=request.subresource, dry_run=dry_run)
            return obj
        content_type = self._content_type(request)
        patch_type = {
            "application/merge-patch+json": "merge",
            "application/json-patch+json": "json",
            "application/strategic-merge-patch+json": "strategic",
            "application/apply-patch+yaml": "apply",
            "application/apply-patch+json": "apply",
        }.get(content_type)
        if patch_type is None:
            raise api_error(415, "UnsupportedMediaType",
                            f"the body of the request was in an unknown format - accepted media types include: "
                            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, "
                            "application/strategic-merge-patch+json")
        obj, _ = self.patch_object(request.resource, request.namespace, request.name, body, patch_type,
                                   subresource=request.subresource, dry_run=dry_run)
        return obj

    async def _serve_delete(self, request: kmock.Request) -> Any:
        res = request.resource
        info = self._require_resource(res)
        body = self._body(request) or {}
        options = body if isinstance(body, dict) else {}
        if "propagationPolicy" in request.params:
            options = {**options, "propagationPolicy": request.params["propagationPolicy"]}
        dry_run = self._dry_run(request)
        if request.name is None:  # deletecollection
            try:
                victims = self.list_objects(res, request.namespace, request.params.get("labelSelector"),
                                            request.params.get("fieldSelector"))
            except SelectorError as exc:
                raise api_error(400, "BadRequest", str(exc))
            deleted = []
            for obj in victims:
                meta = obj["metadata"]
                try:
                    deleted.append(self.delete_object(res, meta.get("namespace"), meta["name"], options=options, dry_run=dry_run))
                except kmock.KubernetesError as exc:
                    if exc.status != 404:
                        raise
            return {"kind": f"{info.kind}List", "apiVersion": self._gv(res),
                    "metadata": {"resourceVersion": str(self._rv)}, "items": deleted}
        return self.delete_object(res, request.namespace, request.name, options=options, dry_run=dry_run)


# ---------------------------------------------------------------------- helpers
def _spec_of(obj: dict) -> dict:
    """Everything that is not metadata/status: a change there bumps metadata.generation."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _version_priority(version: str) -> tuple:
    """Kubernetes' version ordering: GA > beta > alpha, higher numbers first."""
    match = re.match(r"^v(\d+)(?:(alpha|beta)(\d+))?$", version)
    if not match:
        return (3, version)
    major, level, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[level]
    return (rank, -int(major), -int(minor or 0))


def _label_problems(field: str, labels: Any) -> list[tuple[str, str, str]]:
    problems = []
    if labels is None:
        return problems
    if not isinstance(labels, dict):
        return [(field, "Invalid value", "must be a map of strings")]
    for key, value in labels.items():
        problems += _key_problems(field, key)
        if not isinstance(value, str):
            problems.append((f"{field}", f"Invalid value: {value!r}", "label values must be strings"))
        elif len(value) > 63:
            problems.append((field, f'Invalid value: "{value}"', "must be no more than 63 characters"))
        elif not _LABEL_VALUE.match(value):
            problems.append((field, f'Invalid value: "{value}"', "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"))
    return problems


def _annotation_problems(field: str, annotations: Any) -> list[tuple[str, str, str]]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [(field, "Invalid value", "must be a map of strings")]
    problems = []
    for key, value in annotations.items():
        problems += _key_problems(field, key)
        if not isinstance(value, str):
            problems.append((field, f"Invalid value: {value!r}", "annotation values must be strings"))
    size = sum(len(k) + len(v) for k, v in annotations.items() if isinstance(v, str))
    if size > 256 * 1024:
        problems.append((field, "Too long", "must have at most 262144 bytes"))
    return problems


def _key_problems(field: str, key: str) -> list[tuple[str, str, str]]:
    prefix, _, name = key.rpartition("/")
    problems = []
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        problems.append((field, f'Invalid value: "{key}"', "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"))
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        problems.append((field, f'Invalid value: "{key}"', "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (max 63)"))
    return problems


_PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}


def _default_pod_template(template: Any, restart_policy: str | None = "Always") -> None:
    """The defaults the API server fills into a pod template (a subset)."""
    if not isinstance(template, dict):
        return
    spec = template.get("spec")
    if not isinstance(spec, dict):
        return
    if restart_policy:
        spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict):
            for source in ("configMap", "secret"):
                if isinstance(volume.get(source), dict):
                    volume[source].setdefault("defaultMode", 420)
    for field in ("containers", "initContainers"):
        for container in spec.get(field) or []:
            if not isinstance(container, dict):
                continue
            image = str(container.get("image", ""))
            tag = image.rsplit("/", 1)[-1]
            pull = "Always" if (":" not in tag and "@" not in image) or tag.endswith(":latest") else "IfNotPresent"
            container.setdefault("imagePullPolicy", pull)
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            for port in container.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")
            for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
                probe = container.get(probe_name)
                if isinstance(probe, dict):
                    for key, value in _PROBE_DEFAULTS.items():
                        probe.setdefault(key, value)
