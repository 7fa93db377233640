# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Decisions of eks_control_plane, eks_cluster_access and eks_addon, as pure functions (unit-tested directly).

What EKS allows, and so what these plans respect:

* ``UpdateClusterConfig`` takes one kind of change per call (endpoint access, logging or the
  authentication mode) and runs one update at a time; a call that changes nothing is refused.
* The authentication mode only moves CONFIG_MAP -> API_AND_CONFIG_MAP -> API.
* Secrets encryption can be switched on once (AssociateEncryptionConfig), never changed or removed.
* ``CreateCluster`` takes all of these at once (``accessConfig``, ``logging``, ``encryptionConfig``,
  the endpoint fields of ``resourcesVpcConfig``): a cluster created with them needs no update.
* Access entries of type STANDARD are the ones people and automation use; EKS itself creates
  entries of other types (EC2_LINUX for managed node groups' node roles, ...): never purged here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import re

AUTH_MODES = ["CONFIG_MAP", "API_AND_CONFIG_MAP", "API"]
LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
ACCESS_POLICY_NAMES = [
    "AmazonEKSClusterAdminPolicy",
    "AmazonEKSAdminPolicy",
    "AmazonEKSEditPolicy",
    "AmazonEKSViewPolicy",
]
PRINCIPAL_RE = re.compile(r"^arn:(aws[a-z-]*):iam::([0-9]{12}):(role|user)/[\w+=,.@/-]+$")
KMS_KEY_RE = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[\w/-]+$")


# Argument spec of the settings documented by doc_fragments/eks_cluster_settings.py.
SETTINGS_SPEC = dict(
    authentication_mode=dict(type="str", choices=["API", "API_AND_CONFIG_MAP"]),
    endpoint_private_access=dict(type="bool"),
    endpoint_public_access=dict(type="bool"),
    public_access_cidrs=dict(type="list", elements="str"),
    logging_types=dict(type="list", elements="str", choices=LOG_TYPES),
    secrets_encryption_key_arn=dict(type="str", no_log=False),
)


class AccessInputError(ValueError):
    """An input that breaks a rule; the message names the field."""


def partition_of(arn):
    """``aws``, ``aws-cn``, ``aws-us-gov``, ... from any ARN (the caller's, from STS)."""
    parts = (arn or "").split(":")
    if len(parts) < 6 or parts[0] != "arn" or not parts[1]:
        raise AccessInputError("not an ARN: %r" % (arn,))
    return parts[1]


def caller_principal(caller_arn):
    """The IAM principal behind an STS caller ARN (assumed-role -> its role, without the path)."""
    parts = caller_arn.split(":")
    resource = parts[5]
    if resource.startswith("assumed-role/"):
        return "arn:%s:iam::%s:role/%s" % (parts[1], parts[4], resource.split("/")[1])
    return caller_arn


def same_principal(left, right):
    """Whether two IAM principal ARNs name the same user or role (paths aside: STS drops them)."""
    def key(arn):
        parts = arn.split(":")
        kind, _sep, name = parts[5].partition("/")
        return parts[4], kind, name.rsplit("/", 1)[-1]
    return key(left) == key(right)


def policy_arn(name_or_arn, partition):
    """A cluster access policy ARN from its name, in the caller's partition."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    return "arn:%s:eks::aws:cluster-access-policy/%s" % (partition, name_or_arn)


def validate(params):
    """Every broken rule of the module's inputs, each naming its field (empty: all good)."""
    errors = []
    mode = params.get("authentication_mode")
    if mode is not None and mode not in AUTH_MODES[1:]:
        errors.append("authentication_mode: API or API_AND_CONFIG_MAP (access entries need one of them), got %s" % mode)
    for cidr in params.get("public_access_cidrs") or []:
        try:
            net = ipaddress.ip_network(cidr, strict=True)
            if net.version != 4:
                raise ValueError
        except ValueError:
            errors.append("public_access_cidrs: %r is not an IPv4 network in CIDR notation (host bits zero)" % cidr)
    if params.get("endpoint_public_access") is False and params.get("endpoint_private_access") is False:
        errors.append("endpoint_public_access/endpoint_private_access: at least one must be true")
    if params.get("public_access_cidrs") and params.get("endpoint_public_access") is False:
        errors.append("public_access_cidrs: only meaningful with endpoint_public_access true")
    bad_logs = [t for t in params.get("logging_types") or [] if t not in LOG_TYPES]
    if bad_logs:
        errors.append("logging_types: each one of %s (got %s)" % (", ".join(LOG_TYPES), ", ".join(bad_logs)))
    key = params.get("secrets_encryption_key_arn")
    if key and not KMS_KEY_RE.match(key):
        errors.append("secrets_encryption_key_arn: a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<id>), got %s" % key)
    seen = set()
    for index, entry in enumerate(params.get("access_entries") or []):
        where = "access_entries[%d]" % index
        principal = entry.get("principal_arn") or ""
        if not PRINCIPAL_RE.match(principal):
            errors.append("%s.principal_arn: an IAM role or user ARN (arn:<partition>:iam::<account>:role/<name>), got %r"
                          % (where, principal))
        elif principal in seen:
            errors.append("%s.principal_arn: %s is listed twice" % (where, principal))
        seen.add(principal)
        for pindex, policy in enumerate(entry.get("policies") or []):
            pwhere = "%s.policies[%d]" % (where, pindex)
            name = policy.get("policy") or ""
            if not (name in ACCESS_POLICY_NAMES or re.match(r"^arn:aws[a-z-]*:eks::aws:cluster-access-policy/[A-Za-z]+$", name)):
                errors.append("%s.policy: one of %s or a cluster-access-policy ARN, got %r"
                              % (pwhere, ", ".join(ACCESS_POLICY_NAMES), name))
            scope = policy.get("scope") or "cluster"
            namespaces = policy.get("namespaces") or []
            if scope not in ("cluster", "namespace"):
                errors.append("%s.scope: cluster or namespace, got %r" % (pwhere, scope))
            elif (scope == "namespace") != bool(namespaces):
                errors.append("%s.namespaces: required with scope namespace, and only then" % pwhere)
    return errors


def _enabled_logging(types):
    return {"clusterLogging": [{"types": sorted(set(types)), "enabled": True}]}


def _secrets_encryption(key_arn):
    return [{"resources": ["secrets"], "provider": {"keyArn": key_arn}}]


def create_settings(params):
    """The fields of a ``CreateCluster`` request that give a new cluster the access settings of
    ``params`` from the start, so that :func:`plan_cluster` finds nothing to update afterwards (each
    update takes EKS a few minutes): ``(request fields, resourcesVpcConfig fields)``. Options left
    unset are left to EKS's defaults, as :func:`plan_cluster` leaves them."""
    request, vpc = {}, {}
    if params.get("authentication_mode"):
        request["accessConfig"] = {"authenticationMode": params["authentication_mode"]}
    if params.get("logging_types"):
        request["logging"] = _enabled_logging(params["logging_types"])
    if params.get("secrets_encryption_key_arn"):
        request["encryptionConfig"] = _secrets_encryption(params["secrets_encryption_key_arn"])
    for field, option in (("endpointPublicAccess", "endpoint_public_access"),
                          ("endpointPrivateAccess", "endpoint_private_access")):
        if params.get(option) is not None:
            vpc[field] = bool(params[option])
    if params.get("public_access_cidrs") and params.get("endpoint_public_access") is not False:
        vpc["publicAccessCidrs"] = sorted(params["public_access_cidrs"])
    return request, vpc


def plan_cluster(cluster, params):
    """The UpdateClusterConfig / AssociateEncryptionConfig calls that bring ``cluster`` (as
    DescribeCluster returns it) to ``params``, one kind of change each, in a safe order:
    authentication mode first (so access entries can follow), endpoint access last (so the
    caller keeps reaching the API until everything else is done)."""
    calls = []
    mode = params.get("authentication_mode")
    current_mode = (cluster.get("accessConfig") or {}).get("authenticationMode", "CONFIG_MAP")
    if mode and mode != current_mode:
        if AUTH_MODES.index(mode) < AUTH_MODES.index(current_mode):
            raise AccessInputError(
                "authentication_mode: the cluster is at %s and EKS cannot go back to %s; set %s"
                % (current_mode, mode, current_mode))
        calls.append(("update_cluster_config", {"accessConfig": {"authenticationMode": mode}}))

    if params.get("logging_types") is not None:
        enabled = set()
        for item in (cluster.get("logging") or {}).get("clusterLogging", []):
            if item.get("enabled"):
                enabled.update(item.get("types", []))
        wanted = set(params["logging_types"])
        if wanted != enabled:
            logging = _enabled_logging(wanted)["clusterLogging"] if wanted else []
            if enabled - wanted:
                logging.append({"types": sorted(enabled - wanted), "enabled": False})
            calls.append(("update_cluster_config", {"logging": {"clusterLogging": logging}}))

    key = params.get("secrets_encryption_key_arn")
    if key:
        current_keys = [c.get("provider", {}).get("keyArn") for c in cluster.get("encryptionConfig") or []
                        if "secrets" in c.get("resources", [])]
        if not current_keys:
            calls.append(("associate_encryption_config", {"encryptionConfig": _secrets_encryption(key)}))
        elif key not in current_keys:
            raise AccessInputError(
                "secrets_encryption_key_arn: the cluster's secrets are already encrypted with %s; EKS cannot change "
                "the key (set that ARN, or create a new cluster)" % current_keys[0])

    vpc = cluster.get("resourcesVpcConfig") or {}
    change = {}
    for field, option in (("endpointPublicAccess", "endpoint_public_access"),
                          ("endpointPrivateAccess", "endpoint_private_access")):
        if params.get(option) is not None and bool(vpc.get(field)) != params[option]:
            change[field] = params[option]
    public = params.get("endpoint_public_access", vpc.get("endpointPublicAccess"))
    if public is None:
        public = vpc.get("endpointPublicAccess")
    if public and params.get("public_access_cidrs"):
        if sorted(vpc.get("publicAccessCidrs") or ["0.0.0.0/0"]) != sorted(params["public_access_cidrs"]):
            change["publicAccessCidrs"] = sorted(params["public_access_cidrs"])
    if change:
        calls.append(("update_cluster_config", {"resourcesVpcConfig": change}))
    return calls


def desired_entries(params, partition):
    """``{principal: {"kubernetes_groups": [...], "policies": {arn: scope_dict}}}`` from the input."""
    wanted = {}
    for entry in params.get("access_entries") or []:
        policies = {}
        for policy in entry.get("policies") or []:
            scope = {"type": policy.get("scope") or "cluster"}
            if scope["type"] == "namespace":
                scope["namespaces"] = sorted(policy["namespaces"])
            policies[policy_arn(policy["policy"], partition)] = scope
        wanted[entry["principal_arn"]] = {"kubernetes_groups": sorted(entry.get("kubernetes_groups") or []),
                                          "policies": policies}
    return wanted


def _scope(scope):
    result = {"type": scope.get("type")}
    if scope.get("namespaces"):
        result["namespaces"] = sorted(scope["namespaces"])
    return result


def plan_entries(current, wanted, caller, purge):
    """Calls that bring the access entries from ``current`` to ``wanted``.

    ``current``: ``{principal: {"type": ..., "kubernetes_groups": [...], "policies": {arn: scope}}}``
    as read from EKS. ``caller``: the IAM principal running this (never purged: it would lock itself
    out). ``purge``: delete STANDARD entries that ``wanted`` does not list.
    Returns a list of ``(call, kwargs)`` with EKS parameter names (without clusterName).
    """
    calls = []
    for principal in sorted(wanted):
        want = wanted[principal]
        have = current.get(principal)
        if have is None:
            request = {"principalArn": principal, "type": "STANDARD"}
            if want["kubernetes_groups"]:
                request["kubernetesGroups"] = want["kubernetes_groups"]
            calls.append(("create_access_entry", request))
            have = {"kubernetes_groups": want["kubernetes_groups"], "policies": {}}
        elif sorted(have.get("kubernetes_groups") or []) != want["kubernetes_groups"]:
            calls.append(("update_access_entry", {"principalArn": principal,
                                                  "kubernetesGroups": want["kubernetes_groups"]}))
        for arn in sorted(want["policies"]):
            if _scope(have["policies"].get(arn, {})) != _scope(want["policies"][arn]) or arn not in have["policies"]:
                calls.append(("associate_access_policy", {"principalArn": principal, "policyArn": arn,
                                                          "accessScope": want["policies"][arn]}))
        for arn in sorted(set(have["policies"]) - set(want["policies"])):
            calls.append(("disassociate_access_policy", {"principalArn": principal, "policyArn": arn}))
    if purge:
        for principal in sorted(set(current) - set(wanted)):
            if current[principal].get("type", "STANDARD") != "STANDARD" or same_principal(principal, caller):
                continue
            calls.append(("delete_access_entry", {"principalArn": principal}))
    return calls


def addon_configuration(text):
    """configurationValues (JSON or YAML-as-JSON text) as a dict for comparison; empty -> {}."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"__unparsed__": text}
    return value if isinstance(value, dict) else {"__unparsed__": text}


def _config_matches(have, want, subset):
    if not subset:
        return have == want
    return all(key in have and have[key] == value for key, value in want.items())


def plan_addon(current, params, subset=False):
    """``("create", request)``, ``("update", request)`` or ``None`` for an EKS add-on.

    ``subset``: the given configuration values only need to be present in the add-on's (a
    verification that tolerates the operator's other settings)."""
    wanted_config = params.get("configuration_values")
    request = {"addonName": params["name"]}
    if params.get("addon_version"):
        request["addonVersion"] = params["addon_version"]
    if params.get("service_account_role_arn") is not None:
        request["serviceAccountRoleArn"] = params["service_account_role_arn"]
    if wanted_config is not None:
        request["configurationValues"] = json.dumps(wanted_config, sort_keys=True, separators=(",", ":"))
    if current is None:
        request["resolveConflicts"] = params.get("resolve_conflicts") or "OVERWRITE"
        return ("create", request)
    differs = (
        (params.get("addon_version") and current.get("addonVersion") != params["addon_version"])
        or (params.get("service_account_role_arn") is not None
            and current.get("serviceAccountRoleArn", "") != params["service_account_role_arn"])
        or (wanted_config is not None and not _config_matches(addon_configuration(current.get("configurationValues")),
                                                              wanted_config, subset))
    )
    if not differs:
        return None
    request["resolveConflicts"] = params.get("resolve_conflicts") or "OVERWRITE"
    return ("update", request)
