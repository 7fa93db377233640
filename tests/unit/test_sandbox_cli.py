"""The sandbox: its controller (KMS nodes from StatefulSets, NLBs from Services) and tools/sandbox.

* the KMS node controller with a small fake node (controller logic: config lookup, env,
  readiness, rolling restart on a template change, crash loop, stop on delete) and with the
  real simulator (the node's port answers gRPC health only once its StatefulSet is applied);
* the AWS Load Balancer Controller emulation against moto (a real moto server);
* ``tools/sandbox up|status|down`` as processes, on ports of this test's range.

Ports: 21050-21199 (+150 per pytest-xdist worker).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
import tomli_w
import yaml

from sandbox.kube_emulator import run_emulators
from sandbox.kms_nodes import KmsNodeRunner
from sandbox.load_balancers import AwsLoadBalancers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SANDBOX = os.path.join(ROOT, "tools", "sandbox")
WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
BASE = 21050 + 150 * WORKER
REGION = "eu-west-1"


def wait_for(predicate, timeout=15.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {predicate}")


def sts_status(emu, name="kms-core"):
    return (emu.get_object("apps/v1/statefulsets", "kms", name) or {}).get("status") or {}


def statefulset(name="kms-core", checksum="1", env=None, config_map="kms-config", replicas=1):
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
        "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}, "annotations": {"kms/config-checksum": checksum}},
                              "spec": {"containers": [{
                                  "name": "kms", "image": "ghcr.io/zama-ai/kms/core-service:v0.14.1-0",
                                  "args": ["--config-file", "/etc/kms/config/threshold.toml"],
                                  "env": env or [],
                                  "volumeMounts": [{"name": "config", "mountPath": "/etc/kms/config"}]}],
                                  "volumes": [{"name": "config", "configMap": {"name": config_map}}]}}}}


def configmap(text, name="kms-config"):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"threshold.toml": text}}


# --------------------------------------------------------------------------- controller, fake node
class FakeNode:
    """Stands in for sandbox.kms_sim.node.SimNode: records what it was started with."""
    instances = []

    def __init__(self, config, env):
        self.config, self.env = config, env
        self.serving = False
        self.stopped = False
        FakeNode.instances.append(self)

    def start(self):
        self.serving = True

    def stop(self):
        self.serving = False
        self.stopped = True

    def is_serving(self):
        return self.serving


def test_controller_starts_the_node_from_the_mounted_config_and_rolls_it(tmp_path):
    FakeNode.instances = []
    runners = {}

    def factory(party, emulator):
        runners[party] = KmsNodeRunner(node_factory=FakeNode, retry_seconds=0.2, label=f"party{party}")
        return runners[party]

    with run_emulators(1, base_port=BASE, statefulset_runner=factory, resync_seconds=0.2) as kube:
        emu = kube.emulator(1)
        emu.create_object("v1/namespaces", None, {"metadata": {"name": "kms"}})
        env = [{"name": "KMS_CORE__THRESHOLD__MY_ID", "value": "3"},
               {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
        emu.create_object("apps/v1/statefulsets", "kms", statefulset(env=env))

        # No ConfigMap yet: the pod waits, nothing runs, the StatefulSet is not ready.
        pod = wait_for(lambda: (emu.get_object("v1/pods", "kms", "kms-core-0") or {}).get("status"))
        waiting = pod["containerStatuses"][0]["state"]["waiting"]
        assert waiting["reason"] == "ContainerCreating" and 'configmap "kms-config" not found' in waiting["message"]
        assert FakeNode.instances == []
        assert not sts_status(emu).get("readyReplicas")

        # The ConfigMap arrives: the node starts with the parsed TOML and the literal env.
        emu.create_object("v1/configmaps", "kms", configmap('[service]\nlisten_port = 50100\n[threshold]\nmy_id = 1\n'))
        status = wait_for(lambda: sts_status(emu) if sts_status(emu).get("readyReplicas") else None)
        assert len(FakeNode.instances) == 1
        first = FakeNode.instances[0]
        assert first.config == {"service": {"listen_port": 50100}, "threshold": {"my_id": 1}}
        assert first.env == {"KMS_CORE__THRESHOLD__MY_ID": "3"}
        assert status["currentRevision"] == status["updateRevision"]
        first_revision = status["updateRevision"]
        assert emu.get_object("v1/pods", "kms", "kms-core-0")["status"]["phase"] == "Running"

        # A ConfigMap change alone does not restart the node (only a new pod would read it) ...
        emu.patch_object("v1/configmaps", "kms", "kms-config",
                         {"data": {"threshold.toml": "[service]\nlisten_port = 50200\n"}}, "merge")
        time.sleep(0.6)
        assert len(FakeNode.instances) == 1 and first.serving
        # ... a new template revision (the checksum annotation) rolls it.
        emu.patch_object("apps/v1/statefulsets", "kms", "kms-core",
                         {"spec": {"template": {"metadata": {"annotations": {"kms/config-checksum": "2"}}}}}, "strategic")
        wait_for(lambda: len(FakeNode.instances) == 2 and FakeNode.instances[1].serving)
        assert first.stopped
        assert FakeNode.instances[1].config["service"]["listen_port"] == 50200
        status = wait_for(lambda: (lambda s: s if s.get("observedGeneration") == 2 and s.get("readyReplicas") else None)(
            sts_status(emu)))
        assert status["currentRevision"] == status["updateRevision"] != first_revision
        rows = runners[1].describe()
        assert rows[0]["state"] == "serving" and rows[0]["revision"] == status["updateRevision"]

        # A config the node cannot read: crash loop, with the reason on the pod.
        emu.patch_object("v1/configmaps", "kms", "kms-config", {"data": {"threshold.toml": "[service\n"}}, "merge")
        emu.patch_object("apps/v1/statefulsets", "kms", "kms-core",
                         {"spec": {"template": {"metadata": {"annotations": {"kms/config-checksum": "3"}}}}}, "strategic")
        pod = wait_for(lambda: (lambda p: p if p and p["status"]["containerStatuses"][0]["state"].get("waiting") else None)(
            emu.get_object("v1/pods", "kms", "kms-core-0")))
        waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
        assert waiting["reason"] == "CrashLoopBackOff" and "invalid TOML" in waiting["message"]
        assert FakeNode.instances[1].stopped and len(FakeNode.instances) == 2
        # Fixed config: the crash loop's next retry picks it up.
        emu.patch_object("v1/configmaps", "kms", "kms-config",
                         {"data": {"threshold.toml": "[service]\nlisten_port = 50300\n"}}, "merge")
        wait_for(lambda: len(FakeNode.instances) == 3 and FakeNode.instances[2].serving)

        # Deleting the StatefulSet stops the node and removes its pod.
        emu.delete_object("apps/v1/statefulsets", "kms", "kms-core")
        wait_for(lambda: FakeNode.instances[2].stopped)
        assert emu.get_object("v1/pods", "kms", "kms-core-0") is None
        assert runners[1].describe() == []


# --------------------------------------------------------------------------- controller, real simulator
def grpc_health(port):
    import grpc
    from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_proto as P

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        check = channel.unary_unary(P.METHOD_HEALTH_CHECK, request_serializer=P.serializer(P.METHOD_HEALTH_CHECK),
                                    response_deserializer=P.deserializer(P.METHOD_HEALTH_CHECK))
        return check(P.messages.HealthCheckRequest(service=""), timeout=3).status


def listening(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_the_real_node_is_reachable_only_once_its_statefulset_is_applied():
    pytest.importorskip("grpc")
    from sandbox.kms_sim import network as net

    network = net.shift_ports(net.make_network(4), peer_base=BASE + 20, client_base=BASE + 30)
    config = net.threshold_config(network, 1, storage="ram")
    client_port = config["service"]["listen_port"]
    assert client_port == BASE + 31
    # The node starts only with its signing key: the pod's init container runs kms-gen-keys.
    from sandbox.kms_sim.testing import keygen_config

    sts = statefulset()
    sts["spec"]["template"]["spec"]["initContainers"] = [{
        "name": "kms-gen-keys", "image": "ghcr.io/zama-ai/kms/core-service:v0.14.1-0", "command": ["kms-gen-keys"],
        "args": ["--config-file", "/etc/kms/keygen/keygen.toml"],
        "volumeMounts": [{"name": "keygen", "mountPath": "/etc/kms/keygen"}]}]
    sts["spec"]["template"]["spec"]["volumes"].append({"name": "keygen", "configMap": {"name": "kms-keygen"}})
    runner = KmsNodeRunner(label="party1")
    with run_emulators(1, base_port=BASE + 10, statefulset_runner=lambda p, e: runner, resync_seconds=0.2) as kube:
        emu = kube.emulator(1)
        emu.create_object("v1/namespaces", None, {"metadata": {"name": "kms"}})
        emu.create_object("v1/configmaps", "kms", configmap(tomli_w.dumps(config)))
        emu.create_object("v1/configmaps", "kms", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kms-keygen"},
                                                   "data": {"keygen.toml": tomli_w.dumps(keygen_config(config))}})
        assert not listening(client_port)
        emu.create_object("apps/v1/statefulsets", "kms", sts)
        wait_for(lambda: sts_status(emu).get("readyReplicas") == 1)
        assert grpc_health(client_port) == 1  # SERVING
        assert runner.describe()[0]["client_port"] == client_port
        emu.delete_object("apps/v1/statefulsets", "kms", "kms-core")
        wait_for(lambda: not listening(client_port))


# --------------------------------------------------------------------------- load balancers in moto
@pytest.fixture()
def moto_server(monkeypatch):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=BASE + 40)
    server.start()
    # for this test only: a key left in the worker's environment would reach later playbooks
    # next to their inventory's profile, which amazon.aws refuses
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ.get("AWS_ACCESS_KEY_ID", "testing"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
    try:
        yield f"http://127.0.0.1:{BASE + 40}"
    finally:
        server.stop()


def lb_service(ports=(50001,), annotations=None):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kms-peer", "annotations": annotations or {}},
            "spec": {"type": "LoadBalancer", "selector": {"app": "kms-core"},
                     "ports": [{"name": f"p{p}", "port": p, "targetPort": p} for p in ports]}}


def test_load_balancer_services_get_an_internal_nlb_in_the_aws_stand_in(moto_server):
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    ec2 = session.client("ec2", endpoint_url=moto_server)
    elb = session.client("elbv2", endpoint_url=moto_server)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet_a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    subnet_b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.2.0/24", AvailabilityZone=f"{REGION}b",
                                 TagSpecifications=[{"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": "private-b"}]}])["Subnet"]["SubnetId"]
    annotations = {"service.beta.kubernetes.io/aws-load-balancer-subnets": f"{subnet_a},private-b",
                   "service.beta.kubernetes.io/aws-load-balancer-additional-resource-tags": "party=1"}

    def provider(party, emulator):
        return AwsLoadBalancers(moto_server, REGION, cluster_name="kms-sandbox-p1")

    def hostname(emu):
        svc = emu.get_object("v1/services", "kms", "kms-peer") or {}
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        return ingress[0]["hostname"] if ingress else None

    def nlb_state():
        lbs = elb.describe_load_balancers()["LoadBalancers"]
        tgs = elb.describe_target_groups()["TargetGroups"]
        listeners = [l for lb in lbs for l in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]]
        return lbs, tgs, listeners

    with run_emulators(1, base_port=BASE + 40, load_balancers=provider, resync_seconds=0.2) as kube:
        emu = kube.emulator(1)
        emu.create_object("v1/namespaces", None, {"metadata": {"name": "kms"}})
        # Without the subnets annotation: a hostname, no load balancer.
        emu.create_object("v1/services", "kms", dict(lb_service(), metadata={"name": "plain"}))
        wait_for(lambda: ((emu.get_object("v1/services", "kms", "plain").get("status") or {}).get("loadBalancer") or {}).get("ingress"))
        assert elb.describe_load_balancers()["LoadBalancers"] == []

        emu.create_object("v1/services", "kms", lb_service((50001, 50100), annotations))
        host = wait_for(lambda: hostname(emu))
        lbs, tgs, listeners = nlb_state()
        assert len(lbs) == 1 and lbs[0]["DNSName"] == host
        assert (lbs[0]["Type"], lbs[0]["Scheme"], lbs[0]["VpcId"]) == ("network", "internal", vpc)
        assert {az["SubnetId"] for az in lbs[0]["AvailabilityZones"]} == {subnet_a, subnet_b}
        tags = {t["Key"]: t["Value"] for t in elb.describe_tags(ResourceArns=[lbs[0]["LoadBalancerArn"]])["TagDescriptions"][0]["Tags"]}
        assert tags == {"service.k8s.aws/stack": "kms/kms-peer", "service.k8s.aws/resource": "LoadBalancer",
                        "elbv2.k8s.aws/cluster": "kms-sandbox-p1", "party": "1"}
        assert sorted(l["Port"] for l in listeners) == [50001, 50100]
        assert {(t["Protocol"], t["HealthCheckProtocol"], t["TargetType"]) for t in tgs} == {("TCP", "TCP", "instance")}
        node_ports = {p["nodePort"] for p in emu.get_object("v1/services", "kms", "kms-peer")["spec"]["ports"]}
        assert {t["Port"] for t in tgs} == node_ports
        lb_arn = lbs[0]["LoadBalancerArn"]

        # A port removed from the Service loses its listener and target group.
        emu.patch_object("v1/services", "kms", "kms-peer", {"spec": {"ports": [{"name": "p50001", "port": 50001, "targetPort": 50001}]}}, "merge")
        wait_for(lambda: len(nlb_state()[2]) == 1 and len(nlb_state()[1]) == 1)

    # A new controller (sandbox restarted, Service re-applied) finds the same load balancer by its tags.
    with run_emulators(1, base_port=BASE + 40, load_balancers=provider, resync_seconds=0.2) as kube:
        emu = kube.emulator(1)
        emu.create_object("v1/namespaces", None, {"metadata": {"name": "kms"}})
        emu.create_object("v1/services", "kms", lb_service((50001,), annotations))
        assert wait_for(lambda: hostname(emu)) == host
        lbs, tgs, listeners = nlb_state()
        assert [lb["LoadBalancerArn"] for lb in lbs] == [lb_arn] and len(tgs) == 1 and len(listeners) == 1
        # Deleting the Service deletes its load balancer and target groups.
        emu.delete_object("v1/services", "kms", "kms-peer")
        wait_for(lambda: nlb_state()[0] == [] and nlb_state()[1] == [])


# --------------------------------------------------------------------------- tools/sandbox
def sandbox(args, env, python=None, timeout=120):
    command = ([python, SANDBOX] if python else [SANDBOX]) + args
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture()
def sandbox_env(tmp_path):
    env = dict(os.environ, SANDBOX_DIR=str(tmp_path / "sbx"), SANDBOX_AWS_PORT=str(BASE + 60),
               SANDBOX_KUBE_BASE_PORT=str(BASE + 60))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    yield env
    sandbox(["down"], env)  # never leave processes behind, even when a test fails


@pytest.fixture()
def cli_inventory(tmp_path):
    """inventories/sandbox with its KMS ports moved into this module's block (BASE + 70 + i, + 80 + i,
    + 90 + i): ``up`` checks that they are free, and the sandbox's own belong to a `make sandbox`
    that may run on the machine."""
    from tests.integration.standins import move_ports

    dest = tmp_path / "inventory"
    shutil.copytree(os.path.join(ROOT, "inventories", "sandbox"), dest)
    move_ports(dest, BASE + 70, BASE + 80, BASE + 90)
    return str(dest)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_cli_up_is_idempotent_status_reports_and_down_stops_everything(sandbox_env, cli_inventory, tmp_path,
                                                                       monkeypatch):
    state = tmp_path / "sbx"
    up = sandbox(["up", "--inventory", cli_inventory], sandbox_env)
    assert up.returncode == 0, up.stdout + up.stderr
    pids = {s: int((state / "pids" / f"{s}.pid").read_text()) for s in ("aws", "kube")}
    for party in range(1, 5):  # the inventory's mpc_network.n
        assert f"http://127.0.0.1:{BASE + 60 + party}" in up.stdout
    env_file = (state / "env").read_text()
    for line in ("unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE",
                 f"export AWS_SHARED_CREDENTIALS_FILE={state}/aws/credentials",
                 f"export AWS_CONFIG_FILE={state}/aws/config",
                 "export AWS_DEFAULT_REGION=eu-west-1", f"export SANDBOX_AWS_PORT={BASE + 60}",
                 f"export SANDBOX_KUBE_BASE_PORT={BASE + 60}", f"export SANDBOX_DIR={state}"):
        assert line in env_file
    assert "AWS_ACCESS_KEY_ID=" not in env_file
    # Each party's profile is a key of its own account (the inventory's aws_account_id), in its region.
    credentials = (state / "aws" / "credentials").read_text()
    assert oct((state / "aws" / "credentials").stat().st_mode & 0o777) == "0o600"
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(state / "aws" / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(state / "aws" / "config"))
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    network = yaml.safe_load((Path(ROOT) / "inventories" / "sandbox" / "group_vars" / "all" / "network.yml").read_text())
    for party in network["mpc_network"]["parties"]:
        session = boto3.session.Session(profile_name="party%d" % party["party_id"])
        sts = session.client("sts", endpoint_url=f"https://127.0.0.1:{BASE + 60}", verify=str(state / "tls" / "ca.pem"))
        assert sts.get_caller_identity()["Account"] == party["aws_account_id"]
        assert session.region_name == party["region"]
    assert "[party4]" in credentials

    again = sandbox(["up", "--inventory", cli_inventory], sandbox_env, python=sys.executable)
    assert again.returncode == 0
    assert (state / "aws" / "credentials").read_text() == credentials  # keys that still work are kept
    assert f"aws: already running (pid {pids['aws']})" in again.stdout
    assert f"kube: already running (pid {pids['kube']})" in again.stdout

    # Both stand-ins answer and log every request.
    with urllib.request.urlopen(f"http://127.0.0.1:{BASE + 62}/api/v1/namespaces/default", timeout=5) as response:
        assert json.loads(response.read())["metadata"]["name"] == "default"
    assert f"export AWS_CA_BUNDLE={state}/tls/ca.pem" in env_file
    s3 = boto3.client("s3", endpoint_url=f"https://127.0.0.1:{BASE + 60}", region_name=REGION,
                      aws_access_key_id="testing", aws_secret_access_key="testing",
                      verify=str(state / "tls" / "ca.pem"))
    s3.create_bucket(Bucket="sandbox-cli-test", CreateBucketConfiguration={"LocationConstraint": REGION})
    # The TLS-only bucket policy of the vaults holds over HTTPS, and other statements still deny.
    arn = "arn:aws:s3:::sandbox-cli-test"
    s3.put_bucket_policy(Bucket="sandbox-cli-test", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [arn, arn + "/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "NoSecrets", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": arn + "/secret/*"}]}))
    s3.put_object(Bucket="sandbox-cli-test", Key="PRIV-p1/EpochData/x", Body=b"x")
    assert s3.get_object(Bucket="sandbox-cli-test", Key="PRIV-p1/EpochData/x")["Body"].read() == b"x"
    s3.put_object(Bucket="sandbox-cli-test", Key="secret/y", Body=b"y")
    with pytest.raises(botocore.exceptions.ClientError):
        s3.get_object(Bucket="sandbox-cli-test", Key="secret/y")
    assert "GET /api/v1/namespaces/default 200" in (state / "logs" / "kube-p2.requests.log").read_text()
    wait_for(lambda: '"PUT /sandbox-cli-test HTTP/1.1" 200' in (state / "logs" / "aws.log").read_text(), timeout=5)
    kubeconfig = (state / "kube" / "kubeconfig-p3.yaml").read_text()
    assert f"server: http://127.0.0.1:{BASE + 63}" in kubeconfig

    status = sandbox(["status"], sandbox_env)
    assert status.returncode == 0
    lines = status.stdout.splitlines()
    assert lines[0].split() == ["service", "pid", "address", "state"]
    assert lines[1].split() == ["aws", str(pids["aws"]), f"https://127.0.0.1:{BASE + 60}", "running"]
    assert lines[2].split() == ["kube/party1", str(pids["kube"]), f"http://127.0.0.1:{BASE + 61}", "running"]
    assert len([line for line in lines if line.startswith("kube/party")]) == 4

    down = sandbox(["down"], sandbox_env)
    assert down.returncode == 0 and f"kube: stopped (pid {pids['kube']})" in down.stdout
    assert not alive(pids["aws"]) and not alive(pids["kube"])
    assert not (state / "pids" / "aws.pid").exists()
    assert (state / "logs" / "aws.log").exists() and (state / "env").exists()  # nothing else removed
    stopped = sandbox(["status"], sandbox_env)
    assert stopped.returncode == 3 and "stopped" in stopped.stdout
    assert "aws: not running" in sandbox(["down"], sandbox_env).stdout


def test_cli_only_kube_with_parties_and_a_busy_port(sandbox_env, tmp_path):
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", BASE + 60))
        blocker.listen(1)
        busy = sandbox(["up", "--only", "aws"], sandbox_env)
        assert busy.returncode == 2 and f"port {BASE + 60} is in use" in busy.stderr
    up = sandbox(["up", "--only", "kube", "--parties", "1", "--crds", "monitoring"], sandbox_env)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "aws: started" not in up.stdout
    with urllib.request.urlopen(f"http://127.0.0.1:{BASE + 61}/apis/monitoring.coreos.com/v1", timeout=5) as response:
        assert "servicemonitors" in {r["name"] for r in json.loads(response.read())["resources"]}
    pid = int((tmp_path / "sbx" / "pids" / "kube.pid").read_text())
    os.kill(pid, signal.SIGTERM)  # a stand-in that died: status says so, up starts it again
    wait_for(lambda: not alive(pid))
    assert sandbox(["status"], sandbox_env).returncode == 3
    assert sandbox(["up", "--only", "kube", "--parties", "1"], sandbox_env).returncode == 0
    assert int((tmp_path / "sbx" / "pids" / "kube.pid").read_text()) != pid
