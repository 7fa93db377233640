"""Helpers for tests that use the simulator: ports, a moto server process, networks, playbooks.

A node does not start without its signing key (like the server): ``node_with_keys()`` and
``SimNetwork`` run the simulator's key generation first, as the StatefulSet's init container
does in the sandbox.

Ports: everything started here lives in 22000-22799, one block of 200 per pytest-xdist
worker (``port_block()``), so parallel workers never collide.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

from . import network as net
from .config import Vault, apply_env_overrides, vault_of
from .keygen import generate_keys
from .node import SimNode
from .storage import VaultStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}


def port_block():
    """First port of this pytest worker's block of 200 (22000, 22200, 22400, 22600)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    return 22000 + 200 * (index % 4)


def wait_port(port, host="127.0.0.1", timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on %s:%d after %.0fs" % (host, port, timeout))


class MotoProcess(object):
    """The AWS stand-in (moto server with sandbox/aws_standin.py) in its own process."""

    def __init__(self, port):
        self.port = port
        self.proc = None
        self.url = "http://127.0.0.1:%d" % port

    def start(self):
        root = ROOT
        cmd = [sys.executable, "-m", "sandbox.aws_standin", "-H", "127.0.0.1", "-p", str(self.port)]
        from sandbox.procs import die_with_parent  # it ends with the test process, however that ends

        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=self.log,
                                     preexec_fn=die_with_parent())
        # moto's import alone takes seconds; on a loaded 2-core machine (make test's two workers and
        # their deploys) more than 15 s was seen: wait longer, and say why when it has exited.
        try:
            wait_port(self.port, timeout=60.0)
        except RuntimeError as exc:
            exited = self.proc.poll() is not None
            self.log.seek(0)
            detail = self.log.read().decode(errors="replace")[-2000:] if exited else "still starting"
            self.stop()
            raise RuntimeError("%s (AWS stand-in: %s)" % (exc, detail))
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None
        if getattr(self, "log", None) is not None:
            self.log.close()
            self.log = None

    def client(self, service="s3"):
        import boto3
        from botocore.config import Config

        return boto3.client(service, endpoint_url=self.url, region_name="eu-west-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            config=Config(s3={"addressing_style": "path"}))


def keygen_config(server_config, env=None, tls_subject=None):
    """The key-generation config (kms-gen-keys) of the node that ``server_config`` describes.

    Same vault and [aws] sections, ``[keygen]``, and ``[threshold] my_id`` + ``tls_subject``
    (default: the node's own mpc_identity, else its address).
    """
    config = apply_env_overrides(server_config, env)
    doc = {"keygen": {}}
    for section in ("aws", "public_vault", "private_vault"):
        if section in config:
            doc[section] = config[section]
    threshold = config.get("threshold") or {}
    my_id = threshold.get("my_id")
    if my_id is not None:
        doc["threshold"] = {"my_id": int(my_id)}
        if tls_subject is None:
            for peer in threshold.get("peers") or []:
                if int(peer["party_id"]) == int(my_id):
                    tls_subject = peer.get("mpc_identity") or peer["address"]
        doc["threshold"]["tls_subject"] = tls_subject or "party%d" % int(my_id)
    return doc


def ram_stores(server_config):
    """{"private", "public"} vault stores for a node whose vaults are RAM (shared by keygen and node)."""
    aws = server_config.get("aws") or {}
    return {kind: VaultStore(vault_of(server_config, kind + "_vault") or Vault("ram"), aws.get("region"),
                             aws.get("s3_endpoint")) for kind in ("private", "public")}


def node_with_keys(server_config, env=None, stores=None, **kwargs):
    """A SimNode for ``server_config`` after running key generation for it (as the init container would)."""
    if stores is None and all((vault_of(server_config, s) or Vault("ram")).kind == "ram"
                              for s in ("private_vault", "public_vault")):
        stores = ram_stores(server_config)
    generate_keys(keygen_config(server_config, env), stores=stores)
    return SimNode(server_config, env=env, stores=stores, **kwargs)


class SimNetwork(object):
    """n simulated nodes on 127.0.0.1 (peer port peer_base + i, client port client_base + i)."""

    def __init__(self, n, peer_base, client_base, name="sim", storage="ram", s3_endpoint=None,
                 modes=None, **node_kwargs):
        self.network = net.make_network(n, name=name, peer_base=peer_base, client_base=client_base)
        self.configs = net.network_configs(self.network, storage=storage, s3_endpoint=s3_endpoint)
        self.modes = modes or {}
        self.node_kwargs = node_kwargs
        self.nodes = {}
        self.stores = {pid: ram_stores(cfg) for pid, cfg in self.configs.items()} if storage == "ram" else {}

    def node(self, party_id):
        return self.nodes[party_id]

    def start(self, parties=None):
        for pid in parties or sorted(self.configs):
            if pid in self.nodes:
                continue
            kwargs = dict(self.node_kwargs)
            kwargs.update(mode=self.modes.get(pid, "full"))
            self.nodes[pid] = node_with_keys(self.configs[pid], stores=self.stores.get(pid), **kwargs).start()
        return self

    def stop(self, parties=None):
        for pid in list(parties or sorted(self.nodes)):
            node = self.nodes.pop(pid, None)
            if node:
                node.stop()

    def endpoints(self, parties=None):
        return [{"party_id": int(p["party_id"]), "address": "127.0.0.1:%d" % p["client_port"]}
                for p in self.network["parties"] if parties is None or int(p["party_id"]) in parties]

    def create_buckets(self, s3):
        for cfg in self.configs.values():
            for vault in ("private_vault", "public_vault"):
                bucket = cfg[vault]["storage"]["s3"]["bucket"]
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})


def run_playbook(text, extra_vars=None, env=None, check=False, timeout=300):
    """Run a playbook (YAML text) with ansible-playbook; returns (rc, json callback result, stdout)."""
    handle, path = tempfile.mkstemp(suffix=".yml", prefix="kms-test-")
    with os.fdopen(handle, "w") as fh:
        fh.write(text)
    exe = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    cmd = [exe, "-i", "localhost,", "-c", "local", path]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    run_env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="json",
                   ANSIBLE_PYTHON_INTERPRETER=sys.executable, **AWS_ENV)
    run_env.update(env or {})
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=timeout)
    finally:
        os.unlink(path)
    try:
        data = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        data = None
    return proc.returncode, data, proc.stdout + proc.stderr


def task_results(data, task_name):
    """The result dict of the task named ``task_name`` on localhost (json callback output)."""
    for play in data["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == task_name:
                return task["hosts"]["localhost"]
    raise KeyError(task_name)
