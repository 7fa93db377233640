"""Patch semantics of the Kubernetes API server, as pure functions.

Three patch formats reach a real API server:

* ``application/merge-patch+json`` -- RFC 7386 JSON merge patch: maps merge, ``null``
  deletes a key, lists are replaced wholesale;
* ``application/json-patch+json`` -- RFC 6902 JSON patch (a list of operations);
* ``application/strategic-merge-patch+json`` -- Kubernetes' strategic merge patch: like a
  merge patch, but some lists are merged element by element using a *merge key* declared in
  the Go types (``containers`` by ``name``, container ``ports`` by ``containerPort``, ...),
  plus the ``$patch``, ``$retainKeys``, ``$setElementOrder/`` and
  ``$deleteFromPrimitiveList/`` directives.

Only the merge keys of the types this collection deploys are known here (pod templates,
Services, ServiceAccounts, object metadata, status conditions); any other list is replaced,
which is what the API server does for lists without a patch strategy.
"""
from __future__ import annotations

import copy
from typing import Any

import jsonpatch

# Lists of a PodSpec merged by key (k8s.io/api/core/v1 types.go, patchMergeKey).
_POD_SPEC_LISTS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "resourceClaims": "name",
    "schedulingGates": "name",
}
# Lists of a Container merged by key.
_CONTAINER_LISTS = {
    "ports": "containerPort",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "resizePolicy": "resourceName",
}
_CONTAINER_FIELDS = ("containers", "initContainers", "ephemeralContainers")
# Lists of primitives with patchStrategy=merge (union).
_PRIMITIVE_MERGE = {("metadata", "finalizers")}


class PatchError(ValueError):
    """The patch cannot be applied (bad format or a directive that makes no sense)."""


def _is_pod_spec(kind: str, path: tuple[str, ...]) -> bool:
    if kind == "Pod" and path == ("spec",):
        return True
    # Deployment/StatefulSet/DaemonSet/ReplicaSet/Job: spec.template.spec;
    # CronJob: spec.jobTemplate.spec.template.spec; PodTemplate: template.spec.
    return len(path) >= 2 and path[-2:] == ("template", "spec")


def merge_key(kind: str, path: tuple[str, ...]) -> str | None:
    """The strategic-merge key of the list at ``path`` (field names, no indices) or None."""
    if not path:
        return None
    field = path[-1]
    if field in _POD_SPEC_LISTS and _is_pod_spec(kind, path[:-1]):
        return _POD_SPEC_LISTS[field]
    if field in _CONTAINER_LISTS and len(path) >= 2 and path[-2] in _CONTAINER_FIELDS \
            and _is_pod_spec(kind, path[:-2]):
        return _CONTAINER_LISTS[field]
    if kind == "Service" and path == ("spec", "ports"):
        return "port"
    if kind == "ServiceAccount" and path in {("secrets",), ("imagePullSecrets",)}:
        return "name"
    if path == ("metadata", "ownerReferences"):
        return "uid"
    if len(path) >= 2 and path[-2] == "status" and field == "conditions":
        return "type"
    return None


# --------------------------------------------------------------------------- merge patch
def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386. Returns a new value; neither argument is modified."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    try:
        return jsonpatch.apply_patch(copy.deepcopy(target), operations, in_place=False)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError, IndexError) as exc:
        raise PatchError(f"the JSON patch cannot be applied: {exc}") from exc


# --------------------------------------------------------------------------- strategic merge
def strategic_merge_patch(target: dict, patch: dict, kind: str | None = None) -> dict:
    """Kubernetes strategic merge patch of a whole object. Returns a new dict."""
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    kind = kind or patch.get("kind") or target.get("kind") or ""
    merged = _merge_map(copy.deepcopy(target) if isinstance(target, dict) else {}, patch, kind, ())
    return merged if merged is not None else {}


def _merge_map(target: dict, patch: dict, kind: str, path: tuple[str, ...]) -> dict | None:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return _strip_directives(patch)
    if directive not in (None, "merge"):
        raise PatchError(f"unknown $patch directive {directive!r} at {'.'.join(path) or '<root>'}")

    retain = patch.get("$retainKeys")
    orders: dict[str, list] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(target.get(field), list):
                target[field] = [item for item in target[field] if item not in (value or [])]
            continue
        if value is None:
            target.pop(key, None)
            continue
        current = target.get(key)
        if isinstance(value, dict):
            merged = _merge_map(current if isinstance(current, dict) else {}, value, kind, path + (key,))
            if merged is None:
                target.pop(key, None)
            else:
                target[key] = merged
        elif isinstance(value, list):
            target[key] = _merge_list(current if isinstance(current, list) else [], value, kind, path + (key,))
        else:
            target[key] = copy.deepcopy(value)

    for field, order in orders.items():
        if isinstance(target.get(field), list):
            target[field] = _apply_order(target[field], order, merge_key(kind, path + (field,)))
    if isinstance(retain, list):
        for key in list(target):
            if key not in retain:
                del target[key]
    return target


def _merge_list(target: list, patch: list, kind: str, path: tuple[str, ...]) -> list:
    key = merge_key(kind, path)
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [_strip_directives(item) for item in patch
                if not (isinstance(item, dict) and item.get("$patch") == "replace")]
    if key is None:
        if path in _PRIMITIVE_MERGE:
            result = list(target)
            result.extend(item for item in patch if item not in result)
            return result
        return [_strip_directives(item) if isinstance(item, dict) else copy.deepcopy(item) for item in patch]

    result = [copy.deepcopy(item) for item in target]
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"{'.'.join(path)}: expected objects with the merge key {key!r}")
        if key not in item:
            raise PatchError(f"{'.'.join(path)}: an element lacks the merge key {key!r}")
        index = next((i for i, cur in enumerate(result)
                      if isinstance(cur, dict) and cur.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
            continue
        if index is None:
            result.append(_strip_directives(item))
        else:
            merged = _merge_map(result[index], item, kind, path)
            if merged is None:
                del result[index]
            else:
                result[index] = merged
    return result


def _apply_order(items: list, order: list, key: str | None) -> list:
    def ident(item: Any) -> Any:
        return item.get(key) if key and isinstance(item, dict) else item

    wanted = [ident(entry) if isinstance(entry, dict) else entry for entry in order]
    ordered = sorted(items, key=lambda item: wanted.index(ident(item)) if ident(item) in wanted else len(wanted))
    return ordered


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items()
                if not (k in ("$patch", "$retainKeys") or k.startswith("$setElementOrder/")
                        or k.startswith("$deleteFromPrimitiveList/"))}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return copy.deepcopy(value)
