"""The first start of a network with TLS on (tls_mode manual), against the stand-ins.

deploy_party.yml runs in two phases (docs/privatelink.md, "The first start of a network"):
phase 1 makes each party's keys and publishes its CA in its public vault; phase 2 waits a
bounded, visible time for every peer's CA, then configures and starts the node.

Party 1 deployed alone first publishes its CA, waits the (short, set here) time, and stops
naming the parties it waits for, without starting its node; the other parties then deploy
(they find party 1's CA); party 1's re-run starts its node and offers its endpoint service, and
PRSS waits for the service names; the coordinators publish them (`tools/sandbox publish`) and the
run of every party with them converges: every party is Optimal.

The other first start, all four parties deploying at the same time from nothing, is
test_all_parties_at_once in test_sandbox_e2e.py: inventories/sandbox has TLS on, so the
end-to-end deploy is that first start, and the two share one deploy.

Ports MPC_FIRST_START_PORT_BASE (default 23500; AWS base, Kubernetes APIs base+100+i, KMS nodes
base+200+i / +300+i / +400+i).
"""
import os
import re
import tempfile

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.integration.standins import Sandbox

pytestmark = pytest.mark.xdist_group("first_start")

PORT_BASE = int(os.environ.get("MPC_FIRST_START_PORT_BASE", "23500"))
PARTIES = ("party1", "party2", "party3", "party4")
EPOCH = "08" + "0" * 61 + "1"


def tls_sandbox(sandbox):
    """Start `sandbox` with a network of tls_mode manual (CAs read from the public vaults)."""
    sandbox.up()
    path = sandbox.inventory / "group_vars" / "all" / "network.yml"
    doc = yaml.safe_load(path.read_text())
    doc["mpc_network"]["tls_mode"] = "manual"
    for party in doc["mpc_network"]["parties"]:
        assert party["ca_certificate"] == {"source": "vault"}, party  # tools/make_sandbox_inventory.py
    path.write_text("---\n# tls_mode manual (tests/integration/test_first_start.py)\n" + yaml.safe_dump(doc, sort_keys=False))
    return sandbox


@pytest.fixture()
def sandbox():
    with tempfile.TemporaryDirectory(prefix="first-start-") as tmp:
        sb = Sandbox(tmp, PORT_BASE)
        try:
            yield tls_sandbox(sb)
        finally:
            sb.down()  # also after a failed start: stop whatever it started


def flat(output):
    return " ".join(output.split())  # the output callback wraps long lines


def recap(output):
    rows = {}
    for host, fields in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M):
        rows[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", fields)}
    return rows


def deploy(sandbox, *args):
    return sandbox.playbook("playbooks/deploy_party.yml", "--forks", "4", *args)


def published_identity(sandbox, party):
    """The certificate party <party> published for its peers, and who it names."""
    s3 = sandbox.client("s3")
    body = s3.get_object(Bucket="kms-ops-p%d-public" % party, Key="PUB-p%d/TlsIdentity/tls.crt" % party)["Body"].read()
    cert = x509.load_pem_x509_certificate(body)
    return body.decode(), cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def statefulsets(sandbox, party):
    return [item["metadata"]["name"] for item in sandbox_kube_get(sandbox, party, "/apis/apps/v1/namespaces/kms/statefulsets")]


def sandbox_kube_get(sandbox, party, path):
    import json
    import urllib.request

    url = "http://127.0.0.1:%d%s" % (sandbox.port_base + 100 + party, path)
    request = urllib.request.Request(url, headers={"User-Agent": "mpc-integration-tests"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read().decode()).get("items", [])


def assert_network_optimal(sandbox, names):
    rc, out, _ = sandbox.playbook("playbooks/check_network.yml", *names)
    assert rc == 0, out[-4000:]
    for party in range(1, 5):
        assert re.search(r"party%d\s.*\sOptimal\s" % party, out), out[-3000:]
    s3 = sandbox.client("s3")
    for party in range(1, 5):
        head = s3.head_object(Bucket="kms-ops-p%d-private" % party, Key="PRIV-p%d/EpochData/%s" % (party, EPOCH))
        assert head["ContentLength"] > 0


def assert_configured_with_published_cas(sandbox):
    """Each node's threshold.toml trusts, for every party, exactly the certificate that party published."""
    published = {p: published_identity(sandbox, p) for p in range(1, 5)}
    for party in range(1, 5):
        assert published[party][1] == "party%d.ops.kms.local" % party
    for party in range(1, 5):
        maps = sandbox_kube_get(sandbox, party, "/api/v1/namespaces/kms/configmaps")
        toml = next(cm["data"]["threshold.toml"] for cm in maps if "threshold.toml" in cm.get("data", {}))
        for peer in range(1, 5):
            pem = published[peer][0].strip()
            assert pem.splitlines()[1] in toml, "party %d's configuration lacks party %d's certificate" % (party, peer)
        assert "[threshold.tls.manual]" in toml or "tls.manual" in toml


def test_one_party_first(sandbox):
    # (1) party 1 alone: phase 1, then a short visible wait, then a clear stop
    rc, out, seconds = deploy(sandbox, "--limit", "party1", "-e", "privatelink_ca_wait_timeout=20",
                              "-e", "privatelink_ca_wait_delay=5")
    text = flat(out)
    assert rc != 0, out[-6000:]
    assert recap(out)["party1"]["failed"] == 1, out[-3000:]
    vault = sandbox.aws_url + "/kms-ops-p2-public/PUB-p2/TlsIdentity/tls.crt"
    # progress lines name the parties still missing and the URL checked
    assert len(re.findall(r"Party 1 is waiting for the CA certificates of party 2 at %s; party 3 at .*?; party 4 at"
                          % re.escape(vault), text)) >= 1, text[-6000:]
    assert "Party 1 published its own CA certificate; waiting for parties 2, 3, 4" in text, text[-4000:]
    assert "Re-run when they have deployed" in text
    assert seconds >= 20  # the whole bounded wait, not less
    own_pem, own_cn = published_identity(sandbox, 1)
    assert own_cn == "party1.ops.kms.local"
    assert "PRIVATE KEY" not in own_pem
    assert statefulsets(sandbox, 1) == []  # the node is not started without its peers' CAs

    # (2) the other parties deploy (PRSS needs all four: left for the next run); they find party 1's CA
    rc, out, _ = deploy(sandbox, "--limit", "party2,party3,party4", "--skip-tags", "prss_init")
    assert rc == 0, out[-8000:]
    assert "is waiting for the CA certificates" not in flat(out)

    # (3) party 1's re-run finds every CA: its node starts and it offers its endpoint service; no
    # peer has a service name in the definition yet, so it names them and PRSS waits (no failure)
    rc, out, _ = deploy(sandbox, "--limit", "party1")
    assert rc == 0, out[-8000:]
    text = flat(out)
    assert "Party 1 has no endpoint service name for party 2, party 3, party 4" in text, text[-6000:]
    assert "WAITING: PRSS is not started on party 1" in text, text[-6000:]
    assert statefulsets(sandbox, 1) != []

    # (4) the coordinators publish every party's service name; the run of every party with them
    # converges, with everybody's PRSS initialisation
    names = sandbox.publish()
    rc, out, _ = deploy(sandbox, *names)
    assert rc == 0, out[-8000:]
    assert sorted(recap(out)) == list(PARTIES)
    assert "WAITING" not in out and "has no endpoint service name" not in out, out[-8000:]
    assert published_identity(sandbox, 1)[0] == own_pem  # published once, never replaced
    assert_configured_with_published_cas(sandbox)
    assert_network_optimal(sandbox, names)
