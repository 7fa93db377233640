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

from sandbox.kms_sim.testing import SimNetwork, port_block, run_playbook, task_results

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_grpc as G
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_proto as P
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import prss

BASE = port_block()
MOTO_PORT = BASE + 2
PEER, CLIENT = BASE + 120, BASE + 130      # +121..+124 / +131..+134
EPOCH = P.DEFAULT_EPOCH_ID
CONTEXT = P.DEFAULT_CONTEXT_ID
OTHER_EPOCH = "08" + "0" * 61 + "2"


# The simulator's AWS environment and its moto process: tests/unit/conftest.py (sim_aws_env, moto).
pytestmark = pytest.mark.usefixtures("sim_aws_env")


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
    # party 2 may read its vault (NewMpcEpoch looks there first) but not write its EpochData
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": ["arn:aws:s3:::%s/*" % bucket]}]}))
    out = prss.run_epoch(endpoints(network), CONTEXT, EPOCH, timeout=2, poll_interval=0.1, wait_timeout=30)
    assert not out["done"] and out["elapsed"] < 10
    assert out["error"].startswith("epoch %s failed on 127.0.0.1:%d" % (EPOCH, CLIENT + 2))
    assert "Forbidden" in out["error"]


def hang_after_start(sim, party, seconds=60):
    """``party`` answers GetEpochResult for a known epoch only after ``seconds`` (wedged in
    the MPC): NOT_FOUND before the start is prompt, so the start still happens."""
    sim.node(party).epoch_result_hang = seconds


def test_wait_with_a_hanging_node_ends_at_wait_timeout(network):
    hang_after_start(network, 4)
    first = prss.run_epoch(endpoints(network), CONTEXT, EPOCH, timeout=10, wait=False)
    assert first["changed"] and first["error"] == ""
    until = time.monotonic() + 30  # a loaded machine: let parties 1-3 finish first
    while time.monotonic() < until and not all(
            network.node(pid).epochs().get(EPOCH, {}).get("state") == "done" for pid in (1, 2, 3)):
        time.sleep(0.1)
    started = time.monotonic()
    out = prss.run_epoch(endpoints(network), CONTEXT, EPOCH, start=False, timeout=10, poll_interval=0.2,
                         wait_timeout=2)
    elapsed = time.monotonic() - started
    # Every poll of party 4 would take the full 10 s call timeout without the cap.
    assert elapsed < 4, elapsed  # 2 s window; one poll of party 4 alone would take 10 s uncapped
    assert not out["done"] and out["wait_state"] == "running" and out["done_count"] == 3
    assert out["error"].startswith("epoch %s not done on every party after 2s: party 4 (127.0.0.1:%d): unreachable" % (
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
                                    "code": "OK", "error": "", "consistent": True, "note": ""}

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


# ----------------------------------------------------------------------------- restarts (real-server semantics)

def test_a_restarted_node_answers_exists_and_the_vault_decides(network, s3):
    out = prss.run_epoch(endpoints(network), CONTEXT, EPOCH, timeout=2, poll_interval=0.1, wait_timeout=20)
    assert out["done"], out
    network.stop([1])
    network.start([1])  # a new process: GetEpochResult forgets, the vault keeps EpochData
    mine = endpoints(network, [1])
    assert prss.EpochClient(mine, 2).status(EPOCH)[0]["state"] == "not_found"
    again = prss.run_epoch(mine, CONTEXT, EPOCH, timeout=2, poll_interval=0.1, wait_timeout=5)
    # INVALID_ARGUMENT "already exists" is not a refusal; NOT_FOUND afterwards is not "running"
    assert again["error"] == "" and again["exists"] == ["party 1 (127.0.0.1:%d)" % (CLIENT + 1)], again
    assert again["parties"][0]["start"] == "exists" and again["parties"][0]["state"] == "forgotten"
    assert again["wait_state"] == "vault" and not again["done"] and not again["changed"]
    assert again["elapsed"] < 3  # no wait until wait_timeout
    bucket = network.configs[1]["private_vault"]["storage"]["s3"]["bucket"]
    vault = validate(s3, bucket, "PRIV-p1")
    assert vault["initialized"]
    assert prss.node_agrees(vault["initialized"], "not_found") == (
        True, "the node no longer knows the epoch (restarted since: results live in memory); the vault has it")
    # a wait after the start (expect_started) sees the same: the vault decides, nothing is sent
    sent = len(network.node(1).requests)
    waited = prss.run_epoch(mine, CONTEXT, EPOCH, start=False, expect_started=True, timeout=2, wait_timeout=5)
    assert waited["wait_state"] == "vault" and waited["error"] == "" and len(network.node(1).requests) == sent


def test_an_epoch_lost_in_a_restart_is_not_done(network, s3):
    mine = endpoints(network, [1])
    started = prss.run_epoch(mine, CONTEXT, EPOCH, timeout=2, wait=False)
    assert started["started"] and started["error"] == ""
    network.stop([1])   # restarted while the others had not joined yet: the epoch is gone
    network.start([1])
    waited = prss.run_epoch(mine, CONTEXT, EPOCH, start=False, expect_started=True, timeout=2, wait_timeout=5)
    assert waited["wait_state"] == "vault" and waited["parties"][0]["state"] == "forgotten"
    bucket = network.configs[1]["private_vault"]["storage"]["s3"]["bucket"]
    vault = validate(s3, bucket, "PRIV-p1")
    assert not vault["initialized"] and vault["state"] == "missing"
    assert prss.node_agrees(vault["initialized"], "not_found") == (True, "")
    assert prss.node_agrees(False, "done")[0] is False


def test_invalid_argument_other_than_already_exists_is_a_refusal(network):
    network.node(2).new_epoch_error = (grpc.StatusCode.INVALID_ARGUMENT, "context 07... unknown")
    out = prss.run_epoch(endpoints(network, [2]), CONTEXT, EPOCH, timeout=2, wait_timeout=5)
    assert out["wait_state"] == "failed" and out["exists"] == []
    assert out["error"].startswith("NewMpcEpoch for epoch %s failed on party 2 (127.0.0.1:%d): INVALID_ARGUMENT: "
                                   "context 07... unknown" % (EPOCH, CLIENT + 2)), out["error"]


# ----------------------------------------------------------------------------- the role, own node only

KUBE = BASE + 140                          # the parties' Kubernetes API emulators: +141..+144


@pytest.fixture(scope="module")
def clusters(tmp_path_factory):
    """One Kubernetes API emulator per party; pod kms/kms-core-0 is that party's simulated node.

    Port-forwards reach the node from 127.0.1.<party>, so each node's record of client-port
    calls shows who dialled it.
    """
    from sandbox.kube_emulator import run_emulators

    folder = tmp_path_factory.mktemp("kubeconfigs")
    with run_emulators(4, base_port=KUBE, controller=False) as kube:
        kube.network = None
        kube.kubeconfigs = {}
        for pid in range(1, 5):
            emulator = kube.emulator(pid)
            emulator.create_object("v1/namespaces", None, {"metadata": {"name": "kms"}})
            emulator.source_address = "127.0.1.%d" % pid

            def target(namespace, pod, port, pid=pid):
                if (namespace, pod) != ("kms", "kms-core-0"):
                    raise KeyError('pods "%s" not found' % pod)
                if kube.network is None or pid not in kube.network.nodes or port != 50100:
                    raise LookupError("connect: connection refused")
                return "127.0.0.1", CLIENT + pid

            emulator.port_forward_target = target
            kube.kubeconfigs[pid] = kube.write_kubeconfig(pid, folder / ("p%d.yaml" % pid))
        yield kube


@pytest.fixture
def parties(clusters, network):
    clusters.network = network
    yield clusters
    clusters.network = None


ROLE = """
- hosts: all
  gather_facts: false
  module_defaults:
    group/threshold_kms.mpc_party.aws:
      endpoint_url: "{{ s3_url }}"
      region: eu-west-1
  tasks:
    - name: prss_init
      ansible.builtin.include_role:
        name: threshold_kms.mpc_party.prss_init
      vars:
        mpc_party_id: "{{ party_id }}"
        mpc_private_bucket: "{{ bucket }}"
        prss_init_kubeconfig: "{{ kubeconfig }}"
        prss_init_parties: 4
        prss_init_rpc_timeout: 10
        prss_init_timeout: "{{ wait_for }}"
        prss_init_poll_interval: 0.3
        prss_init_progress_interval: 1
"""


def run_role(parties, hosts, wait_for, check=False, extra=None):
    """The role on one host per party in ``hosts`` (in parallel, like the sandbox)."""
    import subprocess
    import sys
    import tempfile

    from sandbox.kms_sim.testing import ROOT

    inventory = {"all": {"hosts": {"p%d" % pid: {
        "party_id": pid, "kubeconfig": str(parties.kubeconfigs[pid]),
        "bucket": parties.network.configs[pid]["private_vault"]["storage"]["s3"]["bucket"],
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable} for pid in hosts}}}
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "inventory.json"), "w") as handle:
            json.dump(inventory, handle)
        with open(os.path.join(folder, "play.yml"), "w") as handle:
            handle.write(ROLE)
        cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
               os.path.join(folder, "inventory.json"), "-f", "4", os.path.join(folder, "play.yml"),
               "-e", json.dumps(dict({"s3_url": "http://127.0.0.1:%d" % MOTO_PORT, "wait_for": wait_for},
                                     **(extra or {})))]
        if check:
            cmd.append("--check")
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="json")
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    data = json.loads(proc.stdout[proc.stdout.index("{"):]) if "{" in proc.stdout else None
    return proc.returncode, data, proc.stdout + proc.stderr


def _task(data, name, host="p1"):
    """(json callback task entry, its result on ``host``) of the first role task called ``name``."""
    for play in data["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] in (name, "threshold_kms.mpc_party.prss_init : " + name) \
                    and host in task["hosts"]:
                return task["task"], task["hosts"][host]
    raise KeyError(name)


def _seconds(task):
    from datetime import datetime

    start, end = (datetime.strptime(task["duration"][k].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")
                  for k in ("start", "end"))
    return (end - start).total_seconds()


def _callers(node):
    """The source addresses of every client-port call the node received."""
    return set(call["peer"].split(":")[1] for call in node.calls())


def test_role_each_party_initialises_its_own_node_only(parties, s3):
    rc, data, out = run_role(parties, range(1, 5), 60)
    assert rc == 0, out
    for pid in range(1, 5):
        _, report = _task(data, "Report the PRSS state of this party", "p%d" % pid)
        assert report["msg"] == "party %d: PRSS epoch 0800...0001 initialised" % pid, report
        node = parties.network.node(pid)
        assert len(node.requests) == 1  # NewMpcEpoch from its own party only
        methods = set(call["method"].rsplit("/", 1)[-1] for call in node.calls())
        assert {"GetHealthStatus", "NewMpcEpoch", "GetEpochResult"} <= methods, methods
        # every client-port call came through the party's own cluster, none from elsewhere
        assert _callers(node) == {"127.0.1.%d" % pid}, node.calls()
        bucket = parties.network.configs[pid]["private_vault"]["storage"]["s3"]["bucket"]
        assert validate(s3, bucket, "PRIV-p%d" % pid)["initialized"]
    _, waited = _task(data, "Wait for the epoch result on this party's node (one progress line per window)")
    assert waited["results"][-1]["_ansible_item_label"] == "epoch 0800...0001: 1 of 1 parties done"
    _, gate = _task(data, "Check the health of this party's node and of its view of every peer")
    assert gate["overall"] == "Optimal" and gate["nodes"][0]["endpoint"] == "kms/kms-core-0:50100"
    assert gate["nodes"][0]["contexts"][0]["reachable_peers"] == [2, 3, 4]

    rc, data, out = run_role(parties, range(1, 5), 60)
    assert rc == 0 and '"changed": true' not in out.split('"stats"')[-1] and data["stats"]["p1"]["changed"] == 0, out
    assert all(len(parties.network.node(pid).requests) == 1 for pid in range(1, 5))


def test_role_check_mode_sends_nothing(parties):
    rc, data, out = run_role(parties, [2], 30, check=True)
    assert rc == 0, out
    _, start = _task(data, "Start the epoch on this party's node", "p2")
    assert start["changed"] and start["would_start"] == ["party 2 (kms/kms-core-0:50100)"]
    assert parties.network.node(2).requests == []


def test_role_waits_for_the_peers_it_cannot_reach_yet(parties):
    """A network's first deploy: the peers' service names are not published, so no epoch can
    complete. The role says whom it waits for and calls nothing on its node; the run succeeds."""
    rc, data, out = run_role(parties, [2], 30, extra={"prss_init_unconnected_peers": [3, 4]})
    assert rc == 0, out
    _, waiting = _task(data, "Report the peers this party cannot reach yet (no epoch started)", "p2")
    assert " ".join(waiting["msg"].split()).startswith(
        "WAITING: PRSS is not started on party 2 (kms/kms-core-0:50100): this party cannot reach party 3, "
        "party 4 yet"), waiting["msg"]
    _, report = _task(data, "Report the PRSS state of this party", "p2")
    assert report["msg"] == ("party 2: PRSS epoch 0800...0001 not initialised yet: waiting for the service "
                             "names of parties 3, 4"), report
    with pytest.raises(KeyError):
        _task(data, "Check the health of this party's node and of its view of every peer", "p2")
    assert parties.network.node(2).requests == [] and parties.network.node(2).calls() == []


def test_role_gate_names_the_peer_its_node_cannot_reach(parties):
    parties.network.stop([4])
    rc, data, out = run_role(parties, [1], 30)
    assert rc != 0, out
    _, gate = _task(data, "Check the health of this party's node and of its view of every peer")
    assert gate["failed"] and "unreachable peers: 4 (" in gate["msg"], gate["msg"]
    assert parties.network.node(1).requests == []


def test_role_fails_fast_when_its_node_refuses_the_start(parties):
    parties.network.node(3).new_epoch_error = (grpc.StatusCode.PERMISSION_DENIED, "caller not allowed")
    started = time.monotonic()
    rc, data, out = run_role(parties, [3], 60)
    assert rc != 0 and time.monotonic() - started < 30, out
    _, result = _task(data, "Start the epoch on this party's node", "p3")
    assert result["failed"]
    assert result["msg"].startswith("NewMpcEpoch for epoch %s failed on party 3 (kms/kms-core-0:50100): "
                                    "PERMISSION_DENIED: caller not allowed" % EPOCH), result["msg"]
    with pytest.raises(KeyError):
        _task(data, "Wait for the epoch result on this party's node (one progress line per window)", "p3")


def test_role_wait_is_bounded_by_prss_init_timeout(parties):
    # Only party 1 runs the role: its node waits for the others, and answers slowly.
    hang_after_start(parties.network, 1, seconds=60)
    rc, data, out = run_role(parties, [1], 3)
    assert rc != 0, out
    wait, waited = _task(data, "Wait for the epoch result on this party's node (one progress line per window)")
    fixed, _ = _task(data, "Fix the deadline of the epoch (now + prss_init_timeout)")
    overrun = _seconds({"duration": {"start": fixed["duration"]["end"], "end": wait["duration"]["end"]}}) - 3
    windows = [(r["elapsed"], r["polls"], r["wait_state"]) for r in waited["results"]]
    # What is left over is module start-ups (the start, and the last window begun just before the
    # deadline): measured against a task that makes one quick call, so a loaded machine does not
    # fail the test. Without the cap a single poll of the hanging node alone takes 10 s.
    reference, _ = _task(data, "Read this party's PRSS objects in its private vault")
    start, _ = _task(data, "Start the epoch on this party's node")
    assert overrun < 2 * _seconds(reference) + 3, (overrun, windows, _seconds(reference), _seconds(start))
    assert all(r["elapsed"] < 2.5 for r in waited["results"]), windows
    assert waited["results"][-1]["wait_state"] == "deadline"
    _, check = _task(data, "Check that the node finished the epoch (or no longer knows it, for the vault to decide)")
    assert check["failed"] and "prss_init_timeout (3s) reached" in check["msg"], check["msg"]
    assert "check that the other parties ran prss_init too" in check["msg"]


def test_role_fails_when_a_missing_pod_cannot_be_reached(parties):
    parties.network.stop([2])
    rc, data, out = run_role(parties, [2], 30)
    assert rc != 0, out
    _, gate = _task(data, "Check the health of this party's node and of its view of every peer", "p2")
    node = gate["nodes"][0]
    assert node["status"] == "Unhealthy" and not node["reachable"], node
    assert "connection refused" in node["error"], node["error"]
