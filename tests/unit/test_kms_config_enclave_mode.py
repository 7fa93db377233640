"""TLS auto and the enclave mode: kms_config and kms_workload refuse what cannot run.

[threshold.tls.auto] is Nitro attestation: only a server inside an enclave can do it. The roles
run through playbooks/render_party.yml on inventories/sandbox (party 1, no enclave there), so the
check happens exactly where an operator would meet it, without any cloud or cluster.
"""
import json

from tests.support.playbooks import repo_playbook

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
    assert "Check that TLS auto runs in enclave mode" in output
    assert ("kms_config_tls_mode / kms_config_enclave: tls_mode auto ([threshold.tls.auto], Nitro attestation "
            "against trusted_releases) needs kms_config_enclave true, and kms_config_enclave is false") in output
    assert not (out / "party1" / "threshold.toml").exists()  # refused before anything is written


def test_kms_workload_refuses_tls_auto_without_an_enclave(tmp_path):
    code, output, out = render(tmp_path, kms_workload_tls_mode="auto")
    assert code == 2, output[-3000:]
    assert "kms_workload_tls_mode / kms_workload_enclave: got tls_mode auto with kms_workload_enclave false" in output
    assert "tls_mode auto ([threshold.tls.auto], Nitro attestation) needs kms_workload_enclave true" in output
    assert not (out / "party1" / "manifests" / "10-statefulset-kms-core.yaml").exists()


def test_the_workload_cannot_disagree_with_the_configuration_on_enclave_mode(tmp_path):
    # The configuration is built without an enclave (the sandbox); forcing the workload into
    # enclave mode would start an enclave without its AWS KMS keychain.
    code, output, out = render(tmp_path, kms_workload_enclave=True)
    assert code == 2, output[-3000:]
    assert ("kms_workload_enclave / kms_workload_config_enclave: the workload's enclave mode (true) must be "
            "the one threshold.toml was built for (kms_config_enclave, published as kms_config_facts.enclave: false)") in output
    assert not (out / "party1" / "manifests" / "10-statefulset-kms-core.yaml").exists()


def test_the_workload_follows_the_configuration_into_enclave_mode(tmp_path):
    # Only kms_config_enclave is set: render_party.yml wires the workload's mode from kms_config_facts.
    code, output, out = render(
        tmp_path, kms_config_enclave=True, kms_config_tls_mode="auto", kms_config_peer_ca_pems=CAS,
        kms_config_kms_key_id="arn:aws:kms:eu-west-1:100000000001:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    assert code == 0, output[-3000:]
    sts = (out / "party1" / "manifests" / "10-statefulset-kms-core.yaml").read_text()
    assert "core-service-enclave" in sts and "nitro-cli run-enclave" in sts
