"""Shared fixtures of the bad-input, fault and security suites.

They run the real playbooks (``ansible-playbook``) against the local stand-ins, started with
``tools/sandbox`` on this suite's own ports, so they never touch a developer's sandbox:

=====================  ==========================================================
port (base 28000)      what
=====================  ==========================================================
base + 0               AWS stand-in (moto, HTTPS)
base + 50 / 51 / 52    fault proxies the tests put in front of it (``standin_proxy``)
base + 100 + i         party i's Kubernetes API emulator
base + 200 + i         party i's KMS peer port (in the generated inventory)
base + 210 + i         party i's KMS client port
base + 220 + i         party i's KMS metrics port
base + 300 ...         simulated KMS networks of single tests
=====================  ==========================================================

``MPC_IT_PORT_BASE`` moves the block, ``MPC_IT_SANDBOX_DIR`` the state directory (default: a
new folder of the session's pytest temporary directory, so that two runs never share, or
remove, each other's state). The stand-ins are started once per session, from empty, and
stopped at the end. The suites share them: run them in one process (no ``-n`` split across them, or
``--dist loadgroup``: they carry ``xdist_group("standins")``).

Ownership: the stand-ins belong to the pytest process that started them (``SANDBOX_OWNER_PID``,
set in tests/conftest.py): if the session ends without its ``down`` (a timeout's SIGTERM, a
SIGKILL), they stop by themselves within a second (sandbox/owned.py). Ports stay
clear of a ``make sandbox`` (4566, 6441+, 12001+, 12101+, 9647+):
tests/integration/test_sandbox_interrupt.py checks every test module's port constants.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
PORT_BASE = int(os.environ.get("MPC_IT_PORT_BASE", "28000"))
AWS_PORT = PORT_BASE
KUBE_BASE_PORT = PORT_BASE + 100
PROXY_PORTS = (PORT_BASE + 50, PORT_BASE + 51, PORT_BASE + 52)
SIM_PORT_BASE = PORT_BASE + 300
SANDBOX_DIR = os.environ.get("MPC_IT_SANDBOX_DIR", "")  # "": a folder of this session's own
# Environment that must not leak from the caller into the playbooks (they pick endpoints,
# credentials and retry settings of their own).
SCRUB = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE",
         "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
         "SANDBOX_DIR", "SANDBOX_AWS_PORT", "SANDBOX_KUBE_BASE_PORT", "SANDBOX_AWS_ENDPOINT",
         "ANSIBLE_STDOUT_CALLBACK", "ANSIBLE_CALLBACKS_ENABLED", "ANSIBLE_VERBOSITY")


# The order the suites are handed to the two xdist workers: the longest first, so that the short
# ones fill the gaps at the end (``--dist loadgroup`` gives out groups in collection order). The
# teardown suite runs after the upgrade suite: they share party 1's deploy, and it removes it.
SUITE_ORDER = ("test_first_start.py", "test_sandbox_e2e.py", "test_molecule.py", "test_ee_requirements.py",
               "test_bad_input.py",
               "test_faults.py", "test_security.py", "test_upgrade_party.py", "test_teardown_party.py")


def pytest_collection_modifyitems(items):
    def rank(item):
        name = os.path.basename(str(item.fspath))
        return SUITE_ORDER.index(name) if name in SUITE_ORDER else len(SUITE_ORDER)

    items.sort(key=rank)  # stable: within a suite, the collection order stays


# ---------------------------------------------------------------------------------- playbooks
class PlaybookRun(object):
    """The outcome of one ansible-playbook run."""

    def __init__(self, args, rc, stdout, stderr, seconds):
        self.args, self.rc, self.stdout, self.stderr, self.seconds = args, rc, stdout, stderr, seconds

    @property
    def output(self):
        return self.stdout + self.stderr

    def json(self):
        """The ansible.posix.json callback document (runs made with ``callback="json"``)."""
        return json.loads(self.stdout[self.stdout.index("{"):])

    def recap(self):
        """{host: {ok, changed, failed, ...}} from the PLAY RECAP of the default callback."""
        rows = {}
        for host, fields in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", self.stdout, re.M):
            rows[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", fields)}
        return rows

    def tail(self, chars=6000):
        return self.output[-chars:]

    def __repr__(self):
        return "<ansible-playbook %s: rc %s in %.1fs>" % (" ".join(self.args), self.rc, self.seconds)


def base_env(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    env.update({
        "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "PATH": BIN + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra or {})
    return env


def run_playbook(playbook, inventory, *args, env=None, callback=None, verbosity=0, timeout=900):
    """``ansible-playbook playbooks/<playbook> -i <inventory> <args>`` from the repository root."""
    cmd = [os.path.join(BIN, "ansible-playbook"), os.path.join(ROOT, "playbooks", playbook), "-i", str(inventory)]
    cmd += [str(a) for a in args]
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    run_env = dict(env) if env is not None else base_env()
    if callback:
        run_env["ANSIBLE_STDOUT_CALLBACK"] = callback
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=timeout)
    return PlaybookRun(cmd[1:], proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


# ---------------------------------------------------------------------------------- inventory
def write_sandbox_inventory(dest):
    """inventories/sandbox, copied with the KMS ports moved into this suite's block."""
    shutil.copytree(os.path.join(ROOT, "inventories", "sandbox"), dest)
    path = os.path.join(dest, "group_vars", "all", "network.yml")
    with open(path) as fh:
        doc = yaml.safe_load(fh)
    # These suites deploy one party alone: with TLS on it would wait for its peers' CAs (the first
    # start of a network with TLS is tests/integration/test_first_start.py).
    doc["mpc_network"]["tls_mode"] = "none"
    for party in doc["mpc_network"]["parties"]:
        pid = party["party_id"]
        party["peer_port"] = PORT_BASE + 200 + pid
        party["client_port"] = PORT_BASE + 210 + pid
        party["metrics_port"] = PORT_BASE + 220 + pid
        party["public_vault_url"] = re.sub(r":\d+/", ":%d/" % AWS_PORT, party["public_vault_url"])
    with open(path, "w") as fh:
        fh.write("---\n# inventories/sandbox with this suite's ports (tests/integration/conftest.py)\n")
        yaml.safe_dump(doc, fh, sort_keys=False)
    # These suites sign with the credentials of their environment (the -vvv test injects its own):
    # no per-party profile, which amazon.aws refuses next to access keys.
    with open(os.path.join(dest, "group_vars", "all", "suite.yml"), "w") as fh:
        fh.write("---\n# tests/integration/conftest.py: credentials from the environment\nmpc_aws_profile: \"\"\n")
    return dest


def load_network(inventory):
    with open(os.path.join(str(inventory), "group_vars", "all", "network.yml")) as fh:
        return yaml.safe_load(fh)["mpc_network"]


@pytest.fixture(scope="session")
def sandbox_inventory(tmp_path_factory):
    return write_sandbox_inventory(str(tmp_path_factory.mktemp("inventory") / "sandbox"))


# ---------------------------------------------------------------------------------- stand-ins
class Standins(object):
    """The stand-ins of this session: addresses, environment, request counters."""

    def __init__(self, directory, inventory):
        self.dir = directory
        self.inventory = inventory
        self.aws_url = "https://127.0.0.1:%d" % AWS_PORT
        self.tls = os.path.join(directory, "tls")
        self.ca_bundle = os.path.join(self.tls, "ca.pem")
        self.cert = os.path.join(self.tls, "server.pem")
        self.key = os.path.join(self.tls, "server-key.pem")
        self.parties = len(load_network(inventory)["parties"])

    def sandbox_env(self):
        return {"SANDBOX_DIR": self.dir, "SANDBOX_AWS_PORT": str(AWS_PORT),
                "SANDBOX_KUBE_BASE_PORT": str(KUBE_BASE_PORT)}

    def env(self, extra=None):
        """What ``. $SANDBOX_DIR/env`` exports, on top of a clean environment, signing with moto's default
        account (party 1's in the sandbox inventory) instead of the per-party profiles."""
        values = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        with open(os.path.join(self.dir, "env")) as fh:
            for line in fh:
                match = re.match(r"export (\w+)=(.*)$", line.strip())
                if match:
                    values[match.group(1)] = match.group(2)
        values.update(extra or {})
        return base_env(values)

    def tool(self, *args, timeout=180):
        return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "sandbox")] + list(args), cwd=ROOT,
                              env=base_env(self.sandbox_env()), capture_output=True, text=True, timeout=timeout)

    def kube_url(self, party):
        return "http://127.0.0.1:%d" % (KUBE_BASE_PORT + party)

    # -- request counters (the stand-ins' own logs) --
    def aws_requests(self):
        """Requests moto logged (one werkzeug line each), without the readiness probes."""
        try:
            with open(os.path.join(self.dir, "logs", "aws.log"), errors="replace") as fh:
                return sum(1 for line in fh if 'HTTP/1.1"' in line and "/moto-api/" not in line)
        except FileNotFoundError:
            return 0

    def kube_requests(self):
        """{party: requests its API server logged, without tools/sandbox's probes}."""
        counts = {}
        for party in range(1, self.parties + 1):
            try:
                with open(os.path.join(self.dir, "logs", "kube-p%d.requests.log" % party), errors="replace") as fh:
                    counts[party] = sum(1 for line in fh if line.strip() and "sandbox-probe" not in line)
            except FileNotFoundError:
                counts[party] = 0
        return counts

    def counts(self):
        return {"aws": self.aws_requests(), "kube": self.kube_requests()}

    # -- clients straight to the stand-ins (not through any proxy) --
    def boto3(self, service):
        import boto3

        return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
            service, endpoint_url=self.aws_url, region_name="eu-west-1", verify=self.ca_bundle)

    def kube_get(self, party, path):
        request = urllib.request.Request(self.kube_url(party) + path, headers={"User-Agent": "mpc-integration-tests"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read().decode())


@pytest.fixture(scope="session")
def standins(sandbox_inventory, tmp_path_factory):
    """``tools/sandbox up`` from empty on this suite's ports; ``down`` at the end of the session."""
    directory = SANDBOX_DIR or str(tmp_path_factory.mktemp("faults-sandbox"))
    stand = Standins(directory, sandbox_inventory)
    stand.tool("down")  # a leftover of an interrupted session (stopped only if its records name it)
    shutil.rmtree(directory, ignore_errors=True)
    up = stand.tool("up", "--inventory", sandbox_inventory, "--timeout", "120")
    if up.returncode != 0:
        stand.tool("down")
        pytest.fail("tools/sandbox up failed (rc %d):\n%s%s" % (up.returncode, up.stdout, up.stderr))
    try:
        yield stand
    finally:
        stand.tool("down")


# ------------------------------------------------------------------------- party 1 deployed
PARTY1_PORT_BASE = int(os.environ.get("OPS_TEST_PARTY1_PORT_BASE", "27000"))


@pytest.fixture(scope="session")
def party1_sandbox(tmp_path_factory):
    """Party 1 of a 4-party network deployed alone, shared by the upgrade and teardown suites.

    ``deploy_party.yml --limit party1`` (PRSS skipped: it needs all four parties), its connector
    database, and in its private vault the PRSS EpochData object the KMS node writes (put here at
    the path the node uses). The suites carry ``xdist_group("party1_lifecycle")`` and run in the
    order SUITE_ORDER gives: upgrade first, then teardown, which removes the party. Stand-ins on
    ports 27000-27404 (``OPS_TEST_PARTY1_PORT_BASE``).
    """
    from tests.integration.standins import PARTY1_EPOCH_KEY, Sandbox

    sb = Sandbox(str(tmp_path_factory.mktemp("party1-sandbox")), PARTY1_PORT_BASE)
    start = time.monotonic()
    with sb:
        sb.deploy()
        rc, out, _ = sb.playbook("tests/integration/files/connector_db_sandbox.yml", "--limit", "party1")
        assert rc == 0, out[-6000:]
        sb.client("s3").put_object(Bucket="kms-ops-p1-private", Key=PARTY1_EPOCH_KEY, Body=b"epoch data of party 1")
        sb.setup_seconds = time.monotonic() - start
        yield sb
