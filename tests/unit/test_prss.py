"""PRSS: the vault check (prss_validate) and the epoch orchestration (prss_epoch).

Real servers only: a moto server process for S3 and four simulated nodes that write their
EpochData to it. The logic in plugins/module_utils/prss.py is called directly; the modules
run through ansible-playbook with module_defaults for the collection's aws group.
"""
import json
import os
import time

import grpc
import pytest

from tests.support.kms_sim.testing import AWS_ENV, MotoProcess, SimNetwork, port_block, run_playbook, task_results

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_grpc as G
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_proto as P
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import prss

BASE = port_block()
MOTO_PORT = BASE + 2
PEER, CLIENT = BASE + 120, BASE + 130      # +121..+124 / +131..+134
EPOCH = P.DEFAULT_EPOCH_ID
CONTEXT = P.DEFAULT_CONTEXT_ID
OTHER_EPOCH = "08" + "0" * 61 + "2"


@pytest.fixture(scope="module", autouse=True)
def aws_env():
    saved = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(AWS_ENV)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def moto():
    server = MotoProcess(MOTO_PORT).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def s3(moto):
    return moto.client()


_names = iter(range(1, 1000))


@pytest.fixture
def network(moto, s3):
    """Four fresh nodes with fresh buckets (a new network name per test)."""
    name = "prss%d" % next(_names)
    sim = SimNetwork(4, PEER, CLIENT, name=name, storage="s3", s3_endpoint=moto.url,
                     peer_timeout=0.5, poll_interval=0.05)
    sim.create_buckets(s3)
    sim.start()
    yield sim
    sim.stop()


def validate(s3, bucket, prefix, **kwargs):
    return prss.validate_vault(s3.head_object, s3.head_bucket, bucket, prefix,
                               kwargs.pop("epoch_id", EPOCH), kwargs.pop("context_id", CONTEXT), **kwargs)


def endpoints(sim, parties=None):
    return G.normalize_endpoints(sim.endpoints(parties))


# ----------------------------------------------------------------------------- prss_validate logic

def test_vault_states(s3):
    bucket = "prss-states-bucket"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    missing = validate(s3, bucket, "PRIV-p1")
    assert (missing["state"], missing["initialized"]) == ("missing", False)
    assert missing["objects"]["epoch_data"]["key"] == "PRIV-p1/EpochData/" + EPOCH
    assert missing["objects"]["epoch_data"]["bucket_exists"] is True

    s3.put_object(Bucket=bucket, Key="PRIV-p1/EpochData/" + EPOCH, Body=b"")
    s3.put_object(Bucket=bucket, Key="PRIV-p1/Context/" + CONTEXT, Body=b"ctx")
    empty = validate(s3, bucket, "PRIV-p1")
    assert empty["state"] == "empty" and empty["objects"]["epoch_data"]["size"] == 0
    assert "exists but is empty" in empty["objects"]["epoch_data"]["error"]

    s3.put_object(Bucket=bucket, Key="PRIV-p1/EpochData/" + EPOCH, Body=b"epoch")
    present = validate(s3, bucket, "PRIV-p1")
    assert (present["state"], present["initialized"]) == ("present", True)
    meta = present["objects"]["epoch_data"]
    assert meta["size"] == 5 and meta["etag"] and meta["last_modified"].startswith("20")

    # EpochData alone is not enough while the context is required.
    s3.delete_object(Bucket=bucket, Key="PRIV-p1/Context/" + CONTEXT)
    assert validate(s3, bucket, "PRIV-p1")["state"] == "missing"
    assert validate(s3, bucket, "PRIV-p1", check_context=False)["initialized"]

    # Empty prefix: the server writes keys starting with "/".
    assert validate(s3, bucket, "")["objects"]["epoch_data"]["key"] == "/EpochData/" + EPOCH

    gone = validate(s3, "prss-no-such-bucket", "PRIV-p1")
    assert gone["state"] == "missing" and gone["objects"]["epoch_data"]["bucket_exists"] is False
    assert gone["objects"]["epoch_data"]["error"] == "bucket prss-no-such-bucket does not exist"


def test_vault_access_denied(s3):
    bucket = "prss-denied-bucket"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket=bucket, Key="PRIV-p1/EpochData/" + EPOCH, Body=b"epoch")
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": ["arn:aws:s3:::%s" % bucket, "arn:aws:s3:::%s/*" % bucket]}]}))
    try:
        denied = validate(s3, bucket, "PRIV-p1")
        assert (denied["state"], denied["initialized"]) == ("access_denied", False)
        assert "denied" in denied["objects"]["epoch_data"]["error"]
    finally:
        s3.delete_bucket_policy(Bucket=bucket)


# ----------------------------------------------------------------------------- prss_epoch logic

def test_check_mode_sends_nothing(network):
    out = prss.run_epoch(endpoints(network), CONTEXT, EPOCH, timeout=2, check_mode=True)
    assert out["changed"] and not out["done"] and len(out["would_start"]) == 4
    assert all(node.requests == [] for node in network.nodes.values())
    assert [p["before"] for p in out["parties"]] == ["not_found"] * 4


def test_nothing_is_sent_while_a_party_is_unreachable(network):
    network.stop([4])
    out = prss.run_epoch(endpoints(network), CONTEXT, EPOCH, timeout=2, wait_timeout=2)
    assert not out["changed"] and out["error"].startswith("not starting epoch %s: 1 of 4 parties unreachable" % EPOCH)
    assert "connection refused" in out["error"]
    assert all(node.requests == [] for node in network.nodes.values())


def test_full_run_then_rerun_changes_nothing(network, s3):
    started = time.monotonic()
    out = prss.run_epoch(endpoints(network), CONTEXT, EPOCH, timeout=2, poll_interval=0.1, wait_timeout=20)
    assert out["error"] == "" and out["done"] and out["changed"] and out["done_count"] == 4
    assert len(out["started"]) == 4 and out["already_exists"] == []
    assert time.monotonic() - started < 10
    sent = [node.requests[0]["at"] for node in network.nodes.values()]
    assert max(sent) - min(sent) < 0.5  # "at about the same time"
    for pid in range(1, 5):
        assert validate(s3, network.configs[pid]["private_vault"]["storage"]["s3"]["bucket"], "PRIV-p%d" % pid)["initialized"]

    again = prss.run_epoch(endpoints(network), CONTEXT, EPOCH, timeout=2, poll_interval=0.1, wait_timeout=20)
    assert not again["changed"] and again["done"] and again["started"] == [] and again["polls"] == 1
    assert all(len(node.requests) == 1 for node in network.nodes.values())


def test_already_exists_counts_as_done(network):
    # Another operator started the epoch on parties 1 and 2 a moment ago.
    for pid in (1, 2):
        channel = grpc.insecure_channel("127.0.0.1:%d" % (CLIENT + pid))
        request = P.messages.NewMpcEpochRequest(signing_schemes=[0])
        request.context_id.request_id, request.epoch_id.request_id = CONTEXT, EPOCH
        G.call(channel, P.METHOD_NEW_MPC_EPOCH, request, 2)
        channel.close()
    with prss.EpochClient(endpoints(network), 2) as client:
        results = client.start(CONTEXT, EPOCH, ["ECDSA256K1"])
    assert [r["result"] for r in results] == ["already_exists", "already_exists", "started", "started"]
    out = prss.run_epoch(endpoints(network), CONTEXT, EPOCH, timeout=2, poll_interval=0.1, wait_timeout=20)
    assert out["done"] and out["error"] == "" and not out["changed"]


def test_bounded_wait_reports_the_parties_still_running(network):
    network.stop([4])
    out = prss.run_epoch(endpoints(network), CONTEXT, OTHER_EPOCH, timeout=1, poll_interval=0.2,
                         wait_timeout=1.5, require_all_reachable=False)
    assert out["changed"] and not out["done"] and len(out["started"]) == 3
    assert out["elapsed"] < 4
    assert "not done on every party after 2s" in out["error"]
    assert "running (epoch %s still running on party 1: waiting for parties [4])" % OTHER_EPOCH in out["error"]
    assert "unreachable" in out["error"]


def test_a_failed_epoch_stops_the_wait(network, s3):
    bucket = network.configs[2]["private_vault"]["storage"]["s3"]["bucket"]
    s3.delete_bucket(Bucket=bucket)  # party 2 cannot write its EpochData
    out = prss.run_epoch(endpoints(network), CONTEXT, EPOCH, timeout=2, poll_interval=0.1, wait_timeout=30)
    assert not out["done"] and out["elapsed"] < 10
    assert out["error"].startswith("epoch %s failed on 127.0.0.1:%d" % (EPOCH, CLIENT + 2))
    assert "NoSuchBucket" in out["error"]


def hang_after_start(sim, party, seconds=60):
    """``party`` answers GetEpochResult for a known epoch only after ``seconds`` (wedged in
    the MPC): NOT_FOUND before the start is prompt, so the start still happens."""
    sim.node(party).epoch_result_hang = seconds


def test_wait_with_a_hanging_node_ends_at_wait_timeout(network):
    hang_after_start(network, 4)
    started = time.monotonic()
    out = prss.run_epoch(endpoints(network), CONTEXT, EPOCH, timeout=10, poll_interval=0.2, wait_timeout=2)
    elapsed = time.monotonic() - started
    # Every poll of party 4 would take the full 10 s call timeout without the cap.
    assert elapsed < 4, elapsed  # 2 s window; one poll of party 4 alone would take 10 s uncapped
    assert out["changed"] and not out["done"] and out["wait_state"] == "running" and out["done_count"] == 3
    assert out["error"].startswith("epoch %s not done on every party after 2s: 127.0.0.1:%d: unreachable" % (
        EPOCH, CLIENT + 4))
    assert "connected to 127.0.0.1:%d but the call got no answer" % (CLIENT + 4) in out["error"]
    assert out["waiting"] == ["party 4 (127.0.0.1:%d)" % (CLIENT + 4)]
    assert out["progress"].startswith("epoch 0800...0001: 3 of 4 parties done; waiting for party 4")


def test_deadline_bounds_the_wait_in_wall_time(network):
    hang_after_start(network, 4)
    # The start (wait: false) and then a long wait window: the deadline decides.
    deadline = time.time() + 2.5
    first = prss.run_epoch(endpoints(network), CONTEXT, EPOCH, timeout=10, wait=False, deadline=deadline)
    assert first["error"] == "" and len(first["started"]) == 4 and first["wait_state"] == "not_waited"
    out = prss.run_epoch(endpoints(network), CONTEXT, EPOCH, start=False, timeout=10, poll_interval=0.3,
                         wait_timeout=1200, deadline=deadline)
    overrun = time.time() - deadline
    assert -0.3 < overrun < 1.5, overrun
    assert out["wait_state"] == "deadline" and not out["done"]
    assert "not done on every party when the deadline passed" in out["error"]
    # After the deadline a status round still answers quickly (each call gets the minimum).
    late = time.monotonic()
    prss.run_epoch(endpoints(network), CONTEXT, EPOCH, start=False, wait=False, timeout=10, deadline=deadline)
    assert time.monotonic() - late < 2


def test_a_refused_start_fails_at_once(network):
    network.node(2).new_epoch_error = (grpc.StatusCode.RESOURCE_EXHAUSTED, "rate limiter: new_epoch bucket empty")
    for wait in (False, True):
        started = time.monotonic()
        out = prss.run_epoch(endpoints(network), CONTEXT, OTHER_EPOCH if wait else EPOCH, timeout=2,
                             poll_interval=0.1, wait_timeout=30, wait=wait)
        assert time.monotonic() - started < 3, wait
        assert out["wait_state"] == "failed" and not out["done"]
        assert out["error"].startswith("NewMpcEpoch for epoch %s failed on party 2 (127.0.0.1:%d): "
                                       "RESOURCE_EXHAUSTED: rate limiter: new_epoch bucket empty"
                                       % (OTHER_EPOCH if wait else EPOCH, CLIENT + 2)), out["error"]
        assert "Started on party 1 (127.0.0.1:%d), party 3" % (CLIENT + 1) in out["error"]
        assert [p["start"] for p in out["parties"]] == ["started", "error", "started", "started"]


class RawEpochServer(object):
    """A gRPC server answering GetEpochResult OK with a body the guessed layout cannot parse
    (field 1 holding bytes that are not a RequestId): a server whose EpochResultResponse differs."""

    BODY = b"\x0a\x03\xff\xff\xff"

    def __init__(self, port):
        from concurrent import futures

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=[("grpc.so_reuseport", 0)])
        handler = grpc.unary_unary_rpc_method_handler(lambda req, ctx: self.BODY, lambda b: b, lambda b: b)
        self.server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            P.CORE_SERVICE, {"GetEpochResult": handler})])
        assert self.server.add_insecure_port("127.0.0.1:%d" % port) == port
        self.endpoint = "127.0.0.1:%d" % port

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop(None).wait(5)


def test_epoch_result_depends_only_on_the_status_code():
    with pytest.raises(Exception):
        P.messages.EpochResultResponse.FromString(RawEpochServer.BODY)  # the old client's decode failed
    with RawEpochServer(BASE + 140) as server:
        item = prss.cross_check(server.endpoint, EPOCH, 2)
    assert (item["state"], item["code"], item["error"]) == ("done", "OK", "")


def test_bad_ids_are_refused_before_any_call(network):
    with pytest.raises(G.KmsInputError) as err:
        prss.run_epoch(endpoints(network), CONTEXT, "0x08", timeout=1)
    assert str(err.value).startswith("epoch_id: must be 64 lower-case hex characters")


# ----------------------------------------------------------------------------- the modules

# one play on localhost whose AWS modules reach the moto server of the test
PLAY = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/threshold_kms.mpc_party.aws:
      endpoint_url: "{{ s3_url }}"
      region: eu-west-1
  tasks:
"""

MODULES = PLAY + """    - name: before
      threshold_kms.mpc_party.prss_validate:
        bucket: "{{ bucket }}"
        prefix: PRIV-p1
        cross_check_endpoint: "{{ endpoints[0].address }}"
    - name: epoch
      threshold_kms.mpc_party.prss_epoch:
        endpoints: "{{ endpoints }}"
        poll_interval: 0.2
        wait_timeout: 30
    - name: after
      threshold_kms.mpc_party.prss_validate:
        bucket: "{{ bucket }}"
        prefix: PRIV-p1
        cross_check_endpoint: "{{ endpoints[0].address }}"
"""


def test_modules_in_a_playbook(network, moto):
    bucket = network.configs[1]["private_vault"]["storage"]["s3"]["bucket"]
    extra = {"s3_url": moto.url, "bucket": bucket, "endpoints": network.endpoints()}

    rc, data, out = run_playbook(MODULES, extra, check=True)
    assert rc == 0, out
    before, epoch = task_results(data, "before"), task_results(data, "epoch")
    assert before["state"] == "missing" and before["cross_check"]["state"] == "not_found"
    assert before["cross_check"]["consistent"]
    assert epoch["changed"] and epoch["check_mode"] and len(epoch["would_start"]) == 4
    assert all(node.requests == [] for node in network.nodes.values())

    rc, data, out = run_playbook(MODULES, extra)
    assert rc == 0, out
    epoch, after = task_results(data, "epoch"), task_results(data, "after")
    assert epoch["changed"] and epoch["done"] and epoch["done_count"] == 4
    assert after["initialized"] and after["objects"]["epoch_data"]["size"] > 0
    assert after["cross_check"] == {"endpoint": network.endpoints()[0]["address"], "state": "done",
                                    "code": "OK", "error": "", "consistent": True}

    rc, data, out = run_playbook(MODULES, extra)
    assert rc == 0 and not task_results(data, "epoch")["changed"], out


def test_prss_validate_module_reports_denied_and_bad_input(network, moto, s3):
    bucket = network.configs[1]["private_vault"]["storage"]["s3"]["bucket"]
    s3.put_object(Bucket=bucket, Key="PRIV-p1/EpochData/" + EPOCH, Body=b"epoch")
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": ["arn:aws:s3:::%s/*" % bucket]}]}))
    playbook = MODULES.split("    - name: epoch")[0]
    rc, data, out = run_playbook(playbook, {"s3_url": moto.url, "bucket": bucket, "endpoints": network.endpoints()})
    assert rc == 0, out
    assert task_results(data, "before")["state"] == "access_denied"
    s3.delete_bucket_policy(Bucket=bucket)

    bad = playbook.replace("prefix: PRIV-p1", "prefix: PRIV-p1\n        epoch_id: '08'")
    rc, data, out = run_playbook(bad, {"s3_url": moto.url, "bucket": bucket, "endpoints": network.endpoints()})
    result = task_results(data, "before")
    assert rc != 0 and result["msg"].startswith("epoch_id: must be 64 lower-case hex characters")


# ----------------------------------------------------------------------------- the role

ROLE = PLAY + """    - name: prss_init
      ansible.builtin.include_role:
        name: threshold_kms.mpc_party.prss_init
      vars:
        mpc_party_id: 1
        mpc_private_bucket: "{{ bucket }}"
        prss_init_endpoints: "{{ endpoints }}"
        prss_init_rpc_timeout: 10
        prss_init_timeout: "{{ wait_for }}"
        prss_init_poll_interval: 0.3
        prss_init_progress_interval: 1
"""


def _task(data, name):
    """(json callback task entry, its localhost result) of the first role task called ``name``."""
    for play in data["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] in (name, "threshold_kms.mpc_party.prss_init : " + name):
                return task["task"], task["hosts"]["localhost"]
    raise KeyError(name)


def _seconds(task):
    from datetime import datetime

    start, end = (datetime.strptime(task["duration"][k].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")
                  for k in ("start", "end"))
    return (end - start).total_seconds()


def test_role_wait_is_bounded_by_prss_init_timeout_with_a_hanging_node(network, moto):
    hang_after_start(network, 4)
    bucket = network.configs[1]["private_vault"]["storage"]["s3"]["bucket"]
    rc, data, out = run_playbook(ROLE, {"s3_url": moto.url, "bucket": bucket, "endpoints": network.endpoints(),
                                        "wait_for": 3})
    assert rc != 0, out
    start, _ = _task(data, "Start the epoch on all parties at the same time")
    wait, waited = _task(data, "Wait for the epoch result on every party (one progress line per window)")
    # prss_init_timeout 3 s in wall time for start + wait, although each poll of party 4 could
    # take prss_init_rpc_timeout (10 s) and the old retries (3 / 0.3 = 10 polls) up to 100 s.
    fixed, _ = _task(data, "Fix the deadline of the epoch (now + prss_init_timeout)")
    overrun = _seconds({"duration": {"start": fixed["duration"]["end"], "end": wait["duration"]["end"]}}) - 3
    # What is left over is about one module start-up (the last window begins just before the
    # deadline); typically 1-1.5 s, with slack for a loaded machine. Without the cap a single
    # poll of party 4 alone takes 10 s.
    windows = [(r["elapsed"], r["polls"], r["wait_state"]) for r in waited["results"]]
    assert overrun < 4, (overrun, windows)
    # No window outlives prss_init_progress_interval (1 s) by a call timeout (10 s).
    assert all(r["elapsed"] < 2.5 for r in waited["results"]), windows
    labels = [r["_ansible_item_label"] for r in waited["results"]]
    assert labels[0].startswith("epoch 0800...0001: 3 of 4 parties done; waiting for party 4 (127.0.0.1:%d): "
                                "unreachable" % (CLIENT + 4)), labels
    assert waited["results"][-1]["wait_state"] == "deadline"
    _, summary = _task(data, "Summarise the wait")
    assert "3 of 4 parties done" in summary["msg"] and "(deadline after" in summary["msg"], summary["msg"]
    _, check = _task(data, "Check that every party finished the epoch")
    assert check["failed"]
    assert "not done on every party when the deadline passed: 127.0.0.1:%d: unreachable" % (CLIENT + 4) in check["msg"]
    assert "prss_init_timeout (3s) reached; parties not done: party 4 (127.0.0.1:%d)" % (CLIENT + 4) in check["msg"]


def test_role_fails_fast_when_a_party_refuses_the_start(network, moto):
    network.node(3).new_epoch_error = (grpc.StatusCode.PERMISSION_DENIED, "caller not allowed")
    bucket = network.configs[1]["private_vault"]["storage"]["s3"]["bucket"]
    started = time.monotonic()
    rc, data, out = run_playbook(ROLE, {"s3_url": moto.url, "bucket": bucket, "endpoints": network.endpoints(),
                                        "wait_for": 60})
    assert rc != 0 and time.monotonic() - started < 30, out
    _, result = _task(data, "Start the epoch on all parties at the same time")
    assert result["failed"]
    assert result["msg"].startswith("NewMpcEpoch for epoch %s failed on party 3 (127.0.0.1:%d): PERMISSION_DENIED: "
                                    "caller not allowed" % (EPOCH, CLIENT + 3)), result["msg"]
    with pytest.raises(KeyError):
        _task(data, "Wait for the epoch result on every party (one progress line per window)")


def test_role_progress_and_summary_on_success(network, moto):
    bucket = network.configs[1]["private_vault"]["storage"]["s3"]["bucket"]
    rc, data, out = run_playbook(ROLE, {"s3_url": moto.url, "bucket": bucket, "endpoints": network.endpoints(),
                                        "wait_for": 30})
    assert rc == 0, out
    _, waited = _task(data, "Wait for the epoch result on every party (one progress line per window)")
    assert waited["results"][-1]["_ansible_item_label"] == "epoch 0800...0001: 4 of 4 parties done"
    assert len(waited["results"]) < 30  # the loop stopped when done
    _, summary = _task(data, "Summarise the wait")
    assert summary["msg"].startswith("epoch 0800...0001: 4 of 4 parties done (done after ")
