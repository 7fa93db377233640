"""CustomResourceDefinitions the emulator can pre-install, and how a CRD becomes discoverable.

A CRD is an ordinary ``apiextensions.k8s.io/v1`` object in the emulator: creating one (through
the API or with ``crds=`` at start-up) makes its resources appear in discovery and become
servable, deleting it removes them and every custom object of that kind -- as on a real cluster.
"""
from __future__ import annotations

from typing import Any

import kmock

# Sets of CRDs that can be switched on by name (``crds=["monitoring"]``, ``--crds monitoring``).
# monitoring.coreos.com/v1 is what the Prometheus Operator (kube-prometheus-stack) installs.
_MONITORING = [
    ("servicemonitors", "ServiceMonitor", "servicemonitor", ["smon"]),
    ("prometheusrules", "PrometheusRule", "prometheusrule", ["promrule"]),
    ("podmonitors", "PodMonitor", "podmonitor", ["pmon"]),
]

CRD_SETS = {"monitoring"}


def crd_definition(group: str, version: str, plural: str, kind: str, singular: str,
                   short_names: list[str] | None = None, namespaced: bool = True,
                   categories: list[str] | None = None, status_subresource: bool = False) -> dict:
    """A minimal but valid CustomResourceDefinition (structural schema preserving unknown fields)."""
    version_entry: dict[str, Any] = {
        "name": version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    }
    if status_subresource:
        version_entry["subresources"] = {"status": {}}
    names: dict[str, Any] = {"plural": plural, "singular": singular, "kind": kind, "listKind": f"{kind}List"}
    if short_names:
        names["shortNames"] = list(short_names)
    if categories:
        names["categories"] = list(categories)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": names,
            "scope": "Namespaced" if namespaced else "Cluster",
            "versions": [version_entry],
        },
    }


def crd_set(name: str) -> list[dict]:
    """The CRD objects of a named set."""
    if name == "monitoring":
        return [crd_definition("monitoring.coreos.com", "v1", plural, kind, singular, short,
                               categories=["prometheus-operator"])
                for plural, kind, singular, short in _MONITORING]
    raise ValueError(f"unknown CRD set {name!r}; known: {', '.join(sorted(CRD_SETS))}")


def resources_of(crd: dict) -> dict[kmock.resource, kmock.ResourceInfo]:
    """Discovery entries served for a CRD object (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural = spec.get("group"), names.get("plural")
    if not group or not plural:
        return {}
    result = {}
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = set((version.get("subresources") or {}).keys())
        result[kmock.resource(group, version["name"], plural)] = kmock.ResourceInfo(
            kind=names.get("kind"),
            singular=names.get("singular") or (names.get("kind") or "").lower(),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            verbs={"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"},
            shortnames=set(names.get("shortNames") or []),
            categories=set(names.get("categories") or []),
            subresources=subresources,
        )
    return result
