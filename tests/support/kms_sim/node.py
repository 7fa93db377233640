"""One simulated KMS node: the real client gRPC surface, a peer port, and PRSS epochs.

    from tests.support.kms_sim.node import SimNode
    node = SimNode(config)          # config = parsed threshold.toml (the server's schema)
    node.start()                    # non-blocking; gRPC servers run in background threads
    node.is_serving()               # True once both ports serve
    node.stop()

Client port (``[service] listen_port``), always bound on 127.0.0.1:
  * ``kms_service.v1.CoreServiceEndpoint``: GetHealthStatus, GetKeyMaterialAvailability,
    NewMpcEpoch, GetEpochResult (messages from plugins/module_utils/kms_proto.py);
  * ``grpc.health.v1.Health/Check`` for "" and "kms_service.v1.CoreServiceEndpoint".
Peer port (``[threshold] listen_port``), always bound on 127.0.0.1:
  * ``grpc.health.v1.Health/Check`` for "" and "ddec_networking.gnetworking";
  * ``kms_sim.v1.PeerSim/EpochStatus`` (simulator-internal, JSON): "were you asked to run
    epoch E?" - stands in for the MPC traffic of the real PRSS protocol.

Behaviour:
  * GetHealthStatus really calls every peer's peer port (health check, ``peer_timeout``),
    measures latency, keeps the error text, counts itself and applies the server's rule
    (kms_proto.status_for). threshold_required is t + 1, like the server reports.
  * NewMpcEpoch records the request and starts the epoch in the background; the epoch
    completes only when every one of the n parties has been asked (checked over the peer
    ports), then writes ``<PRIV prefix>/EpochData/<epoch>`` and ``<PRIV prefix>/Context/<ctx>``
    to the party's private vault. GetEpochResult: UNAVAILABLE while running, OK when done,
    NOT_FOUND for an unknown epoch, INTERNAL if it failed. A repeated NewMpcEpoch for a known
    epoch (also one whose EpochData was in the vault at start-up) gives ALREADY_EXISTS.

Fault options (keyword arguments):
  mode="full" | "legacy" (no GetHealthStatus: UNIMPLEMENTED, like an older server) |
       "health_only" (no CoreServiceEndpoint at all, only grpc.health.v1);
  health_delay: seconds GetHealthStatus sleeps before answering (a slow node);
  client_tls=(key_pem, cert_pem): serve the client port over TLS (the real one is plaintext
       h2c; this exists to test TLS options and TLS mismatches);
  set_serving(False): grpc.health.v1 answers NOT_SERVING;
  new_epoch_error=(grpc.StatusCode, details): NewMpcEpoch is refused with that status
       (nothing is recorded as started; the request still lands in ``requests``);
  epoch_result_hang: seconds GetEpochResult sleeps before answering for an epoch this node
       knows (a node wedged in the MPC after the start: NOT_FOUND stays prompt, so the
       start still happens). Both can also be set as attributes on a running node.
"""
import json
import logging
import threading
import time
from concurrent import futures

import grpc

from ._collection import kms_proto as P
from .config import ConfigError, SimConfig
from .storage import StorageError, VaultStore

M = P.messages
MODES = ("full", "legacy", "health_only")
PEER_SIM_SERVICE = "kms_sim.v1.PeerSim"
METHOD_EPOCH_STATUS = "/%s/EpochStatus" % PEER_SIM_SERVICE

__all__ = ["SimNode", "ConfigError", "MODES"]


def _json_dumps(obj):
    return json.dumps(obj, sort_keys=True).encode("utf-8")


def _json_loads(data):
    return json.loads(data.decode("utf-8") or "{}")


class SimNode(object):
    def __init__(self, config, mode="full", env=None, strict=True, peer_host=None,
                 peer_timeout=1.0, epoch_timeout=600.0, poll_interval=0.2, context_id=None,
                 key_material=None, health_delay=0.0, bind_host="127.0.0.1", client_tls=None, logger=None,
                 new_epoch_error=None, epoch_result_hang=0.0):
        if mode not in MODES:
            raise ValueError("mode: must be one of %s, got %r" % (", ".join(MODES), mode))
        self.cfg = SimConfig(config, env=env, strict=strict)
        self.mode = mode
        self.peer_host = peer_host
        self.peer_timeout = float(peer_timeout)
        self.epoch_timeout = float(epoch_timeout)
        self.poll_interval = float(poll_interval)
        self.context_id = context_id or self.cfg.default_context_id
        self.health_delay = float(health_delay)
        self.new_epoch_error = new_epoch_error      # (grpc.StatusCode, details) or None
        self.epoch_result_hang = float(epoch_result_hang)
        self.bind_host = bind_host
        self.client_tls = client_tls  # (key_pem, cert_pem): serve the client port over TLS
        self.log = logger or logging.getLogger("kms_sim.p%d" % self.cfg.party_id)
        km = key_material or {}
        self._extra_keys = {k: list(km.get(k, [])) for k in ("fhe_key_ids", "crs_ids", "preprocessing_ids")}
        self.private = VaultStore(self.cfg.private_vault, self.cfg.region, self.cfg.s3_endpoint)
        self.public = VaultStore(self.cfg.public_vault, self.cfg.region, self.cfg.s3_endpoint)
        self._lock = threading.RLock()
        self._epochs = {}          # epoch_id -> record dict
        self.requests = []         # every NewMpcEpoch received: dict(context_id, epoch_id, at, result)
        self.warnings = []
        self._vault_loaded = False
        self._key_ids = {"fhe_key_ids": [], "crs_ids": []}
        self._serving = True
        self._stopping = threading.Event()
        self._client_server = None
        self._peer_server = None
        self._pool = None
        self._workers = []
        if self.cfg.tls:
            self.warnings.append("[threshold.tls] is ignored: the simulator's peer port is plaintext")

    # ------------------------------------------------------------------ properties
    @property
    def party_id(self):
        return self.cfg.party_id

    @property
    def n(self):
        return self.cfg.n

    @property
    def t(self):
        return self.cfg.t

    @property
    def client_endpoint(self):
        return "%s:%d" % (self.bind_host, self.cfg.client_port)

    @property
    def peer_endpoint(self):
        return "%s:%d" % (self.bind_host, self.cfg.peer_port)

    def epochs(self):
        """Snapshot of the epochs this node knows: {epoch_id: {state, context_id, ...}}."""
        with self._lock:
            return {k: dict(v) for k, v in self._epochs.items()}

    # ------------------------------------------------------------------ lifecycle
    def start(self):
        """Bind both ports on 127.0.0.1 and serve in background threads (returns at once)."""
        if self._client_server is not None:
            raise RuntimeError("party %d: already started" % self.party_id)
        self._stopping.clear()
        self._load_vault_state()
        self._pool = futures.ThreadPoolExecutor(max_workers=max(4, len(self.cfg.peers)),
                                                thread_name_prefix="kms-sim-p%d-probe" % self.party_id)
        client = self._new_server("client")
        client.add_generic_rpc_handlers(self._client_handlers())
        peer = self._new_server("peer")
        peer.add_generic_rpc_handlers(self._peer_handlers())
        try:
            self._bind(client, self.cfg.client_port, "service.listen_port", self.client_tls)
            self._bind(peer, self.cfg.peer_port, "threshold.listen_port")
        except Exception:
            client.stop(None)
            peer.stop(None)
            self._pool.shutdown(wait=False)
            raise
        client.start()
        peer.start()
        self._client_server, self._peer_server = client, peer
        self.log.info("party %d serving: client %s, peer %s, mode %s", self.party_id,
                      self.client_endpoint, self.peer_endpoint, self.mode)
        return self

    def stop(self, grace=0.2):
        """Stop both servers and the epoch workers. Safe to call twice."""
        self._stopping.set()
        servers = [s for s in (self._client_server, self._peer_server) if s is not None]
        events = [s.stop(grace) for s in servers]
        for event in events:
            event.wait(5)
        for worker in self._workers:
            worker.join(5)
        self._workers = []
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        self._client_server = self._peer_server = None

    def is_serving(self):
        return self._client_server is not None and not self._stopping.is_set() and self._serving

    def set_serving(self, serving):
        """grpc.health.v1 answers SERVING (True) or NOT_SERVING (False)."""
        self._serving = bool(serving)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------ servers
    def _new_server(self, which):
        return grpc.server(
            futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="kms-sim-p%d-%s" % (self.party_id, which)),
            # Fail loudly when the port is taken instead of silently sharing it.
            options=[("grpc.so_reuseport", 0)])

    def _bind(self, server, port, key, tls=None):
        address = "%s:%d" % (self.bind_host, port)
        try:
            if tls:
                bound = server.add_secure_port(address, grpc.ssl_server_credentials([tuple(tls)]))
            else:
                bound = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise RuntimeError("party %d: cannot bind %s (%s): %s" % (self.party_id, address, key, exc))
        if bound != port:
            raise RuntimeError("party %d: cannot bind %s (%s)" % (self.party_id, address, key))

    @staticmethod
    def _unary(fn, method):
        req_cls, resp_cls = P.METHODS[method]
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=req_cls.FromString, response_serializer=resp_cls.SerializeToString)

    def _client_handlers(self):
        core = {}
        if self.mode == "full":
            core["GetHealthStatus"] = self._unary(self._get_health_status, P.METHOD_GET_HEALTH_STATUS)
        if self.mode in ("full", "legacy"):
            core["GetKeyMaterialAvailability"] = self._unary(self._get_key_material, P.METHOD_GET_KEY_MATERIAL)
            core["NewMpcEpoch"] = self._unary(self._new_mpc_epoch, P.METHOD_NEW_MPC_EPOCH)
            core["GetEpochResult"] = self._unary(self._get_epoch_result, P.METHOD_GET_EPOCH_RESULT)
        # Every mode still registers the KMS service with grpc.health.v1 (health_only is an
        # old node whose RPCs are all missing but whose health service works).
        handlers = [self._health_handler(("", P.CORE_SERVICE))]
        if core:
            handlers.append(grpc.method_handlers_generic_handler(P.CORE_SERVICE, core))
        return handlers

    def _peer_handlers(self):
        epoch_status = grpc.unary_unary_rpc_method_handler(
            self._peer_epoch_status, request_deserializer=_json_loads, response_serializer=_json_dumps)
        return [self._health_handler(("", P.PEER_HEALTH_SERVICE_NAME)),
                grpc.method_handlers_generic_handler(PEER_SIM_SERVICE, {"EpochStatus": epoch_status})]

    def _health_handler(self, services):
        def check(request, context):
            if request.service not in services:
                context.abort(grpc.StatusCode.NOT_FOUND, "unknown service %r" % request.service)
            status = 1 if self._serving else 2
            return M.HealthCheckResponse(status=status)
        return grpc.method_handlers_generic_handler(
            P.HEALTH_SERVICE, {"Check": self._unary(check, P.METHOD_HEALTH_CHECK)})

    # ------------------------------------------------------------------ health
    def _probe_peer(self, peer):
        host = self.peer_host or peer.address
        target = "%s:%d" % (host, peer.port)
        channel = grpc.insecure_channel(target)
        started = time.monotonic()
        try:
            check = channel.unary_unary(P.METHOD_HEALTH_CHECK, request_serializer=P.serializer(P.METHOD_HEALTH_CHECK),
                                        response_deserializer=P.deserializer(P.METHOD_HEALTH_CHECK))
            resp = check(M.HealthCheckRequest(service=P.PEER_HEALTH_SERVICE_NAME), timeout=self.peer_timeout)
            latency = int(round((time.monotonic() - started) * 1000))
            if resp.status == 1:
                return peer, True, latency, ""
            return peer, False, latency, "peer health: %s" % P.SERVING_STATUS_NAMES.get(resp.status, resp.status)
        except grpc.RpcError as exc:
            latency = int(round((time.monotonic() - started) * 1000))
            return peer, False, latency, "%s: %s" % (exc.code().name, exc.details())
        finally:
            channel.close()

    def peer_reachability(self):
        """[(peer, reachable, latency_ms, error)] by really calling every peer's peer port."""
        pool = self._pool
        if pool is None:
            return [self._probe_peer(p) for p in self.cfg.peers]
        return list(pool.map(self._probe_peer, self.cfg.peers))

    def _get_health_status(self, request, context):
        if self.health_delay:
            time.sleep(self.health_delay)
        probes = self.peer_reachability()
        reachable = 1 + sum(1 for _, ok, _, _ in probes if ok)
        resp = M.HealthStatusResponse(node_type=2)
        ctx = resp.peers_from_all_contexts.add()
        ctx.context_id.request_id = self.context_id
        ctx.my_party_id = self.party_id
        ctx.threshold_required = self.t + 1
        ctx.nodes_reachable = reachable
        ctx.status = P.HEALTH_STATUS_VALUES[P.status_for(self.n, reachable)]
        for peer, ok, latency, error in probes:
            ctx.peers.add(peer_id=peer.party_id, endpoint=peer.endpoint, reachable=ok,
                          latency_ms=latency if ok else 0, error=error)
        ids = self._material()
        resp.my_fhe_key_ids.extend(ids["fhe_key_ids"])
        resp.my_crs_ids.extend(ids["crs_ids"])
        resp.my_preprocessing_key_ids.extend(ids["preprocessing_ids"])
        resp.my_storage_info = self._storage_info()
        return resp

    def _material(self):
        return {
            "fhe_key_ids": sorted(set(self._key_ids["fhe_key_ids"] + self._extra_keys["fhe_key_ids"])),
            "crs_ids": sorted(set(self._key_ids["crs_ids"] + self._extra_keys["crs_ids"])),
            "preprocessing_ids": sorted(set(self._extra_keys["preprocessing_ids"])),
        }

    def _storage_info(self):
        return "Threshold KMS (simulated) party %d - private vault: %s" % (self.party_id, self.cfg.private_vault.describe())

    def _get_key_material(self, request, context):
        ids = self._material()
        return M.KeyMaterialAvailabilityResponse(
            fhe_key_ids=ids["fhe_key_ids"], crs_ids=ids["crs_ids"],
            preprocessing_ids=ids["preprocessing_ids"], storage_info=self._storage_info())

    # ------------------------------------------------------------------ vault state
    def _load_vault_state(self):
        """Epochs whose EpochData is already in the private vault are done (like a restart)."""
        try:
            names = self.private.list_names("EpochData")
        except StorageError as exc:
            self.warnings.append("could not read the private vault at start-up: %s" % exc)
            self.log.warning("party %d: %s", self.party_id, self.warnings[-1])
            return False
        with self._lock:
            for name in names:
                if P.is_request_id(name) and name not in self._epochs:
                    self._epochs[name] = {"state": "done", "context_id": None, "source": "vault",
                                          "waiting_for": [], "error": ""}
            self._vault_loaded = True
        for folder, key in (("PublicKey", "fhe_key_ids"), ("CRS", "crs_ids")):
            try:
                self._key_ids[key] = [n for n in self.public.list_names(folder) if P.is_request_id(n)]
            except StorageError:
                pass  # the public vault may not exist yet; key material is then empty
        return True

    # ------------------------------------------------------------------ epochs
    def _new_mpc_epoch(self, request, context):
        context_id = request.context_id.request_id
        epoch_id = request.epoch_id.request_id
        for field, value in (("context_id", context_id), ("epoch_id", epoch_id)):
            if not P.is_request_id(value):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              "%s: must be 64 lower-case hex characters without 0x, got %r" % (field, value))
        if not self._vault_loaded:
            self._load_vault_state()
        with self._lock:
            entry = {"context_id": context_id, "epoch_id": epoch_id, "at": time.time(),
                     "signing_schemes": list(request.signing_schemes)}
            self.requests.append(entry)
            if self.new_epoch_error:
                code, details = self.new_epoch_error
                entry["result"] = code.name
                context.abort(code, details)
            if epoch_id in self._epochs:
                entry["result"] = "ALREADY_EXISTS"
                state = self._epochs[epoch_id]["state"]
                context.abort(grpc.StatusCode.ALREADY_EXISTS,
                              "epoch %s already exists on party %d (%s)" % (epoch_id, self.party_id, state))
            entry["result"] = "OK"
            self._epochs[epoch_id] = {"state": "running", "context_id": context_id, "source": "request",
                                      "waiting_for": [p.party_id for p in self.cfg.peers], "error": "",
                                      "started_at": time.time()}
            worker = threading.Thread(target=self._run_epoch, args=(epoch_id, context_id),
                                      name="kms-sim-p%d-epoch" % self.party_id, daemon=True)
            self._workers.append(worker)
        self.log.info("party %d: NewMpcEpoch context %s epoch %s", self.party_id, context_id, epoch_id)
        worker.start()
        return M.Empty()

    def _peer_epoch_status(self, request, context):
        epoch_id = request.get("epoch_id", "")
        with self._lock:
            record = self._epochs.get(epoch_id)
            return {"party_id": self.party_id, "asked": record is not None,
                    "state": record["state"] if record else None}

    def _ask_peer(self, channels, peer, epoch_id, context_id):
        if peer.party_id not in channels:
            channels[peer.party_id] = grpc.insecure_channel("%s:%d" % (self.peer_host or peer.address, peer.port))
        call = channels[peer.party_id].unary_unary(
            METHOD_EPOCH_STATUS, request_serializer=_json_dumps, response_deserializer=_json_loads)
        try:
            answer = call({"epoch_id": epoch_id, "context_id": context_id, "from": self.party_id},
                          timeout=self.peer_timeout)
        except grpc.RpcError:
            return False
        return bool(answer.get("asked"))

    def _set(self, epoch_id, **changes):
        with self._lock:
            self._epochs[epoch_id].update(changes)

    def _run_epoch(self, epoch_id, context_id):
        pending = {p.party_id: p for p in self.cfg.peers}
        channels = {}
        deadline = time.monotonic() + self.epoch_timeout
        try:
            while pending and not self._stopping.is_set():
                for pid, peer in list(pending.items()):
                    if self._ask_peer(channels, peer, epoch_id, context_id):
                        del pending[pid]
                self._set(epoch_id, waiting_for=sorted(pending))
                if not pending:
                    break
                if time.monotonic() > deadline:
                    self._set(epoch_id, state="failed", error="timed out after %ds waiting for parties %s to join"
                              % (self.epoch_timeout, sorted(pending)))
                    return
                self._stopping.wait(self.poll_interval)
        finally:
            for channel in channels.values():
                channel.close()
        if self._stopping.is_set():
            return
        body = _json_dumps({"simulated": True, "party_id": self.party_id, "epoch_id": epoch_id,
                            "context_id": context_id, "n": self.n, "t": self.t,
                            "parties": sorted([p.party_id for p in self.cfg.peers] + [self.party_id])})
        try:
            self.private.put(self.cfg.private_vault.key("Context", context_id), body)
            self.private.put(self.cfg.private_vault.key("EpochData", epoch_id), body)
        except StorageError as exc:
            self._set(epoch_id, state="failed", error=str(exc))
            self.log.error("party %d: epoch %s failed: %s", self.party_id, epoch_id, exc)
            return
        self._set(epoch_id, state="done", done_at=time.time())
        self.log.info("party %d: epoch %s done", self.party_id, epoch_id)

    def _get_epoch_result(self, request, context):
        epoch_id = request.request_id
        if not P.is_request_id(epoch_id):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "request_id: must be 64 lower-case hex characters without 0x, got %r" % epoch_id)
        with self._lock:
            record = dict(self._epochs.get(epoch_id) or {})
        if not record:
            context.abort(grpc.StatusCode.NOT_FOUND, "no epoch %s on party %d" % (epoch_id, self.party_id))
        if self.epoch_result_hang:
            self._stopping.wait(self.epoch_result_hang)
        if record["state"] == "running":
            context.abort(grpc.StatusCode.UNAVAILABLE, "epoch %s still running on party %d: waiting for parties %s"
                          % (epoch_id, self.party_id, record["waiting_for"]))
        if record["state"] == "failed":
            context.abort(grpc.StatusCode.INTERNAL, "epoch %s failed on party %d: %s"
                          % (epoch_id, self.party_id, record["error"]))
        resp = M.EpochResultResponse()
        resp.epoch_id.request_id = epoch_id
        return resp
