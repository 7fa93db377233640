# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Which of a role's Kubernetes objects a client-side apply would leave as they are.

kubernetes.core.k8s with ``apply: true`` reads an object three times on a run that changes
nothing (the module's lookup, apply's own read, and the read that answers "unchanged"), and
sends a PATCH for every object that holds a list, changed or not. A role instead reads each kind
it applies once (one ``kubernetes.core.k8s_info`` list per kind and namespace), and runs the
module only for the objects that are missing or would change.

"In place" is strict, so that anything unsure still goes through the module (which then
repairs drift as before):

- the object exists, with the same apiVersion, kind, namespace and name;
- its ``kubectl.kubernetes.io/last-applied-configuration`` annotation is exactly what we would
  apply now (apply removes the fields we stopped giving, found through that annotation);
- every field we give has the same value in the live object (a dict may hold more keys - the
  API server's defaults and status; a list must have as many items, each compared the same
  way, in the same order).
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _text(value):
    return "" if value is None else str(value)


def _plain(value):
    """Ansible's tagged or lazy containers as plain dicts, lists and scalars."""
    if isinstance(value, dict):
        return dict((str(k), _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return value
    return str(value)


def _key(api_version, kind, namespace, name):
    return (_text(api_version), _text(kind), _text(namespace), _text(name))


def _definition_key(definition, default_namespace=""):
    meta = definition.get("metadata") or {}
    return _key(definition.get("apiVersion"), definition.get("kind"),
                meta.get("namespace", default_namespace) if definition.get("kind") != "Namespace" else "",
                meta.get("name"))


def _covers(live, wanted):
    """Whether every value of ``wanted`` is the same in ``live`` (see the module's docstring)."""
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(k in live and _covers(live[k], v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return (isinstance(live, list) and len(live) == len(wanted)
                and all(_covers(a, b) for a, b in zip(live, wanted)))
    if isinstance(wanted, bool) or isinstance(live, bool):
        return isinstance(wanted, bool) and isinstance(live, bool) and wanted == live
    return wanted == live


def _last_applied(live):
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def k8s_object_in_place(definition, live):
    """Whether a client-side apply of ``definition`` would leave ``live`` (the object as the API
    returns it, or None) unchanged."""
    definition, live = _plain(definition), _plain(live)
    if not isinstance(definition, dict) or not isinstance(live, dict) or not live:
        return False
    if _last_applied(live) != definition:
        return False
    return _covers(live, definition)


def k8s_read_kinds(definitions, default_namespace=""):
    """The (apiVersion, kind, namespace) lists a role reads before applying ``definitions``: one
    item per distinct kind and namespace, in the order they first appear."""
    seen, result = set(), []
    for definition in _plain(definitions or []):
        api_version, kind, namespace, _name = _definition_key(definition, _text(default_namespace))
        if (api_version, kind, namespace) not in seen:
            seen.add((api_version, kind, namespace))
            item = {"api_version": api_version, "kind": kind}
            if namespace:
                item["namespace"] = namespace
            result.append(item)
    return result


def k8s_apply_plan(definitions, reads, default_namespace="", create_only=None):
    """``definitions``, each as {definition, kind, name, namespace, exists, in_place}, given ``reads``: the
    results of a kubernetes.core.k8s_info loop over k8s_read_kinds (each with ``item`` and
    ``resources``). A kind that was not read (a skipped or failed item) counts as not in place.
    Objects of a kind in ``create_only`` (one that another role owns and applies, such as the
    namespace) are in place as soon as they exist: this role only creates them when missing."""
    default_namespace = _text(default_namespace)
    create_only = set(_text(k) for k in _plain(create_only or []))
    live = _live_objects(reads)
    plan = []
    for definition in _plain(definitions or []):
        key = _definition_key(definition, default_namespace)
        plan.append({
            "definition": definition,
            "kind": key[1],
            "namespace": key[2],
            "name": key[3],
            "exists": key in live,
            "in_place": (key in live) if key[1] in create_only else k8s_object_in_place(definition, live.get(key)),
        })
    return plan


def _live_objects(reads):
    """{(apiVersion, kind, namespace, name): object} of k8s_info reads (each with ``item``, the
    kind read, and ``resources``); skipped and failed reads hold nothing."""
    live = {}
    for read in _plain(reads or []):
        query = read.get("item") or {}
        if read.get("skipped") or read.get("failed") or not isinstance(read.get("resources"), list):
            continue
        for obj in read["resources"]:
            meta = obj.get("metadata") or {}
            key = _key(query.get("api_version"), query.get("kind"),
                       meta.get("namespace", "") if query.get("kind") != "Namespace" else "", meta.get("name"))
            live[key] = obj
    return live


def k8s_live_object(reads, api_version, kind, name, namespace=""):
    """The object of ``reads`` (as for k8s_apply_plan) with this apiVersion, kind, name and
    namespace; {} when it was not there."""
    key = _key(api_version, kind, "" if kind == "Namespace" else namespace, name)
    return _live_objects(reads).get(key, {})


class FilterModule(object):
    def filters(self):
        return {
            "k8s_object_in_place": k8s_object_in_place,
            "k8s_read_kinds": k8s_read_kinds,
            "k8s_apply_plan": k8s_apply_plan,
            "k8s_live_object": k8s_live_object,
        }
