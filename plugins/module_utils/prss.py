# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""PRSS initialisation logic: the vault check and the epoch orchestration.

Pure Python (boto3 callables and grpc channels are passed in), used by the modules
prss_validate and prss_epoch and called directly by the unit tests.

Vault layout written by the KMS server (release 0.15):
``<PRIV prefix>/EpochData/<epoch_id>`` and ``<PRIV prefix>/Context/<context_id>``;
an empty prefix gives keys starting with "/".

What the server answers (release 0.15): a second NewMpcEpoch for the same epoch is
ALREADY_EXISTS while the first one runs, and INVALID_ARGUMENT ("Epoch ID ... already exists")
once it finished or after a restart; GetEpochResult lives in memory, so after a restart it is
NOT_FOUND for an epoch that is done. Neither answer alone says "done": the durable proof is the
EpochData object in the private vault, which the caller reads (start result ``exists``, party
state ``forgotten``, wait_state ``vault``).
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time
from concurrent.futures import ThreadPoolExecutor

try:
    from botocore.exceptions import ClientError
except ImportError:  # pragma: no cover - the modules report missing boto3
    ClientError = None

try:
    import grpc
except ImportError:  # pragma: no cover
    grpc = None

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_proto as P
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_grpc as G

VAULT_STATES = ("present", "missing", "empty", "access_denied")
# Shortest timeout given to a call near a deadline (a shorter one only produces false
# DEADLINE_EXCEEDED for healthy nodes).
_MIN_CALL = 0.2
_DENIED = ("403", "AccessDenied", "Forbidden", "AllAccessDisabled")
_MISSING = ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


def check_ids(**ids):
    """Raise KmsInputError naming the first field that is not a 64-hex RequestId."""
    for field, value in sorted(ids.items()):
        if not P.is_request_id(value):
            raise G.KmsInputError("%s: must be 64 lower-case hex characters without 0x (a RequestId), got %r"
                                  % (field, value))


def vault_key(prefix, folder, ident):
    return "%s/%s/%s" % (prefix or "", folder, ident)


def _error_code(exc):
    err = exc.response.get("Error", {}) if hasattr(exc, "response") else {}
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") if hasattr(exc, "response") else None
    return str(err.get("Code", "")), status, err.get("Message", "")


def check_object(head_object, head_bucket, bucket, key):
    """State of one vault object: present | empty | missing | access_denied, with metadata.

    head_object / head_bucket: boto3 S3 client methods (the module passes retrying ones).
    Other errors (network, throttling after retries) propagate.
    """
    info = {"key": key, "state": None, "size": None, "last_modified": None, "etag": None,
            "version_id": None, "bucket_exists": True, "error": ""}
    try:
        resp = head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code, status, message = _error_code(exc)
        if code in _DENIED or status == 403:
            info["state"] = "access_denied"
            info["error"] = "s3:GetObject on s3://%s/%s denied (%s)" % (bucket, key, message or code)
            return info
        if code in _MISSING or status == 404:
            info["state"] = "missing"
            try:
                head_bucket(Bucket=bucket)
            except ClientError as bexc:
                bcode, bstatus, _ = _error_code(bexc)
                if bcode in _MISSING or bstatus == 404:
                    info["bucket_exists"] = False
                    info["error"] = "bucket %s does not exist" % bucket
                elif bcode in _DENIED or bstatus == 403:
                    info["bucket_exists"] = None
            return info
        raise
    size = int(resp.get("ContentLength", 0))
    modified = resp.get("LastModified")
    info.update(state="present" if size > 0 else "empty", size=size,
                last_modified=modified.isoformat() if hasattr(modified, "isoformat") else modified,
                etag=(resp.get("ETag") or "").strip('"') or None, version_id=resp.get("VersionId"))
    if size == 0:
        info["error"] = "s3://%s/%s exists but is empty" % (bucket, key)
    return info


def validate_vault(head_object, head_bucket, bucket, prefix, epoch_id, context_id, check_context=True):
    """Whether this party's PRSS epoch is in its private vault.

    Returns {initialized, state, objects: {epoch_data, context}, bucket, prefix}; state is
    access_denied if any object is denied, present if all are present, empty if any is
    empty, missing otherwise.
    """
    objects = {"epoch_data": check_object(head_object, head_bucket, bucket, vault_key(prefix, "EpochData", epoch_id))}
    if check_context:
        objects["context"] = check_object(head_object, head_bucket, bucket, vault_key(prefix, "Context", context_id))
    states = [o["state"] for o in objects.values()]
    if "access_denied" in states:
        state = "access_denied"
    elif all(s == "present" for s in states):
        state = "present"
    elif "empty" in states:
        state = "empty"
    else:
        state = "missing"
    return {"initialized": state == "present", "state": state, "objects": objects,
            "bucket": bucket, "prefix": prefix, "epoch_id": epoch_id, "context_id": context_id}


# --------------------------------------------------------------------------- epochs over gRPC

class EpochClient(object):
    """Keeps one channel per endpoint open, so NewMpcEpoch can go to all parties at once."""

    def __init__(self, endpoints, timeout, tls=None):
        self.endpoints = endpoints
        self.timeout = float(timeout)
        self.tls = tls
        self.channels = [G.open_channel(ep["address"], tls) for ep in endpoints]
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(32, len(endpoints))), thread_name_prefix="kms-epoch")

    def close(self):
        self.pool.shutdown(wait=True)
        for channel, _ in self.channels:
            channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _each(self, fn):
        return list(self.pool.map(lambda i: fn(self.endpoints[i], self.channels[i][0], self.channels[i][1]),
                                  range(len(self.endpoints))))

    def _call_timeout(self, deadline):
        """Seconds for one call: the call timeout, capped at what is left before ``deadline``
        (time.monotonic() value or None), never below _MIN_CALL."""
        if deadline is None:
            return self.timeout
        return max(_MIN_CALL, min(self.timeout, deadline - time.monotonic()))

    def status(self, epoch_id, deadline=None):
        """GetEpochResult on every endpoint: [{party_id, endpoint, state, error, code}].

        state: done (OK) | running (UNAVAILABLE from the node) | not_found | failed (INTERNAL /
        ABORTED from the node) | unreachable (no connection, or no answer in time) | error
        (anything else). Only the status code counts; the response body is not decoded.
        With ``deadline`` (a time.monotonic() value) no call outlives it by more than
        _MIN_CALL plus a short TCP probe.
        """
        def one(ep, channel, states):
            item = {"party_id": ep["party_id"], "endpoint": ep["address"], "state": None, "error": "", "code": "OK"}
            budget = self._call_timeout(deadline)
            try:
                G.call(channel, P.METHOD_GET_EPOCH_RESULT, P.messages.RequestId(request_id=epoch_id), budget)
                item["state"] = "done"
                return item
            except grpc.RpcError as exc:
                code = exc.code()
                item["code"] = code.name
                from_node = G.from_server(exc)
                if code == grpc.StatusCode.UNAVAILABLE and from_node:
                    item["state"], item["error"] = "running", exc.details() or ""
                elif code == grpc.StatusCode.NOT_FOUND and from_node:
                    item["state"], item["error"] = "not_found", exc.details() or ""
                elif code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.ABORTED) and from_node:
                    item["state"], item["error"] = "failed", exc.details() or ""
                else:
                    item["state"] = "error" if from_node else "unreachable"
                    item["error"] = G.diagnose(exc, ep, self.tls, states, budget,
                                               probe_budget=self._probe_budget(deadline))[1]
                return item
        return self._each(one)

    @staticmethod
    def _probe_budget(deadline):
        if deadline is None:
            return 0.5
        return min(0.5, max(0.1, deadline - time.monotonic()))

    def start(self, context_id, epoch_id, signing_schemes, only=None, deadline=None):
        """NewMpcEpoch on every endpoint (or the indexes in ``only``) at about the same time.

        Returns [{party_id, endpoint, result, error, code}], result: started | already_exists
        (ALREADY_EXISTS: the first request still runs) | exists (INVALID_ARGUMENT "already
        exists": the node finished the epoch or restarted; only the vault says whether it is
        done) | skipped | error (code: the gRPC status name). The channels are already connected by a
        previous status() call, so the requests leave within milliseconds of each other.
        """
        request = P.messages.NewMpcEpochRequest(signing_schemes=[P.SIGNING_SCHEMES[s] for s in signing_schemes])
        request.context_id.request_id = context_id
        request.epoch_id.request_id = epoch_id
        wanted = set(range(len(self.endpoints))) if only is None else set(only)

        def one(i):
            ep, (channel, states) = self.endpoints[i], self.channels[i]
            item = {"party_id": ep["party_id"], "endpoint": ep["address"], "result": "skipped", "error": "",
                    "code": None, "sent_at": None}
            if i not in wanted:
                return item
            item["sent_at"] = time.time()
            budget = self._call_timeout(deadline)
            try:
                G.call(channel, P.METHOD_NEW_MPC_EPOCH, request, budget)
                item["result"], item["code"] = "started", "OK"
            except grpc.RpcError as exc:
                item["code"] = exc.code().name
                if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
                    item["result"], item["error"] = "already_exists", exc.details() or ""
                elif exc.code() == grpc.StatusCode.INVALID_ARGUMENT and "already exist" in (exc.details() or "").lower():
                    item["result"], item["error"] = "exists", exc.details() or ""
                elif G.from_server(exc):
                    # The node answered and refused: its own status and words.
                    item["result"] = "error"
                    item["error"] = "%s: %s" % (exc.code().name, G.short(exc.details() or "(no details)"))
                else:
                    item["result"] = "error"
                    item["error"] = "%s: %s" % (exc.code().name, G.diagnose(
                        exc, ep, self.tls, states, budget, probe_budget=self._probe_budget(deadline))[1])
            return item
        return list(self.pool.map(one, range(len(self.endpoints))))


def _forgotten(party, state):
    """A node that was sent the epoch and answers NOT_FOUND has forgotten it (a restart)."""
    if state == "not_found":
        party["state"] = "forgotten"
        party["error"] = ("GetEpochResult NOT_FOUND for an epoch the node was sent: it restarted since "
                          "(results live in memory); the private vault's EpochData decides")


def _state_line(p):
    # Named by party: the operator sees which party's node to look at (a node killed mid-epoch).
    return "%s: %s%s" % (_who(p), p["state"], (" (%s)" % p["error"]) if p["error"] else "")


def _who(p):
    return ("party %s (%s)" % (p["party_id"], p["endpoint"])) if p.get("party_id") else p["endpoint"]


def progress(epoch_id, parties):
    """One readable line: how many parties are done and what the others are doing."""
    done = [p for p in parties if p["state"] == "done"]
    others = [p for p in parties if p["state"] != "done"]
    line = "epoch %s...%s: %d of %d parties done" % (epoch_id[:4], epoch_id[-4:], len(done), len(parties))
    if others:
        line += "; waiting for " + "; ".join(
            "%s: %s%s" % (_who(p), p["state"], (" - %s" % G.short(p["error"], 120)) if p["error"] else "")
            for p in others)
    return line


def run_epoch(endpoints, context_id, epoch_id, signing_schemes=("ECDSA256K1",), start=True, wait=True,
              wait_timeout=1200.0, poll_interval=1.0, timeout=10.0, tls=None, check_mode=False,
              require_all_reachable=True, sleep=time.sleep, deadline=None, expect_started=False):
    """Start (if needed) and optionally wait for a PRSS epoch on every endpoint.

    Each party initialises its own node: the prss_init role calls this with one endpoint, the
    port-forward to its own node; several endpoints are for a controller that reaches every
    node (a test network).

    1. GetEpochResult everywhere: who is done, running, not asked yet, unreachable.
    2. Unless check_mode or start=False: NewMpcEpoch to every party that does not know the
       epoch yet, all at once (ALREADY_EXISTS: running). With require_all_reachable,
       nothing is sent while any party is unreachable (a partial start only leaves the others
       waiting). A party that refuses NewMpcEpoch is an error at once, wait or not: the
       epoch cannot complete without it. INVALID_ARGUMENT "already exists" is not a refusal:
       the node finished the epoch or restarted since (start result ``exists``).
    3. If wait: poll GetEpochResult every poll_interval until all are done, one has failed,
       or the wait ends.

    A node that was sent the epoch (in this call, or before it with ``expect_started``) and
    then answers GetEpochResult NOT_FOUND has forgotten it: the server keeps results in memory
    only, so after a restart that answer is given for an epoch that is done and for one that
    was lost. Such a party's state is ``forgotten`` and, once no party is still running, the
    run ends with wait_state ``vault``: the EpochData object in the party's private vault
    decides (present = done), which is for the caller to read.

    The wait ends at ``wait_timeout`` seconds after the start of the call or at ``deadline``
    (a Unix time, time.time(); e.g. the prss_init role's overall deadline), whichever comes
    first. Every call is capped at the time left, so the whole run overruns that end by at
    most _MIN_CALL plus a short TCP probe, however long ``timeout`` is or however a node
    behaves.

    Returns a dict with changed, done, parties, started, already_exists, exists, polls,
    elapsed, wait_state (done | vault: the nodes no longer know the epoch, read the vault |
    running: the wait_timeout window ended first | deadline: the deadline passed | failed |
    not_waited), progress (one readable line) and, when the run cannot succeed, ``error``.
    """
    check_ids(context_id=context_id, epoch_id=epoch_id)
    unknown = [s for s in signing_schemes if s not in P.SIGNING_SCHEMES]
    if unknown:
        raise G.KmsInputError("signing_schemes: unknown %s (known: %s)" % (unknown, ", ".join(P.SIGNING_SCHEMES)))
    began = time.monotonic()
    window_end = began + float(wait_timeout)
    hard_end = None if deadline is None else began + (float(deadline) - time.time())
    end = window_end if hard_end is None else min(window_end, hard_end)
    out = {"changed": False, "done": False, "started": [], "already_exists": [], "exists": [], "would_start": [],
           "polls": 0, "elapsed": 0.0, "error": "", "context_id": context_id, "epoch_id": epoch_id,
           "wait_state": "not_waited"}
    with EpochClient(endpoints, timeout, tls) as client:
        # While waiting, even the first round belongs to the wait: it must not outlive ``end``.
        first_end = end if wait and not check_mode else hard_end
        before = client.status(epoch_id, deadline=first_end)
        out["polls"] = 1
        parties = [{"party_id": b["party_id"], "endpoint": b["endpoint"], "before": b["state"],
                    "start": "skipped", "state": b["state"], "error": b["error"]} for b in before]
        out["parties"] = parties
        if expect_started:
            for party in parties:
                _forgotten(party, party["state"])
        to_start = [i for i, b in enumerate(before) if b["state"] == "not_found" and not expect_started]
        unreachable = [b for b in before if b["state"] in ("unreachable", "error")]
        out["would_start"] = [G.label(endpoints[i]) for i in to_start]
        if start and to_start:
            if check_mode:
                out["changed"] = True
            elif unreachable and require_all_reachable:
                out["error"] = ("not starting epoch %s: %d of %d parties unreachable: %s" % (
                    epoch_id, len(unreachable), len(before),
                    "; ".join("%s: %s" % (b["endpoint"], b["error"]) for b in unreachable)))
            else:
                refused = []
                for i, item in enumerate(client.start(context_id, epoch_id, signing_schemes, only=to_start,
                                                      deadline=first_end)):
                    parties[i]["start"] = item["result"]
                    if item["result"] == "started":
                        out["started"].append(G.label(endpoints[i]))
                        parties[i]["state"] = "running"
                    elif item["result"] == "already_exists":
                        out["already_exists"].append(G.label(endpoints[i]))
                        parties[i]["state"] = "running"
                    elif item["result"] == "exists":
                        out["exists"].append(G.label(endpoints[i]))
                        parties[i]["state"], parties[i]["error"] = "exists", item["error"]
                    elif item["result"] == "error":
                        parties[i]["state"], parties[i]["error"] = "start_failed", item["error"]
                        refused.append(parties[i])
                out["changed"] = bool(out["started"])
                if refused:
                    out["error"] = "NewMpcEpoch for epoch %s failed on %s" % (
                        epoch_id, "; ".join("%s: %s" % (_who(p), p["error"]) for p in refused))
                    if out["started"]:
                        out["error"] += (". Started on %s: those nodes now wait for the missing parties until "
                                         "their own epoch timeout" % ", ".join(out["started"]))
        if not out["error"] and wait and not check_mode:
            while True:
                if all(p["state"] in ("done", "forgotten") for p in parties):
                    break
                if any(p["state"] == "failed" for p in parties):
                    break
                left = end - time.monotonic()
                if left <= 0:
                    break
                sleep(max(0.0, min(float(poll_interval), left)))
                if time.monotonic() >= end:
                    break
                current = client.status(epoch_id, deadline=end)
                out["polls"] += 1
                for party, now in zip(parties, current):
                    sent = party["start"] in ("started", "already_exists", "exists") or expect_started
                    party["state"], party["error"] = now["state"], now["error"]
                    if sent:
                        _forgotten(party, now["state"])
        out["done"] = all(p["state"] == "done" for p in parties)
        failed = [p for p in parties if p["state"] == "failed"]
        if out["done"]:
            out["wait_state"] = "done"
        elif failed or out["error"]:
            out["wait_state"] = "failed"
        elif wait and not check_mode and all(p["state"] in ("done", "forgotten") for p in parties):
            out["wait_state"] = "vault"
        elif wait and not check_mode:
            # The loop only ends early at ``end``: the deadline if it comes before the window.
            out["wait_state"] = "deadline" if hard_end is not None and hard_end <= window_end else "running"
        if not out["error"] and failed:
            out["error"] = "epoch %s failed on %s" % (epoch_id, "; ".join(
                "%s: %s" % (p["endpoint"], p["error"]) for p in failed))
        elif not out["error"] and wait and not check_mode and not out["done"] and out["wait_state"] != "vault":
            if out["wait_state"] == "deadline":
                when = "when the deadline passed"
            else:
                when = "after %.0fs" % float(wait_timeout)
            out["error"] = "epoch %s not done on every party %s: %s" % (
                epoch_id, when, "; ".join(_state_line(p) for p in parties if p["state"] != "done"))
    out["done_count"] = sum(1 for p in parties if p["state"] == "done")
    out["waiting"] = [_who(p) for p in parties if p["state"] != "done"]
    out["progress"] = progress(epoch_id, parties)
    out["elapsed"] = round(time.monotonic() - began, 3)
    return out


def node_agrees(initialized, node_state):
    """(consistent, note) for the vault's verdict and the node's GetEpochResult state.

    The vault is the proof. With EpochData present, done and not_found (the server forgets
    results when it restarts) both agree; with it missing, only a node that says done
    contradicts it (a wrong private vault configuration or permissions).
    """
    if initialized:
        if node_state == "done":
            return True, ""
        if node_state == "not_found":
            return True, "the node no longer knows the epoch (restarted since: results live in memory); the vault has it"
        return False, "the vault has the epoch but the node says %s" % node_state
    if node_state == "done":
        return False, ("the node says the epoch is done but the private vault has no EpochData: check the node's "
                       "[private_vault] storage and its permissions")
    return True, ""


def cross_check(endpoint, epoch_id, timeout, tls=None):
    """GetEpochResult on one endpoint ('host:port' or a normalised endpoint dict, e.g. a
    port-forward's): {endpoint, state, error} (see EpochClient.status)."""
    if isinstance(endpoint, dict) and "host" in endpoint:
        eps = [endpoint]
    else:
        eps = G.normalize_endpoints([endpoint], field="cross_check_endpoint")
    with EpochClient(eps, timeout, tls) as client:
        item = client.status(epoch_id)[0]
    item.pop("party_id", None)
    return item
