"""EKS calls moto 5.2.5 lacks or answers unlike EKS, for cluster access and add-ons.

Applied by :func:`sandbox.aws_standin.extend` (``extend_eks()``). What EKS does and moto
did not, in this order:

* ``UpdateClusterConfig`` answers ``{"update": ...}`` (moto returned the cluster), accepts one
  kind of change per call (endpoint access, logging or ``accessConfig``), merges the endpoint
  settings into ``resourcesVpcConfig`` instead of replacing it (moto dropped the subnets), and
  refuses a request that changes nothing (``InvalidParameterException``, as EKS does);
  ``accessConfig.authenticationMode`` only moves CONFIG_MAP -> API_AND_CONFIG_MAP -> API.
  Updates complete at once (status ``Successful``); ``DescribeUpdate`` and ``ListUpdates`` read
  them back. In latency mode (sandbox/aws_latency.py) a cluster configuration update is ``InProgress`` for its
  typical time, and another one asked for meanwhile is refused (``ResourceInUseException``), as
  EKS runs one update of a cluster at a time; a node group asked for meanwhile is refused too
  (``InvalidRequestException``, the cluster "is not in ACTIVE status").
* ``AssociateEncryptionConfig`` (secrets envelope encryption; refused when already set).
* Access entries: ``Create/Describe/List/Update/DeleteAccessEntry`` and
  ``Associate/Disassociate/ListAssociatedAccessPolicies``, refused with
  ``InvalidRequestException`` while the authentication mode is CONFIG_MAP.
* Add-ons: ``Create/Describe/Update/Delete/ListAddons`` with ``configurationValues`` kept as
  sent; no add-on software runs.
* ``CreateCluster`` takes ``accessConfig`` (moto dropped it): the authentication mode, and
  ``bootstrapClusterCreatorAdminPermissions`` (default true), which with a mode other than
  CONFIG_MAP gives the creating IAM principal (the role behind an assumed-role caller) a STANDARD
  access entry with AmazonEKSClusterAdminPolicy, as EKS does. Endpoint access and log types given
  at creation are kept in the shape DescribeCluster reports them (no public CIDRs with the public
  endpoint off; enabled and disabled log types listed).
* ``DescribeCluster`` carries ``accessConfig`` (CONFIG_MAP for a cluster created without one,
  as EKS's API default) and ``endpointPublicAccess``/``endpointPrivateAccess`` defaults
  (public on, private off).

Fault switch: ``nodegroup_fault(name, status, issues)`` makes every node group of that name
report ``status`` and those ``health.issues`` from its next describe on (``CREATE_FAILED``,
``DEGRADED`` ...), as EKS does when instances fail to join; ``nodegroup_fault(name, None)``
clears it. It acts on the moto of this process (an in-process server).

This module imports nothing from the collection: it stands in for AWS, as a witness.
"""
from __future__ import annotations

import datetime
import json
import time
import uuid
from urllib.parse import unquote

from sandbox import aws_latency

AUTH_ORDER = ["CONFIG_MAP", "API_AND_CONFIG_MAP", "API"]
LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _errors():
    from moto.eks import exceptions
    return exceptions


def _fail(kind, message, **ids):
    exc = getattr(_errors(), kind)
    fields = {"clusterName": None, "nodegroupName": None, "fargateProfileName": None, "addonName": None}
    fields.update(ids)
    fields["message"] = message
    raise exc(**fields)


def _state(cluster):
    """Per-cluster state this extension adds (created on first use)."""
    if not hasattr(cluster, "_standin_access"):
        cluster._standin_access = {"entries": {}, "policies": {}, "addons": {}, "updates": {}}
        if not getattr(cluster, "access_config", None):
            cluster.access_config = {"authenticationMode": "CONFIG_MAP",
                                     "bootstrapClusterCreatorAdminPermissions": True}
        vpc = cluster.resources_vpc_config = dict(cluster.resources_vpc_config or {})
        vpc.setdefault("endpointPublicAccess", True)
        vpc.setdefault("endpointPrivateAccess", False)
        if vpc["endpointPublicAccess"]:
            vpc.setdefault("publicAccessCidrs", ["0.0.0.0/0"])
    return cluster._standin_access


# The updates of the cluster itself (an add-on's are the add-on's): one at a time.
CLUSTER_UPDATES = ("EndpointAccessUpdate", "LoggingUpdate", "AccessConfigUpdate", "AssociateEncryptionConfig")


def _update(cluster, kind, params):
    update = {"id": str(uuid.uuid4()), "status": "Successful", "type": kind,
              "params": [{"type": k, "value": v if isinstance(v, str) else json.dumps(v)} for k, v in params],
              "createdAt": _now(), "errors": []}
    _state(cluster)["updates"][update["id"]] = update
    _state(cluster).setdefault("started", {})[update["id"]] = time.monotonic()
    return _as_reported(cluster, update)


def _as_reported(cluster, update):
    """The update as EKS reports it now: a cluster update is InProgress for its typical time (latency mode)."""
    started = _state(cluster).get("started", {}).get(update["id"], 0.0)
    if update["type"] in CLUSTER_UPDATES and time.monotonic() < started + aws_latency.delay_of("eks_update"):
        return dict(update, status="InProgress")
    return update


def _running_update(cluster):
    """The update the cluster is making now (latency mode), or None."""
    return next((u for u in _state(cluster)["updates"].values() if _as_reported(cluster, u)["status"] == "InProgress"),
                None)


def _refuse_while_updating(cluster):
    update = _running_update(cluster)
    if update is not None:
        _fail("ResourceInUseException", "Cluster has an update in progress (%s %s)" % (update["type"], update["id"]),
              clusterName=cluster.name)


def _enabled_log_types(logging):
    enabled = set()
    for entry in (logging or {}).get("clusterLogging", []):
        for kind in entry.get("types", []):
            if entry.get("enabled"):
                enabled.add(kind)
            else:
                enabled.discard(kind)
    return enabled


NODEGROUP_FAULTS = {}


def _add_entry(cluster, principal, kind="STANDARD", groups=(), tags=None, username=None):
    """A new access entry of ``principal`` (an IAM role or user ARN) on ``cluster``."""
    parts = principal.split(":")
    entry = {
        "clusterName": cluster.name, "principalArn": principal, "kubernetesGroups": list(groups),
        "accessEntryArn": "arn:%s:eks:%s:%s:access-entry/%s/%s/%s/%s/%s" % (
            parts[1], cluster.arn.split(":")[3], cluster.arn.split(":")[4], cluster.name,
            parts[5].split("/")[0], parts[4], parts[5].split("/")[-1], uuid.uuid4().hex[:8]),
        "createdAt": _now(), "modifiedAt": _now(), "tags": tags or {},
        "username": username or principal, "type": kind,
    }
    state = _state(cluster)
    state["entries"][principal] = entry
    state["policies"][principal] = {}
    return entry


def _creator(response):
    """The IAM principal that makes this request: an assumed role's role, or the IAM user (STS's
    answer for the request's access key, the caller ``GetCallerIdentity`` would name)."""
    from moto.sts.models import sts_backends
    _user_id, arn, _account = sts_backends[response.current_account][response.partition].get_caller_identity(
        response.get_access_key(), response.region)
    parts = arn.split(":")
    if parts[5].startswith("assumed-role/"):
        return "arn:%s:iam::%s:role/%s" % (parts[1], parts[4], parts[5].split("/")[1])
    return "arn:%s:iam::%s:%s" % (parts[1], parts[4], parts[5])


def _logging_as_reported(enabled):
    """``logging`` as DescribeCluster shows it: the enabled types, then the disabled ones."""
    entries = [{"types": sorted(enabled), "enabled": True},
               {"types": sorted(set(LOG_TYPES) - set(enabled)), "enabled": False}]
    return {"clusterLogging": [e for e in entries if e["types"]]}


def nodegroup_fault(name, status, issues=()):
    """From now on node groups named ``name`` report ``status`` with ``issues`` ([{code, message,
    resourceIds}]); ``status=None`` ends the fault (the group reports ACTIVE again)."""
    if status is None:
        NODEGROUP_FAULTS.pop(name, None)
    else:
        NODEGROUP_FAULTS[name] = (status, [dict(i) for i in issues])


def extend_eks():
    """Patch moto's EKS backend and responses in this process (idempotent)."""
    from moto.core.responses import ActionResult, EmptyResult
    from moto.eks import urls
    from moto.eks.models import EKSBackend
    from moto.eks.responses import EKSResponse

    if getattr(EKSResponse, "_standin_access", False):
        return
    EKSResponse._standin_access = True

    dispatch = urls.response.dispatch
    for path in (
        "{0}/clusters/(?P<name>[^/]+)/updates/(?P<updateId>[^/]+)$",
        "{0}/clusters/(?P<name>[^/]+)/updates$",
        "{0}/clusters/(?P<name>[^/]+)/encryption-config/associate$",
        "{0}/clusters/(?P<name>[^/]+)/access-entries$",
        "{0}/clusters/(?P<name>[^/]+)/access-entries/(?P<principalArn>.+)/access-policies/(?P<policyArn>.+)$",
        "{0}/clusters/(?P<name>[^/]+)/access-entries/(?P<principalArn>.+)/access-policies$",
        "{0}/clusters/(?P<name>[^/]+)/access-entries/(?P<principalArn>.+)$",
        "{0}/clusters/(?P<name>[^/]+)/addons$",
        "{0}/clusters/(?P<name>[^/]+)/addons/(?P<addonName>[^/]+)/update$",
        "{0}/clusters/(?P<name>[^/]+)/addons/(?P<addonName>[^/]+)$",
    ):
        urls.url_paths.setdefault(path, dispatch)

    original_describe = EKSBackend.describe_cluster

    def describe_cluster(self, name):
        cluster = original_describe(self, name)
        _state(cluster)
        return cluster

    EKSBackend.describe_cluster = describe_cluster

    original_describe_nodegroup = EKSBackend.describe_nodegroup

    def describe_nodegroup(self, cluster_name, nodegroup_name):
        nodegroup = original_describe_nodegroup(self, cluster_name, nodegroup_name)
        fault = NODEGROUP_FAULTS.get(nodegroup_name)
        if fault:
            nodegroup.status, nodegroup.health = fault[0], {"issues": list(fault[1])}
            nodegroup._standin_faulted = True
        elif getattr(nodegroup, "_standin_faulted", False):
            nodegroup.status, nodegroup.health = "ACTIVE", {"issues": []}
            nodegroup._standin_faulted = False
        return nodegroup

    EKSBackend.describe_nodegroup = describe_nodegroup

    original_create_nodegroup = EKSBackend.create_nodegroup

    def create_nodegroup(self, cluster_name, *args, **kwargs):
        # EKS refuses a node group while the cluster makes an update (eksctl#2244: "Cluster '<name>'
        # is not in ACTIVE status", InvalidRequestException), so a deploy makes its updates first.
        cluster = self.clusters.get(cluster_name)
        if cluster is not None and _running_update(cluster) is not None:
            _fail("InvalidRequestException", "Cluster '%s' is not in ACTIVE status" % cluster_name,
                  clusterName=cluster_name)
        return original_create_nodegroup(self, cluster_name, *args, **kwargs)

    EKSBackend.create_nodegroup = create_nodegroup

    def cluster_of(response):
        name = response._get_param("name") or response._get_param("clusterName")
        return response.eks_backend.describe_cluster(name=unquote(name))

    original_create_cluster = EKSResponse.create_cluster

    def create_cluster(self):
        access = self._get_param("accessConfig") or {}
        mode = access.get("authenticationMode") or "CONFIG_MAP"
        if mode not in AUTH_ORDER:
            _fail("InvalidParameterException", "Unsupported authentication mode %s" % mode,
                  clusterName=self._get_param("name"))
        vpc = self._get_param("resourcesVpcConfig") or {}
        if vpc.get("endpointPublicAccess") is False and vpc.get("endpointPrivateAccess") is False:
            _fail("InvalidParameterException", "At least one of endpointPublicAccess or endpointPrivateAccess must be true.",
                  clusterName=self._get_param("name"))
        result = original_create_cluster(self)
        cluster = self.eks_backend.clusters[self._get_param("name")]
        bootstrap = access.get("bootstrapClusterCreatorAdminPermissions", True)
        cluster.access_config = {"authenticationMode": mode, "bootstrapClusterCreatorAdminPermissions": bootstrap}
        state = _state(cluster)
        if not cluster.resources_vpc_config.get("endpointPublicAccess"):
            cluster.resources_vpc_config.pop("publicAccessCidrs", None)
        cluster.logging = _logging_as_reported(_enabled_log_types(cluster.logging))
        if mode != "CONFIG_MAP" and bootstrap:
            creator = _creator(self)
            _add_entry(cluster, creator)
            admin = "arn:%s:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy" % creator.split(":")[1]
            state["policies"][creator][admin] = {"policyArn": admin, "accessScope": {"type": "cluster"},
                                                 "associatedAt": _now(), "modifiedAt": _now()}
        return result

    # ------------------------------------------------------------ cluster configuration
    def update_cluster_config(self):
        cluster = cluster_of(self)
        vpc_change = self._get_param("resourcesVpcConfig")
        logging = self._get_param("logging")
        access = self._get_param("accessConfig")
        given = [k for k, v in (("resourcesVpcConfig", vpc_change), ("logging", logging), ("accessConfig", access)) if v]
        if len(given) != 1:
            _fail("InvalidParameterException", "Only one type of update can be allowed.", clusterName=cluster.name)
        _refuse_while_updating(cluster)
        if vpc_change:
            current = cluster.resources_vpc_config
            wanted = dict(current)
            for key in ("endpointPublicAccess", "endpointPrivateAccess", "publicAccessCidrs",
                        "subnetIds", "securityGroupIds"):
                if key in vpc_change:
                    wanted[key] = vpc_change[key]
            if not wanted.get("endpointPublicAccess") and not wanted.get("endpointPrivateAccess"):
                _fail("InvalidParameterException", "At least one of endpointPublicAccess or endpointPrivateAccess must be true.",
                      clusterName=cluster.name)
            if not wanted.get("endpointPublicAccess"):
                wanted.pop("publicAccessCidrs", None)
            elif not wanted.get("publicAccessCidrs"):
                wanted["publicAccessCidrs"] = ["0.0.0.0/0"]
            if wanted == current:
                _fail("InvalidParameterException", "Cluster is already at the desired configuration with "
                      "endpointPrivateAccess: %s , endpointPublicAccess: %s, and Public Endpoint Restrictions: %s"
                      % (current.get("endpointPrivateAccess"), current.get("endpointPublicAccess"),
                         current.get("publicAccessCidrs")), clusterName=cluster.name)
            cluster.resources_vpc_config = wanted
            update = _update(cluster, "EndpointAccessUpdate",
                             [(k, vpc_change[k]) for k in sorted(vpc_change)])
        elif logging:
            before = _enabled_log_types(cluster.logging)
            after = _enabled_log_types({"clusterLogging": (cluster.logging or {}).get("clusterLogging", [])
                                        + logging.get("clusterLogging", [])})
            if before == after:
                _fail("InvalidParameterException", "No changes needed for the logging config provided",
                      clusterName=cluster.name)
            cluster.logging = _logging_as_reported(after)
            update = _update(cluster, "LoggingUpdate", [("ClusterLogging", logging.get("clusterLogging", []))])
        else:
            _state(cluster)
            mode = access.get("authenticationMode")
            current = cluster.access_config["authenticationMode"]
            if mode not in AUTH_ORDER or AUTH_ORDER.index(mode) < AUTH_ORDER.index(current):
                _fail("InvalidParameterException", "Unsupported authentication mode update from %s to %s"
                      % (current, mode), clusterName=cluster.name)
            if mode == current:
                _fail("InvalidParameterException", "Unsupported authentication mode update from %s to %s"
                      % (current, mode), clusterName=cluster.name)
            cluster.access_config = dict(cluster.access_config, authenticationMode=mode)
            update = _update(cluster, "AccessConfigUpdate", [("AuthenticationMode", mode)])
        return ActionResult({"update": update})

    def describe_update(self):
        cluster = cluster_of(self)
        update_id = unquote(self._get_param("updateId"))
        update = _state(cluster)["updates"].get(update_id)
        if update is None:
            _fail("ResourceNotFoundException", "No update found for ID: %s" % update_id, clusterName=cluster.name)
        return ActionResult({"update": _as_reported(cluster, update)})

    def list_updates(self):
        cluster = cluster_of(self)
        wanted = self._get_param("addonName") or self._get_param("nodegroupName")
        ids = [u["id"] for u in _state(cluster)["updates"].values()
               if (u["type"] == "AddonUpdate") == bool(wanted)]
        return ActionResult({"updateIds": ids})

    def associate_encryption_config(self):
        cluster = cluster_of(self)
        _refuse_while_updating(cluster)
        config = self._get_param("encryptionConfig") or []
        if cluster.encryption_config:
            _fail("InvalidParameterException", "Encryption is already enabled on the cluster", clusterName=cluster.name)
        if not config or not all(c.get("provider", {}).get("keyArn") and c.get("resources") == ["secrets"] for c in config):
            _fail("InvalidParameterException", "encryptionConfig needs resources [secrets] and provider.keyArn",
                  clusterName=cluster.name)
        cluster.encryption_config = config
        return ActionResult({"update": _update(cluster, "AssociateEncryptionConfig",
                                               [("EncryptionConfig", config)])})

    # ------------------------------------------------------------ access entries
    def entries_of(response):
        cluster = cluster_of(response)
        state = _state(cluster)
        if cluster.access_config["authenticationMode"] == "CONFIG_MAP":
            _fail("InvalidRequestException", "The cluster's authentication mode must be set to one of "
                  "[API, API_AND_CONFIG_MAP] to perform this operation.", clusterName=cluster.name)
        return cluster, state

    def entry_of(response, cluster, state):
        principal = unquote(response._get_param("principalArn"))
        entry = state["entries"].get(principal)
        if entry is None:
            _fail("ResourceNotFoundException", "The specified principalArn could not be found. You can view your "
                  "available access entries with 'list-access-entries'.", clusterName=cluster.name)
        return principal, entry

    def create_access_entry(self):
        cluster, state = entries_of(self)
        principal = self._get_param("principalArn")
        if principal in state["entries"]:
            _fail("ResourceInUseException", "The specified access entry resource is already in use on this cluster.",
                  clusterName=cluster.name)
        parts = principal.split(":")
        if len(parts) < 6 or parts[2] != "iam":
            _fail("InvalidParameterException", "The principalArn parameter format is not valid", clusterName=cluster.name)
        entry = _add_entry(cluster, principal, kind=self._get_param("type") or "STANDARD",
                           groups=self._get_param("kubernetesGroups") or [], tags=self._get_param("tags") or {},
                           username=self._get_param("username"))
        return ActionResult({"accessEntry": entry})

    def describe_access_entry(self):
        cluster, state = entries_of(self)
        _principal, entry = entry_of(self, cluster, state)
        return ActionResult({"accessEntry": entry})

    def list_access_entries(self):
        _cluster, state = entries_of(self)
        return ActionResult({"accessEntries": sorted(state["entries"])})

    def update_access_entry(self):
        cluster, state = entries_of(self)
        _principal, entry = entry_of(self, cluster, state)
        if self._get_param("kubernetesGroups") is not None:
            entry["kubernetesGroups"] = self._get_param("kubernetesGroups")
        if self._get_param("username"):
            entry["username"] = self._get_param("username")
        entry["modifiedAt"] = _now()
        return ActionResult({"accessEntry": entry})

    def delete_access_entry(self):
        cluster, state = entries_of(self)
        principal, _entry = entry_of(self, cluster, state)
        del state["entries"][principal]
        state["policies"].pop(principal, None)
        return EmptyResult()

    def associate_access_policy(self):
        cluster, state = entries_of(self)
        principal, _entry = entry_of(self, cluster, state)
        policy_arn = self._get_param("policyArn")
        scope = self._get_param("accessScope") or {}
        if not policy_arn or ":eks::aws:cluster-access-policy/" not in policy_arn:
            _fail("InvalidParameterException", "The policyArn parameter format is not valid", clusterName=cluster.name)
        if scope.get("type") not in ("cluster", "namespace") or (scope["type"] == "namespace") != bool(scope.get("namespaces")):
            _fail("InvalidParameterException", "accessScope: type cluster, or type namespace with namespaces",
                  clusterName=cluster.name)
        existing = state["policies"][principal].get(policy_arn)
        associated = {"policyArn": policy_arn, "accessScope": scope,
                      "associatedAt": existing["associatedAt"] if existing else _now(), "modifiedAt": _now()}
        state["policies"][principal][policy_arn] = associated
        return ActionResult({"clusterName": cluster.name, "principalArn": principal,
                             "associatedAccessPolicy": associated})

    def list_associated_access_policies(self):
        cluster, state = entries_of(self)
        principal, _entry = entry_of(self, cluster, state)
        return ActionResult({"clusterName": cluster.name, "principalArn": principal,
                             "associatedAccessPolicies": list(state["policies"][principal].values())})

    def disassociate_access_policy(self):
        cluster, state = entries_of(self)
        principal, _entry = entry_of(self, cluster, state)
        state["policies"][principal].pop(unquote(self._get_param("policyArn")), None)
        return EmptyResult()

    # ------------------------------------------------------------ add-ons
    def addon_of(response, cluster):
        name = unquote(response._get_param("addonName"))
        addon = _state(cluster)["addons"].get(name)
        if addon is None:
            _fail("ResourceNotFoundException", "No addon: %s found in cluster: %s" % (name, cluster.name),
                  clusterName=cluster.name, addonName=name)
        return addon

    def _check_configuration(cluster, values):
        if values:
            try:
                json.loads(values)
            except ValueError:
                _fail("InvalidParameterException", "ConfigurationValue provided in request is not supported: "
                      "Json schema validation failed", clusterName=cluster.name)

    def create_addon(self):
        cluster = cluster_of(self)
        state = _state(cluster)
        name = self._get_param("addonName")
        if name in state["addons"]:
            _fail("ResourceInUseException", "Addon already exists: %s" % name, clusterName=cluster.name, addonName=name)
        _check_configuration(cluster, self._get_param("configurationValues"))
        account, region = cluster.arn.split(":")[4], cluster.arn.split(":")[3]
        addon = {
            "addonName": name, "clusterName": cluster.name, "status": "ACTIVE",
            "addonVersion": self._get_param("addonVersion") or "v1.19.2-eksbuild.1",
            "health": {"issues": []},
            "addonArn": "arn:%s:eks:%s:%s:addon/%s/%s/%s" % (cluster.arn.split(":")[1], region, account,
                                                             cluster.name, name, uuid.uuid4().hex[:12]),
            "createdAt": _now(), "modifiedAt": _now(), "tags": self._get_param("tags") or {},
            "configurationValues": self._get_param("configurationValues") or "",
        }
        if self._get_param("serviceAccountRoleArn"):
            addon["serviceAccountRoleArn"] = self._get_param("serviceAccountRoleArn")
        state["addons"][name] = addon
        return ActionResult({"addon": addon})

    def describe_addon(self):
        cluster = cluster_of(self)
        return ActionResult({"addon": addon_of(self, cluster)})

    def list_addons(self):
        cluster = cluster_of(self)
        return ActionResult({"addons": sorted(_state(cluster)["addons"])})

    def update_addon(self):
        cluster = cluster_of(self)
        addon = addon_of(self, cluster)
        params = []
        for key in ("addonVersion", "serviceAccountRoleArn", "configurationValues", "resolveConflicts"):
            value = self._get_param(key)
            if value is not None:
                params.append((key[0].upper() + key[1:], value))
                if key == "configurationValues":
                    _check_configuration(cluster, value)
                if key != "resolveConflicts":
                    addon[key] = value
        addon["modifiedAt"] = _now()
        return ActionResult({"update": _update(cluster, "AddonUpdate", params)})

    def delete_addon(self):
        cluster = cluster_of(self)
        addon = addon_of(self, cluster)
        del _state(cluster)["addons"][addon["addonName"]]
        return ActionResult({"addon": dict(addon, status="DELETING")})

    for function in (create_cluster, update_cluster_config, describe_update, list_updates, associate_encryption_config,
                     create_access_entry, describe_access_entry, list_access_entries, update_access_entry,
                     delete_access_entry, associate_access_policy, list_associated_access_policies,
                     disassociate_access_policy, create_addon, describe_addon, list_addons, update_addon,
                     delete_addon):
        setattr(EKSResponse, function.__name__, function)
