"""Run one of the repository's playbooks the way an operator would, for tests that need no
stand-in (render_party.yml, the refusals before any cloud call).

``repo_playbook("render_party.yml", "inventories/sandbox", "--limit", "party1", ...)`` runs
``ansible-playbook playbooks/<playbook> -i <inventory> <args>`` from the repository root with its
ansible.cfg, no colour, and an unreachable HTTP(S) proxy: no stand-in runs for these tests, so
any HTTP attempt fails loudly instead of reaching something on this machine.

render_party.yml takes with ``-e`` the values a deploy learns (its header). For an inventory with
TLS on (the sandbox inventories run tls_mode manual) one of them is every party's CA certificate:
``repo_playbook`` passes self-signed ones, CN = each party's ``mpc_identity``, as the parties' first
deploy phase would publish them, before the caller's arguments (a caller's own
``kms_config_peer_ca_pems`` replaces them).
"""
import datetime
import json
import os
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


_PEER_CAS = {}


def peer_ca_vars(inventory):
    """Path of a vars file with ``kms_config_peer_ca_pems`` for every party of ``inventory``
    (None when its network has TLS off)."""
    path = os.path.join(ROOT, str(inventory), "group_vars", "all", "network.yml")
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        network = (yaml.safe_load(handle) or {}).get("mpc_network") or {}
    if network.get("tls_mode", "auto") == "none":
        return None
    if path not in _PEER_CAS:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.timezone.utc)
        pems = {}
        for party in network.get("parties") or []:
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, party["mpc_identity"])])
            cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                    .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                    .not_valid_after(now + datetime.timedelta(days=30))
                    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                    .sign(key, hashes.SHA256()))
            pems[str(party["party_id"])] = cert.public_bytes(serialization.Encoding.PEM).decode()
        handle, out = tempfile.mkstemp(prefix="peer-cas-", suffix=".json")
        with os.fdopen(handle, "w") as fh:
            json.dump({"kms_config_peer_ca_pems": pems}, fh)
        _PEER_CAS[path] = out
    return _PEER_CAS[path]


def repo_playbook(playbook, inventory, *args, env=None, timeout=900):
    """Returns (return code, stdout + stderr). ``env`` adds to or overrides the environment."""
    cas = peer_ca_vars(inventory) if playbook == "render_party.yml" else None
    args = (("-e", "@" + cas) if cas else ()) + tuple(args)
    run_env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="")
    run_env.update(env or {})
    proc = subprocess.run([ANSIBLE_PLAYBOOK, os.path.join("playbooks", playbook), "-i", str(inventory)]
                          + [str(a) for a in args],
                          cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr
