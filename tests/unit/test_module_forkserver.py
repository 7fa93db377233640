"""tools/module_forkserver.py: pipelined module payloads run in processes forked from a preloaded server.

A server of the tool in tools/ is started on a socket of the test's own. The caller side is the
tool's `_delegate`, called from a small program (the copy `make venv` installs calls the same
function at interpreter start); what it runs is a script on its standard input, as Ansible sends a
pipelined module. The last cases run a real module through ansible-playbook with and without the
server.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "module_forkserver.py")

# The caller: the tool from tools/ hands this process's run (its standard input) to the server.
CALLER = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='forkserver_under_test')['_delegate'](sys.argv[2]); " \
         "print('NOT DELEGATED')"


# A kernel before 5.3 has no pidfd_open: the server then looks for the run's exit every 10 ms.
WITHOUT_PIDFD = "import os, runpy, sys; del os.pidfd_open; tool = sys.argv[1]; sys.argv[1:] = ['serve', sys.argv[2]]; " \
                "runpy.run_path(tool, run_name='__main__')"


@pytest.fixture(scope="module", params=["pidfd", "polling"])
def server(request, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("forkserver") / "socket")
    env = {k: v for k, v in os.environ.items() if k != "MPC_FORKSERVER"}
    if request.param == "pidfd":
        proc = subprocess.Popen([sys.executable, TOOL, "serve", path], env=env)
    else:
        proc = subprocess.Popen([sys.executable, "-c", WITHOUT_PIDFD, TOOL, path], env=env)
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        assert proc.poll() is None, "the server exited with %s" % proc.returncode
        assert time.monotonic() < deadline, "the server did not listen in 60 s"
        time.sleep(0.05)
    yield path
    proc.terminate()
    proc.wait(timeout=30)


def caller(socket_path, env=None, cwd=None):
    """A process that hands what it is given on its standard input to the server, as a module run does."""
    return subprocess.Popen([sys.executable, "-c", CALLER, TOOL, socket_path], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)


def run(socket_path, script, env=None, cwd=None, timeout=60):
    proc = caller(socket_path, env=env, cwd=cwd)
    out, err = proc.communicate(textwrap.dedent(script).encode(), timeout=timeout)
    return proc.returncode, out.decode(), err.decode()


def test_the_script_runs_in_a_child_with_the_callers_arguments_environment_and_directory(server, tmp_path):
    env = dict(os.environ, PROBE_VALUE="from the caller \u00e9")
    env.pop("HOME", None)
    rc, out, err = run(server, """
        import json, os, sys
        print(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "probe": os.environ.get("PROBE_VALUE"),
                          "home": os.environ.get("HOME"), "path0": sys.path[0], "name": __name__,
                          "preloaded": "botocore.session" in sys.modules, "pid": os.getpid()}))
        sys.stderr.write("to stderr\\n")
        sys.exit(7)
    """, env=env, cwd=str(tmp_path))
    assert rc == 7, err
    assert "NOT DELEGATED" not in out
    seen = json.loads(out)
    assert seen["argv"] == [""] and seen["path0"] == "" and seen["name"] == "__main__"
    assert seen["cwd"] == str(tmp_path)
    assert seen["probe"] == "from the caller \u00e9"
    assert seen["home"] is None  # the caller's environment, not the server's
    assert seen["preloaded"] is True
    assert err == "to stderr\n"


def test_an_uncaught_exception_prints_the_scripts_traceback_and_exits_1(server):
    rc, out, err = run(server, """
        def fail():
            raise ValueError("from the script")
        fail()
    """)
    assert rc == 1
    assert 'File "<stdin>", line 3, in fail' in err and "ValueError: from the script" in err
    assert "module_forkserver" not in err and "_child" not in err  # the traceback starts at the script


def test_atexit_functions_run_and_buffered_output_is_flushed(server):
    rc, out, err = run(server, """
        import atexit, sys
        atexit.register(lambda: sys.stdout.write("at exit\\n"))
        sys.stdout.write("partial line, no newline ")
    """)
    assert rc == 0, err
    assert out == "partial line, no newline at exit\n"


def test_a_child_killed_by_a_signal_kills_the_caller_with_it(server):
    rc, out, err = run(server, """
        import os, signal
        os.kill(os.getpid(), signal.SIGTERM)
    """)
    assert rc == -signal.SIGTERM


def sleeping_run(server, tmp_path):
    """A caller whose run sleeps a minute: (the caller, the pid of the run)."""
    marker = tmp_path / "pid"
    proc = caller(server)
    proc.stdin.write(("import os, time\nopen(%r, 'w').write(str(os.getpid()))\ntime.sleep(60)\n" % str(marker)).encode())
    proc.stdin.close()
    deadline = time.monotonic() + 30
    while not marker.exists() or not marker.read_text():
        assert time.monotonic() < deadline and proc.poll() is None, "the run did not start"
        time.sleep(0.05)
    child = int(marker.read_text())
    assert child != proc.pid
    return proc, child


def test_a_signal_to_the_caller_reaches_the_child(server, tmp_path):
    proc, child = sleeping_run(server, tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == -signal.SIGTERM
    assert not alive(child)


def test_a_caller_that_goes_away_takes_its_child_with_it(server, tmp_path):
    proc, child = sleeping_run(server, tmp_path)
    proc.kill()  # SIGKILL: the caller cannot pass anything on
    proc.wait(timeout=20)
    deadline = time.monotonic() + 20
    while alive(child):
        assert time.monotonic() < deadline, "the child %d still runs without its caller" % child
        time.sleep(0.1)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_with_no_server_the_interpreter_runs_as_usual(tmp_path):
    rc, out, err = run(str(tmp_path / "no-such-socket"), "print('ran here')\n")
    assert rc == 0, err
    assert out == "NOT DELEGATED\n"  # _delegate returned: the caller goes on with its own work


def test_a_preloaded_botocore_file_is_served_once_then_read_from_disk(server):
    rc, out, err = run(server, """
        import json
        import botocore.loaders
        import os, botocore
        loader = botocore.loaders.JSONFileLoader()
        base = os.path.join(os.path.dirname(botocore.__file__), "data", "sts")
        version = sorted(os.listdir(base))[-1]
        file_path = os.path.join(base, version, "service-2")
        first = loader.load_file(file_path)
        first["metadata"]["changed by the child"] = True
        second = loader.load_file(file_path)
        import gzip
        if os.path.exists(file_path + ".json.gz"):
            with gzip.open(file_path + ".json.gz", "rt") as handle:
                on_disk = json.load(handle)
        else:
            with open(file_path + ".json") as handle:
                on_disk = json.load(handle)
        print(json.dumps({"first_equal": {k: v for k, v in first["metadata"].items() if k != "changed by the child"}
                          == on_disk["metadata"], "second_equal": second == on_disk}))
    """)
    assert rc == 0, err
    assert json.loads(out) == {"first_equal": True, "second_equal": True}


def test_run_starts_a_server_for_the_command_and_stops_it(tmp_path):
    probe = "import os, sys; print(os.environ.get('MPC_FORKSERVER', '')); sys.exit(5)"
    proc = subprocess.run([sys.executable, TOOL, "run", "--", sys.executable, "-c", probe],
                          capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "MPC_FORKSERVER"})
    assert proc.returncode == 5, proc.stderr
    socket_path = proc.stdout.strip()
    assert socket_path.endswith("socket")
    assert not os.path.exists(socket_path)  # stopped and cleaned up with the command


MODULE = '''#!/usr/bin/python
import os, sys
PRELOADED = "kubernetes.client" in sys.modules
from ansible.module_utils import basic
from ansible.module_utils.basic import AnsibleModule
module = AnsibleModule(argument_spec=dict(value=dict(type="str", required=True)), supports_check_mode=True)
module.exit_json(changed=False, value=module.params["value"], preloaded=PRELOADED, pid=os.getpid(),
                 basic_from_payload=basic.__file__.startswith(os.path.dirname(_modlib_path)))
'''

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Run the probe module
      PROBE_MODULE:
        value: "{{ item }}"
      loop: [one, "tw\u00f6"]
      register: probe
    - name: Check what it returned
      ansible.builtin.assert:
        that:
          - probe.results | map(attribute='value') | list == ['one', 'twö']
          - probe.results | map(attribute='preloaded') | list == [expect_preloaded | bool] * 2
          # AnsibleModule from the server's import of this virtualenv's files, or from the payload's zip
          - probe.results | map(attribute='basic_from_payload') | list == [not (expect_ansible_preloaded | bool)] * 2
          - probe.results | map(attribute='failed') | select | list == []
"""


# A collection's module keeps the preloaded ansible.module_utils; a module from a library
# directory (ansible.legacy.<name>: its payload carries ansible/legacy/, which this virtualenv's
# `ansible` package lacks) imports the payload's own.
@pytest.mark.parametrize("kind", ["collection", "library"])
@pytest.mark.parametrize("through_server", [True, False], ids=["forkserver", "plain"])
def test_an_ansible_module_gives_the_same_result_through_the_server(server, tmp_path, through_server, kind):
    site = [p for p in sys.path if p.endswith("site-packages")]
    installed = [os.path.join(p, "_mpc_forkserver.py") for p in site if os.path.exists(os.path.join(p, "_mpc_forkserver.py"))]
    assert installed, "make venv installs tools/module_forkserver.py into the virtualenv"
    with open(installed[0]) as copy, open(TOOL) as source:
        assert copy.read() == source.read(), "the virtualenv's copy is stale: run make venv"
    modules = tmp_path / "collections" / "ansible_collections" / "probe" / "forkserver" / "plugins" / "modules"
    modules.mkdir(parents=True)
    (modules / "probe.py").write_text(MODULE)
    (tmp_path / "library").mkdir()
    (tmp_path / "library" / "probe.py").write_text(MODULE)
    module = "probe.forkserver.probe" if kind == "collection" else "probe"
    (tmp_path / "play.yml").write_text(PLAY.replace("PROBE_MODULE", module))
    env = {k: v for k, v in os.environ.items() if k != "MPC_FORKSERVER"}
    env.update(ANSIBLE_PIPELINING="1", ANSIBLE_LIBRARY=str(tmp_path / "library"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections") + os.pathsep + env.get("ANSIBLE_COLLECTIONS_PATH", ""))
    if through_server:
        env["MPC_FORKSERVER"] = server
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable,
                           "-e", "expect_preloaded=%s" % through_server,
                           "-e", "expect_ansible_preloaded=%s" % (through_server and kind == "collection"),
                           str(tmp_path / "play.yml")],
                          capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ok=2" in proc.stdout, proc.stdout[-3000:]

def payload(files):
    """A script shaped like an AnsiballZ payload (its zip in a `zip_data` line) that reports whether
    the run kept the server's preloaded ansible.module_utils."""
    import base64
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return ("import json, sys\n"
            "print(json.dumps({'basic': 'ansible.module_utils.basic' in sys.modules, 'ansible': 'ansible' in sys.modules}))\n"
            "zip_data='%s'\n" % base64.b64encode(buffer.getvalue()).decode())


def installed_ansible_file(name):
    import ansible

    with open(os.path.join(os.path.dirname(os.path.dirname(ansible.__file__)), name), "rb") as handle:
        return handle.read()


@pytest.mark.parametrize("case, expect_kept", [
    ("the same files", True),
    ("the same files, AnsiballZ's own package stubs", True),
    ("basic.py changed", False),
    ("a file this virtualenv lacks", False),
    ("a payload zip that does not decode", False),
])
def test_a_payload_keeps_the_preloaded_ansible_only_when_its_files_are_this_virtualenvs(server, case, expect_kept):
    basic = installed_ansible_file("ansible/module_utils/basic.py")
    files = {"ansible/module_utils/basic.py": basic,
             "ansible/module_utils/common/warnings.py": installed_ansible_file("ansible/module_utils/common/warnings.py"),
             "ansible_collections/ns/name/plugins/modules/probe.py": b"# a collection's module: never compared\n"}
    if case == "the same files, AnsiballZ's own package stubs":
        files["ansible/__init__.py"] = b"from pkgutil import extend_path\n__path__=extend_path(__path__,__name__)\n"
        files["ansible/module_utils/__init__.py"] = b"from pkgutil import extend_path\n__path__=extend_path(__path__,__name__)\n"
    elif case == "basic.py changed":
        files["ansible/module_utils/basic.py"] = basic.replace(b"def ", b"def  ", 1)
    elif case == "a file this virtualenv lacks":
        files["ansible/module_utils/not_in_this_virtualenv.py"] = b"VALUE = 1\n"
    script = payload(files)
    if case == "a payload zip that does not decode":
        script = script.replace("zip_data='", "zip_data='!!", 1)
    rc, out, err = run(server, script)
    assert rc == 0, err
    assert json.loads(out) == {"basic": expect_kept, "ansible": expect_kept}
