# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Whether a KMS key is already exactly as amazon.aws.kms_key would leave it, and which key a
kms_key task stands for when it was skipped.

amazon.aws.kms_key makes about 18 requests on a key that needs no change (DescribeKey,
ListAliases, GetKeyRotationStatus, GetKeyPolicy, ListKeyPolicies, ListGrants, ListResourceTags,
several times each). nitro_nodegroup reads each key once with amazon.aws.kms_key_info (by
alias) and runs kms_key only when the key is missing or differs. "In place" models what
kms_key's update_key reconciles on an existing key (amazon.aws 10): deletion cancelled and the
key enabled or disabled (key state), the alias, the description, the tags (purged, AWS's own
``aws:`` tags aside), the default key policy, grants (none given and none purged: never changed)
and the rotation (only when the task gives enable_key_rotation). The policy is compared strictly,
as equal parsed JSON documents, where the module's compare_policies forgives some differences:
a stricter test only makes the module run more often. Anything unsure is "not in place": the
module runs and decides, so drift is still repaired by it.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean


class _Unsure(Exception):
    """A parameter the module would not take as given: it runs and says so."""


def _bool(value):
    try:
        return boolean(value, strict=True)
    except TypeError:
        raise _Unsure(value)


def _alias_name(alias):
    """The alias as kms_key_info lists it on a key: without its ``alias/`` prefix."""
    alias = to_text(alias)
    return alias[len("alias/"):] if alias.startswith("alias/") else alias


def _canonical_json(document):
    """A policy (a JSON string or the parsed document) as canonical JSON text, types kept
    apart (True is not 1); None when it does not parse."""
    try:
        if isinstance(document, (bytes, str)):
            document = json.loads(document)
        return json.dumps(document, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None


def _tags_in_place(present, wanted, purge):
    """compare_aws_tags of amazon.aws (what kms_key's update_tags uses) finds nothing to do."""
    if not isinstance(present, dict) or not isinstance(wanted, dict):
        return False
    wanted = dict((to_text(k), to_text(v)) for k, v in wanted.items())
    if purge and any(k not in wanted and not to_text(k).startswith("aws:") for k in present):
        return False
    return all(present.get(k) == v for k, v in wanted.items())


def kms_key_in_place(keys, alias=None, description=None, key_spec=None, key_usage=None, enabled=True,
                     rotation=None, policy=None, tags=None, purge_tags=True):
    """True when ``keys`` (kms_key_info's ``kms_keys``, read by alias) holds exactly one key and
    amazon.aws.kms_key given these parameters (and no grants) would change nothing on it.

    ``key_spec`` and ``key_usage`` are used by the module at creation only; when given, a key of
    another spec or usage is not in place (the module runs; it cannot change them either).
    ``rotation`` None is a task without enable_key_rotation; ``tags`` None one without tags."""
    try:
        return _in_place(keys, alias, description, key_spec, key_usage, enabled, rotation, policy, tags, purge_tags)
    except _Unsure:
        return False


def _in_place(keys, alias, description, key_spec, key_usage, enabled, rotation, policy, tags, purge_tags):
    if not isinstance(keys, (list, tuple)) or len(keys) != 1 or not isinstance(keys[0], dict):
        return False
    key = keys[0]
    if not key.get("key_arn"):
        return False
    # cancel_key_deletion + ensure_enabled_disabled: any other state (PendingDeletion,
    # PendingImport, Unavailable, ...) means the module acts or fails
    if key.get("key_state") != ("Enabled" if _bool(enabled) else "Disabled"):
        return False
    if alias is not None and _alias_name(alias) not in (key.get("aliases") or []):
        return False
    if description is not None and key.get("description") != to_text(description):
        return False
    if key_spec is not None and key.get("key_spec", key.get("customer_master_key_spec")) != to_text(key_spec):
        return False
    if key_usage is not None and key.get("key_usage") != to_text(key_usage):
        return False
    if rotation is not None:
        present = key.get("enable_key_rotation")  # None when it could not be read: the module tries
        if not isinstance(present, bool) or present != _bool(rotation):
            return False
    if tags is not None and not _tags_in_place(key.get("tags"), tags, _bool(purge_tags)):
        return False
    if policy is not None:
        # the module reads the "default" policy, the only one KMS has; none read (access denied)
        # or anything else is unsure
        policies = key.get("key_policies")
        if not isinstance(policies, list) or len(policies) != 1:
            return False
        wanted = _canonical_json(policy)
        if wanted is None or _canonical_json(policies[0]) != wanted:
            return False
    return True


def kms_key_ids(result, keys, unknown=""):
    """``{key_arn, key_id}`` of the key a kms_key task result stands for: the key it returned,
    or, for a task skipped because the key was in place, the one key of ``keys`` (kms_key_info's
    ``kms_keys``); ``unknown`` for both when neither names one (check mode, before creation)."""
    result = result if isinstance(result, dict) else {}
    if result.get("key_arn"):
        return {"key_arn": result["key_arn"], "key_id": result.get("key_id") or unknown}
    if isinstance(keys, (list, tuple)) and len(keys) == 1 and isinstance(keys[0], dict) and keys[0].get("key_arn"):
        return {"key_arn": keys[0]["key_arn"], "key_id": keys[0].get("key_id") or unknown}
    return {"key_arn": unknown, "key_id": unknown}


class FilterModule(object):
    def filters(self):
        return {"kms_key_in_place": kms_key_in_place, "kms_key_ids": kms_key_ids}
