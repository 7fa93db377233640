# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""``vault_bucket_settings``: the settings vault_buckets applies to each vault bucket, defined once
in module_utils/s3_vault_plan.py, which the s3_vault_plan module compares with S3 on every run
(documentation: plugins/filter/vault_bucket_settings.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import s3_vault_plan


def _plain(value):
    """Builtin containers (Ansible hands filters its own lazy/tagged types)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def vault_bucket_settings(vaults, **options):
    """One dict of settings per vault ({vault, name, prefix, public}) of ``vaults``."""
    vaults = _plain(vaults)
    if not isinstance(vaults, list) or not all(isinstance(v, dict) and {"vault", "name", "prefix"} <= set(v) for v in vaults):
        raise AnsibleFilterError("vault_bucket_settings: expected a list of {vault, name, prefix, public}")
    try:
        return s3_vault_plan.bucket_settings(vaults, **_plain(options))
    except TypeError as e:
        raise AnsibleFilterError("vault_bucket_settings: %s" % e)


class FilterModule(object):
    def filters(self):
        return {"vault_bucket_settings": vault_bucket_settings}
