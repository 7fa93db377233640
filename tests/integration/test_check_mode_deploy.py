"""``deploy_party.yml --check --diff`` of a whole deploy on an empty account runs to the end.

Party 1 of a fresh 4-party sandbox (nothing created yet: no VPC, no cluster, no bucket, no
kubeconfig) is deployed in check mode with every AWS call sent through a recording proxy
(``standin_proxy.FaultProxy``, ``-e mpc_aws_endpoint_url=<proxy>``). The run must

* end with rc 0 and a PLAY RECAP without failures, after the last role (prss_init) ran;
* say what a real run would create, down to kms_config's ConfigMaps and kms_workload's objects;
* send no mutating AWS request (anything but Describe*/List*/Get*/Head*, or for the REST APIs
  anything but GET/HEAD), neither through the proxy nor straight to the stand-in, and no
  Kubernetes write (the emulator logs every request with its method);
* leave the stand-in as empty as it found it.

Stand-ins on ports 16000-16404 (``CHECK_MODE_TEST_PORT_BASE``), the proxy on base + 50.
"""
import os
import re
import time
from pathlib import Path

import pytest

from tests.integration.standin_proxy import FaultProxy
from tests.integration.standins import Sandbox

PORT_BASE = int(os.environ.get("CHECK_MODE_TEST_PORT_BASE", "16000"))
PROXY_PORT = PORT_BASE + 50
READ_ACTION = re.compile(r"^(Describe|List|Get|Head)[A-Z]")
READ_METHODS = ("GET", "HEAD")
LAST_ROLE = "threshold_kms.mpc_party.prss_init"


def mutating(request):
    """True for a request that could change something in AWS (FaultProxy's request record)."""
    if request.protocol in ("json", "ec2", "query"):
        return not READ_ACTION.match(request.action)
    return request.method not in READ_METHODS


def _lines(path):
    try:
        with open(path, errors="replace") as fh:
            return fh.read().splitlines()
    except FileNotFoundError:
        return []


@pytest.fixture(scope="module")
def check_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("check-mode")
    sandbox = Sandbox(str(work), PORT_BASE)
    # Ports of this range are also in the kernel's ephemeral range: another process's outgoing
    # connection can hold one for a moment, and `tools/sandbox up` then refuses to start.
    for attempt in range(3):
        try:
            sandbox.up()
            break
        except RuntimeError as exc:
            if "ports in use" not in str(exc) or attempt == 2:
                raise
            time.sleep(10)
    try:
        state = Path(sandbox.env["SANDBOX_DIR"])
        logs = state / "logs"
        tls = state / "tls"
        aws_log_start = len(_lines(logs / "aws.log"))
        with FaultProxy(PROXY_PORT, sandbox.aws_url, cert=str(tls / "server.pem"), key=str(tls / "server-key.pem"),
                        cafile=str(tls / "ca.pem")) as proxy:
            started = time.monotonic()
            rc, out, seconds = sandbox.playbook("playbooks/deploy_party.yml", "--limit", "party1", "--check", "--diff",
                                                "-e", "mpc_aws_endpoint_url=%s" % proxy.url)
            requests = list(proxy.log)
        (work / "deploy-check.log").write_text(out)  # the whole run, for a failing assertion
        kube_lines = [line for line in _lines(logs / "kube-p1.requests.log") if "sandbox-probe" not in line]
        aws_lines = _lines(logs / "aws.log")[aws_log_start:]
        # What the stand-in holds afterwards: straight to moto, not through the proxy.
        left = {
            "vpcs": [v["VpcId"] for v in sandbox.client("ec2").describe_vpcs()["Vpcs"] if not v.get("IsDefault")],
            "clusters": sandbox.client("eks").list_clusters()["clusters"],
            "buckets": [b["Name"] for b in sandbox.client("s3").list_buckets()["Buckets"]],
            "keys": sandbox.client("kms").list_keys()["Keys"],
            "roles": [r["RoleName"] for r in sandbox.client("iam").list_roles()["Roles"]],
        }
        yield {"rc": rc, "out": out, "seconds": seconds, "requests": requests, "kube": kube_lines,
               "aws_direct": aws_lines, "left": left, "wall": time.monotonic() - started,
               "kubeconfig": state / "kubeconfig" / "party1.yaml"}
    finally:
        sandbox.down()


def test_check_mode_runs_to_the_end(check_run):
    out = check_run["out"]
    assert check_run["rc"] == 0, out[-6000:]
    recap = re.findall(r"^party1\s+:\s+(ok=.*)$", out, re.M)
    assert recap, out[-3000:]
    assert re.search(r"\bfailed=0\b", recap[-1]), recap
    # The last role of the playbook ran (its tasks are listed after every other role's).
    last_task = [m.group(1) for m in re.finditer(r"^TASK \[([^\]:]+) :", out, re.M)][-1]
    assert last_task == LAST_ROLE, "the run stopped before %s (last task of %s)" % (LAST_ROLE, last_task)


def test_check_mode_says_what_would_be_created(check_run):
    out = check_run["out"]
    assert re.search(r"would create ConfigMap kms/\S+ \(checksum [0-9a-f]+\)", out), \
        "kms_config did not report its ConfigMaps"
    assert re.search(r"would create StatefulSet kms/\S+", out), "kms_workload did not report its StatefulSet"
    # vault_buckets' plan: the buckets a run would create, with their settings (--diff)
    assert re.search(r"^changed: \[party1\] => \(item=private: kms-ops-p1-private\)", out, re.M), \
        "vault_buckets did not report its private vault bucket"
    assert not check_run["kubeconfig"].exists(), "check mode wrote the kubeconfig"
    assert "template error" not in out, "a task of the check-mode run could not be templated"


def test_check_mode_sends_no_mutating_request(check_run):
    requests = check_run["requests"]
    # The run's reads went through the recording proxy (each role looked at what exists).
    services = {r.service for r in requests}
    assert {"ec2", "eks", "iam", "kms", "s3", "sts"} <= services, "AWS calls missing from the proxy: %r" % requests
    writes = [r for r in requests if mutating(r)]
    assert writes == [], "mutating AWS requests in check mode: %r" % writes
    # Anything that reached the stand-in without the proxy must be a read too.
    direct = [line for line in check_run["aws_direct"]
              if re.search(r'"(POST|PUT|DELETE|PATCH) ', line) and "/moto-api/" not in line]
    assert len(direct) <= len([r for r in requests if r.method not in READ_METHODS]), direct
    kube_writes = [line for line in check_run["kube"] if not re.search(r"\s(GET|HEAD)\s", line)]
    assert kube_writes == [], "Kubernetes writes in check mode: %r" % kube_writes


def test_check_mode_leaves_the_account_empty(check_run):
    left = check_run["left"]
    assert left["vpcs"] == [] and left["clusters"] == [] and left["buckets"] == [] and left["keys"] == [], left
    assert [r for r in left["roles"] if r.startswith("kms-ops-")] == [], left["roles"]


def test_mutating_classifies_requests():
    """The classifier the assertions above rely on (FaultProxy request records)."""
    class R(object):
        def __init__(self, protocol, action, method="POST"):
            self.protocol, self.action, self.method = protocol, action, method

    assert not mutating(R("ec2", "DescribeVpcs"))
    assert not mutating(R("json", "ListAliases"))
    assert not mutating(R("query", "GetRole"))
    assert mutating(R("ec2", "CreateVpc"))
    assert mutating(R("query", "CreateRole"))
    assert mutating(R("json", "CreateKey"))
    assert mutating(R("ec2", "Getaway"))  # not a Get* action
    assert not mutating(R("s3", "GET kms-ops-p1-private", "GET"))
    assert mutating(R("s3", "PUT kms-ops-p1-private", "PUT"))
    assert mutating(R("rest-json", "POST /clusters", "POST"))
    assert not mutating(R("rest-json", "GET /clusters/kms-ops-p1", "GET"))
