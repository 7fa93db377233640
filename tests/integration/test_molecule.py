"""Every Molecule scenario (converge, idempotence, verify, ...) as part of the pytest run.

Each scenario starts and stops its own stand-ins on its own ports (see its molecule.yml), so
the scenarios are independent and pytest-xdist may run two at a time.
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIOS = sorted(
    name for name in os.listdir(os.path.join(ROOT, "molecule"))
    if not name.startswith("_") and os.path.isfile(os.path.join(ROOT, "molecule", name, "molecule.yml"))
)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", PY_COLORS="0")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    for var in ("AWS_CA_BUNDLE", "SANDBOX_DIR", "SANDBOX_AWS_PORT", "SANDBOX_KUBE_BASE_PORT", "SANDBOX_AWS_ENDPOINT"):
        env.pop(var, None)  # a scenario chooses its own stand-ins
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "molecule"), "test", "-s", scenario],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, "molecule test -s %s failed (rc %d):\n%s" % (scenario, proc.returncode, output[-8000:])
    # The idempotence step ran and passed (molecule prints it; a scenario without it is a defect).
    assert "idempotence" in output.lower(), output[-3000:]
