# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""``eks_cluster_access_errors``: the rules eks_cluster_access enforces, for a role's validation
before any cloud call (documentation: plugins/filter/eks_cluster_access_errors.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import eks_access


def _plain(value):
    """Builtin containers (Ansible hands filters its own lazy/tagged types)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def eks_cluster_access_errors(params, prefix=""):
    """Broken rules of eks_cluster_access options in ``params``; each names ``prefix`` + the option."""
    if not isinstance(params, dict):
        raise AnsibleFilterError("eks_cluster_access_errors: expected a dict of eks_cluster_access options")
    return ["%s%s" % (prefix, error) for error in eks_access.validate(_plain(params))]


class FilterModule(object):
    def filters(self):
        return {"eks_cluster_access_errors": eks_cluster_access_errors}
