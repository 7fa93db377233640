"""The enclave mode of the configuration: what kms_config and kms_workload refuse, and what they render.

[threshold.tls.auto] is Nitro attestation: only a server inside an enclave can do it. An enclave
party's threshold.toml carries [enclave_bootstrap] and aws.role_arn, its backup vault is encrypted
(its own asymmetric key, or custodian secret sharing) and its key-generation file is built next to
it. The roles run through playbooks/render_party.yml (inventories/sandbox, party 1, and the
documented inventories/party1), so the checks happen exactly where an operator would meet them,
without any cloud or cluster; the backup key is created by nitro_nodegroup against moto.
"""
import hashlib
import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_config_schema as schema
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import network_model as nm
from tests.support.playbooks import ROOT, repo_playbook

CA = "-----BEGIN CERTIFICATE-----\nMIIBfake%d\n-----END CERTIFICATE-----\n"
CAS = {str(i): CA % i for i in range(1, 5)}


def render(tmp_path, **extra):
    """Render party 1 of the sandbox with extra vars; return (return code, output, render dir)."""
    out = tmp_path / "render"
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps(extra))
    code, output = repo_playbook("render_party.yml", "inventories/sandbox", "--limit", "party1",
                                 "-e", "render_dir=%s" % out, "-e", "@%s" % extra_file, timeout=600)
    return code, output, out


def test_kms_config_refuses_tls_auto_without_an_enclave(tmp_path):
    code, output, out = render(tmp_path, kms_config_tls_mode="auto", kms_config_peer_ca_pems=CAS)
    assert code == 2, output[-3000:]
    assert ("kms_config: kms_config_tls_mode: auto ([threshold.tls.auto], Nitro attestation against "
            "trusted_releases) needs kms_config_enclave true, and it is false") in output
    assert not (out / "party1" / "threshold.toml").exists()  # refused before anything is written


def test_kms_workload_refuses_tls_auto_without_an_enclave(tmp_path):
    code, output, out = render(tmp_path, kms_workload_tls_mode="auto", kms_config_peer_ca_pems=CAS)
    assert code == 2, output[-3000:]
    assert ("kms_workload: kms_workload_tls_mode: auto ([threshold.tls.auto], Nitro attestation) needs "
            "kms_workload_enclave true") in output
    assert not (out / "party1" / "manifests" / "10-statefulset-kms-core.yaml").exists()


def test_the_workload_cannot_disagree_with_the_configuration_on_enclave_mode(tmp_path):
    # The configuration is built without an enclave (the sandbox); forcing the workload into
    # enclave mode would start an enclave without its AWS KMS keychain.
    code, output, out = render(tmp_path, kms_workload_enclave=True, kms_config_peer_ca_pems=CAS)
    assert code == 2, output[-3000:]
    assert ("kms_workload: kms_workload_enclave: the workload's enclave mode (true) must be the one threshold.toml "
            "was built for (kms_config_enclave, published as kms_config_facts.enclave: false)") in output
    assert not (out / "party1" / "manifests" / "10-statefulset-kms-core.yaml").exists()


def test_the_workload_follows_the_configuration_into_enclave_mode(tmp_path):
    # Only kms_config_enclave is set: render_party.yml wires the workload's mode from kms_config_facts.
    code, output, out = render(
        tmp_path, kms_config_enclave=True, kms_config_tls_mode="auto", kms_config_peer_ca_pems=CAS,
        kms_config_kms_key_id="arn:aws:kms:eu-west-1:100000000001:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        kms_config_role_arn="arn:aws:iam::100000000001:role/kms-sandbox-p1")
    assert code == 0, output[-3000:]
    sts = (out / "party1" / "manifests" / "10-statefulset-kms-core.yaml").read_text()
    assert "core-service-enclave" in sts and "nitro-cli run-enclave" in sts


# --- enclave bootstrap, the party's role, the encrypted backup, the key-generation file ----------

MOTO_PORT_BASE = 23310  # this module's moto server (conftest.moto_url)
KEY_ARN = "arn:aws:kms:eu-west-1:100000000001:key/1234abcd-12ab-34cd-56ef-1234567890ab"
BACKUP_KEY_ARN = "arn:aws:kms:eu-west-1:100000000001:key/mrk-0123456789abcdef0123456789abcdef"
ROLE_ARN = "arn:aws:iam::100000000001:role/kms-sandbox-p1"
ENCLAVE = {"kms_config_enclave": True, "kms_config_tls_mode": "auto", "kms_config_kms_key_id": KEY_ARN,
           "kms_config_peer_ca_pems": CAS}
CONFIG_PLAY = """
- hosts: mpc_parties
  gather_facts: false
  roles:
    - threshold_kms.mpc_party.preflight
    - role: threshold_kms.mpc_party.kms_config
      vars:
        kms_config_render_dir: "{{ render_dir }}"
"""


def render_config(tmp_path, **extra):
    """Only preflight and kms_config (faster than the whole render); returns (code, output, party dir)."""
    playbook = tmp_path / "config.yml"
    playbook.write_text(CONFIG_PLAY)
    out = tmp_path / "config"
    extra_file = tmp_path / "config-extra.json"
    extra_file.write_text(json.dumps(extra))
    code, output = repo_playbook(str(playbook), "inventories/sandbox", "--limit", "party1",
                                 "-e", "render_dir=%s" % out, "-e", "@%s" % extra_file)
    return code, output, out


def test_enclave_mode_needs_the_party_role(tmp_path):
    code, output, out = render_config(tmp_path, **ENCLAVE)
    assert code == 2, output[-3000:]
    assert "kms_config_role_arn: required in enclave mode, the party's IAM role ARN" in output
    assert not (out / "threshold.toml").exists()
    code, output, out = render_config(tmp_path, kms_config_role_arn="arn:aws:iam::100000000001:user/x", **ENCLAVE)
    assert code == 2 and "kms_config_role_arn: required in enclave mode" in output, output[-3000:]


def test_backup_vault_without_its_key_is_refused_naming_the_field(tmp_path):
    code, output, out = render_config(tmp_path, mpc_backup_bucket="kms-sandbox-p1-backup",
                                      kms_config_role_arn=ROLE_ARN, **ENCLAVE)
    assert code == 2, output[-3000:]
    # the keychain defaults to aws_kms, whose key is the backup vault's own asymmetric AWS KMS key
    assert ("kms_config: kms_config_backup_kms_key_id: required with the backup vault kms-sandbox-p1-backup and "
            "kms_config_backup_keychain aws_kms") in output
    assert not (out / "threshold.toml").exists()


def test_preflight_refuses_a_plaintext_backup_in_enclave_mode(tmp_path):
    code, output, _ = render_config(tmp_path, mpc_enclave=True, mpc_backup_bucket="kms-sandbox-p1-backup",
                                    mpc_backup_keychain="none")
    assert code == 2, output[-3000:]
    assert "mpc_backup_keychain: none is refused with a backup vault (mpc_backup_bucket 'kms-sandbox-p1-backup')" in output


def test_custodian_backup_keychain(tmp_path):
    code, output, out = render_config(tmp_path, mpc_backup_bucket="kms-sandbox-p1-backup",
                                      mpc_backup_keychain="secret_sharing", kms_config_role_arn=ROLE_ARN, **ENCLAVE)
    assert code == 0, output[-3000:]
    text = (out / "threshold.toml").read_text()
    assert "[backup_vault.keychain.secret_sharing]" in text
    doc = schema.validate_text(text, environment="testnet")
    assert doc["backup_vault"] == {"storage": {"s3": {"bucket": "kms-sandbox-p1-backup", "prefix": "BACKUP-p1"}},
                                   "keychain": {"secret_sharing": {}}}


@pytest.mark.parametrize("keychain, bucket, enclave, ok", [
    ("aws_kms", "b-backup", True, True),
    ("secret_sharing", "b-backup", True, True),
    ("none", "b-backup", True, False),
    ("none", "b-backup", False, True),   # the sandbox: no enclave-protected private vault
    ("none", "", True, True),            # no backup vault at all
    ("plaintext", "", False, False),
])
def test_network_model_backup_keychain(keychain, bucket, enclave, ok):
    network = yaml.safe_load(open(os.path.join(ROOT, "inventories", "sandbox", "group_vars", "all", "network.yml")))["mpc_network"]
    party = {"mpc_party_id": 1, "mpc_cluster_name": "c1", "mpc_private_bucket": "b-private", "mpc_public_bucket":
             network["parties"][0]["public_bucket"], "mpc_backup_bucket": bucket, "mpc_backup_keychain": keychain,
             "mpc_enclave": enclave}
    if ok:
        assert nm.validate(network, party)["backup_keychain"] == keychain
    else:
        with pytest.raises(nm.NetworkError) as info:
            nm.validate(network, party)
        assert [e for e in info.value.errors if e.startswith("mpc_backup_keychain: ")], info.value.errors


def test_threads_are_left_to_the_server_unless_both_are_set(tmp_path):
    code, output, out = render_config(tmp_path, kms_config_peer_ca_pems=CAS)
    assert code == 0, output[-3000:]
    doc = schema.parse_toml((out / "threshold.toml").read_text())
    assert "internal_config" not in doc
    assert doc["rate_limiter_conf"] == {"bucket_size": 50000, "pub_decrypt": 1, "user_decrypt": 1, "crsgen": 100,
                                        "preproc": 50000, "keygen": 1000, "new_epoch": 25}
    code, output, out = render_config(tmp_path, kms_config_peer_ca_pems=CAS, kms_config_num_tokio_threads=10,
                                      kms_config_num_rayon_threads=40)
    assert code == 0, output[-3000:]
    doc = schema.parse_toml((out / "threshold.toml").read_text())
    assert doc["internal_config"] == {"num_tokio_threads": 10, "num_rayon_threads": 40}
    code, output, _ = render_config(tmp_path, kms_config_peer_ca_pems=CAS, kms_config_num_tokio_threads=10)
    assert code == 2 and "kms_config_num_tokio_threads / kms_config_num_rayon_threads: both null" in output


def test_the_documented_render_of_an_enclave_party(tmp_path):
    """Done-when of the configuration part: inventories/party1 rendered with the values a deploy wires."""
    values = {
        "kms_config_kms_key_id": KEY_ARN,
        "kms_workload_irsa_role_arn": "arn:aws:iam::100000000001:role/zama-testnet-party1-kms-party",
        "kms_config_backup_kms_key_id": BACKUP_KEY_ARN,
        "kms_config_peer_ca_pems": {str(i): CA % i for i in range(1, 14)},
        "kms_workload_peer_ingress_cidrs": ["10.0.0.0/19"],
        "kms_workload_peer_lb_subnets": ["subnet-0a1", "subnet-0b2"],
    }
    values_file = tmp_path / "party1-deployed.yml"
    values_file.write_text(yaml.safe_dump(values))
    out = tmp_path / "render"
    code, output = repo_playbook("render_party.yml", "inventories/party1", "-e", "render_dir=%s" % out,
                                 "-e", "@%s" % values_file, timeout=900)
    assert code == 0, output[-5000:]
    party = out / "party1"
    warnings = []
    doc = schema.validate_text((party / "threshold.toml").read_text(), environment="testnet", warnings=warnings)
    assert warnings == []
    assert doc["enclave_bootstrap"] == {"web_identity_token_port": 4100}
    assert doc["aws"]["role_arn"] == values["kms_workload_irsa_role_arn"]
    assert doc["private_vault"]["keychain"] == {"aws_kms": {"root_key_id": KEY_ARN, "root_key_spec": "symm"}}
    assert doc["backup_vault"] == {"storage": {"s3": {"bucket": "zama-testnet-p1-backup", "prefix": "BACKUP-p1"}},
                                   "keychain": {"aws_kms": {"root_key_id": BACKUP_KEY_ARN, "root_key_spec": "asymm"}}}
    assert "internal_config" not in doc  # the enclave's vCPUs size the pools
    assert "tls_cert" in doc["threshold"]["peers"][12] and "auto" in doc["threshold"]["tls"]

    # The key-generation file: the node's [aws] and vaults, [keygen], its id and subject, the bootstrap.
    keygen_text = (party / "keygen.toml").read_text()
    keygen = schema.validate_text(keygen_text, environment="testnet", kind="keygen")
    assert keygen == {
        "keygen": {},
        "aws": doc["aws"],
        "public_vault": doc["public_vault"],
        "private_vault": doc["private_vault"],
        "enclave_bootstrap": {"web_identity_token_port": 4100},
        "threshold": {"my_id": 1, "tls_subject": doc["threshold"]["peers"][0]["mpc_identity"]},
    }
    configmap = yaml.safe_load((party / "manifests" / "02-configmap-kms-core-keygen-config.yaml").read_text())
    assert configmap["data"] == {"keygen.toml": keygen_text}
    assert configmap["metadata"]["annotations"]["checksum/config"] == hashlib.sha256(keygen_text.encode()).hexdigest()


KEYGEN_PLAY = """
- hosts: mpc_parties
  gather_facts: false
  roles:
    - threshold_kms.mpc_party.preflight
  tasks:
    - name: Key-generation configuration only
      ansible.builtin.include_role:
        name: threshold_kms.mpc_party.kms_config
        tasks_from: keygen
      vars:
        kms_config_render_dir: "{{ render_dir }}"
    - name: Show the facts
      ansible.builtin.copy:
        content: "{{ kms_config_keygen_facts | to_json }}"
        dest: "{{ render_dir }}/facts.json"
        mode: "0600"
"""


def test_keygen_entry_point_needs_no_peer_ca(tmp_path):
    # The sandbox runs TLS manual: the main entry point would refuse without every peer's CA;
    # the key-generation file must not need any (phase 1 of a new network).
    playbook = tmp_path / "keygen.yml"
    playbook.write_text(KEYGEN_PLAY)
    out = tmp_path / "out"
    code, output = repo_playbook(str(playbook), "inventories/sandbox", "--limit", "party3", "-e", "render_dir=%s" % out)
    assert code == 0, output[-3000:]
    assert sorted(os.listdir(out)) == ["facts.json", "keygen.toml", "manifests"]
    assert os.listdir(out / "manifests") == ["02-configmap-kms-core-keygen-config.yaml"]
    facts = json.loads((out / "facts.json").read_text())
    text = (out / "keygen.toml").read_text()
    assert facts["toml"] == text and facts["path"] == str(out / "keygen.toml")
    assert (facts["configmap_name"], facts["configmap_key"]) == ("kms-core-keygen-config", "keygen.toml")
    assert facts["checksum"] == hashlib.sha256(text.encode()).hexdigest()
    doc = schema.validate_text(text, kind="keygen")
    assert doc["threshold"] == {"my_id": 3, "tls_subject": "party3.sandbox.kms.local"}
    assert "enclave_bootstrap" not in doc and "role_arn" not in doc["aws"]  # no enclave in the sandbox


# --- the backup vault key, against moto ----------------------------------------------------------
KEY_PLAY = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/threshold_kms.mpc_party.aws:
      endpoint_url: "{{ moto_url }}"
      region: eu-west-1
  tasks:
    - name: The party key and the backup key
      ansible.builtin.include_role:
        name: threshold_kms.mpc_party.nitro_nodegroup
        tasks_from: key_policy
    - name: Write the facts
      ansible.builtin.copy:
        content: "{{ nitro_nodegroup_facts | to_json }}"
        dest: "{{ facts_path }}"
        mode: "0600"
"""
PCR0 = "ab" * 48


def run_key_play(tmp_path, moto_url, **extra):
    playbook = tmp_path / "key.yml"
    playbook.write_text(KEY_PLAY)
    facts = tmp_path / "facts.json"
    variables = dict({"moto_url": moto_url, "facts_path": str(facts), "mpc_cluster_name": "kms-unit-p1", "mpc_party_id": 1,
                      "mpc_network": {"trusted_releases": [{"pcr0": PCR0}]}}, **extra)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="eu-west-1")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", "-e", "ansible_python_interpreter=%s" % sys.executable,
                           "-e", json.dumps(variables), str(playbook)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    changed = int(output.rsplit("changed=", 1)[1].split()[0])
    return json.loads(facts.read_text()), changed


def test_backup_key_is_asymmetric_attested_and_idempotent(tmp_path, moto_url):
    import boto3

    facts, _ = run_key_play(tmp_path, moto_url, mpc_backup_bucket="kms-unit-p1-backup")
    assert facts["backup_kms_key_alias"] == "alias/kms-unit-p1-party-backup"
    assert facts["backup_kms_key_arn"].startswith("arn:aws:kms:eu-west-1:") and facts["backup_kms_key_arn"] != facts["kms_key_arn"]
    kms = boto3.client("kms", endpoint_url=moto_url, region_name="eu-west-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    meta = kms.describe_key(KeyId=facts["backup_kms_key_alias"])["KeyMetadata"]
    assert meta["Arn"] == facts["backup_kms_key_arn"]
    assert (meta["KeySpec"], meta["KeyUsage"], meta["MultiRegion"]) == ("RSA_4096", "ENCRYPT_DECRYPT", True)
    assert kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"]
    policy = json.loads(kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    role = "arn:aws:iam::%s:role/kms-unit-p1-kms-party" % meta["AWSAccountId"]
    assert sorted(by_sid["PartyRoleReadsPublicKeyAndEncrypts"]["Action"]) == ["kms:DescribeKey", "kms:Encrypt", "kms:GetPublicKey"]
    decrypt = by_sid["PartyRoleDecryptsOnlyInsideAttestedEnclave"]
    assert decrypt["Condition"] == {"ArnEquals": {"aws:PrincipalArn": role},
                                    "StringEqualsIgnoreCase": {"kms:RecipientAttestation:ImageSha384": [PCR0]}}
    # only the attested statement grants decryption
    others = [a for s in policy["Statement"] if s["Sid"] != decrypt["Sid"] for a in s["Action"]]
    assert not [a for a in others if a.startswith(("kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncrypt", "kms:CreateGrant"))]

    again, changed = run_key_play(tmp_path, moto_url, mpc_backup_bucket="kms-unit-p1-backup")
    assert changed == 0 and again["backup_kms_key_arn"] == facts["backup_kms_key_arn"]


def test_no_backup_key_without_a_backup_bucket_or_with_custodian_backup(tmp_path, moto_url):
    for extra in ({"mpc_cluster_name": "kms-unit-p2"},
                  {"mpc_cluster_name": "kms-unit-p3", "mpc_backup_bucket": "b", "mpc_backup_keychain": "secret_sharing"}):
        facts, _ = run_key_play(tmp_path, moto_url, **extra)
        assert (facts["backup_kms_key_arn"], facts["backup_kms_key_alias"]) == ("", "")
        assert facts["kms_key_arn"].startswith("arn:aws:kms:")
