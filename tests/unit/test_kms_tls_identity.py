"""kms_tls_identity: a party's TLS identity Secret (tls_mode manual), created once and never replaced.

The certificate rules are checked on what module_utils/tls_identity generates (parsed back with
cryptography); the module itself runs through ansible-playbook against the Kubernetes emulator
(sandbox/kube_emulator), and what it stored is read back from the emulator.
"""
import base64
import datetime
import json
import os
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import tls_identity

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# This suite's Kubernetes API emulator: party 1 on 29501 (+ 50 per xdist worker). Its own range,
# outside the simulator suites' blocks (sandbox/kms_sim/testing.port_block, 22000-22799).
_WORKER = int("".join(ch for ch in os.environ.get("PYTEST_XDIST_WORKER", "gw0") if ch.isdigit()) or 0)
BASE_PORT = 29500 + 50 * _WORKER
SECRETS = "v1/secrets"


def test_generated_certificate_is_a_self_signed_non_ca_for_the_identity():
    cert_pem, key_pem = tls_identity.generate("p3.kms.example.org", ["kms-p3.internal"], wildcard=True)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value == "p3.kms.example.org"
    cert.verify_directly_issued_by(cert)  # signed by its own key
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert isinstance(key.curve, ec.SECP256R1)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sans == ["p3.kms.example.org", "*.p3.kms.example.org", "kms-p3.internal"]
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_cert_sign and usage.crl_sign and not usage.key_encipherment
    days = (cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)).days
    assert 3648 <= days <= 3650
    info = tls_identity.describe(cert_pem)
    assert info["subject_cn"] == "p3.kms.example.org" and info["curve"] == "P-256"
    assert "PRIVATE" not in json.dumps(info)


def test_p384_and_validity():
    cert_pem, key_pem = tls_identity.generate("p1.kms.example.org", curve="P-384", validity_days=30)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    assert cert.signature_hash_algorithm.name == "sha384"
    assert tls_identity.describe(cert_pem)["curve"] == "P-384"
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 30


@pytest.mark.parametrize("kwargs, field", [
    ({"common_name": "Not A Name"}, "common_name: must be a lower-case DNS name"),
    ({"common_name": "*.wild.example.org"}, "common_name:"),
    ({"common_name": "p1.example.org", "extra_dns_names": ["bad name"]}, "dns_names: 'bad name'"),
    ({"common_name": "p1.example.org", "curve": "P-521"}, "curve: must be one of P-256, P-384"),
    ({"common_name": "p1.example.org", "validity_days": 0}, "validity_days: must be an integer in 1..36500"),
])
def test_bad_inputs_name_the_field(kwargs, field):
    with pytest.raises(tls_identity.IdentityError, match=field.replace("*", r"\*").replace(".", r"\.")):
        tls_identity.generate(**kwargs)


PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - threshold_kms.mpc_party.kms_tls_identity:
        kubeconfig: "{kubeconfig}"
        namespace: kms
        name: kms-core-tls
        common_name: "{cn}"
        curve: P-384
        labels: {{app.kubernetes.io/name: kms-core}}
      register: identity
    - ansible.builtin.copy:
        content: "{{{{ identity | to_json }}}}"
        dest: "{out}"
        mode: "0600"
      check_mode: false
"""


@pytest.fixture
def cluster(tmp_path):
    kube_emulator = pytest.importorskip("sandbox.kube_emulator")
    with kube_emulator.run_emulators(1, base_port=BASE_PORT, crds=[], controller=False) as kube:
        yield kube.emulator(1), kube.write_kubeconfig(1, tmp_path / "kubeconfig.yaml")


def namespace(emulator):
    emulator.create_object("v1/namespaces", None, {"metadata": {"name": "kms"}})


def run_module(tmp_path, kubeconfig, cn="p1.kms.example.org", check=False):
    out = tmp_path / "result.json"
    if out.exists():
        out.unlink()
    playbook = tmp_path / "identity.yml"
    playbook.write_text(PLAYBOOK.format(kubeconfig=kubeconfig, cn=cn, out=out))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local", "-v",
         "-e", "ansible_python_interpreter=%s" % sys.executable, str(playbook)] + (["--check"] if check else []),
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert "PRIVATE KEY" not in output  # the key never reaches the output, even with -v
    result = json.loads(out.read_text()) if out.exists() else None
    return proc.returncode, output, result


def stored(emulator):
    secret = emulator.get_object(SECRETS, "kms", "kms-core-tls")
    if secret is None:
        return None
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}, secret


def test_creates_once_then_keeps_the_secret(cluster, tmp_path):
    emulator, kubeconfig = cluster
    namespace(emulator)

    code, output, result = run_module(tmp_path, kubeconfig, check=True)
    assert code == 0, output[-3000:]
    assert result["changed"] and result["would_create"] and not result["created"] and result["certificate"] == ""
    assert stored(emulator) is None  # check mode created nothing

    code, output, result = run_module(tmp_path, kubeconfig)
    assert code == 0, output[-3000:]
    assert result["changed"] and result["created"]
    data, secret = stored(emulator)
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"]["labels"] == {"app.kubernetes.io/name": "kms-core"}
    assert data["tls.crt"] == result["certificate"]
    cert = x509.load_pem_x509_certificate(data["tls.crt"].encode())
    key = serialization.load_pem_private_key(data["tls.key"].encode(), password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert isinstance(key.curve, ec.SECP384R1)
    assert result["subject_cn"] == "p1.kms.example.org" and result["curve"] == "P-384"
    assert "tls.key" not in json.dumps(result) and "PRIVATE" not in json.dumps(result)

    # Second run: nothing changes, the same certificate comes back; check mode says the same.
    for check in (False, True):
        code, output, again = run_module(tmp_path, kubeconfig, check=check)
        assert code == 0, output[-3000:]
        assert not again["changed"] and not again["created"] and not again["would_create"]
        assert again["certificate"] == result["certificate"]
        assert again["sha256_fingerprint"] == result["sha256_fingerprint"]
    assert stored(emulator)[0] == data


def test_an_identity_for_another_name_is_refused_not_replaced(cluster, tmp_path):
    emulator, kubeconfig = cluster
    namespace(emulator)
    run_module(tmp_path, kubeconfig, cn="old.kms.example.org")
    before = stored(emulator)[0]
    code, output, result = run_module(tmp_path, kubeconfig, cn="p1.kms.example.org")
    assert code == 2 and result is None
    assert "holds a certificate for CN 'old.kms.example.org'" in output
    assert "not for the party's mpc_identity 'p1.kms.example.org'" in output
    assert stored(emulator)[0] == before


def test_a_secret_without_a_key_pair_is_refused_not_overwritten(cluster, tmp_path):
    emulator, kubeconfig = cluster
    namespace(emulator)
    emulator.create_object(SECRETS, "kms", {"metadata": {"name": "kms-core-tls", "namespace": "kms"},
                                           "type": "Opaque", "data": {"note": base64.b64encode(b"x").decode()}})
    code, output, _ = run_module(tmp_path, kubeconfig)
    assert code == 2
    assert "Secret kms/kms-core-tls exists but has no tls.crt / tls.key" in output
    assert emulator.get_object(SECRETS, "kms", "kms-core-tls")["data"] == {"note": "eA=="}


def test_a_missing_namespace_is_named(cluster, tmp_path):
    emulator, kubeconfig = cluster  # no namespace kms
    code, output, _ = run_module(tmp_path, kubeconfig)
    assert code == 2
    assert "Secret kms/kms-core-tls: the namespace does not exist" in output
