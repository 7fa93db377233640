# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Action of threshold_kms.mpc_party.role_inputs: a role's inputs, or those of every role a
playbook runs, checked on the controller before any cloud call (documentation:
plugins/modules/role_inputs.py; rules: plugins/module_utils/role_rules.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible import context
from ansible.errors import AnsibleError, AnsibleUndefinedVariable
from ansible.module_utils.common.yaml import yaml_load
from ansible.plugins.action import ActionBase
from ansible.utils.vars import load_extra_vars
from jinja2 import Environment, meta
from jinja2.exceptions import TemplateSyntaxError

try:  # ansible-core 2.19 renders only strings marked as templates
    from ansible.template import trust_as_template
except ImportError:  # pragma: no cover - older ansible-core renders every string
    def trust_as_template(value):
        return value

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import role_inputs, rules_playbooks

COLLECTION = "threshold_kms.mpc_party"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE_ACTIONS = ("import_role", "include_role")
TASK_FILE_ACTIONS = ("import_tasks", "include_tasks")
_JINJA = Environment()
# names a playbook expression may read that are not variables
_JINJA_NAMES = frozenset(("omit", "lookup", "query", "q", "range", "dict", "lipsum", "cycler", "joiner",
                          "namespace", "now", "undef", "true", "false", "none", "True", "False", "None"))


def _yaml(path):
    with open(path) as handle:
        return yaml_load(handle) or {}


def _trusted(value):
    """Mark every string of a structure read from the collection's own files as a template."""
    if isinstance(value, dict):
        return dict((k, _trusted(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    if isinstance(value, str):
        return trust_as_template(value)
    return value


def _reads_undefined(expression, env):
    """True when a playbook's ``{{ ... }}`` expression reads a variable that is not defined yet."""
    if not isinstance(expression, str) or "{{" not in expression:
        return False
    try:
        names = meta.find_undeclared_variables(_JINJA.parse(expression))
    except TemplateSyntaxError:
        return False  # the templar reports it
    return any(name not in env and name not in _JINJA_NAMES for name in names)


def _role_name(name):
    name = str(name)
    return name[len(COLLECTION) + 1:] if name.startswith(COLLECTION + ".") else name


def playbook_roles(path):
    """``[(role, entry point, {variable: expression})]`` of every role a playbook imports or
    includes, in order, with the variables the playbook hands it (the ``vars:`` of the task and of
    the blocks and task files around it); task files it includes by a literal path are followed."""
    found = []

    def walk(tasks, base, inherited):
        for task in tasks or []:
            if not isinstance(task, dict):
                continue
            scope = dict(inherited, **(task.get("vars") or {}))
            for key in ("block", "rescue", "always"):
                walk(task.get(key), base, scope)
            for action, args in task.items():
                short = action.split(".")[-1]
                if short in ROLE_ACTIONS and isinstance(args, dict) and args.get("name"):
                    entry = str(args.get("tasks_from") or "main")
                    entry = entry[:-4] if entry.endswith(".yml") else entry
                    found.append((_role_name(args["name"]), entry, scope))
                elif short in TASK_FILE_ACTIONS:
                    name = args.get("file") if isinstance(args, dict) else args
                    if isinstance(name, str) and "{{" not in name:
                        included = os.path.join(base, name)
                        walk(_yaml(included) or [], os.path.dirname(included), scope)
    base = os.path.dirname(path)
    for play in _yaml(path) or []:
        if not isinstance(play, dict):
            continue
        for section in ("pre_tasks", "tasks", "post_tasks"):
            walk(play.get(section), base, {})
        for role in play.get("roles") or []:
            role = {"role": role} if isinstance(role, str) else role
            name = role.get("role") or role.get("name")
            if name:
                found.append((_role_name(name), "main", dict(role.get("vars") or {})))
    return found


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("role", "entry_point", "playbook", "skip_roles"))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        if bool(args.get("role")) == bool(args.get("playbook")):
            return dict(result, failed=True, msg="role_inputs: give either role (with entry_point) or playbook")
        skip = set(args.get("skip_roles") or [])
        if args.get("playbook"):
            path = os.path.join(ROOT, "playbooks", os.path.basename(str(args["playbook"])))
            if not os.path.isfile(path):
                return dict(result, failed=True, msg="role_inputs: playbook: no %s in the collection" % path)
            targets, seen = [], set()
            for role, entry, wiring in playbook_roles(path):
                key = (role, entry, repr(sorted(wiring.items())))
                if role in skip or role == "preflight" or key in seen:
                    continue
                seen.add(key)
                # the playbook's expressions mean "this value comes later": they are resolved when
                # they can be (a literal), and left to the role's own check when they cannot.
                targets.append((role, entry, wiring))
        else:
            targets = [(_role_name(args["role"]), str(args.get("entry_point") or "main"), None)]

        problems, checked = [], []
        # the run's extra vars, read once for every entry point
        extra = load_extra_vars(self._loader) if (context.CLIARGS or {}).get("extra_vars") else {}
        for role, entry, wiring in targets:
            try:
                found, unknown = self._check_role(role, entry, wiring, task_vars, extra)
            except (IOError, OSError, AnsibleError) as err:
                return dict(result, failed=True, msg="role_inputs: %s: %s" % (role, err))
            # a variable shared by two entry points of a role is one mistake, reported once
            problems += [p for p in found if p not in problems]
            checked.append({"role": role, "entry_point": entry, "pending": sorted(unknown)})
        if args.get("playbook"):
            # the variables the playbook takes itself (upgrade_*, teardown_*, render_dir, ...)
            problems += self._check_playbook(str(args["playbook"]), task_vars)
        result.update(changed=False, roles=checked, problems=problems)
        if problems:
            result.update(failed=True, msg="%d input problem%s, nothing was called:\n  %s" % (
                len(problems), "" if len(problems) == 1 else "s", "\n  ".join(problems)))
        else:
            result["msg"] = "inputs of %d role entry point%s checked" % (len(checked), "" if len(checked) == 1 else "s")
        return result

    @staticmethod
    def _run_check_mode():
        """The run's --check: the task itself runs with check_mode false (it only reads), which
        hides the run's mode from the task."""
        return bool((context.CLIARGS or {}).get("check"))

    def _check_playbook(self, playbook, task_vars):
        """Problems of the variables a playbook takes itself (rules_playbooks), as the play sees
        them (its vars:, the inventory, extra vars); a string not set at all is checked as ''."""
        name = rules_playbooks.playbook_name(playbook)
        if name not in rules_playbooks.OPTIONS:
            return []  # deploy_party.yml: all its variables are the roles'
        options = rules_playbooks.OPTIONS[name]
        templar = self._templar.copy_with_new_env(available_variables=task_vars)
        values = {}
        for var, option in options.items():
            try:
                if var in task_vars:
                    values[var] = templar.template(task_vars[var])
                elif option.get("type") == "str":
                    values[var] = ""
            except AnsibleUndefinedVariable as err:
                return ["%s: %s: %s" % (name, var, err)]
        party = (task_vars.get("mpc") or {}).get("party") or {}
        return rules_playbooks.check(name, values, {"check_mode": self._run_check_mode(), "party_name": party.get("name")})

    def _check_role(self, role, entry, wiring, task_vars, extra):
        role_dir = os.path.join(ROOT, "roles", role)
        specs = _yaml(os.path.join(role_dir, "meta", "argument_specs.yml")).get("argument_specs") or {}
        if entry not in specs:
            raise AnsibleError("no entry point %s in roles/%s/meta/argument_specs.yml" % (entry, role))
        options = specs[entry].get("options") or {}
        # Ansible's precedence, lowest first: the role's defaults, the inventory and play (task_vars),
        # the role's vars/, the variables the playbook hands the role.
        env = {}
        defaults = os.path.join(role_dir, "defaults", "main.yml")
        if os.path.isfile(defaults):
            env.update(_trusted(_yaml(defaults)))
        env.update(task_vars)
        role_vars = os.path.join(role_dir, "vars", "main.yml")
        if os.path.isfile(role_vars):
            env.update(_trusted(_yaml(role_vars)))
        if wiring:
            env.update(_trusted(wiring))
        # extra vars (-e, an AWX survey) win over everything, the playbook's vars: included
        env.update({k: v for k, v in extra.items() if k in options})
        templar = self._templar.copy_with_new_env(available_variables=env)
        values, unknown = {}, set()
        for name in options:
            if name not in env:
                continue
            # a value the playbook wires from an earlier role's output (``{{ x_facts.y | default('') }}``)
            # is pending until that role has run, whatever its default shows now
            if wiring and name in wiring and _reads_undefined(wiring[name], env):
                unknown.add(name)
                continue
            try:
                values[name] = templar.template(env[name])
            except AnsibleUndefinedVariable:
                unknown.add(name)
        missing = role_inputs.required_missing(options, values, unknown)
        problems, _ = role_inputs.check(role, options, values, {"check_mode": self._run_check_mode(), "entry_point": entry})
        return ["%s: %s" % (role, m) for m in missing] + problems, unknown
