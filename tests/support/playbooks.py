"""Run one of the repository's playbooks the way an operator would, for tests that need no
stand-in (render_party.yml, the refusals before any cloud call).

``repo_playbook("render_party.yml", "inventories/sandbox", "--limit", "party1", ...)`` runs
``ansible-playbook playbooks/<playbook> -i <inventory> <args>`` from the repository root with its
ansible.cfg, no colour, and an unreachable HTTP(S) proxy: no stand-in runs for these tests, so
any HTTP attempt fails loudly instead of reaching something on this machine.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def repo_playbook(playbook, inventory, *args, env=None, timeout=900):
    """Returns (return code, stdout + stderr). ``env`` adds to or overrides the environment."""
    run_env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="")
    run_env.update(env or {})
    proc = subprocess.run([ANSIBLE_PLAYBOOK, os.path.join("playbooks", playbook), "-i", str(inventory)]
                          + [str(a) for a in args],
                          cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr
