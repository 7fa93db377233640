"""The KMS node simulator itself: configuration rules, real peer reachability, epochs in S3.

Everything runs against real servers: simulated nodes on 127.0.0.1 (this worker's port
block, see sandbox/kms_sim/testing.py) and a moto server process for S3.
"""
import os
import signal
import subprocess
import sys
import time

import grpc
import pytest

from sandbox.kms_sim import network as net
from sandbox.kms_sim import proto as P
from sandbox.kms_sim.config import ConfigError
from sandbox.kms_sim.node import SimNode
from sandbox.kms_sim.testing import SimNetwork, node_with_keys, port_block, wait_port

BASE = port_block()
MOTO_PORT = BASE + 1
PEER, CLIENT = BASE + 10, BASE + 20          # 4-party networks: +11..+14 / +21..+24
PEER_B, CLIENT_B = BASE + 30, BASE + 40      # a second network for the S3 tests
CLI_PEER, CLI_CLIENT = BASE + 180, BASE + 190


STATUS = {v: k for k, v in P.HEALTH_STATUS.items()}


def rpc(port, method, request, timeout=3.0):
    channel = grpc.insecure_channel("127.0.0.1:%d" % port)
    try:
        return P.call(channel, method, request, timeout=timeout)
    finally:
        channel.close()


def epoch_request(epoch_id=P.INIT_EPOCH_ID, context_id=P.INIT_CONTEXT_ID):
    req = P.messages.NewMpcEpochRequest(signing_schemes=[0])
    req.context_id.request_id = context_id
    req.epoch_id.request_id = epoch_id
    return req


def health(port):
    return rpc(port, P.GET_HEALTH_STATUS, P.messages.Empty())


# The simulator's AWS environment and its moto process: tests/unit/conftest.py (sim_aws_env, moto).
pytestmark = pytest.mark.usefixtures("sim_aws_env")


@pytest.fixture
def ram_network():
    network = SimNetwork(4, PEER, CLIENT, storage="ram", peer_timeout=0.5, poll_interval=0.05)
    yield network
    network.stop()


# ----------------------------------------------------------------------------- configuration

def test_config_breaking_the_server_rules_is_refused_with_the_field():
    good = net.threshold_config(net.make_network(4), 1, storage="ram")
    bad = dict(good, threshold=dict(good["threshold"], threshold=2))  # n = 4 needs t = 1
    with pytest.raises(ConfigError) as err:
        SimNode(bad)
    assert "threshold.peers" in str(err.value) and "3t + 1" in str(err.value)

    stray = dict(good, service=dict(good["service"], region="eu-west-1"))  # the guide's stray key
    with pytest.raises(ConfigError) as err:
        SimNode(stray)
    assert "service.region" in str(err.value)


def test_my_id_may_come_from_the_environment_like_the_server():
    doc = net.threshold_config(net.make_network(4), 2, storage="ram")
    del doc["threshold"]["my_id"]
    assert SimNode(doc).party_id is None   # a node without a context: accepted
    node = SimNode(doc, env={"KMS_CORE__THRESHOLD__MY_ID": "3"})
    assert node.party_id == 3 and [p.party_id for p in node.cfg.peers] == [1, 2, 4]
    doc["threshold"]["my_id"] = "${KMS_CORE__THRESHOLD__MY_ID}"   # as the chart renders it
    assert SimNode(doc, env={"KMS_CORE__THRESHOLD__MY_ID": "4"}).party_id == 4
    doc["threshold"]["my_id"] = "2"
    assert SimNode(doc).party_id == 2


def test_a_taken_port_fails_loudly(ram_network):
    ram_network.start([1])
    clash = node_with_keys(ram_network.configs[1])
    with pytest.raises(RuntimeError) as err:
        clash.start()
    assert "cannot bind" in str(err.value)


# ----------------------------------------------------------------------------- health

def test_health_status_counts_peers_that_really_answer(ram_network):
    ram_network.start()
    resp = health(CLIENT + 1)
    ctx = resp.peers_from_all_contexts[0]
    assert resp.node_type == 2  # THRESHOLD
    assert (ctx.my_party_id, ctx.nodes_reachable, ctx.threshold_required) == (1, 4, 2)
    assert STATUS[ctx.status] == "HEALTH_STATUS_OPTIMAL"
    assert [p.peer_id for p in ctx.peers] == [2, 3, 4] and all(p.reachable for p in ctx.peers)
    assert ctx.context_id.request_id == P.INIT_CONTEXT_ID

    ram_network.stop([4])
    ctx = health(CLIENT + 1).peers_from_all_contexts[0]
    assert ctx.nodes_reachable == 3 and STATUS[ctx.status] == "HEALTH_STATUS_HEALTHY"
    down = [p for p in ctx.peers if p.peer_id == 4][0]
    assert not down.reachable and "Connection refused" in down.error
    assert down.endpoint == "127.0.0.1:%d" % (PEER + 4)

    ram_network.stop([3])
    ctx = health(CLIENT + 1).peers_from_all_contexts[0]
    assert ctx.nodes_reachable == 2 and STATUS[ctx.status] == "HEALTH_STATUS_UNHEALTHY"

    ram_network.start([3, 4])  # a node is reachable again as soon as it serves
    assert health(CLIENT + 1).peers_from_all_contexts[0].nodes_reachable == 4


def test_status_rule_matches_the_server_for_13_parties():
    got = [STATUS[P.health_status(13, r)][len("HEALTH_STATUS_"):] for r in range(1, 14)]
    assert got == ["UNHEALTHY"] * 5 + ["DEGRADED"] * 3 + ["HEALTHY"] * 4 + ["OPTIMAL"]
    got = [STATUS[P.health_status(4, r)][len("HEALTH_STATUS_"):] for r in range(1, 5)]
    assert got == ["UNHEALTHY", "UNHEALTHY", "HEALTHY", "OPTIMAL"]


def test_legacy_and_health_only_modes(ram_network):
    ram_network.modes = {2: "legacy", 3: "health_only"}
    ram_network.start([2, 3])
    with pytest.raises(grpc.RpcError) as err:
        health(CLIENT + 2)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    material = rpc(CLIENT + 2, P.GET_KEY_MATERIAL, P.messages.Empty())
    assert "party 2" in material.storage_info
    with pytest.raises(grpc.RpcError) as err:
        rpc(CLIENT + 3, P.GET_KEY_MATERIAL, P.messages.Empty())
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    check = rpc(CLIENT + 3, P.HEALTH_CHECK, P.messages.HealthCheckRequest(service=P.CORE_SERVICE))
    assert check.status == 1
    peer = rpc(PEER + 3, P.HEALTH_CHECK, P.messages.HealthCheckRequest(service=P.PEER_SERVICE_NAME))
    assert peer.status == 1
    ram_network.node(3).set_serving(False)
    check = rpc(CLIENT + 3, P.HEALTH_CHECK, P.messages.HealthCheckRequest(service=P.CORE_SERVICE))
    assert check.status == 2  # NOT_SERVING


# ----------------------------------------------------------------------------- epochs

def _wait_result(port, epoch_id=P.INIT_EPOCH_ID, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return rpc(port, P.GET_EPOCH_RESULT, P.messages.RequestId(request_id=epoch_id))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _code(port, method, request):
    with pytest.raises(grpc.RpcError) as err:
        rpc(port, method, request)
    return err.value.code(), err.value.details()


def test_epoch_completes_only_when_all_parties_were_asked(moto):
    network = SimNetwork(4, PEER_B, CLIENT_B, name="simepoch", storage="s3", s3_endpoint=moto.url,
                         peer_timeout=0.5, poll_interval=0.05)
    s3 = moto.client()
    network.create_buckets(s3)
    network.start()
    result = P.messages.RequestId(request_id=P.INIT_EPOCH_ID)
    try:
        assert _code(CLIENT_B + 1, P.GET_EPOCH_RESULT, result)[0] == grpc.StatusCode.NOT_FOUND

        for pid in (1, 2, 3):
            rpc(CLIENT_B + pid, P.NEW_MPC_EPOCH, epoch_request())
        time.sleep(0.5)  # plenty of polling rounds: still waiting for party 4
        code, details = _code(CLIENT_B + 1, P.GET_EPOCH_RESULT, result)
        assert code == grpc.StatusCode.UNAVAILABLE and "[4]" in details
        # A repeat while the epoch runs: ALREADY_EXISTS.
        assert _code(CLIENT_B + 2, P.NEW_MPC_EPOCH, epoch_request())[0] == grpc.StatusCode.ALREADY_EXISTS
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket="kms-simepoch-p1-private").get("Contents", [])]
        assert not [k for k in listed if "/EpochData/" in k or "/Context/" in k]

        rpc(CLIENT_B + 4, P.NEW_MPC_EPOCH, epoch_request())
        for pid in (1, 2, 3, 4):
            assert _wait_result(CLIENT_B + pid) == P.messages.EpochResultResponse()
            keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="kms-simepoch-p%d-private" % pid)["Contents"])
            assert "PRIV-p%d/Context/%s" % (pid, P.INIT_CONTEXT_ID) in keys
            assert "PRIV-p%d/EpochData/%s" % (pid, P.INIT_EPOCH_ID) in keys

        # A repeat once the epoch is done: INVALID_ARGUMENT, "Epoch ID ... already exists".
        code, details = _code(CLIENT_B + 2, P.NEW_MPC_EPOCH, epoch_request())
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "already exists" in details
        assert [r["result"] for r in network.node(2).requests] == ["OK", "ALREADY_EXISTS", "INVALID_ARGUMENT"]

        # A restarted node has lost the result (memory) but its vault still holds EpochData.
        network.stop([3])
        network.start([3])
        assert network.node(3).epochs() == {}
        code, details = _code(CLIENT_B + 3, P.GET_EPOCH_RESULT, result)
        assert code == grpc.StatusCode.NOT_FOUND
        code, details = _code(CLIENT_B + 3, P.NEW_MPC_EPOCH, epoch_request())
        assert code == grpc.StatusCode.INVALID_ARGUMENT and P.INIT_EPOCH_ID in details
    finally:
        network.stop()


def test_bad_request_ids_are_invalid_arguments(ram_network):
    ram_network.start([1])
    with pytest.raises(grpc.RpcError) as err:
        rpc(CLIENT + 1, P.NEW_MPC_EPOCH, epoch_request(epoch_id="0x08"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "epoch_id" in err.value.details()


def test_epoch_fails_with_internal_when_the_vault_cannot_be_written(moto):
    network = SimNetwork(4, PEER_B, CLIENT_B, name="simnobucket", storage="s3", s3_endpoint=moto.url,
                         peer_timeout=0.5, poll_interval=0.05)
    s3 = moto.client()
    network.create_buckets(s3)
    network.start()
    try:
        rpc(CLIENT_B + 1, P.NEW_MPC_EPOCH, epoch_request())   # accepted: waits for the others
        # The private bucket of party 1 disappears while its epoch runs.
        bucket = "kms-simnobucket-p1-private"
        for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)
        for pid in (2, 3, 4):
            rpc(CLIENT_B + pid, P.NEW_MPC_EPOCH, epoch_request())
        with pytest.raises(grpc.RpcError) as err:
            _wait_result(CLIENT_B + 1)
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert "NoSuchBucket" in err.value.details()
        # Looking for EpochData in a vault that cannot be read is an internal error too.
        code, details = _code(CLIENT_B + 1, P.NEW_MPC_EPOCH, epoch_request())
        assert code == grpc.StatusCode.INTERNAL and "NoSuchBucket" in details
    finally:
        network.stop()


# ----------------------------------------------------------------------------- command line

def test_cli_runs_a_network_from_an_inventory_and_stops_on_sigterm(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cmd = [sys.executable, "-m", "sandbox.kms_sim", "--network",
           os.path.join(root, "inventories", "sandbox", "group_vars", "all", "network.yml"),
           "--peer-base", str(CLI_PEER), "--client-base", str(CLI_CLIENT), "--storage", "ram",
           "--write-configs", str(tmp_path)]
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(CLI_CLIENT + 4)
        ctx = health(CLI_CLIENT + 2).peers_from_all_contexts[0]
        assert ctx.my_party_id == 2 and ctx.nodes_reachable == 4
        assert sorted(os.listdir(str(tmp_path))) == ["p1.toml", "p2.toml", "p3.toml", "p4.toml"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "ready" in out.splitlines()
