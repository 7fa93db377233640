"""playbooks/awx_configure.yml refuses bad input before any request reaches AWX.

CONTROLLER_HOST points at an HTTP server of this test that counts every request: a refused run
must leave it at zero, and a run with good inputs must reach it (so zero means something).
"""
import http.server
import os
import pathlib
import subprocess
import sys
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOK = pathlib.Path(sys.executable).with_name("ansible-playbook")
SECRET = "made-up-secret-for-this-test-9f3c"
GOOD = {
    "awx_party": "party1",
    "awx_project_url": "https://git.example.org/ops/kms-party1.git",
    "awx_execution_environment_image": "registry.example.org/threshold-kms/ee:0.1.0",
}


class CountingHandler(http.server.BaseHTTPRequestHandler):
    def _answer(self):
        self.server.requests.append("%s %s" % (self.command, self.path))
        body = b'{"detail": "Not found."}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _answer

    def log_message(self, *args):
        pass


@pytest.fixture()
def controller():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CountingHandler)  # a free port
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run(controller, extra_vars, env_vars=None, verbosity=""):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWX_", "CONTROLLER_", "TOWER_"))}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               CONTROLLER_HOST="http://127.0.0.1:%d" % controller.server_port, CONTROLLER_OAUTH_TOKEN="none")
    env.update(env_vars or {})
    args = [str(PLAYBOOK), "playbooks/awx_configure.yml"] + (["-" + verbosity] if verbosity else [])
    for key, value in extra_vars.items():
        args += ["-e", "%s=%s" % (key, value)]
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, " ".join((proc.stdout + proc.stderr).split())  # the callback wraps long lines


def test_every_bad_input_named_in_one_failure_and_awx_never_called(controller):
    extra = dict(GOOD, awx_party="p1", awx_project_url="http://git.example.org/ops/kms.git",
                 awx_execution_environment_image="registry.example.org/threshold-kms/ee:latest",
                 awx_check_network_interval_minutes="2")
    rc, out = run(controller, extra, {"AWX_AWS_SECRET_ACCESS_KEY": SECRET, "AWX_SCM_PASSWORD": SECRET}, "vvv")
    assert rc != 0, out
    for variable in ("awx_party", "awx_project_url", "awx_execution_environment_image",
                     "awx_check_network_interval_minutes", "AWX_AWS_SECRET_ACCESS_KEY", "AWX_SCM_USERNAME"):
        assert variable + ":" in out, variable
    assert out.count("Check the inputs") >= 1 and "failed=1" in out
    assert SECRET not in out
    assert controller.requests == []


@pytest.mark.parametrize("extra, env_vars, named", [
    ({"awx_execution_environment_image": "registry.example.org/threshold-kms/ee"}, {}, "awx_execution_environment_image"),
    ({}, {"AWX_AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"}, "AWX_AWS_ACCESS_KEY_ID"),
    ({"awx_project_url": "git@git.example.org:ops/kms.git"}, {"AWX_SCM_SSH_KEY": "~/.ssh/id_ed25519"}, "AWX_SCM_SSH_KEY"),
])
def test_a_single_bad_input_is_refused_before_awx(controller, extra, env_vars, named):
    rc, out = run(controller, dict(GOOD, **extra), env_vars)
    assert rc != 0, out
    assert named + ":" in out
    assert controller.requests == []


def test_good_inputs_reach_awx(controller):
    """The same server sees the run once the inputs are good: the first AWX call (the organisation)."""
    rc, out = run(controller, GOOD)
    assert rc != 0  # the stand-in answers 404 to everything
    assert "no AWS credential is created" in out  # neither AWS key set: said before any write
    assert controller.requests, out
    assert controller.requests[0].startswith("GET /api/v2/organizations/?name=party1-kms")
