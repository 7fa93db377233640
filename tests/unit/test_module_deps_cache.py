"""tools/module_deps_cache.py: what each module_utils source imports, kept between Ansible runs.

Each case runs a fresh interpreter that loads the tool from tools/ (the copy `make venv` installs in
site-packages is turned off with MPC_MODULE_DEPS_CACHE=0), builds the payload files of a module with
Ansible's own recursive_finder, and prints each file's name and SHA-256, with the cache in a
directory of the test's own. The payload must be the same with the cache, cold or warm, as without.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "module_deps_cache.py")
COLLECTIONS = os.path.join(ROOT, ".collections")

PROGRAM = r"""
import datetime, hashlib, importlib.util, io, json, sys, zipfile
tool_path, cache_dir, collections, use, module_path, fqn = sys.argv[1:7]
spec = importlib.util.spec_from_file_location("module_deps_cache_under_test", tool_path)
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)
tool.CACHE_DIR = cache_dir
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader([collections])
from ansible.executor import module_common
if use == "on":
    tool.patch(module_common)
with open(module_path, "rb") as handle:
    data = handle.read()
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w") as archive:
    module_common.recursive_finder(fqn.rsplit(".", 1)[-1], fqn, data, archive, datetime.datetime(2026, 1, 1),
                                   module_common._builder.ExtensionManager.create(task_vars={}))
with zipfile.ZipFile(buffer) as archive:
    print(json.dumps({n: hashlib.sha256(archive.read(n)).hexdigest() for n in archive.namelist()}))
"""


def payload(tmp_path, module_path, fqn, use="on", collections=COLLECTIONS, **env):
    environ = dict(os.environ, MPC_MODULE_DEPS_CACHE="0")  # the site-packages copy stays out of it
    environ.update(env)
    proc = subprocess.run([sys.executable, "-c", PROGRAM, TOOL, str(tmp_path / "cache"), collections, use,
                           module_path, fqn], capture_output=True, text=True, env=environ, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def entries(tmp_path):
    directory = tmp_path / "cache"
    return sorted(os.listdir(str(directory))) if directory.exists() else []


OURS = (os.path.join(ROOT, "plugins", "modules", "eks_control_plane.py"),
        "ansible_collections.threshold_kms.mpc_party.plugins.modules.eks_control_plane")


def test_the_payload_is_the_same_without_the_cache_and_with_it_cold_or_warm(tmp_path):
    without = payload(tmp_path, *OURS, use="off")
    assert entries(tmp_path) == []
    assert "ansible/module_utils/basic.py" in without
    assert "ansible_collections/threshold_kms/mpc_party/plugins/module_utils/eks_access.py" in without
    assert "ansible_collections/amazon/aws/plugins/module_utils/modules.py" in without
    cold = payload(tmp_path, *OURS)
    kept = entries(tmp_path)
    assert len(kept) > 20  # one entry per source parsed (module_utils of ansible, amazon.aws and ours)
    warm = payload(tmp_path, *OURS)
    assert entries(tmp_path) == kept  # nothing parsed anew
    assert cold == without and warm == without


def demo_collection(root, helper_source):
    base = root / "ansible_collections" / "acme" / "demo" / "plugins"
    (base / "modules").mkdir(parents=True, exist_ok=True)
    (base / "module_utils").mkdir(parents=True, exist_ok=True)
    (base / "modules" / "thing.py").write_text(
        "from ansible.module_utils.basic import AnsibleModule\n"
        "from ansible_collections.acme.demo.plugins.module_utils import helper\n")
    (base / "module_utils" / "helper.py").write_text(helper_source)
    (base / "module_utils" / "extra.py").write_text("VALUE = 1\n")
    return str(base / "modules" / "thing.py"), "ansible_collections.acme.demo.plugins.modules.thing"


def test_a_source_that_changed_is_parsed_anew(tmp_path):
    collections = tmp_path / "collections"
    module = demo_collection(collections, "X = 1\n")
    first = payload(tmp_path, *module, collections=str(collections))
    assert "ansible_collections/acme/demo/plugins/module_utils/helper.py" in first
    assert "ansible_collections/acme/demo/plugins/module_utils/extra.py" not in first
    # the helper now imports another file: the cached imports of its old source do not apply
    demo_collection(collections, "from ansible_collections.acme.demo.plugins.module_utils import extra\n")
    second = payload(tmp_path, *module, collections=str(collections))
    assert "ansible_collections/acme/demo/plugins/module_utils/extra.py" in second
    assert second == payload(tmp_path, *module, collections=str(collections), use="off")


def test_a_damaged_cache_entry_falls_back_to_parsing(tmp_path):
    expected = payload(tmp_path, *OURS)
    for name in entries(tmp_path):
        (tmp_path / "cache" / name).write_text("{not json")
    assert payload(tmp_path, *OURS) == expected


def test_installed_it_patches_module_common_on_import_and_can_be_turned_off(tmp_path):
    program = ("import importlib.util, sys\n"
               "spec = importlib.util.spec_from_file_location('module_deps_cache_under_test', sys.argv[1])\n"
               "tool = importlib.util.module_from_spec(spec)\n"
               "spec.loader.exec_module(tool)\n"
               "import ansible.executor.module_common as mc\n"
               "print(getattr(mc, '_mpc_module_deps_cache', False))\n")
    results = []
    for value in ("1", "0"):
        # -S: without site-packages' copy; ansible from the virtualenv's site-packages on PYTHONPATH
        env = dict(os.environ, MPC_MODULE_DEPS_CACHE=value, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        proc = subprocess.run([sys.executable, "-S", "-c", program, TOOL], capture_output=True, text=True,
                              env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results.append(proc.stdout.strip())
    assert results == ["True", "False"]
