"""Faults: a KMS node that hangs, an AWS stand-in that goes away in the middle of a deploy, and
AWS throttling. Each run must fail with a clear message or ride the fault out, delete nothing,
and the next run must converge.

The AWS faults come from ``standin_proxy.FaultProxy`` placed between the playbook and moto
(``-e mpc_aws_endpoint_url=<proxy>``): cutting the proxy makes AWS unreachable without losing
moto's in-memory state, as an outage of the endpoint would; the proxy also answers chosen calls
with AWS's real throttling errors. Resources are read before and after straight from moto and
from the party's Kubernetes API (never through the proxy).

Time: the scenario deploys party 2 (``--limit party2``, without PRSS, which needs every party)
twice; about 3-4 minutes on a loaded 2-core machine.
"""
import json
import os
import time

import botocore.session
import pytest
import yaml

from tests.support.kms_sim.faults import HangingEndpoint
from tests.support.kms_sim.testing import SimNetwork

from .conftest import PROXY_PORTS, ROOT, SIM_PORT_BASE, load_network, run_playbook
from .standin_proxy import FaultProxy

# Party 2: test_security deploys the party, so either order of the two modules works.
PARTY_ID = 2
PARTY = "party%d" % PARTY_ID
CLUSTER = "kms-sandbox-p%d" % PARTY_ID
with open(os.path.join(ROOT, "galaxy.yml")) as _fh:
    OUR_AGENT = "threshold_kms.mpc_party/%s" % yaml.safe_load(_fh)["version"]


# ------------------------------------------------------------------------------ a node that hangs
HANG_KUBE = SIM_PORT_BASE + 40         # the parties' Kubernetes API emulators: +41..+44


@pytest.fixture(scope="module")
def hanging_network(sandbox_inventory, tmp_path_factory):
    """Parties 1-3 simulated and serving; party 4's node accepts TCP connections and never answers,
    on its client port and on its peer port. Each party reaches only its own node, through a
    port-forward of its own cluster's API (one emulator per party; kubeconfigs where the sandbox
    inventory looks for them, under the returned SANDBOX_DIR)."""
    from tests.support.kube_emulator import run_emulators

    peer_base, client_base = SIM_PORT_BASE, SIM_PORT_BASE + 10
    pod_ports = dict((p["party_id"], p["client_port"]) for p in load_network(sandbox_inventory)["parties"])
    folder = tmp_path_factory.mktemp("hanging-sandbox")
    network = SimNetwork(4, peer_base, client_base, name="hang", storage="ram", peer_timeout=0.5)
    hanging = []
    try:
        network.start([1, 2, 3])
        hanging = [HangingEndpoint(client_base + 4).start(), HangingEndpoint(peer_base + 4).start()]
        with run_emulators(4, base_port=HANG_KUBE, controller=False) as kube:
            for pid in range(1, 5):
                emulator = kube.emulator(pid)
                emulator.create_object("v1/namespaces", None, {"metadata": {"name": "kms"}})

                def target(namespace, pod, port, pid=pid):
                    if (namespace, pod) != ("kms", "kms-core-0"):
                        raise KeyError('pods "%s" not found' % pod)
                    if port != pod_ports[pid]:
                        raise LookupError("connect: connection refused")
                    return "127.0.0.1", client_base + pid

                emulator.port_forward_target = target
                kube.write_kubeconfig(pid, folder / "kubeconfig" / ("party%d.yaml" % pid))
            yield str(folder)
    finally:
        for endpoint in hanging:
            endpoint.stop()
        network.stop()


def _failed_task(doc, host):
    for play in doc["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get(host)
            if result and result.get("failed"):
                start, end = task["task"]["duration"]["start"], task["task"]["duration"]["end"]
                return task["task"]["name"], result, _seconds(start, end)
    return None, None, None


def _seconds(start, end):
    from datetime import datetime

    def parse(text):
        return datetime.fromisoformat(text.rstrip("Z"))
    return (parse(end) - parse(start)).total_seconds()


def _health(doc, host):
    return next(task["hosts"][host] for play in doc["plays"] for task in play["tasks"]
                if host in task["hosts"] and "nodes" in task["hosts"][host])


def test_check_network_names_the_hanging_node_within_the_timeout(standins, sandbox_inventory, hanging_network):
    timeout = 2
    run = run_playbook("check_network.yml", sandbox_inventory, "--limit", "party2,party4",
                       "-e", json.dumps({"check_network_timeout": timeout}),
                       env=standins.env({"SANDBOX_DIR": hanging_network}), callback="json", timeout=300)
    assert run.rc != 0, run.tail()
    doc = run.json()
    # Party 4 asks its own node, which accepts TCP and never answers: told apart from "nothing
    # listens" and from a slow network, with the time it was given, and within that time.
    name, result, _ = _failed_task(doc, "party4")
    assert name is not None, run.tail()
    own = _health(doc, "party4")["nodes"][0]
    assert own["party_id"] == 4 and own["reachable"] is False, own
    assert own["error_kind"] in ("no_http2", "timeout"), own
    assert "within %.1fs" % timeout in own["error"], own["error"]
    assert "party 4" in result["msg"] or "party4" in result["msg"], result["msg"]
    # (the port-forward through the party's API server is set up within the same check)
    assert _health(doc, "party4")["elapsed"] < timeout + 4, _health(doc, "party4")["elapsed"]
    # Party 2's node answers and reports peer 4 unreachable over the peer port, its two other
    # peers reachable: 3 of 4 is still Healthy (the default bar), so party 2's check passes.
    name, result, _ = _failed_task(doc, "party2")
    assert name is None, (name, result)
    node2 = _health(doc, "party2")["nodes"][0]
    assert node2["party_id"] == 2 and node2["reachable"] is True and node2["status"] == "Healthy", node2
    context = node2["contexts"][0]
    assert context["unreachable_peers"] == [4] and sorted(context["reachable_peers"]) == [1, 3], context
    # No other party's client port was dialled: party 2's check asked only its own node.
    assert [n["party_id"] for n in _health(doc, "party2")["nodes"]] == [2]


def test_prss_init_stops_at_the_gate_naming_the_hanging_node(standins, sandbox_inventory, hanging_network):
    # Party 2's private vault, in party 2's own account and region (prss_init first looks there
    # for the epoch); removed afterwards, so that the deploys below create it themselves.
    s3 = party_client(standins, "s3")
    bucket = "kms-sandbox-p%d-private" % PARTY_ID
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": s3.meta.region_name})
    timeout = 2
    started = time.monotonic()
    try:
        run = run_playbook("prss_init.yml", sandbox_inventory, "--limit", PARTY,
                           "-e", json.dumps({"prss_init_health_timeout": timeout, "mpc_aws_profile": PARTY}),
                           env=party_env(standins, {"SANDBOX_DIR": hanging_network}), callback="json", timeout=300)
    finally:
        s3.delete_bucket(Bucket=bucket)
    wall = time.monotonic() - started
    assert run.rc != 0, run.tail()
    name, result, seconds = _failed_task(run.json(), PARTY)
    assert name and "health" in name.lower(), (name, result)
    msg = result["msg"]
    # Party 2's own node reports the peer it cannot reach: party 4.
    assert "party 2" in msg and "unreachable peers: 4" in msg, msg
    assert seconds < timeout + 5, "the gate took %.1f s with a %d s timeout" % (seconds, timeout)
    # Nothing was started: no epoch.
    assert "NewMpcEpoch" not in run.output
    print("prss_init with a hanging peer: failed in %.1f s (task %.1f s): %s" % (wall, seconds, msg.splitlines()[0]))


# ------------------------------------------------------------------------------ AWS faults
def party_env(standins, extra=None):
    """The playbooks' environment signing as party 2 in its own account, as the sandbox inventory
    has it (profile party2 of the credentials tools/sandbox wrote): the sandbox's load balancer
    controller of party 2 provisions the peer NLB in that account, so a deploy signing with another
    account's keys never gets it. amazon.aws refuses a profile next to access keys: none here."""
    env = standins.env(extra)
    env.pop("AWS_ACCESS_KEY_ID", None)
    env.pop("AWS_SECRET_ACCESS_KEY", None)
    return env


def party_client(standins, service):
    """A client of party 2's own account and region straight to moto (not through the proxy)."""
    import boto3

    with open(os.path.join(str(standins.inventory), "hosts.yml")) as fh:
        region = yaml.safe_load(fh)["all"]["children"]["mpc_parties"]["hosts"][PARTY]["mpc_aws_region"]
    env = standins.env()
    core = botocore.session.Session()
    core.set_config_variable("credentials_file", env["AWS_SHARED_CREDENTIALS_FILE"])
    core.set_config_variable("config_file", env["AWS_CONFIG_FILE"])
    return boto3.session.Session(botocore_session=core, profile_name=PARTY).client(
        service, endpoint_url=standins.aws_url, region_name=region, verify=standins.ca_bundle)


def snapshot(standins):
    """Everything a deploy creates, read straight from moto and from the party's Kubernetes API:
    {kind: set(ids)} (for AWS: every resource of party 2's account and region)."""
    ec2, eks, iam = party_client(standins, "ec2"), party_client(standins, "eks"), party_client(standins, "iam")
    kms, s3, elb = party_client(standins, "kms"), party_client(standins, "s3"), party_client(standins, "elbv2")
    snap = {
        "vpc": {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")},
        "subnet": {s["SubnetId"] for s in ec2.describe_subnets()["Subnets"] if not s.get("DefaultForAz")},
        "security_group": {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]
                           if g["GroupName"] != "default"},
        "internet_gateway": {g["InternetGatewayId"] for g in ec2.describe_internet_gateways()["InternetGateways"]},
        "nat_gateway": {g["NatGatewayId"] for g in ec2.describe_nat_gateways()["NatGateways"]
                        if g["State"] not in ("deleted", "deleting")},
        "route_table": {r["RouteTableId"] for r in ec2.describe_route_tables()["RouteTables"]},
        "launch_template": {t["LaunchTemplateId"] for t in ec2.describe_launch_templates()["LaunchTemplates"]},
        "endpoint_service": {s["ServiceId"] for s in
                             ec2.describe_vpc_endpoint_service_configurations()["ServiceConfigurations"]},
        "eks_cluster": set(eks.list_clusters()["clusters"]),
        "iam_role": {r["RoleName"] for r in iam.list_roles()["Roles"] if not r["Path"].startswith("/aws-service-role/")},
        "oidc_provider": {p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]},
        "kms_key": {k["KeyId"] for k in kms.list_keys()["Keys"]
                    if kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"},
        "kms_alias": {a["AliasName"] for a in kms.list_aliases()["Aliases"] if not a["AliasName"].startswith("alias/aws/")},
        "bucket": {b["Name"] for b in s3.list_buckets()["Buckets"]},
        "load_balancer": {lb["LoadBalancerArn"] for lb in elb.describe_load_balancers()["LoadBalancers"]},
    }
    snap["nodegroup"] = {"%s/%s" % (c, ng) for c in snap["eks_cluster"]
                         for ng in eks.list_nodegroups(clusterName=c)["nodegroups"]}
    # This party's own, to count them.
    snap["party_vpc"] = {v["VpcId"] for v in ec2.describe_vpcs(
        Filters=[{"Name": "tag:Name", "Values": [CLUSTER]}])["Vpcs"]}
    snap["party_nodegroup"] = {ng for ng in snap["nodegroup"] if ng.startswith(CLUSTER + "/")}
    snap["party_launch_template"] = {t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]
                                     if t["LaunchTemplateName"].startswith(CLUSTER)}
    snap["object_version"] = set()
    for bucket in snap["bucket"]:
        listing = s3.list_object_versions(Bucket=bucket)
        snap["object_version"] |= {"%s/%s@%s" % (bucket, v["Key"], v["VersionId"]) for v in listing.get("Versions", [])}
    kube = set()
    for path in ("/api/v1/namespaces", "/api/v1/configmaps", "/api/v1/services", "/api/v1/serviceaccounts",
                 "/apis/apps/v1/statefulsets", "/apis/apps/v1/daemonsets", "/apis/policy/v1/poddisruptionbudgets",
                 "/apis/networking.k8s.io/v1/networkpolicies"):
        for item in standins.kube_get(PARTY_ID, path).get("items", []):
            meta = item["metadata"]
            kube.add("%s %s/%s uid=%s" % (path.rsplit("/", 1)[1], meta.get("namespace", ""), meta["name"],
                                          meta.get("uid", "")))
    snap["kube_object"] = kube
    return snap


def missing(before, after):
    """{kind: ids present before and gone after}."""
    gone = {kind: sorted(ids - after.get(kind, set())) for kind, ids in before.items()}
    return {kind: ids for kind, ids in gone.items() if ids}


def botocore_attempts():
    """Total attempts botocore makes on its own per call, with the settings the playbooks get."""
    session = botocore.session.get_session()
    mode = session.get_config_variable("retry_mode") or "legacy"
    configured = session.get_config_variable("max_attempts")
    if configured:
        return int(configured)
    return 3 if mode == "standard" else 5


class ThrottleRule(object):
    """Which calls of the playbook's AWS modules get a throttling answer, and how many times.

    * calls of this collection's modules (user agent ``threshold_kms.mpc_party/<version>``): the
      first call of every (service, action) is throttled ``burst`` times in a row, as many as
      botocore's own attempts, so only the modules' AWSRetry can carry it through;
    * calls of amazon.aws / community.aws modules: every ``every``-th distinct call is throttled
      once (botocore's own retries, and AWSRetry where those modules use it, ride it out);
    * anything that is not an Ansible module (the sandbox's own controllers) is left alone.
    """

    def __init__(self, burst, every=4):
        self.burst, self.every = burst, every
        self.ours_seen = set()
        self.upstream_calls = 0

    def __call__(self, request):
        if "Ansible/" not in request.user_agent:
            return 0
        if OUR_AGENT in request.user_agent:
            key = (request.service, request.action)
            if key in self.ours_seen:
                return 0
            self.ours_seen.add(key)
            return self.burst
        self.upstream_calls += 1
        return 1 if self.upstream_calls % self.every == 0 else 0


def deploy(standins, sandbox_inventory, proxy, *args):
    return run_playbook("deploy_party.yml", sandbox_inventory, "--limit", PARTY, "--skip-tags", "prss_init",
                        "-e", "mpc_aws_endpoint_url=%s" % proxy.url, "-e", "mpc_aws_profile=%s" % PARTY, *args,
                        env=party_env(standins), timeout=900)


@pytest.fixture(scope="module")
def aws_proxy(standins):
    with FaultProxy(PROXY_PORTS[1], standins.aws_url, cert=standins.cert, key=standins.key,
                    cafile=standins.ca_bundle) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def interrupted_deploy(standins, sandbox_inventory, aws_proxy):
    """Run A: the party's first deploy, AWS cut a few requests after the EKS cluster was requested.
    Run B: AWS back, with throttling on; the same command again."""
    proxy = aws_proxy
    before = snapshot(standins)
    proxy.cut_after(lambda r: r.service == "eks" and r.method == "POST" and r.action.endswith("/clusters")
                    and r.status == 200, then=6)
    mark = proxy.mark()
    run_a = deploy(standins, sandbox_inventory, proxy)
    assert not proxy.listening, "the proxy never saw the EKS cluster being created: %r" % run_a
    after_a = snapshot(standins)
    requests_a = proxy.requests(mark)

    proxy.restore()
    rule = ThrottleRule(burst=botocore_attempts())
    proxy.throttle(rule)
    mark = proxy.mark()
    run_b = deploy(standins, sandbox_inventory, proxy)
    proxy.throttle(None)
    after_b = snapshot(standins)
    return {"before": before, "run_a": run_a, "after_a": after_a, "requests_a": requests_a, "cut_at": proxy.cut_at,
            "run_b": run_b, "after_b": after_b, "requests_b": proxy.requests(mark), "rule": rule}


def test_aws_outage_mid_deploy_fails_with_a_clear_message(interrupted_deploy):
    run = interrupted_deploy["run_a"]
    print("run A (AWS cut after %r): rc %d in %.0f s" % (interrupted_deploy["cut_at"], run.rc, run.seconds))
    assert run.rc != 0, run.tail()
    assert run.recap()[PARTY]["failed"] == 1, run.tail()
    fatal = run.stdout[run.stdout.rindex("fatal: [%s]" % PARTY):]
    # The operator is told which endpoint could not be reached, not a traceback.
    assert "Could not connect to the endpoint URL" in fatal and "127.0.0.1:%d" % PROXY_PORTS[1] in fatal, fatal[:2000]
    assert "Traceback" not in fatal[:3000]
    # It really was cut in the middle: the cluster was asked for, more was to come.
    assert interrupted_deploy["cut_at"] is not None
    assert CLUSTER in interrupted_deploy["after_a"]["eks_cluster"]
    assert interrupted_deploy["after_a"]["party_vpc"] and not interrupted_deploy["after_a"]["party_nodegroup"], (
        "not cut in the middle: %s" % interrupted_deploy["after_a"])


def test_outage_deletes_nothing(interrupted_deploy):
    gone = missing(interrupted_deploy["before"], interrupted_deploy["after_a"])
    assert not gone, "resources gone after the failed run: %s" % gone
    a_requests = interrupted_deploy["requests_a"]
    deletes = [r for r in a_requests if r.action.startswith("Delete") or r.method == "DELETE"]
    assert not deletes, deletes


def test_next_run_converges_through_throttling(interrupted_deploy):
    run = interrupted_deploy["run_b"]
    requests = interrupted_deploy["requests_b"]
    throttled = [r for r in requests if r.throttled]
    print("run B (after the outage, %d of %d answers were throttling errors): rc %d in %.0f s"
          % (len(throttled), len(requests), run.rc, run.seconds))
    assert run.rc == 0, run.tail()
    assert run.recap()[PARTY]["failed"] == 0
    after_a, after_b = interrupted_deploy["after_a"], interrupted_deploy["after_b"]
    # Converged: the whole party exists now ...
    assert CLUSTER in after_b["eks_cluster"]
    assert after_b["party_nodegroup"] and after_b["party_launch_template"] and after_b["endpoint_service"], after_b
    assert {"kms-sandbox-p%d-private" % PARTY_ID, "kms-sandbox-p%d-public" % PARTY_ID} <= after_b["bucket"]
    assert any(k.startswith("statefulsets kms/") for k in after_b["kube_object"]), after_b["kube_object"]
    # ... built on what run A left (same ids), nothing deleted and nothing doubled.
    gone = missing(after_a, after_b)
    assert not gone, "resources of the interrupted run were replaced or deleted: %s" % gone
    assert len(after_b["party_vpc"]) == len(after_a["party_vpc"]) == 1, (after_a["party_vpc"], after_b["party_vpc"])
    assert len(after_b["party_nodegroup"]) == 1 and len(after_b["party_launch_template"]) == 1, after_b


def test_our_modules_retry_throttling_beyond_botocore(interrupted_deploy):
    """Every call of our modules that got a throttling burst as long as botocore's own budget was
    sent again and answered: AWSRetry with backoff at the module level carried it."""
    requests = interrupted_deploy["requests_b"]
    burst = interrupted_deploy["rule"].burst
    ours = [r for r in requests if OUR_AGENT in r.user_agent]
    assert ours, "no request carried the user agent %s" % OUR_AGENT
    by_key = {}
    for r in ours:
        by_key.setdefault(r.key, []).append(r)
    bursts = {key: calls for key, calls in by_key.items() if sum(c.throttled for c in calls) >= burst}
    services = sorted({calls[0].service for calls in bursts.values()})
    print("our modules: %d calls throttled %d times in a row (%s); services %s"
          % (len(bursts), burst, ", ".join(sorted({c[0].action for c in bursts.values()})), services))
    assert {"ec2", "eks", "iam"} <= set(services), services
    for key, calls in bursts.items():
        answered = [c for c in calls if not c.throttled]
        assert answered and answered[-1].status < 500 and calls.index(answered[0]) >= burst, (
            "%s was not retried after %d throttling answers: %s" % (calls[0].action, burst, calls))
    # The protocols' own throttling codes were all in play: EC2 query, query, REST-JSON.
    protocols = {calls[0].protocol for calls in bursts.values()}
    assert {"ec2", "query", "rest-json"} <= protocols, protocols


def test_the_burst_is_beyond_plain_awsretry(standins, aws_proxy):
    """The burst above is one AWSRetry's default code list does not ride out for EKS, KMS and S3
    (their throttling codes are ThrottlingException and SlowDown): the collection's retry policy
    (module_utils/aws_retry) is what carries it. Same client stack as the modules, same proxy."""
    from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry, RetryingBotoClientWrapper
    from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_retry
    import boto3
    from botocore.exceptions import ClientError

    burst = botocore_attempts()
    aws_proxy.restore()
    calls = {"eks": lambda c: c.list_clusters(aws_retry=True), "kms": lambda c: c.list_keys(aws_retry=True),
             "s3": lambda c: c.list_buckets(aws_retry=True)}
    for service, call in sorted(calls.items()):
        client = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
            service, endpoint_url=aws_proxy.url, region_name="eu-west-1", verify=standins.ca_bundle)
        aws_proxy.throttle(lambda request: burst)
        with pytest.raises(ClientError) as info:
            call(RetryingBotoClientWrapper(client, AWSRetry.jittered_backoff(retries=2, delay=0.2)))
        assert info.value.response["Error"]["Code"] in ("ThrottlingException", "SlowDown"), info.value
        aws_proxy.throttle(lambda request: burst)
        call(RetryingBotoClientWrapper(client, aws_retry.jittered_backoff(retries=2, delay=0.2)))
    aws_proxy.throttle(None)


def test_amazon_aws_modules_ride_out_throttling(interrupted_deploy):
    requests = interrupted_deploy["requests_b"]
    upstream = [r for r in requests if "Ansible/" in r.user_agent and OUR_AGENT not in r.user_agent]
    throttled = [r for r in upstream if r.throttled]
    assert len(throttled) >= 10, "only %d throttled calls of amazon.aws/community.aws modules" % len(throttled)
    for r in throttled:
        later = [x for x in upstream if x.key == r.key and not x.throttled and x.time >= r.time]
        assert later, "%s %s was throttled and never sent again" % (r.service, r.action)
    print("amazon.aws/community.aws: %d calls throttled once, services %s"
          % (len(throttled), sorted({r.service for r in throttled})))
