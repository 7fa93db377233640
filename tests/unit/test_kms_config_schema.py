"""The strict check of threshold.toml (plugins/module_utils/kms_config_schema.py).

The valid baseline is a configuration the kms_config role really rendered for party 2 of
inventories/sandbox (render_party.yml, no network); each negative test breaks one rule the
KMS server (or the collection's policy) enforces and expects a message naming the key path.
"""
import copy

import pytest

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_config_schema as schema
from tests.support.playbooks import repo_playbook

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PCR = "ab" * 48


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """threshold.toml of party 2 of the 4-party sandbox, as the role renders it."""
    out = tmp_path_factory.mktemp("render")
    code, output = repo_playbook("render_party.yml", "inventories/sandbox", "--limit", "party2",
                                 "-e", "render_dir=%s" % out, timeout=300)
    assert code == 0, output[-5000:]
    return (out / "party2" / "threshold.toml").read_text()


@pytest.fixture
def doc(rendered):
    return schema.parse_toml(rendered)


def errors_of(doc, **kwargs):
    return schema.check_config(doc, **kwargs)


def assert_one_error(doc, path, *fragments, **kwargs):
    errors = errors_of(doc, **kwargs)
    matching = [e for e in errors if e.startswith(path + ":")]
    assert matching, "no error for %s in %s" % (path, errors)
    for fragment in fragments:
        assert any(fragment in e for e in matching), "%r not in %s" % (fragment, matching)
    return errors


def test_rendered_sandbox_config_passes(rendered, doc):
    assert errors_of(doc) == []
    summary = schema.summarize(schema.validate_text(rendered, environment="testnet"))
    assert (summary["n"], summary["t"], summary["my_id"]) == (4, 1, 2)
    assert summary["vaults"]["private_vault"] == {"kind": "s3", "location": "kms-sandbox-p2-private", "prefix": "PRIV-p2"}


@pytest.mark.parametrize("section, key", [
    ("service", "listen_adress"),       # a typo: the server rejects unknown keys
    ("threshold", "tls_cert_path"),     # pre-0.15 key name
    ("aws", "bucket"),
    ("telemetry", "endpoint"),
    ("internal_config", "tokio_worker_threads"),
])
def test_stray_key_is_rejected_naming_its_path(doc, section, key):
    doc[section][key] = "x"
    assert_one_error(doc, "%s.%s" % (section, key), "unknown key", "server rejects it")


def test_stray_top_level_and_nested_keys(doc):
    doc["tracing"] = {"service_name": "x"}
    doc["public_vault"]["storage"]["s3"]["region"] = "eu-west-1"  # the guide's mistake
    doc["threshold"]["peers"][1]["host"] = "p2"
    errors = errors_of(doc)
    assert any(e.startswith("tracing: unknown key") for e in errors)
    assert any(e.startswith("public_vault.storage.s3.region: unknown key") for e in errors)
    assert any(e.startswith("threshold.peers[1].host: unknown key") for e in errors)


@pytest.mark.parametrize("section, key", [
    ("service", "timeout_secs"),
    ("service", "grpc_max_message_size"),
    ("threshold", "dec_capacity"),
    ("threshold", "min_dec_cache"),
    ("threshold", "decryption_mode"),
    ("aws", "region"),
])
def test_missing_required_key_is_rejected(doc, section, key):
    del doc[section][key]
    assert_one_error(doc, "%s.%s" % (section, key), "required key is missing")


def test_missing_sections(doc):
    del doc["threshold"]
    del doc["aws"]
    errors = errors_of(doc)
    assert any(e.startswith("threshold: required section") for e in errors)
    assert any(e.startswith("aws: required section is missing: S3 storage") for e in errors)
    assert errors_of(doc, require_threshold=False) == [e for e in errors if not e.startswith("threshold")]


def test_wrong_threshold_for_the_peer_count(doc):
    doc["threshold"]["threshold"] = 4  # 13-party value with a 4-party peer list
    assert_one_error(doc, "threshold.peers", "n = 3t + 1", "threshold = 4 needs 13 peers, got n = 4",
                     "n = 4 fits threshold = 1")


def test_peer_count_not_of_the_form_3t_plus_1(doc):
    doc["threshold"]["peers"].append(dict(doc["threshold"]["peers"][0], party_id=5, port=50005,
                                          mpc_identity="party5.sandbox.kms.local"))
    errors = assert_one_error(doc, "threshold.peers", "threshold = 1 needs 4 peers, got n = 5")
    assert not any("fits threshold" in e for e in errors)


@pytest.mark.parametrize("mode", ["NoiseFlood", "noisefloodsmall", "BitDec", ""])
def test_bad_decryption_mode(doc, mode):
    doc["threshold"]["decryption_mode"] = mode
    assert_one_error(doc, "threshold.decryption_mode")


def test_every_decryption_mode_of_the_server_is_accepted(doc):
    for mode in schema.DECRYPTION_MODES:
        doc["threshold"]["decryption_mode"] = mode
        assert errors_of(doc) == []


@pytest.mark.parametrize("vault, prefix, fragment", [
    ("public_vault", "PRIV-p2", "another vault's type name 'PRIV'"),
    ("private_vault", "PUB-p2", "another vault's type name 'PUB'"),
    ("private_vault", "BACKUP-p2", "another vault's type name 'BACKUP'"),
    ("public_vault", "", "empty prefix makes object keys start with '/'"),
    ("public_vault", "/PUB-p2", "starting with a letter or digit"),
    ("private_vault", "PRIV p2", "letters, digits"),
])
def test_bad_prefix(doc, vault, prefix, fragment):
    doc[vault]["storage"]["s3"]["prefix"] = prefix
    assert_one_error(doc, "%s.storage.s3.prefix" % vault, fragment)


def test_missing_prefix_is_refused_by_policy(doc):
    del doc["public_vault"]["storage"]["s3"]["prefix"]
    assert_one_error(doc, "public_vault.storage.s3.prefix", "required (policy)", "falls back to 'PUB'")


def test_two_vaults_on_the_same_bucket_and_prefix(doc):
    doc["backup_vault"] = copy.deepcopy(doc["private_vault"])
    doc["backup_vault"]["storage"]["s3"]["prefix"] = "PRIV-p2"
    errors = errors_of(doc)
    assert any(e.startswith("backup_vault.storage.s3.prefix:") and "collide" in e for e in errors)


def test_storage_must_be_exactly_one_kind(doc):
    doc["public_vault"]["storage"]["ram"] = {}
    assert_one_error(doc, "public_vault.storage", "exactly one of s3, file, ram (got ram, s3)")
    doc["public_vault"]["storage"] = {}
    assert_one_error(doc, "public_vault.storage", "(got none)")
    doc["public_vault"]["storage"] = {"file": {"path": "/keys", "prefix": "PUB-p2"}}
    assert errors_of(doc) == []


def test_party_ids_and_my_id(doc):
    peers = doc["threshold"]["peers"]
    peers[3]["party_id"] = 2
    errors = errors_of(doc)
    assert any(e.startswith("threshold.peers[3].party_id: party ids must be unique (also used by threshold.peers[1])")
               for e in errors)
    peers[3]["party_id"] = 7
    assert_one_error(doc, "threshold.peers[3].party_id", "1..n = 1..4 (got 7)")
    peers[3]["party_id"] = 4
    doc["threshold"]["my_id"] = 5
    assert_one_error(doc, "threshold.my_id", "party_id of one of the peers (got 5; peers: 1, 2, 3, 4)")
    del doc["threshold"]["my_id"]
    assert_one_error(doc, "threshold.my_id", "required when threshold.peers is set")


def test_ports(doc):
    doc["threshold"]["listen_port"] = doc["service"]["listen_port"]
    assert_one_error(doc, "threshold.listen_port", "must differ from service.listen_port")
    doc["threshold"]["listen_port"] = 70000
    assert_one_error(doc, "threshold.listen_port", "at most 65535")
    doc["threshold"]["listen_port"] = "50002"
    assert_one_error(doc, "threshold.listen_port", "must be an integer (got string")


def test_types_and_ranges(doc):
    doc["service"]["timeout_secs"] = 0
    doc["service"]["grpc_max_message_size"] = 2 ** 31
    doc["threshold"]["num_sessions_preproc"] = 1
    doc["threshold"]["min_dec_cache"] = doc["threshold"]["dec_capacity"] + 1
    doc["telemetry"]["enable_sys_metrics"] = "yes"
    doc["telemetry"]["metrics_bind_address"] = "9646"
    errors = errors_of(doc)
    for path in ("service.timeout_secs", "service.grpc_max_message_size", "threshold.num_sessions_preproc",
                 "threshold.min_dec_cache", "telemetry.enable_sys_metrics", "telemetry.metrics_bind_address"):
        assert any(e.startswith(path + ":") for e in errors), (path, errors)


def test_tls_needs_a_ca_for_every_peer(doc):
    doc["threshold"]["tls"] = {"manual": {"cert": {"path": "/etc/kms/tls/tls.crt"}, "key": {"path": "/etc/kms/tls/tls.key"}}}
    errors = errors_of(doc)
    assert sorted(e.split(":")[0] for e in errors) == ["threshold.peers[%d].tls_cert" % i for i in range(4)]
    for peer in doc["threshold"]["peers"]:
        peer["tls_cert"] = {"pem": PEM}
    assert errors_of(doc) == []
    doc["threshold"]["peers"][0]["tls_cert"] = {"pem": PEM, "path": "/x"}
    assert_one_error(doc, "threshold.peers[0].tls_cert", "exactly one of path, pem")


def test_private_key_never_inline(doc):
    for peer in doc["threshold"]["peers"]:
        peer["tls_cert"] = {"pem": PEM}
    doc["threshold"]["tls"] = {"manual": {"cert": {"path": "/c"}, "key": {"pem": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n"}}}
    assert_one_error(doc, "threshold.tls.manual.key.pem", "policy", "Secret")


def test_tls_auto_trusted_releases(doc):
    for peer in doc["threshold"]["peers"]:
        peer["tls_cert"] = {"pem": PEM}
    doc["threshold"]["tls"] = {"auto": {"trusted_releases": [{"pcr0": PCR, "pcr1": PCR, "pcr2": PCR},
                                                             {"pcr0": PCR, "pcr1": PCR, "pcr2": PCR}]}}
    assert errors_of(doc) == []
    doc["threshold"]["tls"]["auto"]["trusted_releases"][1]["pcr1"] = PCR.upper()
    assert_one_error(doc, "threshold.tls.auto.trusted_releases[1].pcr1", "96 lowercase hexadecimal")
    doc["threshold"]["tls"]["auto"]["trusted_releases"] = []
    assert_one_error(doc, "threshold.tls.auto.trusted_releases", "non-empty")
    doc["threshold"]["tls"] = {"auto": {"trusted_releases": [{"pcr0": PCR, "pcr1": PCR, "pcr2": PCR}]}, "manual": {}}
    assert_one_error(doc, "threshold.tls", "exactly one of manual, auto")


def test_rate_limiter_is_all_or_nothing(doc):
    del doc["rate_limiter_conf"]["new_epoch"]
    assert_one_error(doc, "rate_limiter_conf", "all-or-nothing")
    assert_one_error(doc, "rate_limiter_conf.new_epoch", "required key is missing")
    doc["rate_limiter_conf"]["dec"] = 1  # pre-0.15 name
    assert_one_error(doc, "rate_limiter_conf.dec", "unknown key")
    del doc["rate_limiter_conf"]
    assert errors_of(doc) == []


def test_keychain(doc):
    doc["private_vault"]["keychain"] = {"aws_kms": {"root_key_id": "alias/k", "root_key_spec": "symm"}}
    assert errors_of(doc) == []
    doc["private_vault"]["keychain"]["aws_kms"]["root_key_spec"] = "rsa"
    assert_one_error(doc, "private_vault.keychain.aws_kms.root_key_spec", "symm, asymm")
    doc["public_vault"]["keychain"] = {"aws_kms": {"root_key_id": "alias/k", "root_key_spec": "symm"}}
    assert_one_error(doc, "public_vault.keychain", "not allowed on the public vault")


def test_mock_enclave_never_on_mainnet(doc):
    doc["mock_enclave"] = True
    assert errors_of(doc, environment="testnet") == []
    assert_one_error(doc, "mock_enclave", "never be true on mainnet", environment="mainnet")
    doc["mock_enclave"] = False
    assert errors_of(doc, environment="mainnet") == []


def test_core_to_core_net(doc):
    doc["threshold"]["core_to_core_net"] = {"message_limit": 70, "multiplier": 2.0, "max_interval": 60,
                                            "network_timeout": 20, "network_timeout_bk": 300,
                                            "network_timeout_bk_sns": 1200, "max_en_decode_message_size": 2147483648,
                                            "session_update_interval_secs": 60}
    assert errors_of(doc) == []
    del doc["threshold"]["core_to_core_net"]["network_timeout"]
    doc["threshold"]["core_to_core_net"]["timeout"] = 1
    errors = errors_of(doc)
    assert any(e.startswith("threshold.core_to_core_net.network_timeout: required") for e in errors)
    assert any(e.startswith("threshold.core_to_core_net.timeout: unknown key") for e in errors)


def test_every_problem_is_reported_at_once(rendered):
    broken = rendered.replace('decryption_mode = "NoiseFloodSmall"', 'decryption_mode = "Fast"\nthreshold_x = 1')
    with pytest.raises(schema.KmsConfigError) as info:
        schema.validate_text(broken)
    paths = [e.split(":")[0] for e in info.value.errors]
    assert "threshold.decryption_mode" in paths and "threshold.threshold_x" in paths


def test_toml_syntax_error_is_reported():
    with pytest.raises(schema.KmsConfigError) as info:
        schema.validate_text("[service\nlisten_port = 1")
    assert info.value.errors[0].startswith("toml: not valid TOML")


def test_environment_must_be_known(doc):
    assert errors_of(doc, environment="prod") == ["environment: must be one of testnet, mainnet (got 'prod')"]
