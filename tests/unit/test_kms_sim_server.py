"""The KMS node simulator behaves like the real server: configuration verdicts, key generation,
no start without a signing key, peer-port mutual TLS, call recording.

Through real gRPC servers on 127.0.0.1 (this worker's port block, offsets 100-149) and a moto
server process for the S3 vaults. The configuration corpus below is written from the facts
about the server, each entry with the verdict the server gives.
"""
import copy

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sandbox.kms_sim import network as net
from sandbox.kms_sim import proto as P
from sandbox.kms_sim.config import ConfigError, SimConfig, check_server_config
from sandbox.kms_sim.faults import self_signed_cert
from sandbox.kms_sim.keygen import SIGNING_KEY_ID, KeygenError, check_keygen_config, generate_keys
from sandbox.kms_sim.node import SimNode, StartRefused
from sandbox.kms_sim.testing import keygen_config, node_with_keys, port_block

BASE = port_block() + 100
MOTO_PORT = BASE
PEER, CLIENT = BASE + 10, BASE + 20      # +11..+14 / +21..+24
TLS_PEER, TLS_CLIENT = BASE + 30, BASE + 40


def good(party_id=1, **kwargs):
    return net.threshold_config(net.make_network(4), party_id, storage="ram", **kwargs)


def changed(path, value, doc=None):
    """Copy of ``doc`` (default: good()) with the dotted ``path`` set to value (None: removed)."""
    doc = copy.deepcopy(doc or good())
    parts = path.split(".")
    node = doc
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    return doc


# ----------------------------------------------------------------------------- configuration corpus

REFUSED = [
    ("a stray key in [service]", changed("service.region", "eu-west-1"), "service.region: unknown key"),
    ("required key missing", changed("service.timeout_secs", None), "service.timeout_secs: required"),
    ("timeout below 1", changed("service.timeout_secs", 0), "service.timeout_secs: must be at least 1"),
    ("message size above 2^31-1", changed("service.grpc_max_message_size", 2 ** 31),
     "service.grpc_max_message_size: must be at most"),
    ("n != 3t + 1", changed("threshold.threshold", 2), "3t + 1"),
    ("decryption mode", changed("threshold.decryption_mode", "Fast"), "threshold.decryption_mode: must be one of"),
    ("storage_cache_size was removed", changed("storage_cache_size", 10), "storage_cache_size: removed"),
    ("a rate limit of 0", changed("rate_limiter_conf", {"new_epoch": 0}), "rate_limiter_conf.new_epoch: must be at least 1"),
    ("message_limit below 1", changed("threshold.core_to_core_net", {"message_limit": 0}),
     "threshold.core_to_core_net.message_limit: must be at least 1"),
    ("max_en_decode_message_size below 1024", changed("threshold.core_to_core_net", {"max_en_decode_message_size": 1000}),
     "max_en_decode_message_size: must be at least 1024"),
    ("unknown key in core_to_core_net", changed("threshold.core_to_core_net", {"retries": 3}),
     "threshold.core_to_core_net.retries: unknown key"),
    ("region inside the vault storage (the guide's mistake)",
     changed("private_vault", {"storage": {"s3": {"bucket": "b", "prefix": "PRIV-p1", "region": "eu-west-1"}}}),
     "private_vault.storage.s3.region: unknown key"),
    ("two storages", changed("public_vault", {"storage": {"ram": {}, "file": {"path": "/tmp/x"}}}),
     "public_vault.storage: exactly one of"),
    ("s3 storage without [aws]", changed("aws", None, changed("private_vault", {"storage": {"s3": {"bucket": "b"}}})),
     "aws: required"),
    ("region missing in [aws]", changed("aws", {"s3_endpoint": "http://x"}), "aws.region: required"),
    ("a key spec the server does not know",
     changed("private_vault.keychain", {"aws_kms": {"root_key_id": "k", "root_key_spec": "rsa"}}),
     "private_vault.keychain.aws_kms.root_key_spec: must be one of"),
    ("a PCR that is not SHA-384 hex", changed("threshold.tls", {"auto": {"trusted_releases": [
        {"pcr0": "ab", "pcr1": "0" * 96, "pcr2": "0" * 96}]}}), "trusted_releases[0].pcr0"),
    ("tls with both manual and auto", changed("threshold.tls", {"manual": {"cert": {"pem": "x"}, "key": {"pem": "y"}},
                                                                "auto": {"trusted_releases": []}}),
     "threshold.tls: exactly one of"),
    ("my_id not a number", changed("threshold.my_id", "one"), "threshold.my_id: must be an integer"),
    ("[keygen] in a server config", changed("keygen", {"overwrite": False}), "keygen: unknown key"),
    ("unknown key in telemetry", changed("telemetry", {"tracing_service_name": "kms", "sampling": 1}),
     "telemetry.sampling: unknown key"),
]

ACCEPTED = [
    ("the generated configuration", good()),
    ("[enclave_bootstrap]", changed("enclave_bootstrap", {"web_identity_token_port": 4100})),
    ("[migration]", changed("migration", {"context_associations": [
        {"context_id": P.INIT_CONTEXT_ID, "epoch_ids": [P.INIT_EPOCH_ID]}]})),
    ("a partial core_to_core_net", changed("threshold.core_to_core_net",
                                           {"max_future_rounds": 10, "max_buffered_future_msgs": 100})),
    ("my_id as a string", changed("threshold.my_id", "1")),
    ("my_id absent", changed("threshold.my_id", None)),
    ("unknown keys in rate_limiter_conf and telemetry.batch (ignored by the server)",
     changed("telemetry", {"batch": {"max_concurrent_exports": 4, "export_timeout_ms": 1000}},
             changed("rate_limiter_conf", {"new_epoch": 25, "future_knob": 1}))),
    ("num_sessions_preproc below 2 (clamped)", changed("threshold.num_sessions_preproc", 1)),
    ("internal_config threads", changed("internal_config", {"num_tokio_threads": 10, "num_rayon_threads": 40})),
    ("a backup vault with the custodian keychain",
     changed("backup_vault", {"storage": {"ram": {}}, "keychain": {"secret_sharing": {}}})),
    ("aws role_arn and endpoints", changed("aws", {"region": "eu-west-1", "role_arn": "arn:aws:iam::1:role/r",
                                                   "sts_endpoint": "http://x", "awskms_endpoint": "http://y"})),
]


@pytest.mark.parametrize("what,doc,expected", REFUSED, ids=[r[0] for r in REFUSED])
def test_the_server_refuses(what, doc, expected):
    with pytest.raises(ConfigError) as err:
        SimConfig(doc)
    assert expected in str(err.value), str(err.value)


@pytest.mark.parametrize("what,doc", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_the_server_accepts(what, doc):
    assert check_server_config(doc) == []
    SimConfig(doc)


def test_env_overrides_use_the_kms_core_prefix_and_double_underscore():
    doc = good()
    cfg = SimConfig(doc, env={"KMS_CORE__SERVICE__LISTEN_PORT": "50999", "KMS_CORE_SERVICE_LISTEN_PORT": "1",
                              "KMS_CORE__THRESHOLD__DECRYPTION_MODE": "BitDecLarge"})
    assert cfg.client_port == 50999 and cfg.raw["threshold"]["decryption_mode"] == "BitDecLarge"
    with pytest.raises(ConfigError) as err:   # an override is checked like the file
        SimConfig(doc, env={"KMS_CORE__SERVICE__TIMEOUT_SECS": "0"})
    assert "service.timeout_secs" in str(err.value)


def test_a_plaintext_backup_vault_is_accepted_with_a_warning():
    cfg = SimConfig(changed("backup_vault", {"storage": {"ram": {}}}))
    assert any("plaintext" in w for w in cfg.warnings)


def test_the_keygen_config_is_checked_like_kms_gen_keys():
    base = keygen_config(good(2))
    assert check_keygen_config(base) == []
    assert base["threshold"] == {"my_id": 2, "tls_subject": "party2.sim.kms.local"}
    assert "keygen: required" in "; ".join(check_keygen_config({k: v for k, v in base.items() if k != "keygen"}))
    stray = changed("threshold.listen_port", 50001, base)
    assert "threshold.listen_port: unknown key" in "; ".join(check_keygen_config(stray))
    both = changed("keygen", {"overwrite": True, "show_existing": True}, base)
    assert "mutually exclusive" in "; ".join(check_keygen_config(both))
    no_id = changed("threshold.my_id", None, base)
    assert "threshold.my_id: required" in "; ".join(check_keygen_config(no_id))


# ----------------------------------------------------------------------------- key generation, start

# The simulator's AWS environment and its moto process: tests/unit/conftest.py (sim_aws_env, moto).
pytestmark = pytest.mark.usefixtures("sim_aws_env")


def s3_network(moto, name):
    network = net.make_network(4, name=name, peer_base=PEER, client_base=CLIENT)
    configs = net.network_configs(network, storage="s3", s3_endpoint=moto.url)
    s3 = moto.client()
    for cfg in configs.values():
        for vault in ("private_vault", "public_vault"):
            s3.create_bucket(Bucket=cfg[vault]["storage"]["s3"]["bucket"],
                             CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return configs, s3


def health(port):
    channel = grpc.insecure_channel("127.0.0.1:%d" % port)
    try:
        return P.call(channel, P.GET_HEALTH_STATUS, P.messages.Empty())
    finally:
        channel.close()


def test_no_start_without_a_signing_key_then_start_after_key_generation(moto):
    configs, s3 = s3_network(moto, "simkeys")
    node = SimNode(configs[1])
    with pytest.raises(StartRefused) as err:
        node.start()
    message = str(err.value)
    assert "recovery mode" in message and "VerfKey" in message
    assert "PRIV-p1/SigningKey/%s not found" % SIGNING_KEY_ID in message
    assert "kms-gen-keys" in message
    with pytest.raises(grpc.RpcError):
        health(CLIENT + 1)   # nothing listens

    result = generate_keys(keygen_config(configs[1]))
    assert result["generated"] is True
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="kms-simkeys-p1-public")["Contents"])
    assert listed == ["PUB-p1/%s/%s" % (folder, SIGNING_KEY_ID) for folder in ("CACert", "VerfAddress", "VerfKey")]
    node = SimNode(configs[1]).start()
    try:
        assert health(CLIENT + 1).peers_from_all_contexts[0].my_party_id == 1
    finally:
        node.stop()


def test_key_generation_is_idempotent_and_writes_a_ca_for_the_party(moto):
    configs, s3 = s3_network(moto, "simidem")
    doc = keygen_config(configs[3])

    def body(bucket, key):
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    key_name = "PRIV-p3/SigningKey/%s" % SIGNING_KEY_ID
    ca_name = "PUB-p3/CACert/%s" % SIGNING_KEY_ID
    generate_keys(doc)
    first_key, first_ca = body("kms-simidem-p3-private", key_name), body("kms-simidem-p3-public", ca_name)
    assert len(SIGNING_KEY_ID) == 64 and P.is_request_id(SIGNING_KEY_ID)

    # The CA: self-signed, CA:true, CN = the party's tls_subject, signed by the signing key.
    cert = x509.load_pem_x509_certificate(first_ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "party3.simidem.kms.local"
    assert cert.issuer == cert.subject
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    signing_key = serialization.load_pem_private_key(first_key, password=None)
    assert isinstance(signing_key.curve, ec.SECP256K1)
    signing_key.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    verf = serialization.load_pem_public_key(body("kms-simidem-p3-public", "PUB-p3/VerfKey/%s" % SIGNING_KEY_ID))
    assert verf.public_numbers() == signing_key.public_key().public_numbers()

    # Second run: keys kept byte for byte.
    again = generate_keys(doc)
    assert again["generated"] is False and again["written"] == []
    assert body("kms-simidem-p3-private", key_name) == first_key
    assert body("kms-simidem-p3-public", ca_name) == first_ca

    # A lost CA certificate is written again from the existing key; the key stays.
    s3.delete_object(Bucket="kms-simidem-p3-public", Key=ca_name)
    assert generate_keys(doc)["written"] == [ca_name]
    assert body("kms-simidem-p3-private", key_name) == first_key
    renewed = x509.load_pem_x509_certificate(body("kms-simidem-p3-public", ca_name))
    signing_key.public_key().verify(renewed.signature, renewed.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))

    # Only an explicit overwrite replaces the key.
    generate_keys(dict(doc, keygen={"overwrite": True}))
    assert body("kms-simidem-p3-private", key_name) != first_key


def test_key_generation_errors_name_the_cause(moto):
    configs, _ = s3_network(moto, "simkgerr")
    doc = keygen_config(configs[1])
    doc["private_vault"] = {"storage": {"s3": {"bucket": "no-such-bucket", "prefix": "PRIV-p1"}}}
    with pytest.raises(KeygenError) as err:
        generate_keys(doc)
    assert "NoSuchBucket" in str(err.value) and "no-such-bucket" in str(err.value)
    doc = keygen_config(configs[1])
    doc["private_vault"]["keychain"] = {"aws_kms": {"root_key_id": "alias/x", "root_key_spec": "symm"}}
    with pytest.raises(KeygenError) as err:
        generate_keys(doc)
    assert "enclave" in str(err.value)


def test_enclave_only_settings_refuse_to_start():
    doc = changed("threshold.tls", {"auto": {"trusted_releases": [{"pcr0": "a" * 96, "pcr1": "b" * 96,
                                                                   "pcr2": "c" * 96}]}})
    with pytest.raises(StartRefused) as err:
        node_with_keys(doc).start()
    assert "tls.auto" in str(err.value) and "Nitro enclave" in str(err.value)


# ----------------------------------------------------------------------------- calls

def test_every_client_port_call_is_recorded_with_its_source():
    network = net.make_network(4, peer_base=PEER, client_base=CLIENT)
    nodes = [node_with_keys(net.threshold_config(network, p, storage="ram"), peer_timeout=0.5).start()
             for p in (1, 2)]
    try:
        health(CLIENT + 1)
        channel = grpc.insecure_channel("127.0.0.1:%d" % (CLIENT + 1))
        try:
            P.call(channel, P.HEALTH_CHECK, P.messages.HealthCheckRequest(service=P.CORE_SERVICE))
            with pytest.raises(grpc.RpcError):
                P.call(channel, P.GET_EPOCH_RESULT, P.messages.RequestId(request_id=P.INIT_EPOCH_ID))
        finally:
            channel.close()
        calls = nodes[0].calls()
        assert [c["method"] for c in calls] == [P.GET_HEALTH_STATUS, P.HEALTH_CHECK, P.GET_EPOCH_RESULT]
        assert [c["code"] for c in calls] == ["OK", "OK", "NOT_FOUND"]
        assert all(c["peer"].startswith("ipv4:127.0.0.1:") for c in calls)
        assert calls[0]["at"] <= calls[1]["at"] <= calls[2]["at"]
        # Node 1's health check probed node 2's peer port: that is not a client-port call.
        assert nodes[1].calls() == []
    finally:
        for node in nodes:
            node.stop()


# ----------------------------------------------------------------------------- peer-port mutual TLS

def self_signed(common_name):
    """(key_pem, cert_pem) as text."""
    return tuple(part.decode() for part in self_signed_cert(common_name))


def tls_configs(tmp_path, certs):
    network = net.make_network(4, name="simtls", peer_base=TLS_PEER, client_base=TLS_CLIENT)
    configs = {}
    for pid in range(1, 5):
        doc = net.threshold_config(network, pid, storage="ram")
        key_file, cert_file = tmp_path / ("p%d.key" % pid), tmp_path / ("p%d.crt" % pid)
        key_file.write_text(certs[pid][0])
        cert_file.write_text(certs[pid][1])
        doc["threshold"]["tls"] = {"manual": {"cert": {"path": str(cert_file)}, "key": {"path": str(key_file)}}}
        for peer in doc["threshold"]["peers"]:
            peer["tls_cert"] = {"pem": certs[peer["party_id"]][1]}
        configs[pid] = doc
    return configs


def test_peer_port_mutual_tls_trusts_exactly_the_peers_certificates(tmp_path):
    certs = {pid: self_signed("party%d.simtls.kms.local" % pid) for pid in range(1, 5)}
    configs = tls_configs(tmp_path, certs)
    # Party 4 was given a wrong certificate for party 2.
    wrong = self_signed("party2.simtls.kms.local")[1]
    for peer in configs[4]["threshold"]["peers"]:
        if peer["party_id"] == 2:
            peer["tls_cert"] = {"pem": wrong}
    nodes = {pid: node_with_keys(configs[pid], peer_timeout=1.0).start() for pid in range(1, 5)}
    try:
        ctx = health(TLS_CLIENT + 1).peers_from_all_contexts[0]
        assert [(p.peer_id, p.reachable) for p in ctx.peers] == [(2, True), (3, True), (4, True)]
        assert ctx.nodes_reachable == 4
        ctx4 = health(TLS_CLIENT + 4).peers_from_all_contexts[0]
        down = {p.peer_id: p for p in ctx4.peers if not p.reachable}
        assert sorted(down) == [2]
        assert "UNAVAILABLE" in down[2].error and ("ssl" in down[2].error.lower() or "handshake" in down[2].error.lower()
                                                  or "certificate" in down[2].error.lower()), down[2].error
        assert ctx4.nodes_reachable == 3
        # ... and party 4 refuses party 2's client certificate: neither side reaches the other.
        ctx2 = health(TLS_CLIENT + 2).peers_from_all_contexts[0]
        assert [p.peer_id for p in ctx2.peers if not p.reachable] == [4]

        # The peer port does not answer plaintext, nor TLS without a client certificate.
        channel = grpc.insecure_channel("127.0.0.1:%d" % (TLS_PEER + 1))
        with pytest.raises(grpc.RpcError):
            P.call(channel, P.HEALTH_CHECK, P.messages.HealthCheckRequest(service=P.PEER_SERVICE_NAME), timeout=1)
        channel.close()
        creds = grpc.ssl_channel_credentials(root_certificates=certs[1][1].encode())
        channel = grpc.secure_channel("127.0.0.1:%d" % (TLS_PEER + 1), creds,
                                      options=[("grpc.ssl_target_name_override", "party1.simtls.kms.local")])
        with pytest.raises(grpc.RpcError):
            P.call(channel, P.HEALTH_CHECK, P.messages.HealthCheckRequest(service=P.PEER_SERVICE_NAME), timeout=1)
        channel.close()
        # With party 3's certificate as client certificate it does.
        creds = grpc.ssl_channel_credentials(root_certificates=certs[1][1].encode(),
                                             private_key=certs[3][0].encode(), certificate_chain=certs[3][1].encode())
        channel = grpc.secure_channel("127.0.0.1:%d" % (TLS_PEER + 1), creds,
                                      options=[("grpc.ssl_target_name_override", "party1.simtls.kms.local")])
        assert P.call(channel, P.HEALTH_CHECK, P.messages.HealthCheckRequest(service=P.PEER_SERVICE_NAME)).status == 1
        channel.close()
    finally:
        for node in nodes.values():
            node.stop()


def test_tls_needs_every_peers_certificate(tmp_path):
    certs = {pid: self_signed("party%d.simtls.kms.local" % pid) for pid in range(1, 5)}
    doc = tls_configs(tmp_path, certs)[1]
    del doc["threshold"]["peers"][2]["tls_cert"]
    with pytest.raises(ConfigError) as err:
        node_with_keys(doc).start()
    assert "party_id=3].tls_cert: required" in str(err.value)
