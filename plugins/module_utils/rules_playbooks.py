# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""The playbooks' own inputs: the variables an entry point (upgrade_party.yml, teardown_party.yml,
check_network.yml, render_party.yml) takes itself rather than hands to a role.

Written as for a role (registry and conventions: role_rules.py): ``OPTIONS`` is the argument spec
of each playbook's variables (types, choices), the rules below say what a spec cannot, and
``check(playbook, values, context)`` runs both through role_inputs.check, so every problem is
reported at once, naming its variable. Preflight's role_inputs action runs it (``playbook:``) with
the roles' inputs, right after the network, before any AWS or Kubernetes request.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import role_inputs
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.input_rules import (
    PCR_RE, digest_errors, range_errors, tag_errors)
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.kms_grpc import FAIL_BELOW_CHOICES
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.role_rules import got, rule

UPGRADE_PCRS = ("upgrade_pcr0", "upgrade_pcr1", "upgrade_pcr2")
TEARDOWN_FLAGS = ("teardown_delete_nonempty_vaults", "teardown_schedule_kms_key_deletion", "teardown_delete_database")

# The argument spec of each playbook's own variables (what a role keeps in meta/argument_specs.yml).
OPTIONS = {
    "upgrade_party": dict(
        [("upgrade_image_tag", {"type": "str"}), ("upgrade_image_digest", {"type": "str"})]
        + [(pcr, {"type": "str"}) for pcr in UPGRADE_PCRS]
        + [("upgrade_remove_old_release", {"type": "bool"}), ("upgrade_require_quorum", {"type": "bool"}),
           ("upgrade_health_fail_below", {"type": "str", "choices": FAIL_BELOW_CHOICES}),
           ("upgrade_health_timeout", {"type": "int"}), ("upgrade_health_retries", {"type": "int"})]),
    "teardown_party": dict(
        [("teardown_confirm_party", {"type": "str"})] + [(flag, {"type": "bool"}) for flag in TEARDOWN_FLAGS]),
    "check_network": {
        "check_network_fail_below": {"type": "str", "choices": FAIL_BELOW_CHOICES},
        "check_network_timeout": {"type": "int"},
        "check_network_pod": {"type": "str"},
        "check_network_metrics_file": {"type": "str"},
    },
    "render_party": {"render_dir": {"type": "str"}},
    "prss_init": {},
}


def playbook_name(playbook):
    """``upgrade_party`` for ``upgrade_party.yml`` or ``playbooks/upgrade_party.yml``."""
    name = os.path.basename(str(playbook))
    return name[:-4] if name.endswith(".yml") else name


def check(playbook, values, context=None):
    """Problems of a playbook's own variables (``{variable: value}``), each
    ``"<playbook>: <variable>: <rule> (got ...)"``; an unknown playbook is a problem too."""
    name = playbook_name(playbook)
    if name not in OPTIONS:
        return ["playbook: no inputs are known for %s (known: %s)" % (playbook, ", ".join(sorted(OPTIONS)))]
    options = OPTIONS[name]
    unknown = sorted(set(values) - set(options))
    problems = ["%s: %s: not a variable of this playbook (known: %s)" % (name, key, ", ".join(sorted(options)))
                for key in unknown]
    known = dict((k, v) for k, v in values.items() if k in options)
    return problems + role_inputs.check(name, options, known, context or {})[0]


# ---------------------------------------------------------------------------- upgrade_party.yml
@rule("upgrade_party", "upgrade_image_tag")
def _upgrade_tag(v, _):
    return tag_errors("upgrade_image_tag", v["upgrade_image_tag"])


@rule("upgrade_party", "upgrade_image_digest")
def _upgrade_digest(v, _):
    return digest_errors("upgrade_image_digest", v["upgrade_image_digest"])


def _pcr_rule(pcr):
    @rule("upgrade_party", pcr)
    def _pcr(v, _):
        # The network's rule (network_model.PCR_RE); the playbook lower-cases the value first.
        value = v[pcr] or ""
        if not PCR_RE.match(value.lower()):
            return ["%s: the new release's %s, 96 hexadecimal characters (a SHA-384 digest) (got %d characters)"
                    % (pcr, pcr[len("upgrade_"):].upper(), len(value))]
        return []
    return _pcr


for _name in UPGRADE_PCRS:
    _pcr_rule(_name)


@rule("upgrade_party", "upgrade_health_timeout")
def _upgrade_timeout(v, _):
    return range_errors("upgrade_health_timeout", v["upgrade_health_timeout"], low=1, high=3600, what="seconds")


@rule("upgrade_party", "upgrade_health_retries")
def _upgrade_retries(v, _):
    return range_errors("upgrade_health_retries", v["upgrade_health_retries"], low=1, high=1000)


# --------------------------------------------------------------------------- teardown_party.yml
@rule("teardown_party", "teardown_confirm_party")
def _teardown_confirm(v, context):
    """A real teardown names the party it tears down (its name in mpc_network); a --check run
    deletes nothing and needs no confirmation. ``context``: check_mode, party_name."""
    given, name = v["teardown_confirm_party"] or "", context.get("party_name")
    if context.get("check_mode") or given == name:
        return []
    return ["teardown_confirm_party: must equal the name of this party, %s, to tear it down %s"
            % (name, got(given or "nothing"))]


# ---------------------------------------------------------------------------- check_network.yml
@rule("check_network", "check_network_timeout")
def _check_timeout(v, _):
    return range_errors("check_network_timeout", v["check_network_timeout"], low=1, high=3600, what="seconds")


# ----------------------------------------------------------------------------- render_party.yml
@rule("render_party", "render_dir")
def _render_dir(v, _):
    if not v["render_dir"]:
        return ["render_dir: required, e.g. -e render_dir=/tmp/render (one sub-directory per party is written there)"]
    return []
