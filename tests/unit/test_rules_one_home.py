"""One home per input rule: a regex is defined once in the collection's Python, and the roles'
validate.yml files hold no rule of their own (they run role_inputs, which runs the Python rules)."""
import ast
import glob
import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULE_ACTIONS = {"ansible.builtin.assert", "ansible.builtin.fail", "assert", "fail"}


def _regex_literals(path):
    """(pattern, line) of every re.compile("...") / re.match("...") literal of a Python file."""
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                and node.func.attr in ("compile", "match", "fullmatch", "search")
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.args[0].value, node.lineno))
    return found


def test_each_regex_is_defined_once():
    seen = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "plugins", "**", "*.py"), recursive=True)):
        for pattern, line in _regex_literals(path):
            if len(pattern) < 8:  # short helpers such as r"\s+" are not rules
                continue
            seen.setdefault(pattern, []).append("%s:%d" % (os.path.relpath(path, ROOT), line))
    twice = {p: where for p, where in seen.items() if len(where) > 1}
    assert not twice, "regexes written more than once (give each rule one home): %s" % twice


def test_the_scan_sees_regexes():
    """The scan above finds the rules' regexes (so an empty result would not pass silently)."""
    path = os.path.join(ROOT, "plugins", "module_utils", "input_rules.py")
    assert any("sha256" in p for p, _ in _regex_literals(path))


def _tasks(items):
    for task in items or []:
        if isinstance(task, dict):
            yield task
            for key in ("block", "rescue", "always"):
                for sub in _tasks(task.get(key)):
                    yield sub


def test_validate_files_hold_no_rules():
    files = sorted(glob.glob(os.path.join(ROOT, "roles", "*", "tasks", "validate*.yml")))
    assert len(files) >= 8
    offenders = []
    for path in files:
        with open(path) as handle:
            for task in _tasks(yaml.safe_load(handle)):
                if RULE_ACTIONS & set(task):
                    offenders.append("%s: %s" % (os.path.relpath(path, ROOT), task.get("name")))
    assert not offenders, "input rules written in Jinja (move them to plugins/module_utils/rules_<role>.py): %s" % offenders
