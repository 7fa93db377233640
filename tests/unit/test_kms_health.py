"""kms_health against real simulated nodes and misbehaving endpoints.

A 13-party network (t = 4) of simulated nodes runs for the whole module; tests stop some
nodes and the fixture brings them back. Fault endpoints are real servers too: a socket that
accepts and never answers, a port nothing listens on, a gRPC server that is not a KMS node,
TLS servers. The logic (plugins/module_utils/kms_grpc.py) is called directly; a few key
cases run the module through ansible-playbook.
"""
import time

import pytest

from sandbox.kms_sim.faults import HangingEndpoint, NonKmsServer, self_signed_cert
from sandbox.kms_sim.testing import SimNetwork, port_block, run_playbook, task_results

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_grpc as G

BASE = port_block()
PEER, CLIENT = BASE + 50, BASE + 70        # 13 parties: peer +51..+63, client +71..+83
HANG, HANG2, HANG3, HANG4 = BASE + 90, BASE + 91, BASE + 92, BASE + 93
REFUSED = BASE + 94                        # nothing ever listens here
NONKMS, NONKMS_HEALTH = BASE + 95, BASE + 96
LEGACY_PEER, LEGACY_CLIENT = BASE + 100, BASE + 105   # 4-party networks for fallbacks / TLS
TLS_PEER, TLS_CLIENT = BASE + 110, BASE + 115

# The nodes answer GetHealthStatus after probing their peers (peer_timeout each, in parallel):
# 0.5 s was too short for 13 simulated nodes dialling 156 fresh channels on two busy cores
# (every node reported a peer unreachable, so Healthy instead of Optimal).
TIMEOUT = 2.0
PEER_TIMEOUT = 1.2


@pytest.fixture(scope="module")
def net13():
    network = SimNetwork(13, PEER, CLIENT, storage="ram", peer_timeout=PEER_TIMEOUT,
                         key_material={"fhe_key_ids": ["ab" * 32], "crs_ids": ["cd" * 32]})
    network.start()
    yield network
    network.stop()


@pytest.fixture
def full13(net13):
    """The 13-party network with every node up before and after the test."""
    net13.start()
    yield net13
    net13.start()


def eps(network, parties=None):
    return G.normalize_endpoints(network.endpoints(parties))


def by_party(nodes):
    return dict((n["party_id"], n) for n in nodes)


# ----------------------------------------------------------------------------- statuses

def test_all_thirteen_optimal(full13):
    nodes = G.check_endpoints(eps(full13), TIMEOUT)
    assert [n["status"] for n in nodes] == ["Optimal"] * 13
    node = nodes[0]
    assert node["source"] == "GetHealthStatus" and node["node_type"] == "Threshold"
    ctx = node["contexts"][0]
    assert (ctx["n"], ctx["nodes_reachable"], ctx["threshold_required"]) == (13, 13, 5)
    assert len(ctx["peers"]) == 12 and all(p["reachable"] for p in ctx["peers"])
    assert node["fhe_key_count"] == 1 and node["crs_count"] == 1 and node["preprocessing_count"] == 0
    summary = G.summarize(nodes, "Optimal")
    assert summary["overall"] == "Optimal" and not summary["failed"]
    assert summary["network"] == {"n": 13, "endpoints": 13, "reachable_from_controller": 13,
                                  "controller_status": "Optimal", "status": "Optimal"}


def test_one_of_thirteen_down(full13):
    full13.stop([13])
    nodes = by_party(G.check_endpoints(eps(full13), TIMEOUT))
    for pid in range(1, 13):
        assert nodes[pid]["status"] == "Healthy"
        assert nodes[pid]["contexts"][0]["unreachable_peers"] == [13]
    assert nodes[13]["status"] == "Unhealthy" and not nodes[13]["reachable"]
    assert nodes[13]["error_kind"] == "refused" and "connection refused" in nodes[13]["error"]
    assert nodes[13]["reported_unreachable_by"] == list(range(1, 13))

    summary = G.summarize(list(nodes.values()), "Healthy")
    assert summary["overall"] == "Unhealthy" and summary["network"]["status"] == "Healthy"
    assert summary["failed"] and [f["party_id"] for f in summary["failing"]] == [13]
    message = G.failure_message(summary, "Healthy")
    assert "party 13" in message and "connection refused" in message
    # The network as a whole tolerates one party down for maintenance, but is not Optimal.
    assert not G.summarize(list(nodes.values()), "Healthy", scope="network")["failed"]
    assert G.summarize(list(nodes.values()), "Optimal", scope="network")["failed"]
    # Checking one surviving party: it reports the loss of its peer.
    one = G.check_endpoints(eps(full13, [1]), TIMEOUT)
    assert one[0]["status"] == "Healthy"
    assert not G.summarize(one, "Healthy")["failed"] and G.summarize(one, "Optimal")["failed"]
    assert "12 of 13 nodes reachable" in G.summarize(one, "Optimal")["failing"][0]["reason"]


def test_five_of_thirteen_down_is_degraded(full13):
    full13.stop([9, 10, 11, 12, 13])
    nodes = G.check_endpoints(eps(full13, range(1, 9)), TIMEOUT)
    assert [n["status"] for n in nodes] == ["Degraded"] * 8
    assert nodes[0]["contexts"][0]["nodes_reachable"] == 8
    summary = G.summarize(nodes, "Healthy")
    assert summary["failed"] and len(summary["failing"]) == 8
    assert "8 of 13 nodes reachable" in summary["failing"][0]["reason"]
    assert "unreachable peers: 9 (" in summary["failing"][0]["reason"]
    assert not G.summarize(nodes, "Degraded")["failed"]
    everyone = G.check_endpoints(eps(full13), TIMEOUT)
    assert G.summarize(everyone, "Degraded", scope="network")["network"]["status"] == "Degraded"
    assert not G.summarize(everyone, "Degraded", scope="network")["failed"]


def test_eight_of_thirteen_down_is_unhealthy(full13):
    full13.stop(range(6, 14))
    nodes = G.check_endpoints(eps(full13, range(1, 6)), TIMEOUT)
    assert [n["status"] for n in nodes] == ["Unhealthy"] * 5
    assert G.summarize(nodes, "Degraded")["failed"]
    assert not G.summarize(nodes, "none")["failed"]


# ----------------------------------------------------------------------------- faults

def assert_verdict(nodes, cause):
    """A faulty endpoint fails the check at fail_below Degraded and Healthy, with ``cause`` in
    the failure message, and passes with fail_below none."""
    for fail_below in ("Degraded", "Healthy"):
        summary = G.summarize(nodes, fail_below)
        assert summary["failed"] and len(summary["failing"]) == len(nodes), fail_below
        message = G.failure_message(summary, fail_below)
        assert message.startswith("%d of %d KMS nodes below %s (overall Unhealthy):" % (
            len(nodes), len(nodes), fail_below)), message
        assert cause in message, message
    summary = G.summarize(nodes, "none")
    assert not summary["failed"] and summary["failing"] == [] and summary["overall"] == "Unhealthy"


def test_endpoint_that_accepts_tcp_but_never_answers():
    with HangingEndpoint(HANG) as hang:
        started = time.monotonic()
        node = G.check_endpoints(G.normalize_endpoints([hang.endpoint]), TIMEOUT)[0]
        elapsed = time.monotonic() - started
    assert node["status"] == "Unhealthy" and not node["reachable"]
    assert node["error_kind"] == "no_http2"
    assert "accepts TCP connections but gave no gRPC" in node["error"]
    assert TIMEOUT <= elapsed < TIMEOUT + 0.8
    assert_verdict([node], "- %s: Unhealthy - %s accepts TCP connections but gave no gRPC (HTTP/2) answer"
                   % (hang.endpoint, hang.endpoint))


def test_port_that_refuses():
    node = G.check_endpoints(G.normalize_endpoints(["127.0.0.1:%d" % REFUSED]), TIMEOUT)[0]
    assert node["error_kind"] == "refused" and node["status"] == "Unhealthy"
    assert node["error"] == "connection refused by 127.0.0.1:%d (nothing listens on that port)" % REFUSED
    assert_verdict([node], "Unhealthy - connection refused by 127.0.0.1:%d" % REFUSED)


def test_grpc_server_that_is_not_a_kms_node():
    with NonKmsServer(NONKMS), NonKmsServer(NONKMS_HEALTH, health=True):
        nodes = G.check_endpoints(G.normalize_endpoints(
            ["127.0.0.1:%d" % NONKMS, "127.0.0.1:%d" % NONKMS_HEALTH]), TIMEOUT)
    for node in nodes:
        assert node["reachable"] and not node["kms"] and node["status"] == "Unhealthy"
        assert node["error_kind"] == "not_kms" and "is not a KMS node" in node["error"]
    assert "grpc.health.v1 is not served" in nodes[0]["error"]
    assert "does not know the KMS service" in nodes[1]["error"]
    assert_verdict(nodes, "- 127.0.0.1:%d: Unhealthy - 127.0.0.1:%d answers gRPC but is not a KMS node"
                   % (NONKMS, NONKMS))
    assert "- 127.0.0.1:%d: Unhealthy - 127.0.0.1:%d answers gRPC but is not a KMS node" % (
        NONKMS_HEALTH, NONKMS_HEALTH) in G.failure_message(G.summarize(nodes, "Healthy"), "Healthy")


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory):
    key, cert = self_signed_cert("localhost")
    other_key, other_cert = self_signed_cert("localhost")
    folder = tmp_path_factory.mktemp("tls")
    (folder / "ca.pem").write_bytes(cert)
    (folder / "other-ca.pem").write_bytes(other_cert)
    return {"key": key, "cert": cert, "ca": str(folder / "ca.pem"), "other_ca": str(folder / "other-ca.pem")}


@pytest.fixture(scope="module")
def tls_network(tls_material):
    """Four nodes whose client ports speak TLS only."""
    network = SimNetwork(4, TLS_PEER, TLS_CLIENT, storage="ram", peer_timeout=PEER_TIMEOUT,
                         client_tls=(tls_material["key"], tls_material["cert"]))
    network.start()
    yield network
    network.stop()


def test_tls_mismatch_plaintext_client_against_tls_server(tls_network):
    node = G.check_endpoints(eps(tls_network, [1]), TIMEOUT)[0]
    assert node["status"] == "Unhealthy" and node["error_kind"] == "tls_required"
    assert "probably requires TLS" in node["error"]
    assert_verdict([node], "closed the connection during the HTTP/2 handshake: it probably requires TLS")


def test_tls_mismatch_tls_client_against_plaintext_server(full13, tls_material):
    tls = G.TlsSettings(True, tls_material["ca"])
    node = G.check_endpoints(eps(full13, [1]), TIMEOUT, tls)[0]
    assert node["status"] == "Unhealthy" and node["error_kind"] == "tls_not_spoken"
    assert "does not speak TLS" in node["error"]
    assert_verdict([node], "failed: the endpoint does not speak TLS (plaintext gRPC?); use tls: false for it")


def test_tls_with_the_right_and_the_wrong_ca(tls_network, tls_material):
    good = G.TlsSettings(True, tls_material["ca"], server_name="localhost")
    nodes = G.check_endpoints(eps(tls_network), TIMEOUT, good)
    assert [n["status"] for n in nodes] == ["Optimal"] * 4
    wrong = G.TlsSettings(True, tls_material["other_ca"], server_name="localhost")
    node = G.check_endpoints(eps(tls_network, [1]), TIMEOUT, wrong)[0]
    assert node["error_kind"] == "tls_verify" and "not trusted" in node["error"]


def test_fallbacks_for_older_nodes():
    network = SimNetwork(4, LEGACY_PEER, LEGACY_CLIENT, storage="ram", peer_timeout=PEER_TIMEOUT,
                         modes={2: "legacy", 3: "health_only"})
    network.start()
    try:
        nodes = by_party(G.check_endpoints(G.normalize_endpoints(network.endpoints()), TIMEOUT))
        assert nodes[1]["source"] == "GetHealthStatus" and nodes[1]["status"] == "Optimal"
        assert nodes[2]["source"] == "GetKeyMaterialAvailability" and nodes[2]["status"] == "Healthy"
        assert nodes[2]["serving"] == "SERVING" and "peer connectivity unknown" in nodes[2]["warnings"][0]
        assert nodes[3]["source"] == "grpc.health.v1" and nodes[3]["status"] == "Healthy"
        # A legacy node is never proven Optimal.
        assert G.summarize(list(nodes.values()), "Optimal")["failed"]
        assert not G.summarize(list(nodes.values()), "Healthy")["failed"]
        network.node(3).set_serving(False)
        node = G.check_endpoints(G.normalize_endpoints(network.endpoints([3])), TIMEOUT)[0]
        assert node["status"] == "Unhealthy" and "NOT_SERVING" in node["error"]
    finally:
        network.stop()


def test_thirteen_endpoints_with_four_hanging_take_about_one_timeout(full13):
    full13.stop([10, 11, 12, 13])
    hanging = [HangingEndpoint(p).start() for p in (HANG, HANG2, HANG3, HANG4)]
    try:
        endpoints = full13.endpoints(range(1, 10)) + [
            {"party_id": 10 + i, "address": h.endpoint} for i, h in enumerate(hanging)]
        started = time.monotonic()
        nodes = G.check_endpoints(G.normalize_endpoints(endpoints), TIMEOUT)
        elapsed = time.monotonic() - started
    finally:
        for h in hanging:
            h.stop()
    assert [n["error_kind"] for n in nodes[9:]] == ["no_http2"] * 4
    assert [n["status"] for n in nodes[:9]] == ["Healthy"] * 9
    # One timeout plus a short TCP probe, not four timeouts.
    assert elapsed < TIMEOUT + 0.9, elapsed


# ----------------------------------------------------------------------------- input

@pytest.mark.parametrize("item, message", [
    ("127.0.0.1", "endpoints[0]: must be 'host:port' (port required)"),
    ("127.0.0.1:70000", "endpoints[0]: port must be 1-65535"),
    ("grpc://h:1", "endpoints[0]: scheme must be http:// or https://"),
    ({"party_id": "x", "address": "h:1"}, "endpoints[0].party_id: must be an integer"),
    ({"party_id": 1}, "endpoints[0]: needs 'address'"),
    ({"address": "h:1", "port_number": 2}, "endpoints[0]: unknown keys port_number"),
])
def test_bad_endpoints_name_the_field(item, message):
    with pytest.raises(G.KmsInputError) as err:
        G.normalize_endpoints([item])
    assert str(err.value).startswith(message)


def test_duplicates_and_forms():
    with pytest.raises(G.KmsInputError) as err:
        G.normalize_endpoints(["h:1", {"address": "http://h:1/"}])
    assert "endpoints[1]: address h:1 is listed twice" in str(err.value)
    forms = G.normalize_endpoints(["http://a:50100", {"host": "b", "port": 2, "party_id": 2}])
    assert [(e["address"], e["party_id"]) for e in forms] == [("a:50100", None), ("b:2", 2)]
    with pytest.raises(G.KmsInputError) as err:
        G.TlsSettings(False, ca_cert="/x.pem")
    assert str(err.value) == "ca_cert: only valid with tls: true"


# ----------------------------------------------------------------------------- the module

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: health
      threshold_kms.mpc_party.kms_health:
        endpoints: "{{ endpoints }}"
        timeout: 1
        fail_below: "{{ fail_below }}"
      ignore_errors: true
"""


def test_module_fails_below_fail_below_and_names_the_party(full13):
    full13.stop([13])
    rc, data, out = run_playbook(PLAYBOOK, {"endpoints": full13.endpoints(), "fail_below": "Healthy"})
    result = task_results(data, "health")
    assert result["failed"], out
    assert result["msg"].startswith("1 of 13 KMS nodes below Healthy (overall Unhealthy):")
    assert "- party 13 (127.0.0.1:%d): Unhealthy - connection refused" % (CLIENT + 13) in result["msg"]
    assert result["network"]["status"] == "Healthy" and result["counts"]["Healthy"] == 12
    assert not result["changed"]


def test_module_passes_and_runs_in_check_mode(full13):
    rc, data, out = run_playbook(PLAYBOOK, {"endpoints": full13.endpoints(range(1, 5)), "fail_below": "Optimal"},
                                 check=True)
    result = task_results(data, "health")
    assert rc == 0 and not result.get("failed"), out
    assert result["overall"] == "Optimal" and len(result["nodes"]) == 4
    assert result["nodes"][0]["contexts"][0]["n"] == 13


@pytest.mark.parametrize("fail_below, fails", [("Degraded", True), ("Healthy", True), ("none", False)])
def test_module_verdict_for_an_endpoint_that_never_answers(fail_below, fails):
    with HangingEndpoint(HANG) as hang:
        rc, data, out = run_playbook(PLAYBOOK, {"endpoints": [{"party_id": 7, "address": hang.endpoint}],
                                                "fail_below": fail_below})
    result = task_results(data, "health")
    node = result["nodes"][0]
    assert node["status"] == "Unhealthy" and node["error_kind"] == "no_http2", out
    assert result["overall"] == "Unhealthy" and not result["changed"]
    if fails:
        assert result["failed"], out
        assert result["msg"].startswith("1 of 1 KMS nodes below %s (overall Unhealthy):" % fail_below)
        assert ("- party 7 (%s): Unhealthy - %s accepts TCP connections but gave no gRPC (HTTP/2) answer within 1.0s"
                % (hang.endpoint, hang.endpoint)) in result["msg"]
    else:
        assert not result.get("failed") and "msg" not in result, out
        assert result["failing"] == []


def test_module_rejects_bad_input_before_any_call():
    rc, data, out = run_playbook(PLAYBOOK, {"endpoints": ["127.0.0.1"], "fail_below": "Healthy"})
    result = task_results(data, "health")
    assert result["failed"] and result["msg"].startswith("endpoints[0]: must be 'host:port'")
    assert "nodes" not in result


# ----------------------------------------------------------------------------- own node, via port-forward

KUBE = BASE + 125                          # party 1's Kubernetes API emulator on +126

POD_PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: health
      threshold_kms.mpc_party.kms_health:
        kubeconfig: "{{ kubeconfig }}"
        namespace: kms
        pod: "{{ pod }}"
        party_id: 1
        timeout: 2
        fail_below: "{{ fail_below }}"
      ignore_errors: true
"""


@pytest.fixture(scope="module")
def cluster1(net13, tmp_path_factory):
    """Party 1's cluster: pod kms/kms-core-0 port 50100 is party 1's node, reached from 127.0.1.1."""
    from sandbox.kube_emulator import run_emulators

    with run_emulators(1, base_port=KUBE, controller=False) as kube:
        emulator = kube.emulator(1)
        emulator.create_object("v1/namespaces", None, {"metadata": {"name": "kms"}})
        emulator.source_address = "127.0.1.1"

        def target(namespace, pod, port):
            if (namespace, pod) != ("kms", "kms-core-0"):
                raise KeyError('pods "%s" not found' % pod)
            return "127.0.0.1", CLIENT + 1

        emulator.port_forward_target = target
        kube.path = kube.write_kubeconfig(1, tmp_path_factory.mktemp("kube") / "p1.yaml")
        yield kube


def test_own_node_through_port_forward_judges_from_its_peer_list(full13, cluster1):
    since = time.time()
    rc, data, out = run_playbook(POD_PLAYBOOK, {"kubeconfig": str(cluster1.path), "pod": "kms-core-0",
                                                "fail_below": "Optimal"})
    result = task_results(data, "health")
    assert rc == 0 and not result.get("failed"), out
    node = result["nodes"][0]
    assert (node["party_id"], node["endpoint"], node["status"]) == (1, "kms/kms-core-0:50100", "Optimal")
    assert node["via"].startswith("pod kms/kms-core-0 port 50100 (port-forward via http://127.0.0.1:%d" % (KUBE + 1))
    assert node["contexts"][0]["reachable_peers"] == list(range(2, 14))
    assert result["network"]["n"] == 13 and result["network"]["status"] == "Optimal"

    full13.stop([13])
    rc, data, out = run_playbook(POD_PLAYBOOK, {"kubeconfig": str(cluster1.path), "pod": "kms-core-0",
                                                "fail_below": "Optimal"})
    result = task_results(data, "health")
    assert result["failed"], out
    assert result["msg"].startswith("1 of 1 KMS nodes below Optimal (overall Healthy):\n- party 1 "
                                    "(kms/kms-core-0:50100): Healthy - 12 of 13 nodes reachable"), result["msg"]
    assert "unreachable peers: 13 (" in result["msg"]
    # every call reached party 1's node through its own cluster's port-forward
    recent = [call for call in full13.node(1).calls() if call["at"] >= since]
    assert recent and {call["peer"].split(":")[1] for call in recent} == {"127.0.1.1"}, recent


def test_own_node_port_forward_to_a_missing_pod_is_unhealthy_with_the_api_answer(cluster1):
    rc, data, out = run_playbook(POD_PLAYBOOK, {"kubeconfig": str(cluster1.path), "pod": "kms-core-9",
                                                "fail_below": "Healthy"})
    result = task_results(data, "health")
    node = result["nodes"][0]
    assert result["failed"] and node["status"] == "Unhealthy" and node["error_kind"] == "port_forward", out
    assert node["error"] == ('cannot port-forward to pod kms/kms-core-9 port 50100 (port-forward via '
                             'http://127.0.0.1:%d): 404 Not Found: pods "kms-core-9" not found' % (KUBE + 1)), node


def test_own_node_options_are_checked_before_any_call(cluster1):
    rc, data, out = run_playbook(POD_PLAYBOOK, {"kubeconfig": str(cluster1.path), "pod": "Kms_Core",
                                                "fail_below": "Healthy"})
    result = task_results(data, "health")
    assert result["failed"] and result["msg"].startswith("pod: must be a pod name such as kms-core-0"), out
    assert "nodes" not in result
