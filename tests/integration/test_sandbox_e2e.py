"""The sandbox network end to end, as `make sandbox` runs it and as AWX runs a job.

1. `tools/sandbox up` on ports of this test (29000+; the KMS nodes too: never a `make sandbox`'s).
2. The deploy of all 4 parties through ansible-runner with a private data directory, the way
   AWX runs a job template (project, inventory, env/envvars). inventories/sandbox has TLS on
   (tls_mode manual), so this is also the first start of a network whose parties all deploy at
   the same time (test_all_parties_at_once): every party publishes its CA before anyone looks,
   nobody waits, and each node trusts exactly its peers' published certificates. As on a real
   network, the inventory has no endpoint service names yet: each party offers its own, names the
   peers it cannot connect to yet and leaves PRSS waiting (the run succeeds).
   Then the coordinators (`tools/sandbox publish`) publish the names the parties offer, and the
   parties' next run (-e @network-overrides.yml) connects to every peer and initialises PRSS.
3. One more deploy with the names: every party reports changed=0.
4. check_network.yml: the per-party table (each line from that party's own node), every party
   Optimal, PRSS present in each vault. Every client-port call any node received came from its
   own party's cluster (the port-forward's source address 127.0.1.<party>): no controller
   dialled a node, and no party another party's node.
5. From the AWS stand-in, with each party's own credentials: each party's resources are in its
   own account and region, each provider's endpoint service lists its consumers' regions, and
   each endpoint to a peer in another region names that region.
6. `tools/sandbox down` stops every process it started.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import urllib.request

import boto3
import botocore.session
import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
INVENTORY = os.path.join(ROOT, "inventories", "sandbox")
EPOCH = "08" + "0" * 61 + "1"
# Both tests judge one deploy (the module's fixtures): keep them on one xdist worker.
pytestmark = pytest.mark.xdist_group("sandbox_e2e")


def recap(output):
    """{host: {ok: .., changed: .., failed: ..}} from a PLAY RECAP."""
    rows = {}
    for host, fields in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M):
        rows[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", fields)}
    return rows


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    state = tmp_path_factory.mktemp("sandbox")
    env = dict(os.environ, SANDBOX_DIR=str(state), SANDBOX_AWS_PORT="29000", SANDBOX_KUBE_BASE_PORT="29100",
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    env.pop("SANDBOX_AWS_SCHEME", None)
    # inventories/sandbox with the public vault URLs on this test's AWS port (peers read CAs there)
    # and the KMS nodes on this test's ports (29200+i peer, 29300+i client, 29400+i metrics): the
    # inventory's own (12000+i, 12100+i, 9646+i) belong to a `make sandbox` running on the machine.
    inventory = state / "inventory"
    shutil.copytree(INVENTORY, inventory)
    network_yml = inventory / "group_vars" / "all" / "network.yml"
    doc = yaml.safe_load(network_yml.read_text())
    for party in doc["mpc_network"]["parties"]:
        i = party["party_id"]
        party.update(peer_port=29200 + i, client_port=29300 + i, metrics_port=29400 + i,
                     public_vault_url=re.sub(r"https://127\.0\.0\.1:\d+/", "https://127.0.0.1:%s/" % env["SANDBOX_AWS_PORT"],
                                             party["public_vault_url"]))
    network_yml.write_text("---\n# inventories/sandbox on this test's ports (tests/integration/test_sandbox_e2e.py)\n"
                           + yaml.safe_dump(doc, sort_keys=False))
    up = subprocess.run([sys.executable, "tools/sandbox", "up", "--inventory", str(inventory)],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    for line in (state / "env").read_text().splitlines():
        if line.startswith("export "):
            key, value = line[len("export "):].split("=", 1)
            env[key] = value
        elif line.startswith("unset "):
            for key in line.split()[1:]:
                env.pop(key, None)
    yield env, state, str(inventory)
    down = subprocess.run([sys.executable, "tools/sandbox", "down"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    pids = [p for p in (state / "pids").glob("*.pid")]
    for pid_file in pids:
        pid = int(pid_file.read_text())
        assert not os.path.exists("/proc/%d" % pid) or "Z" in open("/proc/%d/stat" % pid).read().split(")")[-1][:3], \
            "tools/sandbox down left %s running" % pid_file.name


@pytest.fixture(scope="module")
def deployed(sandbox, tmp_path_factory):
    """Steps 2 to 4, run once for the tests of this module: the ansible-runner deploy, the
    ansible-playbook re-run and check_network.yml (their results; the tests judge them)."""
    env, state, inventory = sandbox
    import ansible_runner

    # --- 2. the AWX way: ansible-runner with a private data directory --------------------
    pdd = tmp_path_factory.mktemp("runner")
    (pdd / "env").mkdir(parents=True)
    os.symlink(ROOT, pdd / "project")
    shutil.copytree(inventory, pdd / "inventory")
    passed = {k: env[k] for k in env if k.startswith(("SANDBOX_", "AWS_", "ANSIBLE_CONFIG"))}
    (pdd / "env" / "envvars").write_text(json.dumps(passed))
    result = ansible_runner.run(private_data_dir=str(pdd), playbook="playbooks/deploy_party.yml",
                                quiet=True, timeout=1800,
                                envvars={"PATH": env["PATH"]})
    first = {"status": result.status, "rc": result.rc, "stats": result.stats, "stdout": result.stdout.read()}
    # --- the coordinators publish the service names; the parties connect -------------------
    publish = subprocess.run([sys.executable, "tools/sandbox", "publish", "--inventory", inventory],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    names = ["-e", "@%s" % (state / "network-overrides.yml")]
    connect = subprocess.run([os.path.join(BIN, "ansible-playbook"), "playbooks/deploy_party.yml", "-i", inventory]
                             + names, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    # --- 3. one more deploy -------------------------------------------------------------------
    again = subprocess.run([os.path.join(BIN, "ansible-playbook"), "playbooks/deploy_party.yml", "-i", inventory]
                           + names, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    # --- 4. check_network.yml ---------------------------------------------------------------
    check = subprocess.run([os.path.join(BIN, "ansible-playbook"), "playbooks/check_network.yml", "-i", inventory]
                           + names, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return {"first": first, "publish": publish, "connect": connect, "again": again, "check": check}


def assert_first_deploy_and_rerun(deployed):
    first, again = deployed["first"], deployed["again"]
    assert first["status"] == "successful" and first["rc"] == 0, first["stdout"][-6000:]
    stats = first["stats"]
    assert sorted(stats["ok"]) == ["party1", "party2", "party3", "party4"]
    assert not stats["failures"] and not stats["dark"], stats
    assert all(stats["changed"].get(h, 0) > 0 for h in stats["ok"]), "the first deploy created nothing?"
    # no service names in the definition yet: each party says whom it waits for, and starts no epoch
    text = " ".join(first["stdout"].split())
    for party in range(1, 5):
        others = ", ".join("party %d" % p for p in range(1, 5) if p != party)
        assert "Party %d has no endpoint service name for %s in the network definition" % (party, others) in text, \
            text[-6000:]
        assert "WAITING: PRSS is not started on party %d (" % party in text, text[-6000:]
    assert "NewMpcEpoch" not in text
    # each cluster was created with its access settings: no EKS update (a few minutes each on AWS,
    # the node group waiting) - the wait for one prints "EKS update <type> of cluster <name> (<id>): ..."
    assert not re.search(r"EKS update \w+ of cluster \S+ \(", text), re.findall(r"EKS update \w+ of cluster[^:]*", text)
    # the coordinators found the service every party offers, in the party's own region
    publish = deployed["publish"]
    assert publish.returncode == 0, publish.stdout + publish.stderr
    offered = dict(re.findall(r"^party (\d): (\S+)$", publish.stdout, re.M))
    assert sorted(offered) == ["1", "2", "3", "4"], publish.stdout
    assert all(name.startswith("com.amazonaws.vpce.") for name in offered.values()), publish.stdout
    connect = deployed["connect"]
    assert connect.returncode == 0, connect.stdout[-6000:] + connect.stderr[-2000:]
    assert "WAITING" not in connect.stdout and "has no endpoint service name" not in connect.stdout
    # the next deploy: nothing to change
    assert again.returncode == 0, again.stdout[-6000:] + again.stderr[-2000:]
    rows = recap(again.stdout)
    assert sorted(rows) == ["party1", "party2", "party3", "party4"], again.stdout[-2000:]
    assert {h: r["changed"] for h, r in rows.items()} == {h: 0 for h in rows}, again.stdout[-6000:]


def test_sandbox_network_end_to_end(sandbox, deployed):
    env, state, inventory = sandbox
    assert_first_deploy_and_rerun(deployed)

    # --- 4. the network is healthy and PRSS is in every private vault ---------------------
    check = deployed["check"]
    assert check.returncode == 0, check.stdout[-4000:]
    for party in range(1, 5):
        assert re.search(r"party%d\s+Optimal\s+4/4\s+-" % party, check.stdout), check.stdout[-3000:]
    check_own_node_calls_only(state)
    network = yaml.safe_load(open(os.path.join(inventory, "group_vars", "all", "network.yml")))["mpc_network"]
    parties = {p["party_id"]: p for p in network["parties"]}
    assert len({p["region"] for p in parties.values()}) >= 3, "the sandbox spans fewer than three regions"
    for party in range(1, 5):
        s3 = party_client(env, party, "s3", parties[party]["region"])
        head = s3.head_object(Bucket="kms-sandbox-p%d-private" % party, Key="PRIV-p%d/EpochData/%s" % (party, EPOCH))
        assert head["ContentLength"] > 0

    # --- 5. own accounts and regions; cross-region PrivateLink ----------------------------
    check_accounts_and_privatelink(env, parties)


def test_all_parties_at_once(sandbox, deployed):
    """The first start of a TLS network whose four parties deploy at the same time from nothing."""
    env, state, inventory = sandbox
    assert_first_deploy_and_rerun(deployed)
    # every party published its CA before anyone looked: nobody had to wait
    assert "is waiting for the CA certificates" not in " ".join(deployed["first"]["stdout"].split())
    network = yaml.safe_load(open(os.path.join(inventory, "group_vars", "all", "network.yml")))["mpc_network"]
    assert network["tls_mode"] == "manual"
    parties = {p["party_id"]: p for p in network["parties"]}
    published = {}
    for pid, party in parties.items():
        s3 = party_client(env, pid, "s3", party["region"])
        body = s3.get_object(Bucket="kms-sandbox-p%d-public" % pid, Key="PUB-p%d/TlsIdentity/tls.crt" % pid)["Body"].read()
        cert = x509.load_pem_x509_certificate(body)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "party%d.sandbox.kms.local" % pid
        assert b"PRIVATE KEY" not in body
        published[pid] = body.decode()
    # each node's threshold.toml trusts, for every party, exactly the certificate that party published
    for pid in parties:
        url = "http://127.0.0.1:%d/api/v1/namespaces/kms/configmaps" % (int(env["SANDBOX_KUBE_BASE_PORT"]) + pid)
        request = urllib.request.Request(url, headers={"User-Agent": "mpc-integration-tests"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            maps = json.loads(resp.read().decode()).get("items", [])
        toml = next(cm["data"]["threshold.toml"] for cm in maps if "threshold.toml" in cm.get("data", {}))
        assert "tls.manual" in toml
        for peer in parties:
            assert published[peer].strip().splitlines()[1] in toml, (
                "party %d's configuration lacks party %d's certificate" % (pid, peer))
    # every node reached Optimal and its PRSS is in its private vault
    check = deployed["check"]
    assert check.returncode == 0, check.stdout[-4000:]
    for pid, party in parties.items():
        assert re.search(r"party%d\s.*\sOptimal\s" % pid, check.stdout), check.stdout[-3000:]
        s3 = party_client(env, pid, "s3", party["region"])
        assert s3.head_object(Bucket="kms-sandbox-p%d-private" % pid, Key="PRIV-p%d/EpochData/%s" % (pid, EPOCH))["ContentLength"] > 0


def check_own_node_calls_only(state):
    """Every client-port call of every node (PRSS, health) came from its own party's cluster."""
    time.sleep(3)  # the kube process rewrites state/kube.json every 2 s
    kube = json.loads((state / "state" / "kube.json").read_text())
    for entry in kube["parties"]:
        party = entry["party"]
        calls = [call for node in entry["nodes"] for call in node.get("calls", [])]
        methods = {call["method"].rsplit("/", 1)[-1] for call in calls}
        assert {"GetHealthStatus", "NewMpcEpoch", "GetEpochResult"} <= methods, (party, methods)
        sources = {call["peer"].split(":")[1] for call in calls}
        assert sources == {"127.0.1.%d" % party}, (party, sorted(sources))


def party_client(env, party, service, region):
    """A client with party ``party``'s own credentials (profile party<N> that tools/sandbox wrote)."""
    core = botocore.session.Session()
    core.set_config_variable("credentials_file", env["AWS_SHARED_CREDENTIALS_FILE"])
    core.set_config_variable("config_file", env["AWS_CONFIG_FILE"])
    session = boto3.session.Session(botocore_session=core, profile_name="party%d" % party)
    return session.client(service, endpoint_url=env["SANDBOX_AWS_ENDPOINT"], region_name=region,
                          verify=env.get("AWS_CA_BUNDLE"))


def check_accounts_and_privatelink(env, parties):
    services = {}
    for pid, party in parties.items():
        region, account = party["region"], party["aws_account_id"]
        assert party_client(env, pid, "sts", region).get_caller_identity()["Account"] == account
        # its own resources, in its own account and region
        eks = party_client(env, pid, "eks", region)
        assert "kms-sandbox-p%d" % pid in eks.list_clusters()["clusters"], (pid, account, region)
        assert eks.describe_cluster(name="kms-sandbox-p%d" % pid)["cluster"]["arn"].split(":")[3:5] == [region, account]
        buckets = {b["Name"] for b in party_client(env, pid, "s3", region).list_buckets()["Buckets"]}
        assert {"kms-sandbox-p%d-private" % pid, "kms-sandbox-p%d-public" % pid} <= buckets
        assert not {b for b in buckets if not b.startswith("kms-sandbox-p%d-" % pid)}, (pid, buckets)
        ec2 = party_client(env, pid, "ec2", region)
        configs = ec2.describe_vpc_endpoint_service_configurations()["ServiceConfigurations"]
        assert len(configs) == 1, (pid, [c["ServiceName"] for c in configs])
        services[pid] = configs[0]
        assert configs[0]["ServiceName"].startswith("com.amazonaws.vpce.%s.vpce-svc-" % region)
        # the provider lists every consumer's region that differs from its own
        consumer_regions = {p["region"] for q, p in parties.items() if q != pid} - {region}
        assert {r["Region"] for r in configs[0].get("SupportedRegions") or []} - {region} == consumer_regions, pid
        permissions = ec2.describe_vpc_endpoint_service_permissions(ServiceId=configs[0]["ServiceId"])
        assert sorted(p["Principal"] for p in permissions["AllowedPrincipals"]) == sorted(
            "arn:aws:iam::%s:root" % p["aws_account_id"] for q, p in parties.items() if q != pid)
    for pid, party in parties.items():
        ec2 = party_client(env, pid, "ec2", party["region"])
        endpoints = [e for e in ec2.describe_vpc_endpoints()["VpcEndpoints"] if e["State"].lower() == "available"]
        by_peer = {int(t["Value"]): e for e in endpoints for t in e.get("Tags", [])
                   if t["Key"] == "threshold_kms/peer-party-id"}
        assert sorted(by_peer) == sorted(q for q in parties if q != pid), (pid, sorted(by_peer))
        for peer, endpoint in by_peer.items():
            assert endpoint["ServiceName"] == services[peer]["ServiceName"], (pid, peer)
            # a peer in another region is named as the endpoint's service region
            assert endpoint.get("ServiceRegion", party["region"]) == parties[peer]["region"], (pid, peer, endpoint)
