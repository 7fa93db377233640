# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""gRPC client logic for KMS nodes: endpoints, channels, error diagnosis, health fan-out.

Pure Python on top of grpcio and kms_proto; no Ansible objects, so unit tests call it
directly. The modules kms_health, prss_epoch and prss_validate are thin wrappers.

Health check of one endpoint (``check_endpoint``), within one ``timeout`` budget:

1. ``GetHealthStatus`` - the node's own view: per context n, reachable (counting itself),
   threshold_required and every peer (reachable, latency, error); key material counts.
   Status per context is recomputed with the server's rule (kms_proto.status_for) and the
   worse of that and the server's own value is kept.
2. if UNIMPLEMENTED (older server): ``GetKeyMaterialAvailability`` plus grpc.health.v1;
3. if that is UNIMPLEMENTED too: ``grpc.health.v1.Health/Check`` for the KMS service.
   A node seen only through 2. or 3. cannot tell us about its peers: its status is at best
   Healthy and a warning says why.

``check_endpoints`` runs every endpoint in its own thread, so N endpoints of which k never
answer take about one timeout, not k. ``summarize`` derives the overall status (the worst
node, including what the nodes report about their peers), the network view, and the list of
nodes below ``fail_below`` with the reason for each.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor

try:
    import grpc

    HAS_GRPC = True
    GRPC_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the modules
    grpc = None
    HAS_GRPC = False
    GRPC_IMPORT_ERROR = exc

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_proto as P

# Options shared by every module that talks to KMS nodes (module_defaults group "kms").
CONNECTION_ARGUMENT_SPEC = dict(
    timeout=dict(type="float", default=5.0),
    tls=dict(type="bool", default=False),
    ca_cert=dict(type="path"),
    client_cert=dict(type="path"),
    client_key=dict(type="path", no_log=False),
    tls_server_name=dict(type="str"),
)

FAIL_BELOW_CHOICES = ["Optimal", "Healthy", "Degraded", "none"]

_HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)$")
_ERROR_CHARS = 240


class KmsInputError(ValueError):
    """Bad module input; the message names the field and the rule."""


# --------------------------------------------------------------------------- endpoints

def _split_address(text, where):
    """'host:port' or 'http(s)://host:port[/]' -> (host, port, scheme or None)."""
    if not isinstance(text, str) or not text.strip():
        raise KmsInputError("%s: must be a non-empty 'host:port' string" % where)
    value = text.strip()
    scheme = None
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$", value)
    if match:
        scheme = match.group(1).lower()
        if scheme not in ("http", "https"):
            raise KmsInputError("%s: scheme must be http:// or https://, got %r" % (where, value))
        value = match.group(2).rstrip("/")
    if value.startswith("["):
        host, sep, port = value.rpartition(":")
    else:
        host, sep, port = value.partition(":")
    if not sep or not port:
        raise KmsInputError("%s: must be 'host:port' (port required), got %r" % (where, text))
    if not _HOST_RE.match(host):
        raise KmsInputError("%s: invalid host %r" % (where, host))
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise KmsInputError("%s: port must be 1-65535, got %r" % (where, port))
    return host, int(port), scheme


def normalize_endpoints(items, field="endpoints"):
    """Validate and normalise endpoints.

    Each item is ``host:port`` / ``http://host:port`` or a dict with ``address`` (same forms)
    or ``host`` + ``port``, and optional ``party_id`` and ``name``.
    Returns [{party_id, name, address: 'host:port', host, port, scheme}].
    """
    if not isinstance(items, (list, tuple)) or not items:
        raise KmsInputError("%s: must be a non-empty list" % field)
    result = []
    seen_addr, seen_ids = {}, {}
    for i, item in enumerate(items):
        where = "%s[%d]" % (field, i)
        party_id, name = None, None
        if isinstance(item, dict):
            unknown = set(item) - {"party_id", "address", "host", "port", "name"}
            if unknown:
                raise KmsInputError("%s: unknown keys %s (allowed: party_id, address, host, port, name)"
                                    % (where, ", ".join(sorted(unknown))))
            if "address" in item and item["address"] not in (None, ""):
                address = str(item["address"])
                if "port" in item and item["port"] not in (None, "") and ":" not in address.split("//")[-1]:
                    address = "%s:%s" % (address, item["port"])
            elif item.get("host") and item.get("port") not in (None, ""):
                address = "%s:%s" % (item["host"], item["port"])
            else:
                raise KmsInputError("%s: needs 'address' (host:port) or 'host' and 'port'" % where)
            host, port, scheme = _split_address(address, where + ".address")
            if item.get("party_id") not in (None, ""):
                try:
                    party_id = int(item["party_id"])
                except (TypeError, ValueError):
                    raise KmsInputError("%s.party_id: must be an integer, got %r" % (where, item["party_id"]))
                if party_id < 1:
                    raise KmsInputError("%s.party_id: must be >= 1, got %d" % (where, party_id))
            name = item.get("name")
        else:
            host, port, scheme = _split_address(item, where)
        address = "%s:%d" % (host, port)
        if address in seen_addr:
            raise KmsInputError("%s: address %s is listed twice (also %s)" % (where, address, seen_addr[address]))
        seen_addr[address] = where
        if party_id is not None:
            if party_id in seen_ids:
                raise KmsInputError("%s.party_id: %d is listed twice (also %s)" % (where, party_id, seen_ids[party_id]))
            seen_ids[party_id] = where
        result.append({"party_id": party_id, "name": name or (("party%d" % party_id) if party_id else address),
                       "address": address, "host": host, "port": port, "scheme": scheme})
    return result


def label(ep):
    if ep.get("party_id"):
        return "party %d (%s)" % (ep["party_id"], ep["address"])
    return ep["address"]


# --------------------------------------------------------------------------- TLS

class TlsSettings(object):
    """Client TLS material, read once. ``enabled`` False means plaintext h2c."""

    def __init__(self, enabled=False, ca_cert=None, client_cert=None, client_key=None, server_name=None):
        self.enabled = bool(enabled)
        self.server_name = server_name or None
        self.root = self.chain = self.key = None
        if not self.enabled:
            for field, value in (("ca_cert", ca_cert), ("client_cert", client_cert), ("client_key", client_key),
                                 ("tls_server_name", server_name)):
                if value:
                    raise KmsInputError("%s: only valid with tls: true" % field)
            return
        if bool(client_cert) != bool(client_key):
            raise KmsInputError("client_cert and client_key: set both (mutual TLS) or neither")
        self.root = self._read(ca_cert, "ca_cert")
        self.chain = self._read(client_cert, "client_cert")
        self.key = self._read(client_key, "client_key")

    @classmethod
    def from_params(cls, params):
        return cls(params.get("tls"), params.get("ca_cert"), params.get("client_cert"),
                   params.get("client_key"), params.get("tls_server_name"))

    @staticmethod
    def _read(path, field):
        if not path:
            return None
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except (IOError, OSError) as exc:
            raise KmsInputError("%s: cannot read %s: %s" % (field, path, exc))
        if b"-----BEGIN" not in data:
            raise KmsInputError("%s: %s is not a PEM file" % (field, path))
        return data

    def describe(self):
        if not self.enabled:
            return "plaintext"
        return "TLS%s%s" % (" (mutual)" if self.chain else "",
                            " server name %s" % self.server_name if self.server_name else "")


def open_channel(address, tls):
    """A grpc channel to ``address`` and the list its connectivity states get appended to."""
    options = [("grpc.enable_retries", 0), ("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    if tls is not None and tls.enabled:
        if tls.server_name:
            options.append(("grpc.ssl_target_name_override", tls.server_name))
        creds = grpc.ssl_channel_credentials(root_certificates=tls.root, private_key=tls.key,
                                             certificate_chain=tls.chain)
        channel = grpc.secure_channel(address, creds, options=options)
    else:
        channel = grpc.insecure_channel(address, options=options)
    states = []
    channel.subscribe(lambda state: states.append(state.name), try_to_connect=False)
    return channel, states


def call(channel, method, request, timeout):
    """Unary call of a kms_proto method path; raises grpc.RpcError."""
    stub = channel.unary_unary(method, request_serializer=P.serializer(method),
                               response_deserializer=P.deserializer(method))
    return stub(request, timeout=max(0.05, timeout))


# --------------------------------------------------------------------------- error diagnosis

def tcp_probe(host, port, timeout):
    """'accepted' | 'refused' | 'timeout' | 'error: ...' for a bare TCP connect."""
    host = host.strip("[]")
    try:
        conn = socket.create_connection((host, port), timeout=max(0.05, timeout))
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except (OSError, socket.error) as exc:
        return "error: %s" % exc
    conn.close()
    return "accepted"


def _short(text, limit=_ERROR_CHARS):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


short = _short  # public: one line, at most ``limit`` characters


def diagnose(exc, ep, tls, states, timeout, probe_budget=0.5):
    """Turn a grpc.RpcError into (kind, readable message).

    kinds: refused, dns, no_http2, timeout, tls_required, tls_not_spoken, tls_verify,
    unavailable, unimplemented, not_found, other.
    """
    code = exc.code()
    details = exc.details() or ""
    low = details.lower()
    tls_on = tls is not None and tls.enabled
    where = ep["address"]
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        if "READY" in states:
            return "timeout", "connected to %s but the call got no answer within %.1fs" % (where, timeout)
        probe = tcp_probe(ep["host"], ep["port"], probe_budget)
        if probe == "accepted":
            return "no_http2", ("%s accepts TCP connections but gave no gRPC (HTTP/2%s) answer within %.1fs: "
                                "a wedged process, the wrong port, or a TLS/plaintext mismatch"
                                % (where, "+TLS" if tls_on else "", timeout))
        if probe == "refused":
            return "refused", "connection refused by %s (nothing listens there now)" % where
        if probe == "timeout":
            return "timeout", ("no answer from %s within %.1fs; TCP connect does not complete either "
                               "(host down or traffic dropped by a firewall / security group)" % (where, timeout))
        return "timeout", "no answer from %s within %.1fs (TCP probe: %s)" % (where, timeout, probe)
    if code == grpc.StatusCode.UNAVAILABLE:
        if "connection refused" in low:
            return "refused", "connection refused by %s (nothing listens on that port)" % where
        if "dns" in low or "resolution" in low or "resolve" in low:
            return "dns", "cannot resolve the host of %s: %s" % (where, _short(details))
        if "certificate_verify_failed" in low or "certificate verify failed" in low:
            return "tls_verify", ("TLS certificate of %s not trusted (%s): check ca_cert and tls_server_name"
                                  % (where, _short(details.split("SSL_ERROR_SSL:")[-1], 120)))
        if "wrong_version_number" in low or ("handshake failed" in low and tls_on):
            return "tls_not_spoken", ("TLS handshake with %s failed: the endpoint does not speak TLS (plaintext "
                                      "gRPC?); use tls: false for it. [%s]" % (where, _short(details, 160)))
        if not tls_on and ("socket closed" in low or "connection reset" in low or "end of tcp stream" in low):
            return "tls_required", ("%s closed the connection during the HTTP/2 handshake: it probably requires "
                                    "TLS (set tls: true and ca_cert). [%s]" % (where, _short(details, 160)))
        return "unavailable", "%s unavailable: %s" % (where, _short(details))
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return "unimplemented", "%s: UNIMPLEMENTED: %s" % (where, _short(details))
    if code == grpc.StatusCode.NOT_FOUND:
        return "not_found", "%s: NOT_FOUND: %s" % (where, _short(details))
    return "other", "%s: %s: %s" % (where, code.name, _short(details))


_TRANSPORT_ERRORS = ("failed to connect to all addresses", "socket closed", "connection reset",
                     "connection refused", "broken pipe", "goaway", "keepalive", "stream removed",
                     "end of tcp stream", "handshake failed", "ssl_error", "dns resolution")


def from_server(exc):
    """True when the status of a failed call was sent by the server itself.

    The client library itself produces DEADLINE_EXCEEDED, CANCELLED, and UNAVAILABLE with a
    transport message ("failed to connect to all addresses", "Socket closed", ...); every
    other status, and an UNAVAILABLE with any other message (the KMS server's "still
    running"), came from the server.
    """
    code = exc.code()
    if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return False
    if code == grpc.StatusCode.UNAVAILABLE:
        low = (exc.details() or "").lower()
        return not any(marker in low for marker in _TRANSPORT_ERRORS)
    return True


# --------------------------------------------------------------------------- health of one node

def _empty_result(ep):
    return {
        "party_id": ep["party_id"], "name": ep["name"], "endpoint": ep["address"],
        "reachable": False, "kms": False, "source": None, "status": "Unhealthy",
        "node_type": None, "serving": None, "latency_ms": None, "contexts": [],
        "fhe_key_ids": [], "crs_ids": [], "preprocessing_ids": [],
        "fhe_key_count": 0, "crs_count": 0, "preprocessing_count": 0, "storage_info": "",
        "error": "", "error_kind": None, "warnings": [], "reported_unreachable_by": [],
    }


def parse_health_status(resp):
    """HealthStatusResponse -> (contexts, node status, node type name)."""
    contexts = []
    for ctx in resp.peers_from_all_contexts:
        peer_ids = set(p.peer_id for p in ctx.peers)
        n = len(peer_ids | set([ctx.my_party_id]))
        peers = [{"peer_id": p.peer_id, "endpoint": p.endpoint, "reachable": p.reachable,
                  "latency_ms": p.latency_ms, "error": p.error} for p in ctx.peers]
        # Judged from the peer list (itself plus every peer it reaches), never better than
        # the node's own count or status.
        from_peers = 1 + len(set(p["peer_id"] for p in peers if p["reachable"] and p["peer_id"] != ctx.my_party_id))
        reachable = min(from_peers, ctx.nodes_reachable) if ctx.nodes_reachable else from_peers
        computed = P.status_for(n, reachable) if n else "Unhealthy"
        server = P.HEALTH_STATUS_NAMES.get(ctx.status, "Unspecified")
        status = computed if server == "Unspecified" else P.worst_status([computed, server])
        contexts.append({
            "context_id": ctx.context_id.request_id, "my_party_id": ctx.my_party_id, "n": n,
            "threshold_required": ctx.threshold_required, "nodes_reachable": ctx.nodes_reachable,
            "reachable_by_peers": from_peers,
            "status": status, "server_status": server, "peers": peers,
            "reachable_peers": sorted(p["peer_id"] for p in peers if p["reachable"]),
            "unreachable_peers": sorted(p["peer_id"] for p in peers if not p["reachable"]),
        })
    status = P.worst_status([c["status"] for c in contexts], default="Unhealthy")
    return contexts, status, P.NODE_TYPE_NAMES.get(resp.node_type, "Unspecified")


def _set_material(result, fhe, crs, preproc, storage):
    result["fhe_key_ids"], result["crs_ids"], result["preprocessing_ids"] = list(fhe), list(crs), list(preproc)
    result["fhe_key_count"], result["crs_count"] = len(result["fhe_key_ids"]), len(result["crs_ids"])
    result["preprocessing_count"] = len(result["preprocessing_ids"])
    result["storage_info"] = storage


def _health_check(channel, service, remaining):
    resp = call(channel, P.METHOD_HEALTH_CHECK, P.messages.HealthCheckRequest(service=service), remaining)
    return P.SERVING_STATUS_NAMES.get(resp.status, str(resp.status))


def check_endpoint(ep, timeout, tls=None):
    """Health of one endpoint (see the module docstring). Never raises for network errors."""
    result = _empty_result(ep)
    channel, states = open_channel(ep["address"], tls)
    started = time.monotonic()
    deadline = started + timeout

    def remaining():
        return deadline - time.monotonic()

    def fail(exc):
        kind, message = diagnose(exc, ep, tls, states, timeout, probe_budget=min(0.5, max(0.1, remaining())))
        result["error_kind"], result["error"] = kind, message
        result["reachable"] = from_server(exc)
        return result

    try:
        try:
            resp = call(channel, P.METHOD_GET_HEALTH_STATUS, P.messages.Empty(), remaining())
            result["latency_ms"] = int(round((time.monotonic() - started) * 1000))
            contexts, status, node_type = parse_health_status(resp)
            result.update(reachable=True, kms=True, source="GetHealthStatus", contexts=contexts,
                          status=status, node_type=node_type)
            _set_material(result, resp.my_fhe_key_ids, resp.my_crs_ids, resp.my_preprocessing_key_ids,
                          resp.my_storage_info)
            if not contexts:
                result["error"] = "the node reports no MPC context (no peers configured?)"
            return result
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                return fail(exc)
        result["reachable"] = True
        # Older server: key material, then the standard health service.
        try:
            resp = call(channel, P.METHOD_GET_KEY_MATERIAL, P.messages.Empty(), remaining())
            result["latency_ms"] = int(round((time.monotonic() - started) * 1000))
            _set_material(result, resp.fhe_key_ids, resp.crs_ids, resp.preprocessing_ids, resp.storage_info)
            result.update(kms=True, source="GetKeyMaterialAvailability", status="Healthy")
            result["warnings"].append("GetHealthStatus is not implemented (older server): peer connectivity "
                                      "unknown, status from liveness only and at best Healthy")
            try:
                result["serving"] = _health_check(channel, P.CORE_SERVICE, remaining())
            except grpc.RpcError:
                pass
            if result["serving"] == "NOT_SERVING":
                result["status"] = "Unhealthy"
                result["error"] = "grpc.health.v1 reports %s NOT_SERVING" % P.CORE_SERVICE
            return result
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                return fail(exc)
        try:
            result["serving"] = _health_check(channel, P.CORE_SERVICE, remaining())
            result["latency_ms"] = int(round((time.monotonic() - started) * 1000))
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.NOT_FOUND):
                result["error_kind"] = "not_kms"
                result["error"] = ("%s answers gRPC but is not a KMS node: %s is UNIMPLEMENTED and "
                                   "grpc.health.v1 %s" % (ep["address"], P.CORE_SERVICE,
                                                          "does not know the KMS service"
                                                          if exc.code() == grpc.StatusCode.NOT_FOUND
                                                          else "is not served"))
                return result
            return fail(exc)
        if result["serving"] == "SERVING":
            result.update(kms=True, source="grpc.health.v1", status="Healthy")
            result["warnings"].append("only grpc.health.v1 answers (GetHealthStatus and GetKeyMaterialAvailability "
                                      "are not implemented): no peer or key material information")
        else:
            result.update(kms=True, source="grpc.health.v1", status="Unhealthy",
                          error="grpc.health.v1 reports %s %s" % (P.CORE_SERVICE, result["serving"]))
        return result
    finally:
        channel.close()


def unreachable_result(ep, kind, message):
    """The result of a node that could not be asked at all (e.g. its port-forward failed)."""
    result = _empty_result(ep)
    result["error_kind"], result["error"] = kind, message
    return result


def annotate_peer_views(nodes):
    """Set every node's ``reported_unreachable_by``: the parties whose node cannot reach it."""
    by_id = dict((node["party_id"], node) for node in nodes if node["party_id"])
    for node in nodes:
        node["reported_unreachable_by"] = []
    for node in nodes:
        for ctx in node["contexts"]:
            for peer in ctx["peers"]:
                target = by_id.get(peer["peer_id"])
                if not peer["reachable"] and target is not None and node["party_id"] not in target["reported_unreachable_by"]:
                    target["reported_unreachable_by"].append(node["party_id"])
    return nodes


def check_endpoints(endpoints, timeout, tls=None, max_workers=32):
    """check_endpoint for every endpoint concurrently; results in input order, annotated
    with what the nodes report about each other (``reported_unreachable_by``)."""
    if not endpoints:
        return []
    workers = max(1, min(int(max_workers), len(endpoints)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kms-health") as pool:
        nodes = list(pool.map(lambda ep: check_endpoint(ep, timeout, tls), endpoints))
    return annotate_peer_views(nodes)


# --------------------------------------------------------------------------- verdict

def _peer_problems(ctx, limit=4):
    items = []
    for peer in ctx["peers"]:
        if not peer["reachable"]:
            items.append("%d (%s)" % (peer["peer_id"], _short(peer["error"] or "unreachable", 90)))
    more = "" if len(items) <= limit else " and %d more" % (len(items) - limit)
    return ", ".join(items[:limit]) + more


def reason(node):
    """One line saying why a node has its status."""
    if not node["kms"]:
        return node["error"] or "unreachable"
    if node["error"] and not node["contexts"]:
        return node["error"]
    parts = []
    for ctx in node["contexts"]:
        text = "%d of %d nodes reachable (threshold_required %d)" % (
            ctx["nodes_reachable"], ctx["n"], ctx["threshold_required"])
        if ctx.get("reachable_by_peers", ctx["nodes_reachable"]) < ctx["nodes_reachable"]:
            text += " but its peer list shows only %d" % ctx["reachable_by_peers"]
        if ctx["unreachable_peers"]:
            text += "; unreachable peers: " + _peer_problems(ctx)
        if len(node["contexts"]) > 1:
            text = "context %s: %s" % (ctx["context_id"][:8], text)
        parts.append(text)
    if node["reported_unreachable_by"]:
        parts.append("reported unreachable by parties %s" % node["reported_unreachable_by"])
    parts.extend(node["warnings"])
    return "; ".join(parts) or node["status"]


def summarize(nodes, fail_below="Healthy", scope="nodes"):
    """Overall status, network view and failing nodes.

    overall: the worst node status (unreachable / non-KMS nodes are Unhealthy; reachable ones
    carry what they see of their peers). network.status: the network as a whole - the worst
    status among reachable KMS nodes and the controller's own count of reachable endpoints
    (when the endpoints cover all n parties) under the server's rule.
    failing: nodes (scope=nodes) below ``fail_below``; with scope=network the network status
    is compared instead. fail_below 'none' never fails.
    """
    annotate_peer_views(nodes)
    ns = [ctx["n"] for node in nodes for ctx in node["contexts"]]
    n = max(ns) if ns else len(nodes)
    up = [node for node in nodes if node["kms"] and node["serving"] != "NOT_SERVING"]
    controller_status = P.status_for(n, len(up)) if n and len(nodes) >= n else None
    statuses = [node["status"] for node in up] + ([controller_status] if controller_status else [])
    network_status = P.worst_status(statuses, default="Unhealthy")
    overall = P.worst_status([node["status"] for node in nodes], default="Unhealthy")
    below = []
    failed = False
    if fail_below != "none":
        limit = P.status_rank(fail_below)
        below = [node for node in nodes if P.status_rank(node["status"]) > limit]
        failed = bool(below) if scope == "nodes" else P.status_rank(network_status) > limit
    return {
        "overall": overall,
        "network": {"n": n, "endpoints": len(nodes), "reachable_from_controller": len(up),
                    "controller_status": controller_status, "status": network_status},
        "counts": dict((s, sum(1 for node in nodes if node["status"] == s)) for s in P.STATUS_ORDER),
        "failed": failed,
        "failing": [{"party_id": node["party_id"], "endpoint": node["endpoint"], "status": node["status"],
                     "reason": reason(node)} for node in below] if failed else [],
    }


def failure_message(summary, fail_below, scope="nodes"):
    lines = []
    if scope == "network":
        lines.append("network status %s is below %s (%d of %d endpoints reachable)" % (
            summary["network"]["status"], fail_below, summary["network"]["reachable_from_controller"],
            summary["network"]["endpoints"]))
    else:
        lines.append("%d of %d KMS nodes below %s (overall %s):" % (
            len(summary["failing"]), summary["network"]["endpoints"], fail_below, summary["overall"]))
    for item in summary["failing"]:
        who = ("party %d (%s)" % (item["party_id"], item["endpoint"])) if item["party_id"] else item["endpoint"]
        lines.append("- %s: %s - %s" % (who, item["status"], item["reason"]))
    return "\n".join(lines)


def grpc_status_name(exc):
    try:
        return exc.code().name
    except Exception:  # pragma: no cover
        return "UNKNOWN"


__all__ = [
    "CONNECTION_ARGUMENT_SPEC", "FAIL_BELOW_CHOICES", "KmsInputError", "TlsSettings", "normalize_endpoints",
    "open_channel", "call", "diagnose", "check_endpoint", "check_endpoints", "summarize", "failure_message",
    "from_server", "label",
]
