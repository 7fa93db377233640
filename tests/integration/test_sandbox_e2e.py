"""The sandbox network end to end, as `make sandbox` runs it and as AWX runs a job.

1. `tools/sandbox up` on ports of this test (the KMS nodes use the ports of inventories/sandbox).
2. The deploy of all 4 parties through ansible-runner with a private data directory, the way
   AWX runs a job template (project, inventory, env/envvars).
3. A second deploy with ansible-playbook: every party reports changed=0.
4. check_network.yml: the per-party table, every party Optimal, PRSS present in each vault.
5. `tools/sandbox down` stops every process it started.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import boto3
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
INVENTORY = os.path.join(ROOT, "inventories", "sandbox")
EPOCH = "08" + "0" * 61 + "1"


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
    up = subprocess.run([sys.executable, "tools/sandbox", "up", "--inventory", "inventories/sandbox"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    for line in (state / "env").read_text().splitlines():
        if line.startswith("export "):
            key, value = line[len("export "):].split("=", 1)
            env[key] = value
    yield env, state
    down = subprocess.run([sys.executable, "tools/sandbox", "down"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    pids = [p for p in (state / "pids").glob("*.pid")]
    for pid_file in pids:
        pid = int(pid_file.read_text())
        assert not os.path.exists("/proc/%d" % pid) or "Z" in open("/proc/%d/stat" % pid).read().split(")")[-1][:3], \
            "tools/sandbox down left %s running" % pid_file.name


def test_sandbox_network_end_to_end(sandbox, tmp_path):
    env, state = sandbox
    import ansible_runner

    # --- 2. the AWX way: ansible-runner with a private data directory --------------------
    pdd = tmp_path / "runner"
    (pdd / "env").mkdir(parents=True)
    os.symlink(ROOT, pdd / "project")
    shutil.copytree(INVENTORY, pdd / "inventory")
    passed = {k: env[k] for k in env if k.startswith(("SANDBOX_", "AWS_", "ANSIBLE_CONFIG"))}
    (pdd / "env" / "envvars").write_text(json.dumps(passed))
    result = ansible_runner.run(private_data_dir=str(pdd), playbook="playbooks/deploy_party.yml",
                                quiet=True, timeout=1800,
                                envvars={"PATH": env["PATH"]})
    stdout = result.stdout.read()
    assert result.status == "successful" and result.rc == 0, stdout[-6000:]
    stats = result.stats
    assert sorted(stats["ok"]) == ["party1", "party2", "party3", "party4"]
    assert not stats["failures"] and not stats["dark"], stats
    assert all(stats["changed"].get(h, 0) > 0 for h in stats["ok"]), "the first deploy created nothing?"

    # --- 3. second deploy: nothing to change ---------------------------------------------
    again = subprocess.run([os.path.join(BIN, "ansible-playbook"), "playbooks/deploy_party.yml", "-i", INVENTORY],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert again.returncode == 0, again.stdout[-6000:] + again.stderr[-2000:]
    rows = recap(again.stdout)
    assert sorted(rows) == ["party1", "party2", "party3", "party4"], again.stdout[-2000:]
    assert {h: r["changed"] for h, r in rows.items()} == {h: 0 for h in rows}, again.stdout[-6000:]

    # --- 4. the network is healthy and PRSS is in every private vault ---------------------
    check = subprocess.run([os.path.join(BIN, "ansible-playbook"), "playbooks/check_network.yml", "-i", INVENTORY],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout[-4000:]
    for party in range(1, 5):
        assert re.search(r"party%d\s+127\.0\.0\.1:%d\s+Optimal\s+True\s+4/4" % (party, 50100 + party), check.stdout), \
            check.stdout[-3000:]
    s3 = boto3.client("s3", endpoint_url=env["SANDBOX_AWS_ENDPOINT"], region_name="eu-west-1",
                      aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                      verify=env.get("AWS_CA_BUNDLE"))
    for party in range(1, 5):
        head = s3.head_object(Bucket="kms-sandbox-p%d-private" % party, Key="PRIV-p%d/EpochData/%s" % (party, EPOCH))
        assert head["ContentLength"] > 0
