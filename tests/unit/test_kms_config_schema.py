"""The strict check of threshold.toml (plugins/module_utils/kms_config_schema.py).

The valid baseline is a configuration the kms_config role really rendered for party 2 of
inventories/sandbox (render_party.yml, no network); each negative test breaks one rule the
KMS server (or the collection's policy) enforces and expects a message naming the key path.
"""
import copy
import os

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
    """The rendered document without TLS (the tests below add TLS where they need it)."""
    doc = schema.parse_toml(rendered)
    doc["threshold"].pop("tls", None)
    for peer in doc["threshold"]["peers"]:
        peer.pop("tls_cert", None)
    return doc


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
    doc.setdefault(section, {"num_tokio_threads": 10, "num_rayon_threads": 40})
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


def test_missing_prefix_is_refused_by_policy_only(doc):
    del doc["public_vault"]["storage"]["s3"]["prefix"]
    assert_one_error(doc, "public_vault.storage.s3.prefix", "required:", "falls back to 'PUB'", "(policy)")
    assert errors_of(doc, policy=False) == []  # the server itself accepts it


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
    # my_id 4 is no peer's id now: a policy rule without TLS (the sandbox renders none)
    doc["threshold"]["my_id"] = 4
    assert_one_error(doc, "threshold.my_id", "party_id of one of the peers (got 4; peers: 1, 2, 2, 3)", "(policy)")
    assert errors_of(doc, policy=False) == []
    peers[3]["party_id"] = 7
    assert_one_error(doc, "threshold.peers[3].party_id", "1..n = 1..4 (got 7)")
    peers[3]["party_id"] = 4
    doc["threshold"]["my_id"] = 5  # above n: the server only warns
    errors, warnings = schema.check(doc)
    assert errors == []
    assert warnings == ["threshold.my_id: greater than the number of peers n = 4 (the server only warns)"]
    doc["threshold"]["my_id"] = "2"  # a string holding a number
    assert errors_of(doc) == []
    del doc["threshold"]["my_id"]
    assert_one_error(doc, "threshold.my_id", "required when threshold.peers is set", "(policy)")
    assert errors_of(doc, policy=False) == []


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
    doc["threshold"]["num_sessions_preproc"] = 70000
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


def test_rate_limiter_needs_every_key_at_least_1_and_ignores_unknown_ones(doc):
    del doc["rate_limiter_conf"]["new_epoch"]
    assert_one_error(doc, "rate_limiter_conf.new_epoch", "required key is missing")
    doc["rate_limiter_conf"]["new_epoch"] = 0
    assert_one_error(doc, "rate_limiter_conf.new_epoch", "at least 1 (got 0)")
    doc["rate_limiter_conf"]["new_epoch"] = 25
    doc["rate_limiter_conf"]["dec"] = 1  # the server ignores keys it does not know here
    errors, warnings = schema.check(doc)
    assert errors == [] and warnings == ["rate_limiter_conf.dec: unknown key; the server ignores it in [rate_limiter_conf]"]
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


def test_core_to_core_net_keys_are_each_optional_with_minima(doc):
    net = doc["threshold"]["core_to_core_net"] = {"max_future_rounds": 8, "max_buffered_future_msgs": 256}
    assert errors_of(doc) == []
    net.update(message_limit=0, max_en_decode_message_size=1023, multiplier=0.9, timeout=1)
    errors = errors_of(doc)
    assert sorted(e.split(":")[0] for e in errors) == [
        "threshold.core_to_core_net.max_en_decode_message_size", "threshold.core_to_core_net.message_limit",
        "threshold.core_to_core_net.multiplier", "threshold.core_to_core_net.timeout"]
    assert "threshold.core_to_core_net.max_en_decode_message_size: must be at least 1024 (got 1023)" in errors


def test_removed_key_is_named_as_removed(doc):
    doc["private_vault"]["storage_cache_size"] = 1000
    assert_one_error(doc, "private_vault.storage_cache_size", "removed after release 0.13")


def test_backup_vault_without_keychain_next_to_an_encrypted_private_vault(doc):
    key = {"aws_kms": {"root_key_id": "alias/k", "root_key_spec": "symm"}}
    doc["backup_vault"] = {"storage": {"s3": {"bucket": "kms-sandbox-p2-backup", "prefix": "BACKUP-p2"}}}
    errors, warnings = schema.check(doc)
    assert errors == [] and warnings == ["backup_vault.keychain: absent: the server writes backups in plaintext"]
    doc["private_vault"]["keychain"] = key
    assert_one_error(doc, "backup_vault.keychain", "plaintext", "keychain.aws_kms", "secret_sharing", "(policy)")
    assert errors_of(doc, policy=False) == []  # the server itself would start, and write plaintext
    doc["backup_vault"]["keychain"] = {"secret_sharing": {}}
    assert errors_of(doc) == []
    doc["backup_vault"]["keychain"] = {"aws_kms": {"root_key_id": "alias/b", "root_key_spec": "asymm"}}
    assert errors_of(doc) == []


@pytest.mark.parametrize("arn, ok", [
    ("arn:aws:iam::100000000001:role/kms-p1", True),
    ("arn:aws-cn:iam::100000000001:role/kms-p1", True),
    ("arn:aws-us-gov:iam::100000000001:role/path/kms-p1", True),
    ("arn:aws:iam::100000000001:user/kms-p1", False),
    ("arn:aws:iam::1000:role/kms-p1", False),
])
def test_role_arn_of_any_partition(doc, arn, ok):
    doc["aws"]["role_arn"] = arn
    errors = errors_of(doc)
    assert (errors == []) is ok, errors
    if not ok:
        assert errors[0].startswith("aws.role_arn: must be an IAM role ARN")


def test_enclave_bootstrap_and_migration_are_known(doc):
    doc["enclave_bootstrap"] = {"web_identity_token_port": 4100}
    doc["migration"] = {"context_associations": [{"context_id": "07" + "0" * 61 + "1",
                                                  "epoch_ids": ["0x08" + "0" * 61 + "1"]}]}
    assert errors_of(doc) == []
    doc["migration"]["context_associations"].append({"context_id": "07" + "0" * 61 + "2",
                                                     "epoch_ids": ["08" + "0" * 61 + "1"]})
    assert_one_error(doc, "migration.context_associations[1].epoch_ids[0]", "one context only", "(policy)")


def test_keygen_document_is_checked_as_such(doc):
    keygen = {"keygen": {}, "aws": doc["aws"], "public_vault": doc["public_vault"], "private_vault": doc["private_vault"],
              "threshold": {"my_id": 2, "tls_subject": "party2.sandbox.kms.local"}}
    assert schema.check_config(keygen, kind="keygen") == []
    # the server document is not a key-generation document, and the other way round
    errors = schema.check_config(doc, kind="keygen")
    assert "keygen: required key is missing" in errors
    assert any(e.startswith("service: unknown key") for e in errors)
    assert any(e.startswith("keygen: unknown key") for e in schema.check_config(dict(doc, keygen={})))
    keygen["keygen"]["deterministic"] = True
    assert_one_error(keygen, "keygen.deterministic", "fixed test keys", "(policy)", kind="keygen")
    del keygen["keygen"]["deterministic"]
    del keygen["threshold"]["my_id"]
    assert_one_error(keygen, "threshold.my_id", "required when generating threshold signing keys", kind="keygen")


def test_kind_must_be_known(doc):
    assert errors_of(doc, kind="client") == ["kind: must be one of server, keygen (got 'client')"]


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


# --- the corpus: configurations written from the facts, each with the server's verdict ---------
CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "server_configs")


def load_case(name):
    """Header comments `# verdict:`, `# refuses:`, `# warns:`, `# policy-refuses:`, `# kind:`."""
    with open(os.path.join(CORPUS, name), encoding="utf-8") as handle:
        text = handle.read()
    header = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        key, _, value = line[1:].partition(":")
        header[key.strip()] = value.strip()
    paths = {k: sorted(p.strip() for p in header.get(k, "").split(",") if p.strip())
             for k in ("refuses", "warns", "policy-refuses")}
    return text, header, paths


CASES = sorted(n for n in os.listdir(CORPUS) if n.endswith(".toml"))


def test_the_corpus_covers_both_verdicts_and_both_kinds():
    headers = [load_case(n)[1] for n in CASES]
    assert {h["verdict"] for h in headers} == {"accept", "refuse"}
    assert {h.get("kind", "server") for h in headers} == {"server", "keygen"}


@pytest.mark.parametrize("name", CASES)
def test_corpus_verdict_is_the_servers(name):
    text, header, paths = load_case(name)
    kind = header.get("kind", "server")
    doc = schema.parse_toml(text)
    errors, warnings = schema.check(doc, kind=kind, policy=False, require_threshold=False)
    refused = sorted({e.split(":")[0] for e in errors})
    if header["verdict"] == "accept":
        assert errors == []
    else:
        assert header["verdict"] == "refuse" and paths["refuses"], "a refusal names its paths"
        assert refused == paths["refuses"], errors
    warned = {w.split(":")[0] for w in warnings}
    assert set(paths["warns"]) <= warned, warnings
    if paths["policy-refuses"]:
        with_policy = schema.check(doc, kind=kind, policy=True, require_threshold=False)[0]
        assert set(paths["policy-refuses"]) <= {e.split(":")[0] for e in with_policy}, with_policy
