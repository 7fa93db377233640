# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""What "ready" means for the AWS resources a deploy waits on, and how a wait reports progress.

Pure functions (no AWS client): the ``resource_ready`` module describes the resource and asks these.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

# kind: (label, ready state, terminal failure states, description key of the creation time,
#        what AWS typically takes to create one)
KINDS = {
    "eks_cluster": ("EKS cluster", "ACTIVE", ("FAILED", "DELETING"), "createdAt", "10-15 min"),
    "eks_nodegroup": ("EKS node group", "ACTIVE", ("CREATE_FAILED", "DEGRADED", "DELETING", "DELETE_FAILED"),
                      "createdAt", "3-5 min"),
    "db_instance": ("RDS DB instance", "available",
                    ("failed", "incompatible-parameters", "incompatible-network", "storage-full", "deleting",
                     "inaccessible-encryption-credentials", "restore-error"), "InstanceCreateTime", "5-10 min"),
    "nat_gateway": ("NAT gateway", "available", ("failed", "deleting", "deleted"), "CreateTime", "1-2 min"),
    # an update of a cluster's configuration ("should finish within a few minutes", EKS API reference)
    "eks_update": ("EKS update", "Successful", ("Failed", "Cancelled"), "createdAt", "a few minutes"),
}


def state_of(kind, description):
    """The state of a described resource (None when it does not exist)."""
    if description is None:
        return None
    key = {"eks_cluster": "status", "eks_nodegroup": "status", "eks_update": "status", "db_instance": "DBInstanceStatus",
           "nat_gateway": "State"}[kind]
    return description.get(key)


def verdict(kind, state):
    """'ready', 'failed' (a state it will not leave by waiting) or 'waiting'."""
    _label, ready, failed, _created, _typical = KINDS[kind]
    if state == ready:
        return "ready"
    if state is None or state in failed:
        return "failed"
    return "waiting"


def display_name(kind, name, description=None, cluster_name=None):
    """How a progress line names the resource: an EKS update by its type, cluster and id."""
    if kind == "eks_update":
        return "%s of cluster %s (%s)" % ((description or {}).get("type") or "update", cluster_name or "?", name)
    return name


def failure(kind, description, cluster_name=None):
    """Why a resource in a failed state failed, where AWS says it (an EKS update's errors); else None."""
    if kind != "eks_update" or not description or not description.get("errors"):
        return None
    errors = "; ".join("%s: %s" % (e.get("errorCode") or "error", e.get("errorMessage") or "") for e in description["errors"])
    return "EKS update %s (%s) of cluster %s ended %s: %s" % (description.get("id"), description.get("type") or "?",
                                                             cluster_name or "?", description.get("status"), errors)


def age_seconds(kind, description, now=None):
    """Seconds since the resource was created, from its own description (None when unknown)."""
    created = (description or {}).get(KINDS[kind][3])
    if not isinstance(created, datetime.datetime):
        return None
    now = now or datetime.datetime.now(created.tzinfo or datetime.timezone.utc)
    if created.tzinfo is None:
        created = created.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (now - created).total_seconds())


def duration(seconds):
    """``4m 05s`` / ``12s``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return "%dm %02ds" % divmod(seconds, 60) if seconds >= 60 else "%ds" % seconds


def progress_line(kind, name, state, age):
    """One line for the operator: what, where it is, since when, and what AWS usually takes."""
    label, ready, _failed, _created, typical = KINDS[kind]
    if state == ready:
        return "%s %s: %s (created %s ago)" % (label, name, state, duration(age))
    return "%s %s: %s, created %s ago (AWS typically takes %s)" % (label, name, state or "absent", duration(age), typical)
