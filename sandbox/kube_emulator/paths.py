"""Kubernetes API paths, parsed as the API server routes them.

kmock 0.8's own parser reads ``/api/v1/namespaces`` (the cluster-scoped collection of
Namespaces) as the start of a namespaced path and fails; this parser knows that
``namespaces`` is both a resource and the namespace prefix.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ApiPath:
    group: str
    version: str
    plural: str | None = None       # None: a discovery document (/api/v1, /apis/apps/v1)
    namespace: str | None = None    # the namespace of a namespaced request, else None
    name: str | None = None
    subresource: str | None = None

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def parse_api_path(path: str) -> ApiPath | None:
    """Parse ``/api/v1/...`` and ``/apis/<group>/<version>/...``; None for anything else."""
    parts = [part for part in path.split("/") if part]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return ApiPath(group, version)

    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        # /api/v1/namespaces/NAME/status|finalize are subresources of the Namespace object.
        if group == "" and len(rest) == 3 and rest[2] in ("status", "finalize"):
            return ApiPath(group, version, "namespaces", None, rest[1], rest[2])
        namespace, rest = rest[1], rest[2:]
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = "/".join(rest[2:]) or None
    return ApiPath(group, version, plural, namespace, name, subresource)
