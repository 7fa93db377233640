# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""A role's inputs checked before any cloud call: its argument spec and its cross-field rules.

Pure Python, no cloud. The ``role_inputs`` action runs it twice with the same code: in preflight
for every role a playbook will run (before the first AWS or Kubernetes request), and at the start
of each role (``tasks/validate.yml``), so a role run on its own (Molecule, ``tasks_from``) meets
the same rules. Every problem is reported at once, each naming its variable and the rule.

A value that is not known yet (the output of an earlier role, wired by the playbook) is left out:
its spec and the rules that read it are checked when the role itself starts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import role_rules

# Keys of an argument_specs.yml option that only document it.
_DOC_KEYS = ("description", "short_description", "version_added", "notes", "seealso")


def _strip_docs(options, known):
    """The options of ``known`` names, without documentation keys; ``required`` dropped for the
    options whose value is not known yet (they are checked when the role starts)."""
    spec = {}
    for name, option in (options or {}).items():
        option = {k: v for k, v in (option or {}).items() if k not in _DOC_KEYS}
        if "options" in option:
            option["options"] = _strip_docs(option["options"], None)
        if known is not None and name not in known:
            continue
        spec[name] = option
    return spec


_CONVERT_RE = re.compile(r"^argument '[^']+' is of type (?P<type>\S+)(?: found in '[^']*'\.)? and we were unable to "
                         r"convert to (?P<want>\S+): (?P<why>.*)$")


_TAGGED_RE = re.compile(r"<class '[\w.]*\._AnsibleTagged(\w+)'>")


def _spec_message(name, text):
    """ArgumentSpecValidator's wording, shorter and with role-variable words: the variable is
    already named in front of the message."""
    text = _TAGGED_RE.sub(lambda m: "a " + m.group(1).lower(), text)  # ansible-core's tagged str/int/...
    match = _CONVERT_RE.match(text)
    if match:
        return "must be of type %s (%s)" % (match.group("want"), match.group("why"))
    text = text.replace("value of %s must be" % name, "must be").replace("argument '%s' " % name, "")
    return text.replace("parameters", "variables").replace("parameter", "variable")


def check(role, options, values, context=None):
    """Problems of ``values`` (``{variable: value}`` of the options known now) against the role's
    entry-point ``options`` (from meta/argument_specs.yml) and its rules (role_rules).

    Returns ``(problems, validated)``: messages ``"<role>: <variable>: <rule> (got ...)"`` and the
    values after the spec's type conversion. ``context`` holds run facts rules may need
    (``check_mode``). Each option is validated on its own, so a problem is always attributed to
    its variable, and a value the spec refused is not handed to the rules.
    """
    context = context or {}
    spec = _strip_docs(options, set(values))
    problems, validated = [], {}
    for name in sorted(spec):
        result = ArgumentSpecValidator({name: spec[name]}).validate({name: values[name]})
        messages = result.error_messages
        if messages:
            problems += ["%s: %s" % (name, _spec_message(name, m)) for m in messages]
        else:
            validated[name] = result.validated_parameters[name]
    problems += role_rules.check(role, validated, context)
    return ["%s: %s" % (role, p) for p in problems], validated


def required_missing(options, present, unknown):
    """Required options that are neither set nor pending: ``"<variable>: required"``."""
    return ["%s: required (no value set, and no default)" % name
            for name, option in sorted((options or {}).items())
            if (option or {}).get("required") and name not in present and name not in unknown]
