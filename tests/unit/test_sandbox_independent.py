"""The stand-ins are independent witnesses, and the tooling stands on its own.

- ``sandbox/`` (AWS, Kubernetes API and KMS node stand-ins, the code of ``tools/sandbox``) is written
  from the facts about the real services: it imports nothing of the collection (``plugins/``), so
  that a wrong belief in our code cannot be agreed with by its own stand-in; nor of ``tests/``.
- ``tools/`` (the sandbox CLI, the inventory generator, the benchmarks) imports nothing of ``tests/``:
  tests use the tooling, not the reverse.
"""
import ast
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(source):
    """Every module name an ``import`` or ``from ... import`` of ``source`` names (at any depth,
    including imports inside functions). Relative imports are left out: they stay in their package."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def forbidden(source, prefixes):
    return sorted({name for name in imported_modules(source)
                   if any(name == p or name.startswith(p + ".") for p in prefixes)})


COLLECTION = ("ansible_collections.threshold_kms", "plugins")
TESTS = ("tests",)


def python_files(folder):
    for path in sorted((ROOT / folder).rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".py" or text.startswith("#!/usr/bin/env python"):
            yield path, text


def test_the_scan_sees_every_kind_of_import():
    source = ("import os\nfrom tests.support.playbooks import run\n"
              "def f():\n    from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import prss\n"
              "    import plugins.filter\nfrom . import sibling\nimport testsuite\n")
    assert forbidden(source, COLLECTION + TESTS) == [
        "ansible_collections.threshold_kms.mpc_party.plugins.module_utils", "plugins.filter", "tests.support.playbooks"]


def test_the_stand_ins_import_nothing_of_the_collection_nor_of_the_tests():
    files = list(python_files("sandbox"))
    assert len(files) > 20, "sandbox/ holds the stand-ins: %d Python files found" % len(files)
    problems = ["%s imports %s" % (path.relative_to(ROOT), ", ".join(names))
                for path, text in files for names in [forbidden(text, COLLECTION + TESTS)] if names]
    assert not problems, "\n".join(problems)


def test_the_tools_import_nothing_of_the_tests():
    files = list(python_files("tools"))
    assert any(path.name == "sandbox" for path, _ in files), [str(p) for p, _ in files]
    problems = ["%s imports %s" % (path.relative_to(ROOT), ", ".join(names))
                for path, text in files for names in [forbidden(text, TESTS)] if names]
    assert not problems, "\n".join(problems)


def test_the_sandbox_cli_runs_from_a_tree_without_tests(tmp_path):
    """tools/sandbox --help from a copy of the repository that has no tests/ folder."""
    import shutil
    import subprocess
    import sys

    copy = tmp_path / "repo"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".collections", ".sandbox", "tests", "__pycache__", "build", "*.tar.gz"))
    assert not (copy / "tests").exists()
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    run = subprocess.run([sys.executable, str(copy / "tools" / "sandbox"), "--help"], cwd=copy, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "up" in run.stdout and "down" in run.stdout


def test_no_role_or_product_playbook_mentions_the_sandbox():
    """The product knows endpoint overrides, not the sandbox: what differs there comes from the
    sandbox's inventory and tooling. Role READMEs may name it as an example of where to try a role."""
    files = [p for folder in ("roles", "playbooks") for p in sorted((ROOT / folder).rglob("*"))
             if p.is_file() and p.name != "README.md" and "__pycache__" not in p.parts]
    assert len(files) > 100, "%d files found under roles/ and playbooks/" % len(files)
    mentions = ["%s:%d: %s" % (p.relative_to(ROOT), n, line.strip())
                for p in files for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
                if "sandbox" in line.lower()]
    assert not mentions, "\n".join(mentions)
