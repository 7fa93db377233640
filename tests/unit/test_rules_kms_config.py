"""kms_config's input rules (plugins/module_utils/rules_kms_config.py) through role_inputs.check,
with the role's real argument spec: each rule with a passing and a failing case."""

import pytest

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import role_inputs
from tests.support.role_specs import for_role

ROLE_START = {"check_mode": False, "entry_point": "main"}


spec = for_role("kms_config")


def party(pid, **extra):
    return dict({"party_id": pid, "address": "party%d.example.com" % pid, "mpc_identity": "party%d.example.com" % pid,
                 "peer_port": 50001, "client_port": 50100, "metrics_port": 9646,
                 "ca_certificate": {"source": "vault"}}, **extra)


CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
VALID = {
    "kms_config_environment": "testnet", "kms_config_threshold": 1, "kms_config_party_id": 1,
    "kms_config_parties": [party(i) for i in (1, 2, 3, 4)],
    "kms_config_tls_mode": "manual", "kms_config_peer_ca_pems": {i: CERT for i in (1, 2, 3, 4)},
    "kms_config_tls_cert_path": "/etc/kms/tls/tls.crt", "kms_config_tls_key_path": "/etc/kms/tls/tls.key",
    "kms_config_public_bucket": "kms-p1-public", "kms_config_private_bucket": "kms-p1-private",
    "kms_config_backup_bucket": "", "kms_config_prefixes": {"public": "PUB-p1", "private": "PRIV-p1", "backup": "BACKUP-p1"},
    "kms_config_enclave": True, "kms_config_kms_key_id": "arn:aws:kms:eu-west-1:123456789012:key/abc",
    "kms_config_role_arn": "arn:aws:iam::123456789012:role/kms-p1", "kms_config_enclave_web_identity_token_port": 4100,
    "kms_config_backup_keychain": "aws_kms", "kms_config_backup_kms_key_id": "",
    "kms_config_listen_address": "0.0.0.0", "kms_config_timeout_secs": 360, "kms_config_grpc_max_message_size": 104857600,
    "kms_config_dec_capacity": 10000, "kms_config_min_dec_cache": 6000, "kms_config_decryption_mode": "NoiseFloodSmall",
    "kms_config_num_sessions_preproc": None, "kms_config_core_to_core_net": {},
    "kms_config_rate_limiter": {"bucket_size": 50000, "pub_decrypt": 1, "user_decrypt": 1, "crsgen": 100,
                                "preproc": 50000, "keygen": 1000, "new_epoch": 25},
    "kms_config_num_tokio_threads": None, "kms_config_num_rayon_threads": None, "kms_config_overrides": {},
}


def problems_of(change, context=ROLE_START, entry="main", drop=()):
    """Problems of VALID with ``change``; ``drop`` leaves variables out, as preflight does with a pending one."""
    values = {k: v for k, v in dict(VALID, **change).items() if k not in drop}
    problems, _ = role_inputs.check("kms_config", spec(entry), values, dict(context))
    return problems


@pytest.mark.parametrize("change, words", [
    ({}, None),
    # the party and the network shape
    ({"kms_config_party_id": 9}, "kms_config_party_id: party 9 must appear exactly once"),
    ({"kms_config_parties": [party(i) for i in (1, 2, 3)]}, "kms_config_parties: the network must have n = 3t + 1 = 4"),
    ({"kms_config_threshold": "one"}, "kms_config_threshold: must be of type int"),
    # TLS
    ({"kms_config_tls_mode": "manual", "kms_config_tls_cert_path": "tls.crt"}, "kms_config_tls_cert_path: an absolute path"),
    ({"kms_config_tls_mode": "none", "kms_config_tls_cert_path": "tls.crt", "kms_config_enclave": False}, None),
    ({"kms_config_tls_mode": "auto", "kms_config_enclave": False}, "kms_config_tls_mode: auto"),
    ({"kms_config_tls_mode": "auto"}, None),
    ({"kms_config_tls_mode": "off"}, "kms_config_tls_mode: must be one of"),
    # the enclave
    ({"kms_config_kms_key_id": ""}, "kms_config_kms_key_id: required in enclave mode"),
    ({"kms_config_kms_key_id": "", "kms_config_enclave": False}, None),
    ({"kms_config_role_arn": "kms-p1"}, "kms_config_role_arn: required in enclave mode"),
    ({"kms_config_role_arn": "arn:aws-us-gov:iam::123456789012:role/path/kms-p1"}, None),
    ({"kms_config_role_arn": "", "kms_config_enclave": False}, None),
    ({"kms_config_enclave_web_identity_token_port": 70000},
     "kms_config_enclave_web_identity_token_port: must be at most 65535"),
    ({"kms_config_enclave_web_identity_token_port": "many"}, "kms_config_enclave_web_identity_token_port: must be of type int"),
    # the backup vault's keychain
    ({"kms_config_backup_bucket": "kms-p1-backup", "kms_config_backup_keychain": "none"},
     "kms_config_backup_keychain: with a backup vault (kms_config_backup_bucket kms-p1-backup), none is refused"),
    ({"kms_config_backup_bucket": "kms-p1-backup", "kms_config_backup_keychain": "none", "kms_config_enclave": False,
      "kms_config_kms_key_id": ""}, None),
    ({"kms_config_backup_bucket": "kms-p1-backup"}, "kms_config_backup_kms_key_id: required with the backup vault"),
    ({"kms_config_backup_bucket": "kms-p1-backup", "kms_config_backup_kms_key_id": "arn:aws:kms:eu-west-1:1:key/b"}, None),
    ({"kms_config_backup_bucket": "kms-p1-backup", "kms_config_backup_keychain": "secret_sharing"}, None),
    ({"kms_config_backup_keychain": "plain"}, "kms_config_backup_keychain: must be one of"),
    # buckets and prefixes
    ({"kms_config_private_bucket": ""}, "kms_config_private_bucket: required"),
    ({"kms_config_prefixes": {"public": "PUB-p1"}}, "kms_config_prefixes.private: required"),
    ({"kms_config_backup_bucket": "kms-p1-backup", "kms_config_backup_keychain": "secret_sharing",
      "kms_config_prefixes": {"public": "PUB-p1", "private": "PRIV-p1"}}, "kms_config_prefixes.backup: required"),
    # server settings, by the strict server schema
    ({"kms_config_timeout_secs": 0}, "kms_config_timeout_secs: must be at least 1 (got 0) (server key service.timeout_secs)"),
    ({"kms_config_timeout_secs": "six"}, "kms_config_timeout_secs: must be of type int"),
    ({"kms_config_grpc_max_message_size": 2 ** 31}, "kms_config_grpc_max_message_size: must be at most 2147483647"),
    ({"kms_config_listen_address": ""}, "kms_config_listen_address: must not be empty"),
    ({"kms_config_min_dec_cache": 20000}, "kms_config_min_dec_cache: must not exceed threshold.dec_capacity"),
    ({"kms_config_num_sessions_preproc": 70000}, "kms_config_num_sessions_preproc: must be at most 65535"),
    ({"kms_config_num_sessions_preproc": 12}, None),
    ({"kms_config_core_to_core_net": {"message_limit": 0}}, "kms_config_core_to_core_net: must be at least 1"),
    ({"kms_config_core_to_core_net": {"mesage_limit": 1}}, "kms_config_core_to_core_net: unknown key"),
    ({"kms_config_core_to_core_net": {"message_limit": 70}}, None),
    ({"kms_config_rate_limiter": {}}, None),
    ({"kms_config_rate_limiter": dict(VALID["kms_config_rate_limiter"], keygen=0)},
     "kms_config_rate_limiter: must be at least 1 (got 0) (server key rate_limiter_conf.keygen)"),
    ({"kms_config_rate_limiter": {"bucket_size": 1}}, "kms_config_rate_limiter: all seven keys"),
    # thread pools
    ({"kms_config_num_tokio_threads": 10, "kms_config_num_rayon_threads": 40}, None),
    ({"kms_config_num_tokio_threads": 10}, "kms_config_num_tokio_threads / kms_config_num_rayon_threads: both null"),
    ({"kms_config_num_tokio_threads": 0, "kms_config_num_rayon_threads": 40},
     "kms_config_num_tokio_threads: must be at least 1"),
    ({"kms_config_num_rayon_threads": "forty", "kms_config_num_tokio_threads": 10},
     "kms_config_num_rayon_threads: must be of type int"),
])
def test_rules(change, words):
    problems = problems_of(change)
    assert (problems == []) if words is None else any(words in p for p in problems), problems
    assert all(p.startswith("kms_config: kms_config_") for p in problems), problems


@pytest.mark.parametrize("overrides, words", [
    ({"telemetry": {"refresh_interval_ms": 500}}, None),
    ({"threshold": {"core_to_core_net": {"network_timeout": 30}}}, None),
    ({"servce": {"listen_port": 1}}, "kms_config_overrides.servce: unknown key; the server rejects it"),
    ({"threshold": {"decryption_mod": "BitDecSmall"}}, "kms_config_overrides.threshold.decryption_mod: unknown key"),
    ({"service": {"storage_cache_size": 1}}, "kms_config_overrides.service.storage_cache_size: removed"),
    ({"threshold": {"dec_capacity": "many"}}, "kms_config_overrides.threshold.dec_capacity: must be an integer"),
    ({"threshold": "yes"}, "kms_config_overrides.threshold: must be a table"),
])
def test_overrides_against_the_strict_server_schema(overrides, words):
    problems = problems_of({"kms_config_overrides": overrides})
    assert (problems == []) if words is None else any(words in p for p in problems), problems


KEY = "-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n"


@pytest.mark.parametrize("change, name", [
    ({"kms_config_overrides": {"threshold": {"tls": {"manual": {"key": {"pem": KEY}}}}}}, "kms_config_overrides"),
    ({"kms_config_peer_ca_pems": {1: CERT + KEY}}, "kms_config_peer_ca_pems"),
    ({"kms_config_parties": [party(1, ca_certificate={"source": "pem", "pem": KEY})] + [party(i) for i in (2, 3, 4)]},
     "kms_config_parties[].ca_certificate"),
])
def test_a_private_key_is_refused_without_echoing_it(change, name):
    problems = problems_of(change)
    assert any(p.startswith("kms_config: %s: a PEM private key was given" % name) for p in problems), problems
    assert not any("MHc" in p for p in problems)


def test_every_peer_needs_its_ca_when_the_role_starts():
    missing = {"kms_config_peer_ca_pems": {1: CERT, 2: CERT, "3": ""}}
    assert any("missing for party id(s) 3, 4" in p for p in problems_of(missing)), problems_of(missing)
    # a CA given in the network definition counts
    parties = [party(i) for i in (1, 2)] + [party(i, ca_certificate={"source": "pem", "pem": CERT}) for i in (3, 4)]
    assert problems_of(dict(missing, kms_config_parties=parties)) == []
    # no TLS, no CA
    assert problems_of(dict(missing, kms_config_tls_mode="none", kms_config_enclave=False)) == []
    # the key-generation configuration holds no peer
    assert problems_of(missing, dict(ROLE_START, entry_point="keygen"), entry="keygen") == []


def test_a_backup_vault_in_aws_kms_needs_its_key():
    change = {"kms_config_backup_bucket": "kms-p1-backup", "kms_config_backup_keychain": "aws_kms",
              "kms_config_backup_kms_key_id": ""}
    assert any(p.startswith("kms_config: kms_config_backup_kms_key_id: required with the backup vault kms-p1-backup")
               for p in problems_of(change)), problems_of(change)
    assert problems_of(dict(change, kms_config_backup_kms_key_id="arn:aws:kms:eu-west-1:111122223333:key/k")) == []
    # the keychain rule does not wait for the key (pending in preflight): none is refused at once
    keychain_only = problems_of({"kms_config_backup_bucket": "kms-p1-backup", "kms_config_backup_keychain": "none"},
                                drop=("kms_config_backup_kms_key_id",))
    assert any("kms_config_backup_keychain: with a backup vault (kms_config_backup_bucket kms-p1-backup), none is "
               "refused" in p for p in keychain_only), keychain_only
