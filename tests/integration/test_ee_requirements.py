"""The execution environment's declared requirements, and nothing else, run a party's deploy.

No container engine runs here, so the image is rebuilt the way its Containerfile builds it, in a
fresh virtualenv instead of an image (the stages of ``ansible-builder create``'s context):

1. base: ansible-core and ansible-runner as the EE pins them (ANSIBLE_INSTALL_REFS);
2. galaxy: the collections of requirements.yml into a collections directory of their own; Galaxy
   is not reachable from the test machines, so the copies the ``ansible`` package ships are used,
   each checked against requirements.yml's version range;
3. builder: the context's own introspect script merges the EE's Python requirements with those
   the installed collections declare; pip installs that list into the virtualenv;
4. final: the collection tarball ``make build`` writes, installed with ``--no-deps``.

Then the sandbox deploy of party 1 (``--limit party1``, PRSS skipped: it needs all four parties)
runs through that virtualenv's ansible-runner, with that interpreter for the modules, that
collections directory only (not the repository's .collections link) and a PATH without the
development virtualenv: a package or collection the EE forgets makes the deploy fail.

And the token source every kubeconfig the collection writes calls: ``aws eks get-token`` of the
virtualenv, with dummy keys (presigning is offline), prints an ExecCredential.

Stand-ins on ports MPC_EE_PORT_BASE (default 31000): AWS base, Kubernetes APIs base+100+i, KMS
nodes base+200+i / +300+i / +400+i. pip needs the package index (or a local mirror / pip cache).
"""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from tests.integration.standins import Sandbox

pytestmark = pytest.mark.xdist_group("ee_requirements")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
PORT_BASE = int(os.environ.get("MPC_EE_PORT_BASE", "31000"))
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def run(cmd, timeout=900, **kwargs):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs)
    assert proc.returncode == 0, "%s failed (rc %d):\n%s\n%s" % (" ".join(map(str, cmd)), proc.returncode,
                                                               proc.stdout[-4000:], proc.stderr[-4000:])
    return proc


def containerfile_arg(text, name):
    match = re.search(r'^ARG %s="([^"]*)"' % name, text, re.M)
    assert match, "the Containerfile sets no %s" % name
    return match.group(1)


@pytest.fixture(scope="module")
def ee_venv(tmp_path_factory):
    """The virtualenv, collections directory and timings of the EE rebuilt outside a container."""
    work = tmp_path_factory.mktemp("ee")
    seconds = {}
    started = time.monotonic()
    # the build context, as `make build` makes it
    build = work / "build"
    run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path", build, ROOT])
    tarballs = list(build.glob("*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    tarballs[0].rename(build / "threshold_kms-mpc_party.tar.gz")  # as `make build` names it
    with open(os.path.join(ROOT, "execution-environment.yml")) as fh:
        ee = yaml.safe_load(fh)
    shutil.copy(os.path.join(ROOT, "execution-environment.yml"), work)
    for key in ("galaxy", "python", "system"):
        if isinstance(ee["dependencies"].get(key), str):
            shutil.copy(os.path.join(ROOT, ee["dependencies"][key]), work)
    context = work / "context"
    run([os.path.join(BIN, "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", context,
         "--output-filename", "Containerfile"], cwd=work)
    containerfile = (context / "Containerfile").read_text()
    seconds["context"] = time.monotonic() - started

    # 1. base: a fresh interpreter with the EE's ansible-core and ansible-runner
    started = time.monotonic()
    venv = work / "venv"
    python = getattr(sys, "_base_executable", sys.executable)
    run([python, "-m", "venv", venv])
    vbin = venv / "bin"
    run([vbin / "pip", "install", "-q", "--disable-pip-version-check"] + containerfile_arg(containerfile, "ANSIBLE_INSTALL_REFS").split())

    # 2. galaxy: requirements.yml's collections, from the copies the `ansible` package ships
    collections = work / "collections"
    import ansible_collections

    shipped = next(p for p in ansible_collections.__path__ if os.path.isdir(os.path.join(p, "amazon")))
    with open(context / "_build" / "requirements.yml") as fh:
        wanted = yaml.safe_load(fh)["collections"]
    for entry in wanted:
        namespace, name = entry["name"].split(".")
        source = os.path.join(shipped, namespace, name)
        with open(os.path.join(source, "MANIFEST.json")) as fh:
            version = json.load(fh)["collection_info"]["version"]
        assert version in SpecifierSet(entry.get("version", "")), (entry, version)
        shutil.copytree(source, collections / "ansible_collections" / namespace / name, symlinks=True)

    # 3. builder: the context's introspection of those collections + the EE's Python requirements
    pip_list = work / "ee-pip-requirements.txt"
    introspect = [sys.executable, context / "_build" / "scripts" / "introspect.py", "introspect", collections,
                  "--user-pip", context / "_build" / "requirements.txt", "--write-pip", pip_list]
    if (context / "_build" / "exclude-requirements.txt").exists():
        introspect += ["--exclude-pip-reqs", context / "_build" / "exclude-requirements.txt"]
    run(introspect)
    run([vbin / "pip", "install", "-q", "--disable-pip-version-check", "-r", pip_list])

    # 4. final: this collection from its tarball, as the final stage installs it
    # (outside the repository: its ansible.cfg would show ansible-galaxy the .collections link)
    run([vbin / "ansible-galaxy", "collection", "install", build / "threshold_kms-mpc_party.tar.gz", "--no-deps", "-p", collections], cwd=work,
        env={"PATH": str(vbin) + ":" + SYSTEM_PATH, "HOME": str(work), "ANSIBLE_COLLECTIONS_PATH": str(collections)})
    seconds["venv"] = time.monotonic() - started
    return {"dir": work, "bin": vbin, "collections": collections, "galaxy": [entry["name"] for entry in wanted], "pip_list": pip_list.read_text(), "seconds": seconds,
            "env": {"PATH": str(vbin) + ":" + SYSTEM_PATH, "HOME": str(work / "home"), "LANG": "C.UTF-8",
                    "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False"}}


def test_the_virtualenv_holds_the_ee_and_nothing_of_the_development_one(ee_venv):
    env = ee_venv["env"]
    os.makedirs(env["HOME"], exist_ok=True)
    listed = run([ee_venv["bin"] / "ansible-galaxy", "collection", "list", "--format", "json"], env=env, cwd=ee_venv["dir"])
    found = {name: path for path, names in json.loads(listed.stdout).items() for name in names
             if not name.startswith("ansible.")}  # ansible-core's own (ansible._protomatter)
    assert set(found) == set(ee_venv["galaxy"]) | {"threshold_kms.mpc_party"}, found
    assert {"amazon.aws", "kubernetes.core"} <= set(found), found
    assert all(path.startswith(str(ee_venv["collections"])) for path in found.values()), found
    frozen = run([ee_venv["bin"] / "pip", "freeze", "--disable-pip-version-check"]).stdout.lower()
    for absent in ("ansible==", "moto", "kmock", "pytest"):
        assert not re.search(r"^%s" % re.escape(absent), frozen, re.M), "%s is in the EE virtualenv" % absent
    assert re.search(r"^awscli==", frozen, re.M), frozen


def test_aws_eks_get_token_prints_an_exec_credential(ee_venv):
    env = dict(ee_venv["env"], AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
               AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    os.makedirs(env["HOME"], exist_ok=True)
    # the arguments roles/eks_cluster/templates/kubeconfig.yaml.j2 writes
    proc = run([ee_venv["bin"] / "aws", "--region", "eu-west-2", "eks", "get-token", "--cluster-name", "kms-p1",
                "--output", "json"], env=env, timeout=120)
    credential = json.loads(proc.stdout)
    assert credential["kind"] == "ExecCredential"
    assert credential["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    token = credential["status"]["token"]
    assert token.startswith("k8s-aws-v1."), token
    encoded = token[len("k8s-aws-v1."):]
    url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    parsed = urllib.parse.urlparse(url)
    query = urllib.parse.parse_qs(parsed.query)
    assert parsed.hostname == "sts.eu-west-2.amazonaws.com", url
    assert query["Action"] == ["GetCallerIdentity"]
    assert query["X-Amz-Credential"][0].startswith("AKIAIOSFODNN7EXAMPLE/") and "/eu-west-2/sts/" in query["X-Amz-Credential"][0]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0]


def test_the_sandbox_deploy_of_one_party_runs_on_the_ee_requirements(ee_venv):
    with tempfile.TemporaryDirectory(prefix="ee-sandbox-") as tmp:
        sandbox = Sandbox(tmp, PORT_BASE)
        try:
            sandbox.up()
            # an AWX job: a private data directory with the project, the inventory and env/envvars
            pdd = os.path.join(tmp, "runner")
            os.makedirs(os.path.join(pdd, "env"))
            os.symlink(ROOT, os.path.join(pdd, "project"))
            shutil.copytree(sandbox.inventory, os.path.join(pdd, "inventory"))
            passed = {k: v for k, v in sandbox.env.items() if k.startswith(("SANDBOX_", "AWS_"))}
            passed.update({k: v for k, v in ee_venv["env"].items() if k.startswith("ANSIBLE_")})
            with open(os.path.join(pdd, "env", "envvars"), "w") as fh:
                json.dump(passed, fh)
            env = dict(ee_venv["env"])
            os.makedirs(env["HOME"], exist_ok=True)
            started = time.monotonic()
            proc = subprocess.run([str(ee_venv["bin"] / "ansible-runner"), "run", pdd, "-p", "playbooks/deploy_party.yml",
                                   "--limit", "party1", "--cmdline", "--skip-tags prss_init"],
                                  env=env, capture_output=True, text=True, timeout=1800)
            seconds = time.monotonic() - started
            out = proc.stdout + proc.stderr
            assert proc.returncode == 0, out[-8000:]
            recap = dict(re.findall(r"^(party\d)\s+:\s+(ok=.*)$", out, re.M))
            assert list(recap) == ["party1"], out[-3000:]
            assert re.search(r"failed=0\b", recap["party1"]) and re.search(r"unreachable=0\b", recap["party1"]), recap
            assert int(re.search(r"changed=(\d+)", recap["party1"]).group(1)) > 0, recap
            # ansible-runner ran the virtualenv's ansible-playbook (whose interpreter the sandbox
            # inventory gives the modules: ansible_playbook_python)
            commands = [json.load(open(os.path.join(pdd, "artifacts", ident, "command")))["command"]
                        for ident in os.listdir(os.path.join(pdd, "artifacts"))]
            assert [c[0] for c in commands] == ["ansible-playbook"], commands
            assert shutil.which("ansible-playbook", path=env["PATH"]) == str(ee_venv["bin"] / "ansible-playbook")
            # party 1's node runs on its cluster: its StatefulSet is in the Kubernetes stand-in
            import urllib.request

            url = "http://127.0.0.1:%d/apis/apps/v1/namespaces/kms/statefulsets" % (PORT_BASE + 101)
            with urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "mpc-ee-test"}), timeout=10) as resp:
                items = json.loads(resp.read().decode()).get("items", [])
            assert items, "no StatefulSet on party 1's cluster after the deploy"
            print("EE requirements: context %.0fs, virtualenv %.0fs, deploy %.0fs"
                  % (ee_venv["seconds"]["context"], ee_venv["seconds"]["venv"], seconds))
        finally:
            sandbox.down()
