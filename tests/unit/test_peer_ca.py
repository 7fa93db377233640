"""Peer CA checks (peer_ca module_utils) and the peer_ca_info module fetching from a public
bucket on a real moto server (port 25050+ of the privatelink range)."""
import datetime
import json
import os
import urllib.request

import boto3
import pytest
from ansible.module_utils.testing import patch_module_args
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import peer_ca
from ansible_collections.threshold_kms.mpc_party.plugins.modules import peer_ca_info

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def make_ca(cn, not_before=None, not_after=None, with_key=False, ca=True):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "no cn")])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before or NOW - DAY).not_valid_after(not_after or NOW + 365 * DAY))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    cert = builder.sign(key, hashes.SHA256())
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    if with_key:
        pem += key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()
    return pem


# ------------------------------------------------------------------- checks --

def test_valid_ca_is_described():
    pem = make_ca("party2.sandbox.kms.local")
    info = peer_ca.check_ca("junk before\n" + pem, "Party2.Sandbox.kms.local", min_days_valid=30)
    assert info["subject_cn"] == "party2.sandbox.kms.local"
    assert info["is_ca"] is True
    assert 363 <= info["days_left"] <= 365
    assert info["pem"] == pem
    assert len(info["fingerprint_sha256"]) == 64


# rule -> (certificate factory, expected CN, message); certificates are made in the test, so
# test ids stay stable (pytest-xdist compares them across workers)
RULES = {
    "wrong-cn": (lambda: make_ca("party3.sandbox.kms.local"), "party2.sandbox.kms.local",
                 "subject CN is 'party3.sandbox.kms.local' but the party's mpc_identity is 'party2.sandbox.kms.local'"),
    "no-cn": (lambda: make_ca(None), "party2.sandbox.kms.local", "has no subject CN"),
    "expired": (lambda: make_ca("p2", not_before=NOW - 30 * DAY, not_after=NOW - DAY), "p2", "the certificate expired on"),
    "not-yet-valid": (lambda: make_ca("p2", not_before=NOW + DAY), "p2", "not valid yet"),
    "private-key": (lambda: make_ca("p2", with_key=True), "p2", "contains a private key"),
    "two-certificates": (lambda: make_ca("p2") + make_ca("p2"), "p2", "found 2 PEM certificates"),
    "not-pem": (lambda: "hello", "p2", "no '-----BEGIN CERTIFICATE-----' block"),
    "empty": (lambda: "", "p2", "the content is empty"),
    "bad-base64": (lambda: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "p2",
                   "not a valid PEM certificate"),
    "der": (lambda: b"\x30\x82\x01\xff", "p2", "binary (DER?)"),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_rules(rule):
    factory, cn, message = RULES[rule]
    with pytest.raises(peer_ca.PeerCaError) as err:
        peer_ca.check_ca(factory(), cn)
    assert message in str(err.value)


def test_min_days_valid():
    pem = make_ca("p2", not_after=NOW + 10 * DAY + datetime.timedelta(hours=1))
    assert peer_ca.check_ca(pem, "p2", min_days_valid=10)["days_left"] == 10
    with pytest.raises(peer_ca.PeerCaError, match="in 10 days .fewer than the 14 required"):
        peer_ca.check_ca(pem, "p2", min_days_valid=14)


def test_locations():
    assert peer_ca.ca_key(3) == "PUB-p3/TlsIdentity/tls.crt"
    assert peer_ca.ca_url("http://h:1/bucket/", 3, "x") == "http://h:1/bucket/PUB-p3/TlsIdentity/x"
    assert peer_ca.ca_folder(3, "P3", "auto") == "P3/CACert/"
    assert peer_ca.list_url("https://b.s3.amazonaws.com", 3) == \
        "https://b.s3.amazonaws.com/?list-type=2&prefix=PUB-p3/CACert/"
    with pytest.raises(peer_ca.PeerCaError, match="object_name"):
        peer_ca.ca_key(3, "a/b")
    with pytest.raises(peer_ca.PeerCaError, match="tls_mode: must be one of manual, auto"):
        peer_ca.ca_folder(3, tls_mode="none")


ID_A, ID_B = "ab" * 32, "cd" * 32


@pytest.mark.parametrize("keys,verdict", [
    (["PUB-p2/CACert/" + ID_A], "PUB-p2/CACert/" + ID_A),
    # what S3 lists besides objects (a folder marker) and other folders do not count
    (["PUB-p2/CACert/", "PUB-p2/CACert/" + ID_A, "PUB-p2/VerfKey/" + ID_B], "PUB-p2/CACert/" + ID_A),
    ([], "missing:the folder PUB-p2/CACert/ is empty"),
    (["PUB-p2/VerfKey/" + ID_A], "missing:the folder PUB-p2/CACert/ is empty"),
    (["PUB-p2/CACert/" + ID_A, "PUB-p2/CACert/" + ID_B], "error:holds 2 CA certificates"),
    (["PUB-p2/CACert/ca.pem"], "error:holds ca.pem, which key generation does not write"),
    (["PUB-p2/CACert/" + ID_A.upper()], "error:which key generation does not write"),
], ids=["one", "ignores-others", "empty", "other-folder", "two-ids", "foreign-name", "uppercase-id"])
def test_pick_keygen_ca(keys, verdict):
    if ":" not in verdict:
        assert peer_ca.pick_keygen_ca(keys, "PUB-p2/CACert/") == verdict
        return
    kind, message = verdict.split(":", 1)
    with pytest.raises(peer_ca.PeerCaError) as err:
        peer_ca.pick_keygen_ca(keys, "PUB-p2/CACert/")
    assert isinstance(err.value, peer_ca.PeerCaMissing) == (kind == "missing")
    assert message in str(err.value)


# ---------------------------------------------------- module against moto S3 --

@pytest.fixture(scope="module")
def moto_url():
    from moto.server import ThreadedMotoServer

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    port = 25050 + int("".join(ch for ch in worker if ch.isdigit()) or 0)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield "http://127.0.0.1:%d" % port
    server.stop()


@pytest.fixture()
def bucket(moto_url):
    urllib.request.urlopen(urllib.request.Request(moto_url + "/moto-api/reset", method="POST")).read()
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="eu-west-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    s3.create_bucket(Bucket="kms-t-p2-public", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    # a public vault: anyone may read (the vault_buckets role sets the same kind of policy)
    s3.put_bucket_policy(Bucket="kms-t-p2-public", Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
                       "Resource": ["arn:aws:s3:::kms-t-p2-public", "arn:aws:s3:::kms-t-p2-public/*"]}]}))
    return {"s3": s3, "name": "kms-t-p2-public", "url": "%s/kms-t-p2-public" % moto_url}


def run(capsys, **args):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            peer_ca_info.main()
    return json.loads(capsys.readouterr().out)


MANUAL_KEY = "PUB-p2/TlsIdentity/tls.crt"


def test_manual_reads_the_tls_identity_object(bucket, capsys):
    pem = make_ca("party2.t.kms.local")
    bucket["s3"].put_object(Bucket=bucket["name"], Key=MANUAL_KEY, Body=pem.encode())
    # key generation's CA next to it is not what a manual-mode peer trusts
    bucket["s3"].put_object(Bucket=bucket["name"], Key="PUB-p2/CACert/" + ID_A, Body=make_ca("other").encode())
    got = run(capsys, party_id=2, expected_cn="party2.t.kms.local", public_vault_url=bucket["url"],
              _ansible_check_mode=True)
    assert got["changed"] is False
    assert got["pem"] == pem
    assert got["url"] == bucket["url"] + "/" + MANUAL_KEY


def test_auto_discovers_the_servers_object(bucket, capsys):
    pem = make_ca("party2.t.kms.local")
    key = "PUB-p2/CACert/" + ID_A  # the server's signing-key request id
    bucket["s3"].put_object(Bucket=bucket["name"], Key=key, Body=pem.encode())
    bucket["s3"].put_object(Bucket=bucket["name"], Key="PUB-p2/VerfKey/" + ID_A, Body=b"x")
    got = run(capsys, party_id=2, expected_cn="party2.t.kms.local", public_vault_url=bucket["url"], tls_mode="auto")
    assert got["url"] == bucket["url"] + "/" + key
    assert got["pem"] == pem
    # the manual location is a different object: nothing there
    manual = run(capsys, party_id=2, expected_cn="party2.t.kms.local", public_vault_url=bucket["url"])
    assert manual["failed"] is True and manual["missing"] is True
    assert "HTTP 404: the party has not published its TLS identity certificate yet" in manual["msg"]


def test_unpublished_and_wrong_cn_fail_naming_the_party(bucket, capsys):
    missing = run(capsys, party_id=2, expected_cn="party2.t.kms.local", public_vault_url=bucket["url"],
                  tls_mode="auto")
    assert missing["failed"] is True
    assert missing["msg"].startswith("party 2 CA certificate")
    assert "the folder PUB-p2/CACert/ is empty" in missing["msg"]
    bucket["s3"].put_object(Bucket=bucket["name"], Key=MANUAL_KEY, Body=make_ca("evil").encode())
    wrong = run(capsys, party_id=2, expected_cn="party2.t.kms.local", public_vault_url=bucket["url"])
    assert wrong["failed"] is True
    assert "subject CN is 'evil'" in wrong["msg"]


def test_inline_pem(capsys):
    got = run(capsys, party_id=3, expected_cn="p3", pem=make_ca("p3"))
    assert got["subject_cn"] == "p3" and got["url"] is None


def test_private_bucket_is_reported_as_such(bucket, capsys):
    bucket["s3"].delete_bucket_policy(Bucket=bucket["name"])
    bucket["s3"].put_object(Bucket=bucket["name"], Key=MANUAL_KEY, Body=make_ca("party2.t.kms.local").encode())
    got = run(capsys, party_id=2, expected_cn="party2.t.kms.local", public_vault_url=bucket["url"])
    assert got["failed"] is True
    assert "HTTP 403" in got["msg"]
    assert "does not allow public reads" in got["msg"]


def test_missing_ca_is_told_apart_from_a_bad_one(bucket, capsys):
    """A CA not published yet fails with missing=true and the URL checked (the privatelink role
    waits for it or names it); a published but broken or ambiguous one fails with missing=false."""
    url = bucket["url"] + "/" + MANUAL_KEY
    listing = bucket["url"] + "/?list-type=2&prefix=PUB-p2/CACert/"
    missing = run(capsys, party_id=2, expected_cn="party2.t.kms.local", public_vault_url=bucket["url"],
                  _ansible_check_mode=True)
    assert missing["failed"] is True and missing["missing"] is True
    assert missing["url"] == url
    auto_missing = run(capsys, party_id=2, expected_cn="party2.t.kms.local", public_vault_url=bucket["url"],
                       tls_mode="auto")
    assert auto_missing["missing"] is True and auto_missing["url"] == listing
    for key in ("PUB-p2/CACert/" + ID_A, "PUB-p2/CACert/" + ID_B):
        bucket["s3"].put_object(Bucket=bucket["name"], Key=key, Body=make_ca("party2.t.kms.local").encode())
    ambiguous = run(capsys, party_id=2, expected_cn="party2.t.kms.local", public_vault_url=bucket["url"],
                    tls_mode="auto")
    assert ambiguous["failed"] is True and ambiguous["missing"] is False
    assert "holds 2 CA certificates" in ambiguous["msg"]
    bucket["s3"].put_object(Bucket=bucket["name"], Key=MANUAL_KEY, Body=make_ca("evil").encode())
    wrong = run(capsys, party_id=2, expected_cn="party2.t.kms.local", public_vault_url=bucket["url"])
    assert wrong["failed"] is True and wrong["missing"] is False
    bucket["s3"].put_object(Bucket=bucket["name"], Key=MANUAL_KEY, Body=make_ca("party2.t.kms.local").encode())
    good = run(capsys, party_id=2, expected_cn="party2.t.kms.local", public_vault_url=bucket["url"])
    assert "failed" not in good and good["missing"] is False


def test_private_vault_counts_as_missing(bucket, capsys):
    """A vault that refuses anonymous reads is "not readable here": the same as not published."""
    bucket["s3"].put_object(Bucket=bucket["name"], Key=MANUAL_KEY, Body=make_ca("party2.t.kms.local").encode())
    bucket["s3"].put_object(Bucket=bucket["name"], Key="PUB-p2/CACert/" + ID_A, Body=make_ca("party2.t.kms.local").encode())
    bucket["s3"].delete_bucket_policy(Bucket=bucket["name"])
    got = run(capsys, party_id=2, expected_cn="party2.t.kms.local", public_vault_url=bucket["url"])
    assert got["failed"] is True and got["missing"] is True and "HTTP 403" in got["msg"]
    listed = run(capsys, party_id=2, expected_cn="party2.t.kms.local", public_vault_url=bucket["url"], tls_mode="auto")
    # moto lets the anonymous listing through without the policy; the read of the object is refused
    assert listed["failed"] is True and listed["missing"] is True and "HTTP 403" in listed["msg"]
