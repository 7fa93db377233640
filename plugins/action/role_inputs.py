# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Action of threshold_kms.mpc_party.role_inputs: a role's inputs, or those of every role a
playbook runs, checked on the controller before any cloud call (documentation:
plugins/modules/role_inputs.py; rules: plugins/module_utils/role_rules.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.errors import AnsibleError, AnsibleUndefinedVariable
from ansible.module_utils.common.yaml import yaml_load
from ansible.plugins.action import ActionBase

try:  # ansible-core 2.19 renders only strings marked as templates
    from ansible.template import trust_as_template
except ImportError:  # pragma: no cover - older ansible-core renders every string
    def trust_as_template(value):
        return value

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import role_inputs

COLLECTION = "threshold_kms.mpc_party"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE_ACTIONS = ("import_role", "include_role")


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


def _role_name(name):
    name = str(name)
    return name[len(COLLECTION) + 1:] if name.startswith(COLLECTION + ".") else name


def playbook_roles(path):
    """``[(role, entry point, {variable: expression})]`` of every role a playbook imports or
    includes, in order, with the variables the playbook hands it (its ``vars:``)."""
    found = []

    def walk(tasks):
        for task in tasks or []:
            if not isinstance(task, dict):
                continue
            for key in ("block", "rescue", "always"):
                walk(task.get(key))
            for action, args in task.items():
                if action.split(".")[-1] in ROLE_ACTIONS and isinstance(args, dict) and args.get("name"):
                    entry = str(args.get("tasks_from") or "main")
                    entry = entry[:-4] if entry.endswith(".yml") else entry
                    found.append((_role_name(args["name"]), entry, dict(task.get("vars") or {})))
    for play in _yaml(path) or []:
        if not isinstance(play, dict):
            continue
        for section in ("pre_tasks", "tasks", "post_tasks"):
            walk(play.get(section))
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
        for role, entry, wiring in targets:
            try:
                found, unknown = self._check_role(role, entry, wiring, task_vars)
            except (IOError, OSError, AnsibleError) as err:
                return dict(result, failed=True, msg="role_inputs: %s: %s" % (role, err))
            problems += found
            checked.append({"role": role, "entry_point": entry, "pending": sorted(unknown)})
        result.update(changed=False, roles=checked, problems=problems)
        if problems:
            result.update(failed=True, msg="%d input problem%s, nothing was called:\n  %s" % (
                len(problems), "" if len(problems) == 1 else "s", "\n  ".join(problems)))
        else:
            result["msg"] = "inputs of %d role entry point%s checked" % (len(checked), "" if len(checked) == 1 else "s")
        return result

    def _check_role(self, role, entry, wiring, task_vars):
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
        templar = self._templar.copy_with_new_env(available_variables=env)
        values, unknown = {}, set()
        for name in options:
            if name not in env:
                continue
            try:
                values[name] = templar.template(env[name])
            except AnsibleUndefinedVariable:
                unknown.add(name)
        missing = role_inputs.required_missing(options, values, unknown)
        problems, _ = role_inputs.check(role, options, values, {"check_mode": bool(self._task.check_mode)})
        return ["%s: %s" % (role, m) for m in missing] + problems, unknown
