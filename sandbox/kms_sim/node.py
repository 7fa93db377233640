"""One simulated KMS node: the real client gRPC surface, a peer port, and PRSS epochs.

    from sandbox.kms_sim.node import SimNode
    node = SimNode(config)          # config = parsed threshold.toml (the server's schema)
    node.start()                    # non-blocking; refuses to start without a signing key
    node.is_serving()               # True once both ports serve
    node.calls()                    # every client-port call: source address, method, time, code
    node.stop()

Start-up, like the server: the configuration is checked by the server's rules (config.py);
``[threshold.tls.auto]`` and an ``aws_kms`` keychain are refused (they need a Nitro enclave's
attestation, which the simulator cannot give); the node then looks for its signing key
``<PRIV>/SigningKey/<id>`` and ``<PUB>/VerfKey/<id>`` (written by ``kms-gen-keys``, see
keygen.py) and exits with :class:`StartRefused` when they are missing.

Client port (``[service] listen_port``), bound on ``bind_host``:
  * ``kms_service.v1.CoreServiceEndpoint``: GetHealthStatus, GetKeyMaterialAvailability,
    NewMpcEpoch, GetEpochResult (messages from proto.py, the simulator's own);
  * ``grpc.health.v1.Health/Check`` for "" and "kms_service.v1.CoreServiceEndpoint".
Peer port (``[threshold] listen_port``): TLS with client certificates when
``[threshold.tls.manual]`` is set (trusting exactly the peers' ``tls_cert``), else plaintext:
  * ``grpc.health.v1.Health/Check`` for "" and "ddec_networking.gnetworking";
  * ``kms_sim.v1.PeerSim/EpochStatus`` (simulator-internal, JSON): "were you asked to run
    epoch E?" - stands in for the MPC traffic of the real PRSS protocol.

Behaviour:
  * GetHealthStatus really calls every peer's peer port (over TLS with the peer's CA as root,
    this node's certificate as client certificate and the peer's mpc_identity as the expected
    server name when TLS is on), measures latency, keeps the error text, counts itself and
    applies the server's rule. threshold_required is t + 1.
  * NewMpcEpoch starts the epoch in the background; it completes only when every one of the n
    parties has been asked (checked over the peer ports), then writes
    ``<PRIV>/EpochData/<epoch>`` and ``<PRIV>/Context/<ctx>``. A repeat answers ALREADY_EXISTS
    while the epoch runs and INVALID_ARGUMENT once it is done or its EpochData is in the vault.
  * GetEpochResult: UNAVAILABLE while running, OK when done, INTERNAL if it failed, NOT_FOUND
    for an epoch this process does not know - including one that finished before a restart
    (the results live in memory).

Fault options (keyword arguments):
  mode="full" | "legacy" (no GetHealthStatus: UNIMPLEMENTED, like an older server) |
       "health_only" (no CoreServiceEndpoint at all, only grpc.health.v1);
  health_delay: seconds GetHealthStatus sleeps before answering (a slow node);
  client_tls=(key_pem, cert_pem): serve the client port over TLS (the real one is plaintext
       h2c; this exists to test TLS options and TLS mismatches);
  set_serving(False): grpc.health.v1 answers NOT_SERVING;
  new_epoch_error=(grpc.StatusCode, details): NewMpcEpoch is refused with that status;
  epoch_result_hang: seconds GetEpochResult sleeps before answering for an epoch this node
       knows. Both can also be set as attributes on a running node.
"""
import collections
import json
import logging
import threading
import time
from concurrent import futures

import grpc

from . import proto as P
from .config import ConfigError, SimConfig, read_pem
from .keygen import SIGNING_KEY_ID
from .storage import StorageError, VaultStore

M = P.messages
MODES = ("full", "legacy", "health_only")
PEER_SIM_SERVICE = "kms_sim.v1.PeerSim"
METHOD_EPOCH_STATUS = "/%s/EpochStatus" % PEER_SIM_SERVICE

__all__ = ["SimNode", "ConfigError", "StartRefused", "MODES"]


class StartRefused(RuntimeError):
    """The real server would exit at start-up (missing signing key, enclave-only settings)."""


def _json_dumps(obj):
    return json.dumps(obj, sort_keys=True).encode("utf-8")


def _json_loads(data):
    return json.loads(data.decode("utf-8") or "{}")


class SimNode(object):
    def __init__(self, config, mode="full", env=None, strict=True, peer_host=None,
                 peer_timeout=1.0, epoch_timeout=600.0, poll_interval=0.2, context_id=None,
                 key_material=None, health_delay=0.0, bind_host="127.0.0.1", client_tls=None, logger=None,
                 new_epoch_error=None, epoch_result_hang=0.0, stores=None):
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
        self.log = logger or logging.getLogger("kms_sim.p%s" % self.cfg.party_id)
        km = key_material or {}
        self._extra_keys = {k: list(km.get(k, [])) for k in ("fhe_key_ids", "crs_ids", "preprocessing_ids")}
        if stores is not None:
            self.private, self.public = stores["private"], stores["public"]
        else:
            self.private = VaultStore(self.cfg.private_vault, self.cfg.region, self.cfg.s3_endpoint)
            self.public = VaultStore(self.cfg.public_vault, self.cfg.region, self.cfg.s3_endpoint)
        self._lock = threading.RLock()
        self._epochs = {}          # epoch_id -> record dict (in memory only, like the server)
        self.requests = []         # every NewMpcEpoch received: dict(context_id, epoch_id, at, result)
        self._calls = collections.deque(maxlen=10000)
        self.warnings = list(self.cfg.warnings)
        self._key_ids = {"fhe_key_ids": [], "crs_ids": []}
        self._serving = True
        self._stopping = threading.Event()
        self._client_server = None
        self._peer_server = None
        self._pool = None
        self._workers = []
        self._tls = None           # {"key", "cert", "roots": {party_id: pem}} when tls.manual

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

    def calls(self):
        """Every client-port call so far: [{"at", "peer", "method", "code"}], oldest first."""
        with self._lock:
            return [dict(c) for c in self._calls]

    # ------------------------------------------------------------------ lifecycle
    def _check_startable(self):
        if self.cfg.tls_mode == "auto":
            raise StartRefused("[threshold.tls.auto] needs a Nitro enclave to attest its certificate; the "
                               "simulator cannot attest (use [threshold.tls.manual] in the sandbox)")
        if self.cfg.private_vault.keychain == "aws_kms":
            raise StartRefused("private_vault.keychain.aws_kms needs the attested Nitro enclave; the simulator "
                               "cannot attest")
        key_name = self.cfg.private_vault.key("SigningKey", SIGNING_KEY_ID)
        verf_name = self.cfg.public_vault.key("VerfKey", SIGNING_KEY_ID)
        try:
            key = self.private.get(key_name)
            verf = self.public.get(verf_name)
        except StorageError as exc:
            raise StartRefused("cannot read the signing key: %s" % exc)
        if key is None or verf is None:
            missing = []
            if key is None:
                missing.append("SigningKey %s not found in the private vault (%s)"
                               % (key_name, self.cfg.private_vault.describe()))
            if verf is None:
                missing.append("VerfKey %s not found in the public vault (%s)"
                               % (verf_name, self.cfg.public_vault.describe()))
            raise StartRefused("no signing key, starting in recovery mode: %s; exiting "
                               "(run kms-gen-keys --config-file <file> first)" % "; ".join(missing))
        if self.cfg.tls_manual:
            manual = self.cfg.tls_manual
            roots = {}
            for peer in self.cfg.all_peers:
                if not peer.tls_cert:
                    raise ConfigError("threshold.peers[party_id=%d].tls_cert: required for every peer when "
                                      "[threshold.tls] is set" % peer.party_id)
                roots[peer.party_id] = read_pem(peer.tls_cert, "threshold.peers[party_id=%d].tls_cert"
                                                % peer.party_id)
            self._tls = {"cert": read_pem(manual["cert"], "threshold.tls.manual.cert"),
                         "key": read_pem(manual["key"], "threshold.tls.manual.key"), "roots": roots}

    def start(self):
        """Check what the server checks at start, bind both ports, serve in background threads."""
        if self._client_server is not None:
            raise RuntimeError("party %s: already started" % self.party_id)
        self._check_startable()
        self._stopping.clear()
        self._load_key_material()
        self._pool = futures.ThreadPoolExecutor(max_workers=max(4, len(self.cfg.peers)),
                                                thread_name_prefix="kms-sim-p%s-probe" % self.party_id)
        client = self._new_server("client")
        client.add_generic_rpc_handlers(self._client_handlers())
        peer = self._new_server("peer")
        peer.add_generic_rpc_handlers(self._peer_handlers())
        try:
            self._bind(client, self.cfg.client_port, "service.listen_port",
                       grpc.ssl_server_credentials([tuple(self.client_tls)]) if self.client_tls else None)
            self._bind(peer, self.cfg.peer_port, "threshold.listen_port", self._peer_server_credentials())
        except Exception:
            client.stop(None)
            peer.stop(None)
            self._pool.shutdown(wait=False)
            raise
        client.start()
        peer.start()
        self._client_server, self._peer_server = client, peer
        self.log.info("party %s serving: client %s, peer %s (%s), mode %s", self.party_id, self.client_endpoint,
                      self.peer_endpoint, "mTLS" if self._tls else "plaintext", self.mode)
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
            futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="kms-sim-p%s-%s" % (self.party_id, which)),
            # Fail loudly when the port is taken instead of silently sharing it.
            options=[("grpc.so_reuseport", 0)])

    def _peer_server_credentials(self):
        if not self._tls:
            return None
        roots = b"".join(pem if pem.endswith(b"\n") else pem + b"\n" for _, pem in sorted(self._tls["roots"].items()))
        return grpc.ssl_server_credentials([(self._tls["key"], self._tls["cert"])], root_certificates=roots,
                                           require_client_auth=True)

    def _bind(self, server, port, key, credentials=None):
        address = "%s:%d" % (self.bind_host, port)
        try:
            if credentials is not None:
                bound = server.add_secure_port(address, credentials)
            else:
                bound = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise RuntimeError("party %s: cannot bind %s (%s): %s" % (self.party_id, address, key, exc))
        if bound != port:
            raise RuntimeError("party %s: cannot bind %s (%s)" % (self.party_id, address, key))

    def _recorded(self, fn, method):
        """``fn`` as a handler of ``method`` that records the call (source address, method, time, code)."""
        def handler(request, context):
            entry = {"at": time.time(), "peer": context.peer(), "method": method, "code": "OK"}
            with self._lock:
                self._calls.append(entry)
            try:
                return fn(request, context)
            except BaseException:
                code = context.code() if hasattr(context, "code") else None
                entry["code"] = getattr(code, "name", None) or "UNKNOWN"
                raise
        return handler

    def _unary(self, fn, method, record=False):
        req_cls, resp_cls = P.METHODS[method]
        return grpc.unary_unary_rpc_method_handler(
            self._recorded(fn, method) if record else fn,
            request_deserializer=req_cls.FromString, response_serializer=resp_cls.SerializeToString)

    def _client_handlers(self):
        core = {}
        if self.mode == "full":
            core["GetHealthStatus"] = self._unary(self._get_health_status, P.GET_HEALTH_STATUS, True)
        if self.mode in ("full", "legacy"):
            core["GetKeyMaterialAvailability"] = self._unary(self._get_key_material, P.GET_KEY_MATERIAL, True)
            core["NewMpcEpoch"] = self._unary(self._new_mpc_epoch, P.NEW_MPC_EPOCH, True)
            core["GetEpochResult"] = self._unary(self._get_epoch_result, P.GET_EPOCH_RESULT, True)
        # Every mode still registers the KMS service with grpc.health.v1 (health_only is an
        # old node whose RPCs are all missing but whose health service works).
        handlers = [self._health_handler(("", P.CORE_SERVICE), record=True)]
        if core:
            handlers.append(grpc.method_handlers_generic_handler(P.CORE_SERVICE, core))
        return handlers

    def _peer_handlers(self):
        epoch_status = grpc.unary_unary_rpc_method_handler(
            self._peer_epoch_status, request_deserializer=_json_loads, response_serializer=_json_dumps)
        return [self._health_handler(("", P.PEER_SERVICE_NAME)),
                grpc.method_handlers_generic_handler(PEER_SIM_SERVICE, {"EpochStatus": epoch_status})]

    def _health_handler(self, services, record=False):
        def check(request, context):
            if request.service not in services:
                context.abort(grpc.StatusCode.NOT_FOUND, "unknown service %r" % request.service)
            return M.HealthCheckResponse(status=P.SERVING if self._serving else P.NOT_SERVING)
        return grpc.method_handlers_generic_handler(
            P.HEALTH_SERVICE, {"Check": self._unary(check, P.HEALTH_CHECK, record)})

    # ------------------------------------------------------------------ peers
    def _peer_channel(self, peer):
        target = "%s:%d" % (self.peer_host or peer.address, peer.port)
        if not self._tls:
            return grpc.insecure_channel(target)
        creds = grpc.ssl_channel_credentials(root_certificates=self._tls["roots"][peer.party_id],
                                             private_key=self._tls["key"], certificate_chain=self._tls["cert"])
        return grpc.secure_channel(target, creds, options=[("grpc.ssl_target_name_override", peer.mpc_identity)])

    def _probe_peer(self, peer):
        channel = self._peer_channel(peer)
        started = time.monotonic()
        try:
            resp = P.call(channel, P.HEALTH_CHECK, M.HealthCheckRequest(service=P.PEER_SERVICE_NAME),
                          timeout=self.peer_timeout)
            latency = int(round((time.monotonic() - started) * 1000))
            if resp.status == P.SERVING:
                return peer, True, latency, ""
            return peer, False, latency, "peer health: status %d (not SERVING)" % resp.status
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

    # ------------------------------------------------------------------ health
    def _get_health_status(self, request, context):
        if self.health_delay:
            time.sleep(self.health_delay)
        resp = M.HealthStatusResponse(node_type=P.NODE_TYPE["NODE_TYPE_THRESHOLD"])
        if self.party_id is not None and self.cfg.n:
            probes = self.peer_reachability()
            reachable = 1 + sum(1 for _, ok, _, _ in probes if ok)
            ctx = resp.peers_from_all_contexts.add()
            ctx.context_id.request_id = self.context_id
            ctx.my_party_id = self.party_id
            ctx.threshold_required = self.t + 1
            ctx.nodes_reachable = reachable
            ctx.status = P.health_status(self.n, reachable)
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
        return "Threshold KMS (simulated) party %s - private vault: %s" % (self.party_id,
                                                                          self.cfg.private_vault.describe())

    def _get_key_material(self, request, context):
        ids = self._material()
        return M.KeyMaterialAvailabilityResponse(
            fhe_key_ids=ids["fhe_key_ids"], crs_ids=ids["crs_ids"],
            preprocessing_ids=ids["preprocessing_ids"], storage_info=self._storage_info())

    def _load_key_material(self):
        for folder, key in (("PublicKey", "fhe_key_ids"), ("CRS", "crs_ids")):
            try:
                self._key_ids[key] = [n for n in self.public.list_names(folder) if P.is_request_id(n)]
            except StorageError:
                pass  # the public vault may not exist yet; key material is then empty

    # ------------------------------------------------------------------ epochs
    def _new_mpc_epoch(self, request, context):
        context_id = request.context_id.request_id
        epoch_id = request.epoch_id.request_id
        entry = {"context_id": context_id, "epoch_id": epoch_id, "at": time.time(),
                 "signing_schemes": list(request.signing_schemes), "peer": context.peer()}
        with self._lock:
            self.requests.append(entry)
        for field, value in (("context_id", context_id), ("epoch_id", epoch_id)):
            if not P.is_request_id(value):
                entry["result"] = "INVALID_ARGUMENT"
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              "%s: must be 64 lower-case hex characters without 0x, got %r" % (field, value))
        if self.new_epoch_error:
            code, details = self.new_epoch_error
            entry["result"] = code.name
            context.abort(code, details)
        if self.party_id is None:
            entry["result"] = "FAILED_PRECONDITION"
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "this node has no my_id: it is not in any context")
        with self._lock:
            record = self._epochs.get(epoch_id)
            if record is not None and record["state"] == "running":
                entry["result"] = "ALREADY_EXISTS"
                context.abort(grpc.StatusCode.ALREADY_EXISTS,
                              "Epoch ID %s is already being created on party %d" % (epoch_id, self.party_id))
        try:
            in_vault = record is not None and record["state"] == "done" or \
                self.private.get(self.cfg.private_vault.key("EpochData", epoch_id)) is not None
        except StorageError as exc:
            entry["result"] = "INTERNAL"
            context.abort(grpc.StatusCode.INTERNAL, "cannot read the private vault: %s" % exc)
        if in_vault:
            entry["result"] = "INVALID_ARGUMENT"
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Epoch ID %s already exists" % epoch_id)
        with self._lock:
            record = self._epochs.get(epoch_id)
            if record is not None and record["state"] in ("running", "done"):  # a concurrent twin won
                entry["result"] = "ALREADY_EXISTS"
                context.abort(grpc.StatusCode.ALREADY_EXISTS,
                              "Epoch ID %s is already being created on party %d" % (epoch_id, self.party_id))
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
            channels[peer.party_id] = self._peer_channel(peer)
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
                            "parties": [p.party_id for p in self.cfg.all_peers]})
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
            context.abort(grpc.StatusCode.NOT_FOUND, "no epoch %s on party %s" % (epoch_id, self.party_id))
        if self.epoch_result_hang:
            self._stopping.wait(self.epoch_result_hang)
        if record["state"] == "running":
            context.abort(grpc.StatusCode.UNAVAILABLE, "epoch %s still running on party %d: waiting for parties %s"
                          % (epoch_id, self.party_id, record["waiting_for"]))
        if record["state"] == "failed":
            context.abort(grpc.StatusCode.INTERNAL, "epoch %s failed on party %d: %s"
                          % (epoch_id, self.party_id, record["error"]))
        return M.EpochResultResponse()
