"""tools/zipimport_cache.py: bytecode of sources imported from a zip archive, kept between processes.

Each case runs a fresh interpreter (the way Ansible runs a module; without site-packages, where
`make venv` installs a copy) that loads the tool from tools/ and imports a module from a zip archive in a temporary directory, with the cache in a
directory of the test's own.
"""
import os
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "zipimport_cache.py")

PROGRAM = r"""
import importlib.util, sys, traceback
spec = importlib.util.spec_from_file_location("_mpc_zipimport_cache", sys.argv[1])
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)
sys.path.insert(0, sys.argv[2])
import payload
print(payload.answer())
try:
    payload.fail()
except RuntimeError:
    print(traceback.extract_tb(sys.exc_info()[2])[-1].filename)
"""

SOURCE = """
def answer():
    return %d


def fail():
    raise RuntimeError("from the payload")
"""


def make_zip(directory, name, value):
    path = os.path.join(str(directory), name)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("payload.py", SOURCE % value)
    return path


def run(tmp_path, archive, **env):
    environ = dict(os.environ, MPC_ZIPIMPORT_CACHE="1", MPC_ZIPIMPORT_CACHE_DIR=str(tmp_path / "cache"))
    environ.update(env)
    # -S: no site-packages, so the copy `make venv` installs there stays out of it
    proc = subprocess.run([sys.executable, "-S", "-c", PROGRAM, TOOL, archive], capture_output=True, text=True,
                          env=environ, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split("\n")[:2]


def cached(tmp_path):
    directory = tmp_path / "cache"
    return sorted(os.listdir(str(directory))) if directory.exists() else []


def test_a_module_compiled_once_is_read_back_with_the_new_archive_s_name(tmp_path):
    first = make_zip(tmp_path, "first.zip", 41)
    assert run(tmp_path, first) == ["41", os.path.join(first, "payload.py")]
    entries = cached(tmp_path)
    assert len(entries) == 1

    # the same source in another archive (Ansible's payload lives in a new temporary path each
    # time): read from the cache, and its tracebacks name the new archive, not the first one
    second = make_zip(tmp_path, "second.zip", 41)
    assert run(tmp_path, second) == ["41", os.path.join(second, "payload.py")]
    assert cached(tmp_path) == entries


def test_a_changed_source_is_compiled_anew(tmp_path):
    run(tmp_path, make_zip(tmp_path, "a.zip", 1))
    assert run(tmp_path, make_zip(tmp_path, "b.zip", 2))[0] == "2"
    assert len(cached(tmp_path)) == 2


def test_a_damaged_cache_entry_falls_back_to_compiling(tmp_path):
    archive = make_zip(tmp_path, "a.zip", 7)
    run(tmp_path, archive)
    (entry,) = cached(tmp_path)
    (tmp_path / "cache" / entry).write_bytes(b"not marshal data")
    assert run(tmp_path, archive)[0] == "7"
    assert (tmp_path / "cache" / entry).read_bytes() != b"not marshal data"  # rewritten


def test_it_can_be_turned_off(tmp_path):
    assert run(tmp_path, make_zip(tmp_path, "a.zip", 3), MPC_ZIPIMPORT_CACHE="0")[0] == "3"
    assert cached(tmp_path) == []
