"""The kms_config_check module, run by Ansible (ad-hoc, check mode) on files and text."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

VALID = """
[service]
listen_address = "0.0.0.0"
listen_port = 50100
timeout_secs = 360
grpc_max_message_size = 104857600

[aws]
region = "eu-west-1"

[public_vault.storage.s3]
bucket = "kms-p1-public"
prefix = "PUB-p1"

[private_vault.storage.s3]
bucket = "kms-p1-private"
prefix = "PRIV-p1"

[threshold]
listen_address = "0.0.0.0"
listen_port = 50001
my_id = 1
threshold = 1
dec_capacity = 10000
min_dec_cache = 6000
decryption_mode = "NoiseFloodSmall"
""" + "".join("""
[[threshold.peers]]
party_id = %d
address = "p%d"
port = 50001
""" % (i, i) for i in range(1, 5))


def run_module(args, check=True):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_NOCOLOR="1")
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-i", "localhost,", "-c", "local",
           "-e", "ansible_python_interpreter=%s" % sys.executable,
           "-m", "threshold_kms.mpc_party.kms_config_check", "-a", json.dumps(args)]
    if check:
        cmd.append("--check")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    result = json.loads(proc.stdout)
    return proc.returncode, result["plays"][0]["tasks"][0]["hosts"]["localhost"]


@pytest.fixture
def toml_file(tmp_path):
    path = tmp_path / "threshold.toml"
    path.write_text(VALID)
    return path


def test_valid_file_in_check_mode(toml_file):
    rc, result = run_module({"path": str(toml_file), "environment": "mainnet"})
    assert rc == 0, result
    assert result["changed"] is False
    assert result["summary"]["n"] == 4 and result["summary"]["t"] == 1 and result["summary"]["my_id"] == 1


def test_invalid_content_fails_naming_paths_and_rules():
    broken = VALID.replace("threshold = 1\n", "threshold = 2\n").replace('decryption_mode = "NoiseFloodSmall"',
                                                                            'decryption_mode = "Fast"\nstray = 1')
    rc, result = run_module({"content": broken}, check=False)
    assert rc == 2
    assert result["failed"] is True
    assert "breaks 3 rule(s)" in result["msg"]
    paths = sorted(e.split(":")[0] for e in result["errors"])
    assert paths == ["threshold.decryption_mode", "threshold.peers", "threshold.stray"]
    assert any("threshold = 2 needs 7 peers, got n = 4" in e for e in result["errors"])


def test_mock_enclave_refused_on_mainnet_only():
    text = "mock_enclave = true\n" + VALID
    assert run_module({"content": text, "environment": "testnet"})[0] == 0
    rc, result = run_module({"content": text, "environment": "mainnet"})
    assert rc == 2 and result["errors"] == ["mock_enclave: must never be true on mainnet (it exists for tests only) (policy)"]
    # the server's own verdict: it starts
    assert run_module({"content": text, "environment": "mainnet", "policy": False})[0] == 0


def test_warnings_are_returned_and_shown():
    text = VALID.replace("my_id = 1\n", "my_id = 9\n") + "\n[telemetry.batch]\nexport_timeout_ms = 5000\n"
    rc, result = run_module({"content": text})
    assert rc == 0, result
    assert result["warnings_found"] == [
        "threshold.my_id: greater than the number of peers n = 4 (the server only warns)",
        "telemetry.batch.export_timeout_ms: unknown key; the server ignores it in [telemetry.batch]"]
    assert result["warnings"] == result["warnings_found"]  # module.warn: shown by Ansible


KEYGEN = """
[keygen]

[aws]
region = "eu-west-1"

[public_vault.storage.s3]
bucket = "kms-p1-public"
prefix = "PUB-p1"

[private_vault.storage.s3]
bucket = "kms-p1-private"
prefix = "PRIV-p1"

[threshold]
my_id = 1
tls_subject = "p1"
"""


def test_keygen_kind():
    rc, result = run_module({"content": KEYGEN, "kind": "keygen"})
    assert rc == 0, result
    assert result["summary"]["kind"] == "keygen" and result["summary"]["my_id"] == 1
    # a key-generation file is no server configuration, and the other way round
    rc, result = run_module({"content": KEYGEN})
    assert rc == 2 and "service: required key is missing" in result["errors"]
    assert "The KMS server configuration (content) breaks" in result["msg"]
    rc, result = run_module({"content": VALID, "kind": "keygen"})
    assert rc == 2 and "keygen: required key is missing" in result["errors"]


def test_unreadable_file(tmp_path):
    rc, result = run_module({"path": str(tmp_path / "missing.toml")})
    assert rc == 2 and "Cannot read the configuration" in result["msg"]
