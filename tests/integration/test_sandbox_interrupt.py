"""Interrupted sandboxes leave no stand-in behind; busy ports fail `up` at once; tests keep off
the sandbox's ports.

* ``tools/sandbox up`` interrupted (SIGINT, SIGTERM) while it waits for the stand-ins it has
  started stops them; the next ``up`` in the same folder starts from the records, no clean-up.
* Stand-ins started for a test session (``SANDBOX_OWNER_PID``) stop by themselves when that
  process ends, even by SIGKILL; ``make sandbox`` interrupted by SIGTERM stops its step and the
  stand-ins.
* ``down`` never signals a process whose pid was reused (its start time differs from the record).
* ``up`` with a port it needs taken fails within seconds naming the port and the process.
* No test module's port constants fall on the sandbox's default ports (a static scan).

Each stand-in is judged by the pid, process group and start time ``up`` recorded in
``$SANDBOX_DIR/pids/<service>.json``, never by a process name. Ports: 18000-18999.
"""
import ast
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.standins import move_ports, write_inventory
from sandbox import procs

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = [sys.executable, str(ROOT / "tools" / "sandbox")]
BUSY_BASE = 18000        # AWS +0, Kubernetes +100+i, KMS nodes +200+i / +300+i / +400+i
INTERRUPT_BASE = 18500   # AWS +0, Kubernetes +100+i
OWNER_BASE = 18700       # Kubernetes +1
MAKE_BASE = 18800        # AWS +0, Kubernetes +100+i, KMS nodes +50+i / +60+i / +70+i
pytestmark = pytest.mark.xdist_group("sandbox_interrupt")


def sandbox_env(state, aws_port, kube_base):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SANDBOX_", "AWS_")) or k == "SANDBOX_AWS_SCHEME"}
    env.update(SANDBOX_DIR=str(state), SANDBOX_AWS_PORT=str(aws_port), SANDBOX_KUBE_BASE_PORT=str(kube_base),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    return env


def tool(args, env, timeout=120):
    return subprocess.run(SANDBOX + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def records(state):
    """The process records `up` wrote: {service: record}."""
    out = {}
    for path in (Path(state) / "pids").glob("*.json"):
        out[path.stem] = json.loads(path.read_text())
    return out


def wait_for(predicate, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def gone(record):
    """Neither the recorded process nor any member of its process group still runs."""
    return not procs.same_process(record) and not procs.owned_members(record)


def down_and_check(state, env):
    seen = records(state)
    assert tool(["down"], env).returncode == 0
    assert all(gone(r) for r in seen.values()), seen


@pytest.fixture()
def cleanup():
    """Stops, after the test, every sandbox folder and process it registered (a failing test leaves nothing)."""
    folders = []
    yield folders.append
    for item in folders:
        if isinstance(item, subprocess.Popen):
            if item.poll() is None:
                item.kill()
            item.wait(10)
        else:
            tool(["down"], item[1])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_up_stops_what_it_started_and_the_next_up_converges(tmp_path, cleanup, sig):
    state = tmp_path / "sbx"
    env = sandbox_env(state, INTERRUPT_BASE, INTERRUPT_BASE + 100)
    env.pop("SANDBOX_OWNER_PID", None)  # the interruption alone must stop them
    cleanup((state, env))
    up = subprocess.Popen(SANDBOX + ["up", "--parties", "1"], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # the AWS stand-in is started and up waits for it to answer (moto takes seconds to import)
    first = wait_for(lambda: records(state).get("aws"), timeout=30)
    assert first and up.poll() is None, "up finished before it could be interrupted"
    assert procs.same_process(first)
    up.send_signal(sig)
    out, err = up.communicate(timeout=60)
    assert up.returncode == 128 + sig, out + err
    assert "up interrupted (%s)" % sig.name in err
    assert wait_for(lambda: gone(first), timeout=5), "the AWS stand-in outlived the interrupted up"
    assert records(state) == {}, "records of stopped stand-ins are left"
    # the next up, in the same folder, starts both without any manual clean-up
    again = tool(["up", "--parties", "1"], env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert set(records(state)) == {"aws", "kube"} and all(procs.same_process(r) for r in records(state).values())
    down_and_check(state, env)


OWNER = """
import os, subprocess, sys, time
os.environ["SANDBOX_OWNER_PID"] = str(os.getpid())
rc = subprocess.run(sys.argv[1:], stdout=sys.stderr).returncode
print("up rc", rc, flush=True)
time.sleep(300)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_stand_ins_of_a_test_session_stop_when_it_ends(tmp_path, cleanup, sig):
    """A session (here a small process standing for pytest) that started stand-ins is killed as a
    timeout kills `make test`: no stand-in outlives it, and `up` then starts afresh."""
    state = tmp_path / "sbx"
    env = sandbox_env(state, OWNER_BASE, OWNER_BASE)
    cleanup((state, env))
    owner = subprocess.Popen([sys.executable, "-c", OWNER] + SANDBOX + ["up", "--only", "kube", "--parties", "1"],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cleanup(owner)
    line = owner.stdout.readline()
    assert line.strip() == "up rc 0", line + (owner.stderr.read() if owner.poll() is not None else "")
    kube = records(state)["kube"]
    assert kube["owner"]["pid"] == owner.pid and procs.same_process(kube)
    owner.send_signal(sig)
    owner.wait(10)
    assert wait_for(lambda: gone(kube), timeout=15), "the Kubernetes stand-in outlived its owner"
    assert "owner pid %d has ended" % owner.pid in (state / "logs" / "kube.log").read_text()
    env.pop("SANDBOX_OWNER_PID", None)
    again = tool(["up", "--only", "kube", "--parties", "1"], env)
    assert again.returncode == 0 and "kube: started" in again.stdout, again.stdout + again.stderr
    down_and_check(state, env)


@pytest.mark.parametrize("how", ["SIGTERM-to-make", "SIGINT-to-the-group"])
def test_make_sandbox_interrupted_stops_its_step_and_the_stand_ins(tmp_path, cleanup, how):
    """`kill <make>` (make passes SIGTERM on to the recipe's shell) or Ctrl-C in a terminal (SIGINT
    to the whole foreground process group) while the deploy playbook runs."""
    state = tmp_path / "sbx"
    inventory = write_inventory(tmp_path / "inventory", MAKE_BASE)
    move_ports(inventory, MAKE_BASE + 50, MAKE_BASE + 60, MAKE_BASE + 70)
    env = sandbox_env(state, MAKE_BASE, MAKE_BASE + 100)
    env.pop("SANDBOX_OWNER_PID", None)  # the Makefile's trap alone must stop them
    env.pop("MAKEFLAGS", None)
    cleanup((state, env))
    # -o venv: the recipe as it is, without a pip install should requirements*.txt be newer than the venv
    make = subprocess.Popen(["make", "--no-print-directory", "-o", "venv", "sandbox", "INVENTORY=%s" % inventory],
                            cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cleanup(make)
    # up has finished (it wrote env) and the deploy playbook runs
    assert wait_for(lambda: (state / "env").is_file() or make.poll() is not None, timeout=90)
    started = records(state)
    assert make.poll() is None and set(started) == {"aws", "kube"}, make.stdout.read() if make.poll() is not None else started
    time.sleep(1)
    if how == "SIGTERM-to-make":
        make.send_signal(signal.SIGTERM)
    else:
        os.killpg(make.pid, signal.SIGINT)
    out, _ = make.communicate(timeout=90)
    assert make.returncode != 0
    assert "make sandbox: interrupted; stopping the stand-ins" in out, out[-3000:]
    assert all(gone(r) for r in started.values()), out[-3000:]
    assert records(state) == {}
    # nothing of the run is left: neither the stand-ins nor the interrupted step (ansible-playbook)
    assert wait_for(lambda: not procs.group_members(make.pid), timeout=10), \
        [procs.cmdline(p) for p in procs.group_members(make.pid)]


def test_down_never_signals_a_reused_pid(tmp_path):
    """A record whose pid now belongs to another program (another start time) is left alone."""
    state = tmp_path / "sbx"
    (state / "pids").mkdir(parents=True)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        record = procs.identity(stranger.pid)
        record["start"] -= 1  # the stand-in that had this pid started earlier
        (state / "pids" / "kube.json").write_text(json.dumps(record))
        (state / "pids" / "kube.pid").write_text("%d\n" % stranger.pid)
        down = tool(["down"], sandbox_env(state, OWNER_BASE, OWNER_BASE))
        assert down.returncode == 0 and "kube: not running" in down.stdout, down.stdout + down.stderr
        time.sleep(0.3)
        assert stranger.poll() is None, "down killed a process that was not its stand-in"
        assert not (state / "pids" / "kube.json").exists()
    finally:
        stranger.kill()
        stranger.wait(5)


def test_up_with_a_port_taken_fails_at_once_naming_the_port_and_its_holder(tmp_path):
    state = tmp_path / "sbx"
    inventory = write_inventory(tmp_path / "inventory", BUSY_BASE)
    env = sandbox_env(state, BUSY_BASE, BUSY_BASE + 100)
    blockers = []
    try:
        for port in (BUSY_BASE + 102, BUSY_BASE + 302):  # party 2's Kubernetes API, party 2's KMS client port
            sock = socket.socket()
            sock.bind(("127.0.0.1", port))
            sock.listen(1)
            blockers.append(sock)
        start = time.monotonic()
        up = tool(["up", "--inventory", str(inventory)], env, timeout=60)
        seconds = time.monotonic() - start
    finally:
        for sock in blockers:
            sock.close()
    assert up.returncode == 2, up.stdout + up.stderr
    assert seconds < 10, "up took %.1fs to fail" % seconds
    for port, what in ((BUSY_BASE + 102, "party 2's Kubernetes API"), (BUSY_BASE + 302, "party 2's KMS node client_port")):
        assert re.search(r"port %d is in use by pid %d \(.*\): needed for %s" % (port, os.getpid(), re.escape(what)),
                         up.stderr), up.stderr
    assert "nothing started" in up.stderr and records(state) == {}


# ------------------------------------------------------------------------ ports of the tests
def sandbox_default_ports():
    """Every port a `make sandbox` listens on: AWS, Kubernetes APIs and KMS nodes of each sandbox
    inventory (tools/make_sandbox_inventory.py, sandbox/cli.py defaults)."""
    ports = {4566}
    for name in ("sandbox", "sandbox13"):
        network = yaml.safe_load((ROOT / "inventories" / name / "group_vars" / "all" / "network.yml").read_text())
        parties = network["mpc_network"]["parties"]
        ports.update(6440 + p["party_id"] for p in parties)
        for party in parties:
            ports.update(party[k] for k in ("peer_port", "client_port", "metrics_port"))
    return ports


PORT_NAME = re.compile(r"(^|_)(PORT|PORTS|BASE|PEER|CLIENT|KUBE|PORT_BASE|BASE_PORT)(_|$)")
BLOCK = 1000  # ports a constant opens: itself and the next BLOCK - 1 (base + offsets, + per-worker shifts)


def port_constants(source):
    """[(line, name, first port)] of module-level constants naming a port or a base of ports:
    the first integer of the value, or of an environment default like
    ``int(os.environ.get("X", "28000"))``. 65535, the largest port, is the bound of a port check
    (``PORT = Int(1, 65535)``), never a port a test listens on."""
    found = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.Assign):
            continue
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        names += [e.id for t in node.targets if isinstance(t, ast.Tuple) for e in t.elts if isinstance(e, ast.Name)]
        if not any(PORT_NAME.search(n) for n in names):
            continue
        for sub in ast.walk(node.value):
            value = sub.value if isinstance(sub, ast.Constant) else None
            if isinstance(value, str) and value.isdigit():
                value = int(value)
            if isinstance(value, int) and not isinstance(value, bool) and 1024 <= value < 65535:
                found.append((node.lineno, "/".join(names), value))
                break
    return found


def sources_of_the_tests():
    """(path relative to the repository, source) of every Python file under tests/."""
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if "__pycache__" not in path.parts:
            yield path.relative_to(ROOT), path.read_text()


def clashes(source, defaults):
    return [(line, name, value) for line, name, value in port_constants(source)
            if any(value <= port < value + BLOCK for port in defaults)]


def test_the_port_scan_catches_a_constant_on_a_sandbox_port():
    defaults = sandbox_default_ports()
    assert {4566, 6441, 12001, 12101, 9647, 6453} <= defaults
    bad = 'import os\nAWS_PORT = 4566\nBASE = int(os.environ.get("X", "11500"))\nKUBE_BASE_PORT = 21000 + 150\n'
    assert [c[1] for c in clashes(bad, defaults)] == ["AWS_PORT", "BASE"]


def test_no_test_module_listens_on_the_sandbox_ports():
    """`make test` runs beside a `make sandbox`: no port block of a test may hold a sandbox port."""
    defaults = sandbox_default_ports()
    scanned, problems = 0, []
    for path, source in sources_of_the_tests():
        scanned += len(port_constants(source))
        problems += ["%s:%d %s = %d" % (path, *c) for c in clashes(source, defaults)]
    assert scanned > 20, "the scan found almost no port constants: is it still reading the tests?"
    assert not problems, "port constants on (or within %d below) a sandbox port:\n%s" % (BLOCK, "\n".join(problems))


def ephemeral_low():
    """The first port the kernel may hand to an outgoing connection: any fixed port at or above it
    can be taken by a client socket of another test (seen in CI: a KMS node simulator could not bind
    34824 while a worker's connection held it)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768   # Linux's default


def ephemeral_clashes(source, low):
    """Port constants whose block reaches ``low``."""
    return [(line, name, value) for line, name, value in port_constants(source) if value + BLOCK > low]


def test_the_port_scan_catches_a_constant_in_the_ephemeral_range():
    source = 'MOTO_PORT = 34802\nPEER, CLIENT = 19820, 19830\nBASE = int(os.environ.get("X", "31900"))\n'
    assert [c[1] for c in ephemeral_clashes(source, 32768)] == ["MOTO_PORT", "BASE"]


def test_no_test_module_listens_in_the_ephemeral_port_range():
    low = min(ephemeral_low(), 32768)
    problems = ["%s:%d %s = %d" % (path, *c) for path, source in sources_of_the_tests()
                for c in ephemeral_clashes(source, low)]
    assert not problems, "port blocks reaching the ephemeral range (from %d):\n%s" % (low, "\n".join(problems))


def test_the_sandbox_listens_below_the_ephemeral_port_range():
    """`tools/sandbox up` refuses a port that is taken: a default port the kernel may give to any
    outgoing connection would make `make sandbox` fail now and then (seen in CI with 50002, the
    sandbox's former peer port of party 2, held by a client socket)."""
    low = min(ephemeral_low(), 32768)
    assert sorted(p for p in sandbox_default_ports() if p >= low) == []
