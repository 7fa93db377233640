# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""A port of a Kubernetes pod, reached through the API server's port-forward.

The client port of a KMS node (50100) is never exposed outside its cluster, and a party's
controller must reach only its own node. ``PortForwarder`` opens a listener on
``127.0.0.1:<ephemeral>`` and bridges every connection accepted there to a new port-forward
stream (``pods/portforward`` over a websocket, through the kubernetes Python client), so the
gRPC code talks to ``PortForwarder.address`` as to any endpoint. It needs the Kubernetes
permission ``create`` on ``pods/portforward`` in the node's namespace, nothing else.

    with PortForwarder("kms", "kms-core-0", 50100, kubeconfig="~/.kube/p1.yaml") as forward:
        check_endpoint({"address": forward.address, ...}, timeout, tls)

No Ansible objects: the modules kms_health, prss_epoch and prss_validate use it, the unit tests
call it directly against the Kubernetes API emulator.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import select
import socket
import threading

try:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.rest import ApiException
    from kubernetes.stream import portforward as k8s_portforward

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the modules
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = exc
    ApiException = Exception

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.network_model import DNS_LABEL_RE

# Options of the modules that reach a node through a port-forward (doc fragment kms_port_forward).
PORT_FORWARD_ARGUMENT_SPEC = dict(
    kubeconfig=dict(type="path"),
    kube_context=dict(type="str"),
    namespace=dict(type="str", default="kms"),
    pod=dict(type="str"),
    port=dict(type="int", default=50100),
    party_id=dict(type="int"),
)

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_BUFFER = 65536


class PortForwardError(Exception):
    """The port-forward could not be opened; the message names the pod, the port and the cause."""


def check_params(params):
    """Error text for the first bad port-forward option, or None (no call is made)."""
    if not DNS_LABEL_RE.match(params.get("namespace") or ""):
        return "namespace: must be a DNS label (lower-case letters, digits, '-'), got %r" % params.get("namespace")
    pod = params.get("pod") or ""
    if len(pod) > 253 or not _DNS_SUBDOMAIN.match(pod):
        return "pod: must be a pod name such as kms-core-0 (a DNS subdomain), got %r" % params.get("pod")
    port = params.get("port")
    if port is None or not 1 <= int(port) <= 65535:
        return "port: must be 1-65535, got %r" % (port,)
    if params.get("party_id") is not None and int(params["party_id"]) < 1:
        return "party_id: must be >= 1, got %r" % params["party_id"]
    kubeconfig = params.get("kubeconfig")
    if kubeconfig and not os.path.isfile(kubeconfig):
        return "kubeconfig: %s is not a file" % kubeconfig
    return None


def _reason(exc):
    """One line from an ApiException of a failed websocket handshake (status 0, reason text)."""
    text = getattr(exc, "reason", None) or getattr(exc, "body", None) or str(exc)
    text = " ".join(str(text).split())
    match = re.search(r'"message":\s*"((?:[^"\\]|\\.)*)"', text)
    status = re.search(r"Handshake status (\d+ [A-Za-z ]+?)(?: -\+|$)", text)
    if match:
        return "%s%s" % ((status.group(1) + ": ") if status else "", match.group(1).replace('\\"', '"'))
    return text[:300]


class PortForwarder(object):
    """127.0.0.1:<ephemeral> bridged to ``port`` of ``namespace/pod`` (see the module docstring).

    ``start()`` opens one stream at once, so a wrong kubeconfig, a missing pod or a missing
    permission is reported there (PortForwardError) instead of as a gRPC transport error; that
    stream serves the first connection. ``errors`` keeps what the API server said about later
    streams (for example the error channel's "connection refused" of a pod whose port is closed).
    """

    def __init__(self, namespace, pod, port, kubeconfig=None, context=None, api_client=None):
        self.namespace = namespace
        self.pod = pod
        self.port = int(port)
        self.kubeconfig = kubeconfig
        self.context = context
        self.errors = []
        self.streams = 0
        self._api = None
        self._api_client = api_client
        self._listener = None
        self._spare = None
        self._open_lock = threading.Lock()
        self._closing = threading.Event()
        self._active = []
        self._active_lock = threading.Lock()
        self._thread = None

    # ------------------------------------------------------------------ public
    @property
    def address(self):
        return "127.0.0.1:%d" % self._listener.getsockname()[1]

    def describe(self):
        server = ""
        if self._api is not None:
            server = " via %s" % self._api.api_client.configuration.host
        return "pod %s/%s port %d (port-forward%s)" % (self.namespace, self.pod, self.port, server)

    def start(self):
        if not HAS_KUBERNETES:
            raise PortForwardError("the kubernetes Python package is needed for a port-forward: %s"
                                   % KUBERNETES_IMPORT_ERROR)
        try:
            api_client = self._api_client or self._load_client()
        except Exception as exc:
            raise PortForwardError("cannot load the Kubernetes client configuration (kubeconfig %s%s): %s"
                                   % (self.kubeconfig or "default", (", context %s" % self.context)
                                      if self.context else "", exc))
        self._api = k8s_client.CoreV1Api(api_client)
        self._spare = self._open()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)  # accept() wakes up to notice close()
        self._thread = threading.Thread(target=self._accept_loop, name="kube-port-forward", daemon=True)
        self._thread.start()
        return self

    def close(self):
        self._closing.set()
        if self._thread is not None:
            self._thread.join(2)
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
        with self._active_lock:
            active, self._active = self._active, []
        if self._spare is not None:
            active.append((None, self._spare))
            self._spare = None
        for conn, forward in active:
            for closer in (getattr(conn, "close", None), getattr(forward, "close", None)):
                try:
                    if closer:
                        closer()
                except Exception:
                    pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def explain(self):
        """What the API server said about failed streams, one line ('' when nothing failed)."""
        unique = []
        for item in self.errors:
            if item not in unique:
                unique.append(item)
        return "; ".join(unique[-3:])

    # ------------------------------------------------------------------ internals
    def _load_client(self):
        if self.kubeconfig or not os.environ.get("KUBERNETES_SERVICE_HOST"):
            return k8s_config.new_client_from_config(config_file=self.kubeconfig, context=self.context)
        configuration = k8s_client.Configuration()
        k8s_config.load_incluster_config(client_configuration=configuration)
        return k8s_client.ApiClient(configuration)

    def _open(self):
        """A new port-forward stream; PortForwardError naming the cause when the API refuses it."""
        with self._open_lock:
            try:
                forward = k8s_portforward(self._api.connect_get_namespaced_pod_portforward, self.pod,
                                          self.namespace, ports=str(self.port))
            except ApiException as exc:
                raise PortForwardError("cannot port-forward to %s: %s" % (self.describe(), _reason(exc)))
            except Exception as exc:
                raise PortForwardError("cannot port-forward to %s: %s: %s"
                                       % (self.describe(), type(exc).__name__, exc))
            self.streams += 1
            return forward

    def _accept_loop(self):
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(None)
            forward, self._spare = self._spare, None
            if forward is None or not forward.connected:
                if forward is not None:
                    forward.close()
                try:
                    forward = self._open()
                except PortForwardError as exc:
                    self.errors.append(str(exc))
                    conn.close()
                    continue
            with self._active_lock:
                self._active.append((conn, forward))
            threading.Thread(target=self._bridge, args=(conn, forward), name="kube-port-forward-conn",
                             daemon=True).start()

    def _bridge(self, conn, forward):
        remote = forward.socket(self.port)
        try:
            conn.setblocking(True)
            pairs = {conn: remote, remote: conn}
            open_ends = True
            while open_ends and not self._closing.is_set():
                try:
                    readable, _, _ = select.select([conn, remote], [], [], 1.0)
                except (OSError, ValueError):
                    break
                for sock in readable:
                    try:
                        data = sock.recv(_BUFFER)
                    except OSError:
                        data = b""
                    if not data:
                        open_ends = False
                        break
                    try:
                        pairs[sock].sendall(data)
                    except OSError:
                        open_ends = False
                        break
        finally:
            # What the API server said comes first: the client sees the closed connection next.
            error = None
            try:
                error = forward.error(self.port)
            except Exception:
                pass
            if error:
                self.errors.append("%s: %s" % (self.describe(), " ".join(str(error).split())))
            for sock in (conn, remote):
                try:
                    sock.close()
                except OSError:
                    pass
            forward.close()
            with self._active_lock:
                self._active = [item for item in self._active if item[0] is not conn]


def open_forward(params):
    """A started PortForwarder for the module parameters (check_params() first)."""
    return PortForwarder(params["namespace"], params["pod"], params["port"], kubeconfig=params.get("kubeconfig"),
                         context=params.get("kube_context")).start()


def endpoint(forward, party_id=None):
    """The endpoint dict of kms_grpc.normalize_endpoints for a started forward."""
    host, port = forward.address.split(":")
    return {"party_id": party_id, "name": ("party%d" % party_id) if party_id else "%s/%s" % (forward.namespace,
                                                                                             forward.pod),
            "address": forward.address, "host": host, "port": int(port), "scheme": None,
            "via": forward.describe()}
