# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""The gRPC/protobuf surface of Zama's threshold KMS node, built at import time.

No generated code and no grpcio-tools: the messages are described with
``descriptor_pb2`` and turned into classes with ``message_factory``, in a private
descriptor pool (so they never clash with another copy of ``grpc.health.v1`` that some
other library may register in the default pool).

What is described here (field numbers from docs/reference kms-node.md, release line 0.15):

* package ``kms.v1``: Empty, RequestId, HealthStatusResponse, PeersFromContext, PeerHealth,
  KeyMaterialAvailabilityResponse, NewMpcEpochRequest, EpochResultResponse and the enums
  HealthStatus, NodeType, SigningSchemeType;
* service ``kms_service.v1.CoreServiceEndpoint``: the method paths used by this collection;
* ``grpc.health.v1``: HealthCheckRequest / HealthCheckResponse and ``Health/Check``
  (grpcio-health-checking is not a dependency).

Only the fields this collection reads or writes are described. Messages whose upstream
layout is not pinned by the reference (``PreviousEpochInfo``, the EIP-712 domain, most of
``EpochResultResponse``) are described with the fields we are sure of; unknown fields sent
by a real server are kept by protobuf and ignored. ``GetEpochResult`` responses are not
decoded at all on the client side (``RAW_RESPONSE_METHODS``): only the status code counts.

Also here, because the modules and the simulator must agree on it: ``status_for()``, the
server's health rule.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    HAS_PROTOBUF = True
    PROTOBUF_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the modules
    HAS_PROTOBUF = False
    PROTOBUF_IMPORT_ERROR = exc

# --------------------------------------------------------------------------- constants

CORE_SERVICE = "kms_service.v1.CoreServiceEndpoint"
HEALTH_SERVICE = "grpc.health.v1.Health"
PEER_HEALTH_SERVICE_NAME = "ddec_networking.gnetworking"  # served on the peer port

METHOD_GET_HEALTH_STATUS = "/%s/GetHealthStatus" % CORE_SERVICE
METHOD_GET_KEY_MATERIAL = "/%s/GetKeyMaterialAvailability" % CORE_SERVICE
METHOD_NEW_MPC_EPOCH = "/%s/NewMpcEpoch" % CORE_SERVICE
METHOD_GET_EPOCH_RESULT = "/%s/GetEpochResult" % CORE_SERVICE
METHOD_HEALTH_CHECK = "/%s/Check" % HEALTH_SERVICE

# Identifiers kms-init uses for the first PRSS epoch: 64 lower-case hex characters.
DEFAULT_CONTEXT_ID = "07" + "0" * 61 + "1"
DEFAULT_EPOCH_ID = "08" + "0" * 61 + "1"

# HealthStatus (kms.v1), in the server's numbering: larger is worse except UNSPECIFIED.
HEALTH_STATUS_NAMES = {0: "Unspecified", 1: "Optimal", 2: "Healthy", 3: "Degraded", 4: "Unhealthy"}
HEALTH_STATUS_VALUES = dict((v, k) for k, v in HEALTH_STATUS_NAMES.items())
NODE_TYPE_NAMES = {0: "Unspecified", 1: "Centralized", 2: "Threshold"}
SIGNING_SCHEMES = {"ECDSA256K1": 0}

# grpc.health.v1.HealthCheckResponse.ServingStatus
SERVING_STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}

# Order used to compare statuses: index = rank, higher is worse.
STATUS_ORDER = ["Optimal", "Healthy", "Degraded", "Unhealthy"]


def status_rank(status):
    """Rank of a status name (Optimal 0 .. Unhealthy 3); unknown names rank as Unhealthy."""
    try:
        return STATUS_ORDER.index(status)
    except ValueError:
        return len(STATUS_ORDER) - 1


def worst_status(statuses, default="Optimal"):
    """The worst of several status names (``default`` when there are none)."""
    statuses = list(statuses)
    if not statuses:
        return default
    return STATUS_ORDER[max(status_rank(s) for s in statuses)]


def status_for(n, reachable):
    """The server's health rule for one context, ``reachable`` counting the node itself.

    OPTIMAL if reachable >= n; HEALTHY if reachable >= floor(2n/3) + 1;
    DEGRADED if reachable > floor(n/3) + 1; UNHEALTHY otherwise.
    For n = 13: 13 / 9-12 / 6-8 / <= 5.  For n = 4: 4 / 3 / - / <= 2.
    """
    n = int(n)
    reachable = int(reachable)
    if n <= 0:
        raise ValueError("n must be positive, got %r" % n)
    if reachable >= n:
        return "Optimal"
    if reachable >= (2 * n) // 3 + 1:
        return "Healthy"
    if reachable > n // 3 + 1:
        return "Degraded"
    return "Unhealthy"


def is_request_id(value):
    """True for a RequestId string: 64 lower-case hex characters, no 0x prefix."""
    if not isinstance(value, str) or len(value) != 64:
        return False
    return all(c in "0123456789abcdef" for c in value)


# --------------------------------------------------------------------------- descriptors

if HAS_PROTOBUF:
    _F = descriptor_pb2.FieldDescriptorProto
    _OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
    _STR, _U32, _BOOL, _BYTES = _F.TYPE_STRING, _F.TYPE_UINT32, _F.TYPE_BOOL, _F.TYPE_BYTES
    _MSG, _ENUM = _F.TYPE_MESSAGE, _F.TYPE_ENUM


def _message(fdp, name, fields):
    """Add message ``name`` with ``fields`` = [(name, number, type, label, type_name)]."""
    msg = fdp.message_type.add(name=name)
    for fname, number, ftype, label, type_name in fields:
        field = msg.field.add(name=fname, number=number, type=ftype, label=label)
        if type_name:
            field.type_name = type_name
    return msg


def _enum(container, name, values):
    enum = container.enum_type.add(name=name)
    for vname, number in values:
        enum.value.add(name=vname, number=number)
    return enum


def _kms_v1_file():
    fdp = descriptor_pb2.FileDescriptorProto(
        name="threshold_kms/kms.v1.proto", package="kms.v1", syntax="proto3")
    _enum(fdp, "HealthStatus", [
        ("HEALTH_STATUS_UNSPECIFIED", 0), ("HEALTH_STATUS_OPTIMAL", 1),
        ("HEALTH_STATUS_HEALTHY", 2), ("HEALTH_STATUS_DEGRADED", 3),
        ("HEALTH_STATUS_UNHEALTHY", 4)])
    _enum(fdp, "NodeType", [
        ("NODE_TYPE_UNSPECIFIED", 0), ("NODE_TYPE_CENTRALIZED", 1), ("NODE_TYPE_THRESHOLD", 2)])
    _enum(fdp, "SigningSchemeType", [("ECDSA256K1", 0)])

    _message(fdp, "Empty", [])
    _message(fdp, "RequestId", [("request_id", 1, _STR, _OPT, None)])
    _message(fdp, "PeerHealth", [
        ("peer_id", 1, _U32, _OPT, None),
        ("endpoint", 2, _STR, _OPT, None),
        ("reachable", 3, _BOOL, _OPT, None),
        ("latency_ms", 4, _U32, _OPT, None),
        ("error", 5, _STR, _OPT, None)])
    _message(fdp, "PeersFromContext", [
        ("context_id", 1, _MSG, _OPT, ".kms.v1.RequestId"),
        ("my_party_id", 2, _U32, _OPT, None),
        ("threshold_required", 3, _U32, _OPT, None),
        ("nodes_reachable", 4, _U32, _OPT, None),
        ("status", 5, _ENUM, _OPT, ".kms.v1.HealthStatus"),
        ("peers", 6, _MSG, _REP, ".kms.v1.PeerHealth")])
    _message(fdp, "HealthStatusResponse", [
        ("peers_from_all_contexts", 1, _MSG, _REP, ".kms.v1.PeersFromContext"),
        ("my_fhe_key_ids", 2, _STR, _REP, None),
        ("my_crs_ids", 3, _STR, _REP, None),
        ("my_preprocessing_key_ids", 4, _STR, _REP, None),
        ("my_storage_info", 5, _STR, _OPT, None),
        ("node_type", 6, _ENUM, _OPT, ".kms.v1.NodeType")])
    _message(fdp, "KeyMaterialAvailabilityResponse", [
        ("fhe_key_ids", 1, _STR, _REP, None),
        ("crs_ids", 2, _STR, _REP, None),
        ("preprocessing_ids", 3, _STR, _REP, None),
        ("storage_info", 4, _STR, _OPT, None)])
    # Unset at PRSS initialisation; described without fields (unknown ones are preserved).
    _message(fdp, "PreviousEpochInfo", [])
    _message(fdp, "Eip712DomainMsg", [
        ("name", 1, _STR, _OPT, None),
        ("version", 2, _STR, _OPT, None),
        ("chain_id", 3, _BYTES, _OPT, None),
        ("verifying_contract", 4, _STR, _OPT, None)])
    _message(fdp, "NewMpcEpochRequest", [
        ("context_id", 1, _MSG, _OPT, ".kms.v1.RequestId"),
        ("epoch_id", 2, _MSG, _OPT, ".kms.v1.RequestId"),
        ("previous_epoch", 3, _MSG, _OPT, ".kms.v1.PreviousEpochInfo"),
        ("domain", 4, _MSG, _OPT, ".kms.v1.Eip712DomainMsg"),
        ("extra_data", 5, _BYTES, _OPT, None),
        ("signing_schemes", 6, _ENUM, _REP, ".kms.v1.SigningSchemeType")])
    # Its layout is not pinned by the reference: the simulator answers with a RequestId in
    # field 1, but the client never decodes it (RAW_RESPONSE_METHODS): OK means done.
    _message(fdp, "EpochResultResponse", [("epoch_id", 1, _MSG, _OPT, ".kms.v1.RequestId")])
    return fdp


def _health_v1_file():
    fdp = descriptor_pb2.FileDescriptorProto(
        name="threshold_kms/grpc_health_v1.proto", package="grpc.health.v1", syntax="proto3")
    _message(fdp, "HealthCheckRequest", [("service", 1, _STR, _OPT, None)])
    resp = _message(fdp, "HealthCheckResponse", [
        ("status", 1, _ENUM, _OPT, ".grpc.health.v1.HealthCheckResponse.ServingStatus")])
    _enum(resp, "ServingStatus", [
        ("UNKNOWN", 0), ("SERVING", 1), ("NOT_SERVING", 2), ("SERVICE_UNKNOWN", 3)])
    return fdp


class _Messages(object):
    """Namespace holding the generated message classes."""


messages = _Messages()

if HAS_PROTOBUF:
    POOL = descriptor_pool.DescriptorPool()
    POOL.Add(_kms_v1_file())
    POOL.Add(_health_v1_file())
    for _name in ("Empty", "RequestId", "PeerHealth", "PeersFromContext", "HealthStatusResponse",
                  "KeyMaterialAvailabilityResponse", "PreviousEpochInfo", "Eip712DomainMsg",
                  "NewMpcEpochRequest", "EpochResultResponse"):
        setattr(messages, _name,
                message_factory.GetMessageClass(POOL.FindMessageTypeByName("kms.v1." + _name)))
    for _name in ("HealthCheckRequest", "HealthCheckResponse"):
        setattr(messages, _name, message_factory.GetMessageClass(
            POOL.FindMessageTypeByName("grpc.health.v1." + _name)))

    # method path -> (request class, response class)
    METHODS = {
        METHOD_GET_HEALTH_STATUS: (messages.Empty, messages.HealthStatusResponse),
        METHOD_GET_KEY_MATERIAL: (messages.Empty, messages.KeyMaterialAvailabilityResponse),
        METHOD_NEW_MPC_EPOCH: (messages.NewMpcEpochRequest, messages.Empty),
        METHOD_GET_EPOCH_RESULT: (messages.RequestId, messages.EpochResultResponse),
        METHOD_HEALTH_CHECK: (messages.HealthCheckRequest, messages.HealthCheckResponse),
    }
else:  # pragma: no cover
    POOL = None
    METHODS = {}


def serializer(method):
    """Request serializer for a method path (client side)."""
    return METHODS[method][0].SerializeToString


# Responses the client never decodes: only the gRPC status of the call matters. The layout
# of EpochResultResponse is not pinned by the reference (kms-node.md says only "OK means
# done"); decoding it with a guessed layout would turn a done epoch into a client-side
# INTERNAL "Exception deserializing response" if the real server's fields differ.
RAW_RESPONSE_METHODS = frozenset([METHOD_GET_EPOCH_RESULT])


def _raw_bytes(data):
    return data


def deserializer(method):
    """Response deserializer for a method path (client side).

    Methods in RAW_RESPONSE_METHODS return the undecoded bytes.
    """
    if method in RAW_RESPONSE_METHODS:
        return _raw_bytes
    return METHODS[method][1].FromString
