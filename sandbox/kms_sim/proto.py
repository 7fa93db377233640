"""The simulator's own description of the KMS node's gRPC surface.

Written from the reference facts about the server (field numbers and types of the health and
PRSS messages), not from the collection: the collection's client and this server must agree
only through the wire. Messages are described with ``descriptor_pb2`` in a private descriptor
pool and turned into classes with ``message_factory`` (no generated code, no protoc).

* package ``kms.v1``: Empty, RequestId, PeerHealth, PeersFromContext, HealthStatusResponse,
  KeyMaterialAvailabilityResponse, PreviousEpochInfo, Eip712DomainMsg (no fields described),
  NewMpcEpochRequest, KeyGenResult, CrsGenResult, EpochResultResponse; enums HealthStatus,
  NodeType, SigningSchemeType;
* service ``kms_service.v1.CoreServiceEndpoint`` (method paths below);
* ``grpc.health.v1``: HealthCheckRequest, HealthCheckResponse, ``Health/Check``.
"""
import re

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

CORE_SERVICE = "kms_service.v1.CoreServiceEndpoint"
HEALTH_SERVICE = "grpc.health.v1.Health"
PEER_SERVICE_NAME = "ddec_networking.gnetworking"   # grpc.health.v1 name served on the peer port

GET_HEALTH_STATUS = "/%s/GetHealthStatus" % CORE_SERVICE
GET_KEY_MATERIAL = "/%s/GetKeyMaterialAvailability" % CORE_SERVICE
NEW_MPC_EPOCH = "/%s/NewMpcEpoch" % CORE_SERVICE
GET_EPOCH_RESULT = "/%s/GetEpochResult" % CORE_SERVICE
HEALTH_CHECK = "/%s/Check" % HEALTH_SERVICE

# What kms-init sends for the first epoch.
INIT_CONTEXT_ID = "07" + "0" * 61 + "1"
INIT_EPOCH_ID = "08" + "0" * 61 + "1"

HEALTH_STATUS = {"HEALTH_STATUS_UNSPECIFIED": 0, "HEALTH_STATUS_OPTIMAL": 1, "HEALTH_STATUS_HEALTHY": 2,
                 "HEALTH_STATUS_DEGRADED": 3, "HEALTH_STATUS_UNHEALTHY": 4}
NODE_TYPE = {"NODE_TYPE_UNSPECIFIED": 0, "NODE_TYPE_CENTRALIZED": 1, "NODE_TYPE_THRESHOLD": 2}
SIGNING_SCHEME = {"ECDSA256K1": 0, "ED25519": 1, "MLDSA44": 2, "MLDSA65": 3, "MLDSA87": 4}
SERVING = 1
NOT_SERVING = 2

_REQUEST_ID = re.compile(r"^[0-9a-f]{64}$")

_F = descriptor_pb2.FieldDescriptorProto
_TYPES = {"string": _F.TYPE_STRING, "uint32": _F.TYPE_UINT32, "bool": _F.TYPE_BOOL, "bytes": _F.TYPE_BYTES}


def is_request_id(value):
    """64 lower-case hex characters, no 0x (the server's RequestId rule)."""
    return isinstance(value, str) and bool(_REQUEST_ID.match(value))


def health_status(n, reachable):
    """The server's per-context status (reachable counts the node itself), as the enum value."""
    if reachable >= n:
        return HEALTH_STATUS["HEALTH_STATUS_OPTIMAL"]
    if reachable >= (2 * n) // 3 + 1:
        return HEALTH_STATUS["HEALTH_STATUS_HEALTHY"]
    if reachable > n // 3 + 1:
        return HEALTH_STATUS["HEALTH_STATUS_DEGRADED"]
    return HEALTH_STATUS["HEALTH_STATUS_UNHEALTHY"]


def _message(file_proto, name, fields):
    """fields: (number, name, type, repeated); type is a scalar name, "enum:X" or "msg:X" (same package)."""
    msg = file_proto.message_type.add(name=name)
    package = file_proto.package
    for number, fname, ftype, repeated in fields:
        field = msg.field.add(name=fname, number=number,
                              label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
        if ftype.startswith("msg:"):
            field.type = _F.TYPE_MESSAGE
            field.type_name = ".%s.%s" % (package, ftype[4:])
        elif ftype.startswith("enum:"):
            field.type = _F.TYPE_ENUM
            field.type_name = ".%s.%s" % (package, ftype[5:])
        else:
            field.type = _TYPES[ftype]
    return msg


def _enum(file_proto, name, values):
    enum = file_proto.enum_type.add(name=name)
    for vname, number in sorted(values.items(), key=lambda kv: kv[1]):
        enum.value.add(name=vname, number=number)


def _build():
    pool = descriptor_pool.DescriptorPool()
    kms = descriptor_pb2.FileDescriptorProto(name="kms_sim/kms.v1.proto", package="kms.v1", syntax="proto3")
    _enum(kms, "HealthStatus", HEALTH_STATUS)
    _enum(kms, "NodeType", NODE_TYPE)
    _enum(kms, "SigningSchemeType", SIGNING_SCHEME)
    _message(kms, "Empty", [])
    _message(kms, "RequestId", [(1, "request_id", "string", False)])
    _message(kms, "PeerHealth", [(1, "peer_id", "uint32", False), (2, "endpoint", "string", False),
                                 (3, "reachable", "bool", False), (4, "latency_ms", "uint32", False),
                                 (5, "error", "string", False)])
    _message(kms, "PeersFromContext", [(1, "context_id", "msg:RequestId", False), (2, "my_party_id", "uint32", False),
                                       (3, "threshold_required", "uint32", False),
                                       (4, "nodes_reachable", "uint32", False),
                                       (5, "status", "enum:HealthStatus", False),
                                       (6, "peers", "msg:PeerHealth", True)])
    _message(kms, "HealthStatusResponse", [(1, "peers_from_all_contexts", "msg:PeersFromContext", True),
                                           (2, "my_fhe_key_ids", "string", True), (3, "my_crs_ids", "string", True),
                                           (4, "my_preprocessing_key_ids", "string", True),
                                           (5, "my_storage_info", "string", False),
                                           (6, "node_type", "enum:NodeType", False)])
    _message(kms, "KeyMaterialAvailabilityResponse", [(1, "fhe_key_ids", "string", True),
                                                      (2, "crs_ids", "string", True),
                                                      (3, "preprocessing_ids", "string", True),
                                                      (4, "storage_info", "string", False)])
    _message(kms, "PreviousEpochInfo", [(1, "context_id", "msg:RequestId", False),
                                        (2, "epoch_id", "msg:RequestId", False)])
    _message(kms, "Eip712DomainMsg", [])
    _message(kms, "NewMpcEpochRequest", [(1, "context_id", "msg:RequestId", False),
                                         (2, "epoch_id", "msg:RequestId", False),
                                         (3, "previous_epoch", "msg:PreviousEpochInfo", False),
                                         (4, "domain", "msg:Eip712DomainMsg", False),
                                         (5, "extra_data", "bytes", False),
                                         (6, "signing_schemes", "enum:SigningSchemeType", True)])
    _message(kms, "KeyGenResult", [(1, "request_id", "msg:RequestId", False),
                                   (2, "preprocessing_id", "msg:RequestId", False)])
    _message(kms, "CrsGenResult", [(1, "request_id", "msg:RequestId", False), (2, "crs_digest", "bytes", False),
                                   (3, "max_num_bits", "uint32", False)])
    _message(kms, "EpochResultResponse", [(1, "reshare_responses", "msg:KeyGenResult", True),
                                          (2, "crs_responses", "msg:CrsGenResult", True)])
    pool.Add(kms)

    health = descriptor_pb2.FileDescriptorProto(name="kms_sim/health.proto", package="grpc.health.v1",
                                                syntax="proto3")
    _message(health, "HealthCheckRequest", [(1, "service", "string", False)])
    resp = _message(health, "HealthCheckResponse", [])
    status_enum = resp.enum_type.add(name="ServingStatus")
    for vname, number in (("UNKNOWN", 0), ("SERVING", 1), ("NOT_SERVING", 2), ("SERVICE_UNKNOWN", 3)):
        status_enum.value.add(name=vname, number=number)
    resp.field.add(name="status", number=1, label=_F.LABEL_OPTIONAL, type=_F.TYPE_ENUM,
                   type_name=".grpc.health.v1.HealthCheckResponse.ServingStatus")
    pool.Add(health)

    classes = {}
    for full in ["kms.v1." + m.name for m in kms.message_type] + ["grpc.health.v1." + m.name
                                                                   for m in health.message_type]:
        descriptor = pool.FindMessageTypeByName(full)
        if hasattr(message_factory, "GetMessageClass"):
            classes[full.rsplit(".", 1)[1]] = message_factory.GetMessageClass(descriptor)
        else:  # pragma: no cover - protobuf < 4.21
            classes[full.rsplit(".", 1)[1]] = message_factory.MessageFactory(pool).GetPrototype(descriptor)
    return classes


class _Messages(object):
    def __init__(self, classes):
        self.__dict__.update(classes)


messages = _Messages(_build())

# method path -> (request class, response class)
METHODS = {
    GET_HEALTH_STATUS: (messages.Empty, messages.HealthStatusResponse),
    GET_KEY_MATERIAL: (messages.Empty, messages.KeyMaterialAvailabilityResponse),
    NEW_MPC_EPOCH: (messages.NewMpcEpochRequest, messages.Empty),
    GET_EPOCH_RESULT: (messages.RequestId, messages.EpochResultResponse),
    HEALTH_CHECK: (messages.HealthCheckRequest, messages.HealthCheckResponse),
}


def call(channel, method, request, timeout=3.0):
    """Unary call of ``method`` on ``channel`` with the simulator's own message classes."""
    req_cls, resp_cls = METHODS[method]
    stub = channel.unary_unary(method, request_serializer=req_cls.SerializeToString,
                               response_deserializer=resp_cls.FromString)
    return stub(request, timeout=timeout)
