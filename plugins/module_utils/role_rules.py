# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Cross-field rules of the roles' inputs: what an argument spec cannot say.

One home per rule. A rule is a function of the role's known values (after the argument spec's
type conversion) that returns messages ``"<variable>: <rule> (got ...)"``. It is registered for a
role with the variables it reads and runs only when every one of them is known: in preflight an
earlier role's output (a subnet id, a key ARN) is not, and its rules run when the role starts.

The rules of role ``<role>`` live in ``rules_<role>.py`` beside this file, loaded on first use;
``check(role, values, context)`` runs them; ``context`` carries run facts (``check_mode``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib

_RULES = {}
_PACKAGE = "ansible_collections.threshold_kms.mpc_party.plugins.module_utils"


def rule(role, *needs):
    """Register the decorated function as a rule of ``role`` reading the variables ``needs``."""
    def register(func):
        _RULES.setdefault(role, []).append((needs, func))
        return func
    return register


def rules_of(role):
    """The registered ``(needs, function)`` rules of ``role`` (none for a role without a rules module)."""
    if role not in _RULES:
        try:
            importlib.import_module("%s.rules_%s" % (_PACKAGE, role))
        except ImportError as err:
            if "rules_%s" % role not in str(err):
                raise
        _RULES.setdefault(role, [])
    return _RULES[role]


def check(role, values, context=None):
    """Messages of every rule of ``role`` whose variables are all in ``values``."""
    context = context or {}
    rules_of(role)
    problems = []
    for needs, func in _RULES.get(role, []):
        if all(name in values for name in needs):
            problems += [p for p in func(values, context) if p]
    return problems


def got(value):
    """The value a message quotes: ``(got <value>)``."""
    return "(got %s)" % (value,)
