"""Every plugin's DOCUMENTATION, EXAMPLES and RETURN load through ansible-doc.

ansible-lint reports a module whose documentation does not parse as an error, and so does
`ansible-doc`; this suite catches it before the lint run does, and names the plugin.
"""
import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ANSIBLE_DOC = pathlib.Path(sys.executable).with_name("ansible-doc")
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
FILTERS = sorted(p.stem for p in (ROOT / "plugins" / "filter").glob("*.yml"))


def _ansible_doc(kind, names):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    proc = subprocess.run(
        [str(ANSIBLE_DOC), "-t", kind, "--json"] + ["threshold_kms.mpc_party." + n for n in names],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "[ERROR]" not in proc.stderr and "[WARNING]" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def test_every_module_documents_itself():
    docs = _ansible_doc("module", MODULES)
    for name in MODULES:
        entry = docs["threshold_kms.mpc_party." + name]
        assert entry["doc"]["module"] == name
        assert entry["doc"]["short_description"]
        assert entry["examples"], name
        assert entry["return"] is not None, name


def test_every_filter_documents_itself():
    docs = _ansible_doc("filter", FILTERS)
    assert sorted(docs) == ["threshold_kms.mpc_party." + n for n in FILTERS]


@pytest.mark.parametrize("name", MODULES)
def test_module_doc_blocks_are_plain_yaml(name):
    """The raw blocks parse as YAML on their own (a ': ' inside prose breaks them)."""
    import ast

    tree = ast.parse((ROOT / "plugins" / "modules" / (name + ".py")).read_text())
    blocks = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") in ("DOCUMENTATION", "EXAMPLES", "RETURN")
    }
    assert set(blocks) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    for key, text in blocks.items():
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as exc:
            pytest.fail("%s %s: %s" % (name, key, exc))
