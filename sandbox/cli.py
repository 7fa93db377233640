"""``tools/sandbox``: start, stop and inspect the local stand-ins.

    tools/sandbox up [--inventory inventories/sandbox] [--only aws,kube] [--parties N] [--crds monitoring]
    tools/sandbox down [--only aws,kube]
    tools/sandbox status
    tools/sandbox publish [--inventory inventories/sandbox]

Services (127.0.0.1 only):
  aws   moto in server mode on $SANDBOX_AWS_PORT (default 4566); werkzeug logs every request
        line to logs/aws.log, and logs/aws-requests.log names each one's service, action and caller
  kube  one process hosting party i's Kubernetes API emulator on $SANDBOX_KUBE_BASE_PORT + i
        (default 6440 + i) and the controllers that start a KMS node simulator when party i's
        StatefulSet is applied; API requests logged to logs/kube-p<i>.requests.log

Latency mode: SANDBOX_AWS_LATENCY=<seconds per AWS minute> keeps the resources that take time on
AWS in their transitional state for that long (sandbox/aws_latency.py), so waits are measurable.

Accounts: with an inventory, every party gets its own AWS account in the stand-in (the
network definition's ``aws_account_id``): ``up`` creates an IAM user and access key in each
account (moto maps a key to the account it was created in) and writes them, one profile
``party<i>`` per party with its region, to aws/credentials and aws/config. A party's controller
(``mpc_aws_profile``) and its load balancer controller use only that profile.

State lives in $SANDBOX_DIR (default .sandbox/ at the repository root): pids/, logs/,
state/kube.json, kube/kubeconfig-p<i>.yaml, aws/ and env (``. .sandbox/env`` points at the
credential files (or exports dummy credentials when there are no per-party accounts), the
region and the SANDBOX_* ports). ``up`` is idempotent and waits until every
service answers; ``down`` stops exactly the process groups recorded in pids/ and removes
nothing else.

Processes: every stand-in runs in a process group of its own, recorded in pids/<service>.json
(pid, process group, start time and boot id: a pid the kernel has since given to another
program is never signalled; nothing is ever looked up by name). ``up`` checks every port it
will need first (AWS, the Kubernetes API ports and, with an inventory, each party's KMS peer
and client ports) and fails at once naming a busy port and the process holding it. If ``up``
fails or is interrupted (SIGINT, SIGTERM, SIGHUP) it stops what it started. With
``SANDBOX_OWNER_PID`` set (test fixtures set their own pid), the stand-ins stop by themselves
once that process has ended, however it ended; without it they run until ``down``, which also
stops what an interrupted earlier run left behind. Emulator state is in memory: ``down`` then ``up`` starts from empty clusters
(the AWS stand-in forgets everything as well).

Publish: ``publish`` plays the network coordinators (sandbox/coordinator.py): it asks each party's
account which endpoint service the party offers and writes the network definition with those
service names to $SANDBOX_DIR/network-overrides.yml, for the next runs (``-e @<file>``). ``up``
removes that file when it starts the AWS stand-in afresh (the services it named are gone).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from . import aws_latency, coordinator, procs

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("aws", "kube")
HOST = "127.0.0.1"
MODULES = {"aws": "sandbox.aws_standin", "kube": "sandbox.kube_process"}


class SandboxError(Exception):
    pass


# ---------------------------------------------------------------------- settings
class Settings:
    def __init__(self) -> None:
        raw = os.environ.get("SANDBOX_DIR")
        self.dir = Path(raw).resolve() if raw else ROOT / ".sandbox"
        self.aws_port = int(os.environ.get("SANDBOX_AWS_PORT", "4566"))
        self.kube_base_port = int(os.environ.get("SANDBOX_KUBE_BASE_PORT", "6440"))

    @property
    def pids(self) -> Path:
        return self.dir / "pids"

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    @property
    def aws_url(self) -> str:
        # HTTPS, as AWS itself: the vault buckets' TLS-only policies (aws:SecureTransport) hold here
        # too. SANDBOX_AWS_SCHEME=http gives plain HTTP for suites that never touch a TLS-only vault.
        return f"{self.aws_scheme}://{HOST}:{self.aws_port}"

    @property
    def aws_scheme(self) -> str:
        scheme = os.environ.get("SANDBOX_AWS_SCHEME", "https")
        if scheme not in ("http", "https"):
            raise SandboxError(f"SANDBOX_AWS_SCHEME must be http or https (got {scheme!r})")
        return scheme

    @property
    def tls_dir(self) -> Path:
        return self.dir / "tls"

    @property
    def ca_bundle(self) -> Path:
        return self.tls_dir / "ca.pem"

    def kube_url(self, party: int) -> str:
        return f"http://{HOST}:{self.kube_base_port + party}"

    def pid_file(self, service: str) -> Path:
        return self.pids / f"{service}.pid"

    def record_file(self, service: str) -> Path:
        """The process record of ``service`` (procs.identity + command and owner)."""
        return self.pids / f"{service}.json"

    def record(self, service: str) -> dict | None:
        try:
            record = json.loads(self.record_file(service).read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and "pid" in record else None

    def forget(self, service: str) -> None:
        self.pid_file(service).unlink(missing_ok=True)
        self.record_file(service).unlink(missing_ok=True)

    def log_file(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    @property
    def credentials_file(self) -> Path:
        return self.dir / "aws" / "credentials"

    @property
    def config_file(self) -> Path:
        return self.dir / "aws" / "config"

    def kube_state(self) -> dict | None:
        try:
            return json.loads((self.dir / "state" / "kube.json").read_text())
        except (OSError, ValueError):
            return None

    def kube_meta(self) -> dict:
        try:
            return json.loads((self.dir / "state" / "kube-process.json").read_text())
        except (OSError, ValueError):
            return {}


def read_network(inventory: str) -> dict:
    """mpc_network from ``<inventory>/group_vars/all/network.yml`` (cwd first, then the repo)."""
    for base in (Path.cwd(), ROOT):
        path = (base / inventory / "group_vars" / "all" / "network.yml")
        if path.is_file():
            doc = yaml.safe_load(path.read_text()) or {}
            network = doc.get("mpc_network")
            if not isinstance(network, dict) or not isinstance(network.get("n"), int):
                raise SandboxError(f"{path}: mpc_network.n is missing or not an integer")
            return network
    raise SandboxError(f"{inventory}: no group_vars/all/network.yml (use --parties N)")


# ---------------------------------------------------------------------- processes
def running_pid(settings: Settings, service: str) -> int | None:
    """The pid recorded for ``service`` if that very process (pid and start time) is alive."""
    record = settings.record(service)
    if record is None or not procs.same_process(record):
        return None
    return int(record["pid"])


port_free = procs.port_free


def owner_from_env() -> dict | None:
    """The process the stand-ins belong to (``SANDBOX_OWNER_PID``), or None: they run until ``down``."""
    raw = os.environ.get("SANDBOX_OWNER_PID", "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise SandboxError(f"SANDBOX_OWNER_PID must be a process id (got {raw!r})")
    owner = procs.identity(int(raw))
    if owner is None:
        raise SandboxError(f"SANDBOX_OWNER_PID: no process {raw} is running")
    return owner


def needed_ports(settings: Settings, services: list[str], parties: int, network: dict) -> dict[int, str]:
    """{port: what} of every listener ``up`` will open for ``services`` that are not running yet."""
    ports: dict[int, str] = {}
    if "aws" in services and not running_pid(settings, "aws"):
        ports[settings.aws_port] = "the AWS stand-in (SANDBOX_AWS_PORT)"
    if "kube" in services and not running_pid(settings, "kube"):
        for i in range(1, parties + 1):
            ports[settings.kube_base_port + i] = f"party {i}'s Kubernetes API (SANDBOX_KUBE_BASE_PORT + {i})"
        for party in network.get("parties") or []:
            for key in ("peer_port", "client_port"):
                if isinstance(party.get(key), int):
                    ports.setdefault(party[key], f"party {party.get('party_id')}'s KMS node {key} (the inventory's mpc_network)")
    return ports


def check_ports(settings: Settings, services: list[str], parties: int, network: dict) -> None:
    busy = [f"{procs.describe_port(port)}: needed for {what}"
            for port, what in sorted(needed_ports(settings, services, parties, network).items())
            if not port_free(port)]
    if busy:
        raise SandboxError("ports in use, nothing started:\n  " + "\n  ".join(busy)
                           + "\nstop that process (`tools/sandbox down` if it is a sandbox of this folder) or "
                             "choose other ports (SANDBOX_AWS_PORT, SANDBOX_KUBE_BASE_PORT, the inventory's KMS ports)")


def answers(url: str, timeout: float = 1.0, cafile: Path | None = None) -> bool:
    """True if ``url`` gives any HTTP answer. The user agent marks these probes in request logs."""
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context(cafile=str(cafile)) if cafile else ssl.create_default_context()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "sandbox-probe"}),
                                    timeout=timeout, context=context):
            return True
    except urllib.error.HTTPError:
        return True  # an HTTP error is an answer
    except (OSError, ValueError):
        return False


def ensure_tls(settings: Settings) -> tuple[Path, Path]:
    """A private CA and a server certificate for 127.0.0.1, made once per sandbox folder."""
    cert, key = settings.tls_dir / "server.pem", settings.tls_dir / "server-key.pem"
    if cert.is_file() and key.is_file() and settings.ca_bundle.is_file():
        return cert, key
    import datetime
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "threshold_kms sandbox CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .sign(ca_key, hashes.SHA256()))
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv_cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])).issuer_name(ca_name)
                .public_key(srv_key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=365))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST)),
                                                            x509.DNSName("localhost")]), critical=False)
                .sign(ca_key, hashes.SHA256()))
    settings.tls_dir.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    settings.ca_bundle.write_bytes(ca_cert.public_bytes(pem))
    cert.write_bytes(srv_cert.public_bytes(pem))
    key.write_bytes(srv_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key.chmod(0o600)
    return cert, key


def child_env(settings: Settings, region: str) -> dict:
    env = dict(os.environ)
    env.update({
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": region,
        "SANDBOX_DIR": str(settings.dir), "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])),
    })
    for var in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE"):
        env.pop(var, None)
    # the per-party profiles (ensure_accounts) for the load balancer controller of each party
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(settings.credentials_file)
    env["AWS_CONFIG_FILE"] = str(settings.config_file)
    if settings.aws_scheme == "https":
        env["AWS_CA_BUNDLE"] = str(settings.ca_bundle)
    return env


def party_accounts(network: dict) -> list[tuple[int, str, str]]:
    """(party id, account id, region) of every party of the network definition that names an account."""
    rows = []
    for party in sorted(network.get("parties") or [], key=lambda p: int(p.get("party_id", 0))):
        account = str(party.get("aws_account_id") or "")
        if account.isdigit() and len(account) == 12:
            rows.append((int(party["party_id"]), account, str(party.get("region") or "eu-west-1")))
    return rows


def _read_profiles(path: Path) -> dict:
    import configparser

    parser = configparser.ConfigParser()
    parser.read(path)
    return {name: dict(parser[name]) for name in parser.sections()}


def ensure_accounts(settings: Settings, accounts: list[tuple[int, str, str]]) -> dict[int, str]:
    """One IAM user and access key per party, in the party's own account of the AWS stand-in,
    written as profile ``party<i>`` (credentials and region). Keys that still map to their
    account are kept (``up`` is idempotent); the stand-in forgets them when it restarts, and
    they are made again. Returns {party id: profile name}."""
    import configparser

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    verify = str(settings.ca_bundle) if settings.aws_scheme == "https" else None
    known = _read_profiles(settings.credentials_file) if settings.credentials_file.is_file() else {}
    credentials, config, profiles = configparser.ConfigParser(), configparser.ConfigParser(), {}
    for party, account, region in accounts:
        profile = f"party{party}"
        keys = known.get(profile) or {}
        owner = None
        if keys.get("aws_access_key_id"):
            try:
                owner = boto3.client("sts", endpoint_url=settings.aws_url, region_name=region, verify=verify,
                                     aws_access_key_id=keys["aws_access_key_id"],
                                     aws_secret_access_key=keys["aws_secret_access_key"]).get_caller_identity()["Account"]
            except (BotoCoreError, ClientError, KeyError):
                owner = None
        if owner != account:
            iam = boto3.client("iam", endpoint_url=settings.aws_url, region_name=region, verify=verify,
                               aws_access_key_id="sandbox-bootstrap", aws_secret_access_key="sandbox-bootstrap")
            # moto's way of naming the account of a request that has no key of that account yet
            iam.meta.events.register("before-sign.iam.*", lambda request, _account=account, **_:
                                     request.headers.__setitem__("x-moto-account-id", _account))
            try:
                iam.create_user(UserName="sandbox-operator")
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "EntityAlreadyExists":
                    raise SandboxError(f"aws: cannot create the operator of party {party} in account {account}: {exc}")
            new = iam.create_access_key(UserName="sandbox-operator")["AccessKey"]
            keys = {"aws_access_key_id": new["AccessKeyId"], "aws_secret_access_key": new["SecretAccessKey"]}
        credentials[profile] = {"aws_access_key_id": keys["aws_access_key_id"],
                                "aws_secret_access_key": keys["aws_secret_access_key"]}
        config[f"profile {profile}"] = {"region": region}
        profiles[party] = profile
    settings.credentials_file.parent.mkdir(parents=True, exist_ok=True)
    settings.credentials_file.parent.chmod(0o700)
    for path, parser in ((settings.credentials_file, credentials), (settings.config_file, config)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            parser.write(handle)
    return profiles


def spawn(settings: Settings, service: str, command: list[str], env: dict,
          owner: dict | None = None) -> subprocess.Popen:
    """Start ``python -m <module> <args>`` (``command``) in a process group of its own, under
    sandbox.owned (it stops when ``owner`` ends), and record it in pids/."""
    settings.logs.mkdir(parents=True, exist_ok=True)
    settings.pids.mkdir(parents=True, exist_ok=True)
    python, flag, module, *args = command
    assert flag == "-m", command
    wrapped = [python, "-m", "sandbox.owned", procs.format_owner(owner) if owner else "-", module, *args]
    with open(settings.log_file(service), "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(command)}\n".encode())
        log.flush()
        proc = subprocess.Popen(wrapped, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    record = procs.identity(proc.pid) or {"pid": proc.pid, "pgid": proc.pid, "start": procs.start_ticks(proc.pid),
                                          "boot": procs.boot_id()}
    record.update(service=service, command=command, owner=owner)
    tmp = settings.record_file(service).with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, settings.record_file(service))
    settings.pid_file(service).write_text(f"{proc.pid}\n")
    return proc


def stop_service(settings: Settings, service: str, timeout: float = 15.0) -> int | None:
    """Stop the recorded process group of ``service`` (only if it is still the recorded one) and
    forget it. Returns the pid it stopped, None when nothing of it ran."""
    record = settings.record(service)
    stopped = None
    if record is not None and procs.stop_record(record, timeout):
        stopped = int(record["pid"])
    settings.forget(service)
    return stopped


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------------- commands
class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_SPAWNING = {"now": False, "deferred": None}


def _raise_interrupted(signum: int, _frame) -> None:
    if _SPAWNING["now"]:  # between the start of a process and its record: interrupt right after
        _SPAWNING["deferred"] = signum
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def _recording():
    """No interruption until the process started here is recorded (in pids/ and in ``started``)."""
    _SPAWNING.update(now=True, deferred=None)
    try:
        yield
    finally:
        _SPAWNING["now"] = False
    if _SPAWNING["deferred"] is not None:
        raise Interrupted(_SPAWNING["deferred"])


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    """``_up``, stopping what it started when it fails or is interrupted (SIGINT, SIGTERM, SIGHUP)."""
    started: dict[str, subprocess.Popen] = {}
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    rc = 1
    try:
        rc = _up(args, settings, started)
        return rc
    except Interrupted as exc:
        print(f"sandbox: up interrupted ({exc}): stopping what it started", file=sys.stderr)
        rc = 128 + exc.signum
        return rc
    finally:
        if rc != 0:
            for sig in previous:  # a second signal must not cut the clean-up short
                signal.signal(sig, signal.SIG_IGN)
            for service, proc in started.items():
                if stop_service(settings, service) is None:
                    settings.forget(service)
                with contextlib.suppress(ChildProcessError, OSError):
                    proc.wait(timeout=1)
                print(f"{service}: stopped (pid {proc.pid})", file=sys.stderr)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _up(args: argparse.Namespace, settings: Settings, started: dict[str, subprocess.Popen]) -> int:
    services = _only(args.only)
    try:
        latency = aws_latency.scale_from_env()
    except ValueError as exc:
        raise SandboxError(str(exc)) from None
    if latency and "aws" in services:
        print(f"aws: latency mode, {latency:g} s per AWS minute (an EKS cluster is CREATING for "
              f"{aws_latency.delay_of('eks_cluster', latency):g} s); applies to an AWS stand-in started now")
    if args.parties:
        parties, network = args.parties, {}
    else:
        network = read_network(args.inventory)
        parties = network["n"]
    party_list = network.get("parties") or []
    regions = [str(p.get("region", "eu-west-1")) for p in sorted(party_list, key=lambda p: p.get("party_id", 0))]
    region = regions[0] if regions else os.environ.get("AWS_DEFAULT_REGION", "eu-west-1")
    env = child_env(settings, region)
    owner = owner_from_env()
    check_ports(settings, services, parties, network)
    accounts = party_accounts(network)
    profiles: dict[int, str] = {}

    for service in services:
        if service == "kube" and accounts and "aws" in services:
            # the accounts exist before the load balancer controller uses them
            problems = wait_ready(settings, ["aws"], parties, args.timeout, started)
            if not problems:
                profiles = ensure_accounts(settings, accounts)
        elif service == "kube" and accounts and settings.credentials_file.is_file():
            known = _read_profiles(settings.credentials_file)
            profiles = {party: f"party{party}" for party, _, _ in accounts if f"party{party}" in known}
        pid = running_pid(settings, service)
        if pid:
            print(f"{service}: already running (pid {pid})")
            if service == "kube":
                meta = settings.kube_meta()
                if meta.get("parties") not in (None, parties):
                    print(f"kube: note: running with {meta['parties']} parties, asked for {parties}; "
                          "run `tools/sandbox down --only kube` first to change it")
            continue
        if service == "aws":
            if not port_free(settings.aws_port):
                raise SandboxError(f"aws: {procs.describe_port(settings.aws_port)} (set SANDBOX_AWS_PORT to use another)")
            command = [sys.executable, "-m", MODULES["aws"], "-H", HOST, "-p", str(settings.aws_port)]
            if settings.aws_scheme == "https":
                cert, key = ensure_tls(settings)
                command += ["-c", str(cert), "-k", str(key)]
            # AWS managed policies (AmazonEKSClusterPolicy, ...) exist in every real account.
            env = dict(env, MOTO_IAM_LOAD_MANAGED_POLICIES="true")
            # every request by service and action (sandbox/aws_request_log.py): tools/bench.py counts them
            env["SANDBOX_AWS_REQUEST_LOG"] = str(settings.logs / "aws-requests.log")
            # a fresh AWS stand-in knows none of the endpoint services the overlay names
            stale = coordinator.overlay_path(settings.dir)
            if stale.is_file():
                stale.unlink()
                print(f"aws: starts empty; removed {stale} (run `tools/sandbox publish` after the next deploy)")
        else:
            busy = [settings.kube_base_port + i for i in range(1, parties + 1)
                    if not port_free(settings.kube_base_port + i)]
            if busy:
                raise SandboxError("kube: " + "; ".join(procs.describe_port(p) for p in busy)
                                   + " (set SANDBOX_KUBE_BASE_PORT to use others)")
            command = [sys.executable, "-m", MODULES["kube"], "--parties", str(parties),
                       "--base-port", str(settings.kube_base_port), "--state-dir", str(settings.dir),
                       "--aws-endpoint", settings.aws_url, "--regions", ",".join(regions)]
            if profiles:
                command += ["--aws-profiles", ",".join(profiles.get(i, "") for i in range(1, parties + 1))]
            if args.crds:
                command += ["--crds", args.crds]
            (settings.dir / "state").mkdir(parents=True, exist_ok=True)
            (settings.dir / "state" / "kube-process.json").write_text(json.dumps({"parties": parties}))
        with _recording():
            started[service] = spawn(settings, service, command, env, owner)
        print(f"{service}: started (pid {started[service].pid}), log {settings.log_file(service)}")

    problems = wait_ready(settings, services, parties, args.timeout, started)
    if not problems and accounts and "aws" in services and not profiles:
        profiles = ensure_accounts(settings, accounts)
    if problems:
        for service, message in problems.items():
            print(f"{service}: {message}\n--- last lines of {settings.log_file(service)}:\n"
                  f"{tail(settings.log_file(service))}", file=sys.stderr)
        return 1  # cmd_up stops everything this run started: nothing half-started is left behind
    write_env(settings, region, per_party_accounts=bool(profiles) or settings.credentials_file.is_file())
    cmd_status(args, settings)
    print(f"environment: . {settings.dir / 'env'}")
    return 0


def wait_ready(settings: Settings, services: list[str], parties: int, timeout: float,
               started: dict[str, subprocess.Popen]) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    pending = set(services)
    while pending and time.monotonic() < deadline:
        for service in list(pending):
            proc = started.get(service)
            # Our own child: ask it (its command line is not ours until it has exec'd).
            exited = proc.poll() is not None if proc is not None else not running_pid(settings, service)
            if exited:
                return {service: "exited during start-up"}
            if service == "aws":
                ok = answers(settings.aws_url + "/moto-api/", cafile=settings.ca_bundle)
            else:
                ok = all(answers(settings.kube_url(i) + "/version") for i in range(1, parties + 1))
            if ok:
                pending.discard(service)
        if pending:
            time.sleep(0.2)
    return {service: f"did not answer within {timeout:.0f}s" for service in pending}


def write_env(settings: Settings, region: str, per_party_accounts: bool = False) -> None:
    lines = ["# written by tools/sandbox up; source it: . .sandbox/env"]
    if per_party_accounts:
        # Each party's own account: its profile (mpc_aws_profile) in these files. No key in the
        # environment: amazon.aws refuses a profile together with keys.
        lines += [
            "unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE",
            f"export AWS_SHARED_CREDENTIALS_FILE={settings.credentials_file}",
            f"export AWS_CONFIG_FILE={settings.config_file}",
        ]
    else:
        lines += ["export AWS_ACCESS_KEY_ID=testing", "export AWS_SECRET_ACCESS_KEY=testing"]
    lines += [
        f"export AWS_DEFAULT_REGION={region}",
        f"export SANDBOX_DIR={settings.dir}",
        f"export SANDBOX_AWS_PORT={settings.aws_port}",
        f"export SANDBOX_KUBE_BASE_PORT={settings.kube_base_port}",
        f"export SANDBOX_AWS_ENDPOINT={settings.aws_url}",
    ]
    if settings.aws_scheme == "https":
        lines.append(f"export AWS_CA_BUNDLE={settings.ca_bundle}")
    settings.dir.mkdir(parents=True, exist_ok=True)
    (settings.dir / "env").write_text("\n".join(lines) + "\n")


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    for service in reversed(_only(args.only)):
        if settings.record(service) is None and settings.pid_file(service).is_file():
            # written by an older tools/sandbox: no start time to tell the process from a stranger
            print(f"{service}: {settings.pid_file(service)} has no process record ({service}.json): "
                  "not stopping anything by that pid; stop the process yourself if it is a stand-in")
            settings.pid_file(service).unlink(missing_ok=True)
            continue
        pid = stop_service(settings, service)
        print(f"{service}: stopped (pid {pid})" if pid else f"{service}: not running")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    rows = [("service", "pid", "address", "state")]
    all_up = True
    aws_pid = running_pid(settings, "aws")
    aws_state = ("running" if answers(settings.aws_url + "/moto-api/", cafile=settings.ca_bundle) else "not answering") if aws_pid else "stopped"
    rows.append(("aws", str(aws_pid or "-"), settings.aws_url, aws_state))
    all_up &= aws_state == "running"

    kube_pid = running_pid(settings, "kube")
    state = settings.kube_state() if kube_pid else None
    if kube_pid is None:
        rows.append(("kube", "-", f"{HOST}:{settings.kube_base_port}+i", "stopped"))
        all_up = False
    else:
        parties = (state or {}).get("parties") or [
            {"party": i, "url": settings.kube_url(i), "nodes": []}
            for i in range(1, int(settings.kube_meta().get("parties", 0)) + 1)]
        for party in parties:
            up = answers(party["url"] + "/version")
            all_up &= up
            rows.append((f"kube/party{party['party']}", str(kube_pid), party["url"], "running" if up else "not answering"))
        for party in parties:
            for node in party.get("nodes") or []:
                address = f"{HOST}:{node['client_port']}" if node.get("client_port") else "-"
                text = node["state"] + (f" ({node['error']})" if node.get("error") and node["state"] != "serving" else "")
                rows.append((f"kms/party{party['party']} {node['namespace']}/{node['name']}", str(kube_pid), address, text))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(f"state and logs: {settings.dir}")
    return 0 if all_up else 3


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    """Write the network definition with the service names every party offers (coordinator.py)."""
    import boto3

    network = read_network(args.inventory)
    if not running_pid(settings, "aws"):
        raise SandboxError("publish: the AWS stand-in is not running (`tools/sandbox up` first)")
    profiles = _read_profiles(settings.credentials_file) if settings.credentials_file.is_file() else {}
    verify = str(settings.ca_bundle) if settings.aws_scheme == "https" else None

    def client_for(party: dict):
        keys = profiles.get(f"party{party['party_id']}")
        if not keys:
            raise SandboxError(f"publish: no profile party{party['party_id']} in {settings.credentials_file} "
                               "(`tools/sandbox up --inventory ...` makes one per party)")
        return boto3.client("ec2", endpoint_url=settings.aws_url, region_name=str(party.get("region") or "eu-west-1"),
                            verify=verify, aws_access_key_id=keys["aws_access_key_id"],
                            aws_secret_access_key=keys["aws_secret_access_key"])

    path = coordinator.overlay_path(settings.dir)
    try:
        names, changed = coordinator.publish(network, client_for, path)
    except ValueError as exc:
        raise SandboxError(f"publish: {exc}")
    print(coordinator.report(names, path, changed))
    return 0


def _only(value: str | None) -> list[str]:
    if not value:
        return list(SERVICES)
    chosen = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SERVICES]
    if unknown:
        raise SandboxError(f"--only: unknown service {', '.join(unknown)} (known: {', '.join(SERVICES)})")
    return [s for s in SERVICES if s in chosen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/sandbox", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the stand-ins (idempotent) and wait until they answer")
    up.add_argument("--inventory", default="inventories/sandbox", help="inventory whose network gives the party count")
    up.add_argument("--parties", type=int, default=None, help="number of parties (overrides the inventory)")
    up.add_argument("--only", default=None, help="comma-separated subset of: aws,kube")
    up.add_argument("--crds", default="", help="CRD sets to pre-install in every cluster (monitoring)")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the services")
    down = sub.add_parser("down", help="stop every process `up` started")
    down.add_argument("--only", default=None, help="comma-separated subset of: aws,kube")
    sub.add_parser("status", help="table of services: service, pid, address, state")
    publish = sub.add_parser("publish", help="write the network definition with the service names the parties "
                                             "offer to $SANDBOX_DIR/network-overrides.yml (the coordinators' part)")
    publish.add_argument("--inventory", default="inventories/sandbox", help="inventory whose network to complete")
    args = parser.parse_args(argv)
    settings = Settings()
    try:
        return {"up": cmd_up, "down": cmd_down, "status": cmd_status,
                "publish": cmd_publish}[args.command](args, settings)
    except SandboxError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
