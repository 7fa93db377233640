#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: role_inputs
short_description: Check a role's inputs, or those of every role of a playbook, before any cloud call
version_added: 0.1.0
description:
  - Resolves the variables of a role entry point as the role would see them (its defaults, the
    inventory, extra vars, its C(vars/), the variables the playbook hands it) and checks them against
    the entry point's C(meta/argument_specs.yml) (types, choices, required) and the role's
    cross-field rules (C(plugins/module_utils/role_rules.py)).
  - With O(playbook), does so for every role entry point the playbook imports or includes, so that a
    mistake in a variable of the last role stops the run in preflight, before the first role
    creates anything.
  - With O(playbook), also checks the variables the playbook takes itself rather than hands to a
    role (C(upgrade_image_tag), C(teardown_confirm_party), C(check_network_timeout), C(render_dir),
    ...) against the playbook's spec and rules (C(plugins/module_utils/rules_playbooks.py)).
  - A value that cannot be known yet (the output of an earlier role, such as a subnet id, wired by
    the playbook with an expression that reads a variable not defined yet) is left out, with the
    rules that read it; the role checks it when it starts, with the same rules.
  - Every problem is reported at once, each naming its variable and the rule.
  - Runs on the controller as an action; makes no network call; safe in check mode.
options:
  role:
    description: A role of this collection (short name or FQCN). Exclusive with O(playbook).
    type: str
  entry_point:
    description: The entry point of O(role) (its C(tasks_from)).
    type: str
    default: main
  playbook:
    description: A playbook of this collection (file name under C(playbooks/)). Exclusive with O(role).
    type: str
  skip_roles:
    description: Roles of O(playbook) not to check (a playbook may leave some to a later step).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author:
  - threshold_kms.mpc_party contributors
"""

EXAMPLES = r"""
- name: Check the inputs of every role deploy_party.yml runs
  threshold_kms.mpc_party.role_inputs:
    playbook: deploy_party.yml

- name: Check this role's inputs
  threshold_kms.mpc_party.role_inputs:
    role: nitro_nodegroup
"""

RETURN = r"""
roles:
  description: The role entry points checked, each with the variables left to the role (not known yet).
  returned: always
  type: list
  elements: dict
  sample: [{"role": "nitro_nodegroup", "entry_point": "main", "pending": ["nitro_nodegroup_subnet_ids"]}]
problems:
  description: 'One message per broken rule: C(<role>: <variable>: <rule> (got ...)).'
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(role=dict(type="str"), entry_point=dict(type="str", default="main"),
                           playbook=dict(type="str"), skip_roles=dict(type="list", elements="str", default=[])),
        supports_check_mode=True,
    )
    module.fail_json(msg="role_inputs runs on the controller as an action plugin; call it as threshold_kms.mpc_party.role_inputs")


if __name__ == "__main__":
    main()
