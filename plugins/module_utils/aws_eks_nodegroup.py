# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Pure logic of the eks_managed_nodegroup module: request building and the update plan.

EKS splits node group changes in three calls, each of which leaves the group UPDATING:
``UpdateNodegroupConfig`` (scaling, labels, taints, update strategy), ``UpdateNodegroupVersion``
(launch template version, AMI release version) and tagging. Some properties cannot change at all
(role, subnets, AMI type, capacity type, instance types, disk size, launch template identity):
asking for a different value is an error that names the property, never a silent replacement.
"""

AMI_TYPES = (
    "AL2023_x86_64_STANDARD", "AL2023_ARM_64_STANDARD", "AL2023_x86_64_NEURON", "AL2023_x86_64_NVIDIA",
    "AL2023_ARM_64_NVIDIA", "AL2_x86_64", "AL2_x86_64_GPU", "AL2_ARM_64", "BOTTLEROCKET_x86_64",
    "BOTTLEROCKET_ARM_64", "BOTTLEROCKET_x86_64_NVIDIA", "BOTTLEROCKET_ARM_64_NVIDIA", "CUSTOM",
)
TAINT_EFFECTS = ("NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE")
# Statuses a run must not carry on from (EKS reports why in health.issues).
FAILED_STATUSES = ("CREATE_FAILED", "DEGRADED", "DELETE_FAILED")
_WHAT_TO_DO = {
    "CREATE_FAILED": "fix the cause, delete the node group (aws eks delete-nodegroup, or teardown_party.yml) "
                     "and re-run the deploy: it creates the group again",
    "DEGRADED": "fix the causes listed (capacity, IAM role, subnets, launch template); EKS moves the group back "
                "to ACTIVE once they are gone; then re-run the deploy",
    "DELETE_FAILED": "fix the causes listed, then run the teardown again",
}


def health_failure(nodegroup):
    """None for a usable node group; else one message with its status and every health issue
    EKS reports (code, message, resources) and what to do."""
    status = (nodegroup or {}).get("status")
    if status not in FAILED_STATUSES:
        return None
    issues = ((nodegroup.get("health") or {}).get("issues")) or []
    shown = []
    for issue in issues:
        text = "%s: %s" % (issue.get("code", "unknown"), issue.get("message", "").strip())
        if issue.get("resourceIds"):
            text += " (%s)" % ", ".join(issue["resourceIds"])
        shown.append(text)
    return "Node group %s of cluster %s is %s; health issues: %s. %s" % (
        nodegroup.get("nodegroupName"), nodegroup.get("clusterName"), status,
        "; ".join(shown) if shown else "none reported", _WHAT_TO_DO[status])


def validate_params(params):
    errors = []
    scaling = params.get("scaling") or {}
    low, high, want = scaling.get("min_size"), scaling.get("max_size"), scaling.get("desired_size")
    if low is not None and low < 0:
        errors.append("scaling.min_size: must be >= 0 (got %s)" % low)
    if high is not None and high < 1:
        errors.append("scaling.max_size: must be >= 1 (got %s)" % high)
    if None not in (low, high) and low > high:
        errors.append("scaling: min_size (%s) must not exceed max_size (%s)" % (low, high))
    if None not in (low, high, want) and not low <= want <= high:
        errors.append("scaling.desired_size: must lie between min_size and max_size (got %s, range %s..%s)" % (want, low, high))
    template = params.get("launch_template") or {}
    if template and not (template.get("id") or template.get("name")):
        errors.append("launch_template: give its id or its name")
    if template and params.get("disk_size") is not None:
        errors.append("disk_size: not allowed with a launch template (set the volume in the template)")
    if params.get("ami_type") == "CUSTOM" and params.get("release_version"):
        errors.append("release_version: meaningless with ami_type CUSTOM (the template's image_id decides)")
    seen = set()
    for index, taint in enumerate(params.get("taints") or []):
        key = (taint.get("key"), taint.get("effect"))
        if key in seen:
            errors.append("taints[%d]: duplicate key %s with effect %s" % (index, key[0], key[1]))
        seen.add(key)
    for key, value in (params.get("labels") or {}).items():
        if isinstance(value, (dict, list)) or value is None:
            errors.append("labels.%s: must be a string, number or boolean (got %r)" % (key, value))
    upd = params.get("update_config") or {}
    if upd.get("max_unavailable") is not None and upd.get("max_unavailable_percentage") is not None:
        errors.append("update_config: set max_unavailable or max_unavailable_percentage, not both")
    return errors


def _taint(t):
    return {"key": t["key"], "value": t.get("value") or "", "effect": t["effect"]}


def label_value(value):
    """Kubernetes label values are strings; YAML booleans become "true"/"false", numbers their digits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_create_request(params):
    """``CreateNodegroup`` arguments from the module options."""
    request = {
        "clusterName": params["cluster_name"],
        "nodegroupName": params["name"],
        "nodeRole": params["node_role"],
        "subnets": list(params["subnets"]),
        "labels": dict((k, label_value(v)) for k, v in (params.get("labels") or {}).items()),
        "taints": [_taint(t) for t in params.get("taints") or []],
        "capacityType": params.get("capacity_type") or "ON_DEMAND",
    }
    scaling = params.get("scaling") or {}
    request["scalingConfig"] = {"minSize": scaling.get("min_size"), "maxSize": scaling.get("max_size"),
                                "desiredSize": scaling.get("desired_size")}
    request["scalingConfig"] = dict((k, v) for k, v in request["scalingConfig"].items() if v is not None)
    update = _update_config(params)
    if update:
        request["updateConfig"] = update
    for option, key in (("ami_type", "amiType"), ("release_version", "releaseVersion"), ("disk_size", "diskSize")):
        if params.get(option) is not None:
            request[key] = params[option]
    if params.get("instance_types"):
        request["instanceTypes"] = list(params["instance_types"])
    template = _template(params)
    if template:
        request["launchTemplate"] = template
    if params.get("tags"):
        request["tags"] = dict(params["tags"])
    return request


def _update_config(params):
    upd = params.get("update_config") or {}
    if upd.get("max_unavailable_percentage") is not None:
        return {"maxUnavailablePercentage": upd["max_unavailable_percentage"]}
    if upd.get("max_unavailable") is not None:
        return {"maxUnavailable": upd["max_unavailable"]}
    return {}


def _template(params):
    template = params.get("launch_template") or {}
    out = {}
    for key in ("id", "name", "version"):
        if template.get(key) not in (None, ""):
            out[key] = str(template[key])
    return out


def plan_update(params, current):
    """Compare the request with ``current`` (DescribeNodegroup's ``nodegroup``).

    Returns a dict: errors (immutable differences), config (UpdateNodegroupConfig arguments or
    {}), version (UpdateNodegroupVersion arguments or {}), tags_set, tags_unset, changed.
    """
    errors = []
    wanted = build_create_request(params)

    def immutable(label, want, have):
        if want is not None and have is not None and want != have:
            errors.append("%s: cannot change from %r to %r on an existing node group; create a new node group"
                          % (label, have, want))

    immutable("node_role", wanted["nodeRole"], current.get("nodeRole"))
    immutable("subnets", sorted(wanted["subnets"]), sorted(current.get("subnets") or []))
    immutable("capacity_type", wanted["capacityType"], current.get("capacityType"))
    immutable("ami_type", wanted.get("amiType"), current.get("amiType"))
    if "instanceTypes" in wanted:
        immutable("instance_types", sorted(wanted["instanceTypes"]), sorted(current.get("instanceTypes") or []))
    if "diskSize" in wanted and "launchTemplate" not in (current or {}):
        immutable("disk_size", wanted["diskSize"], current.get("diskSize"))
    have_template = current.get("launchTemplate") or {}
    want_template = wanted.get("launchTemplate") or {}
    if bool(have_template) != bool(want_template):
        errors.append("launch_template: a node group cannot gain or lose its launch template; create a new node group")
    for key in ("id", "name"):
        if key in want_template and key in have_template:
            immutable("launch_template.%s" % key, want_template[key], have_template[key])

    config = {}
    scaling = dict((k, v) for k, v in wanted["scalingConfig"].items() if (current.get("scalingConfig") or {}).get(k) != v)
    if scaling:
        config["scalingConfig"] = dict(current.get("scalingConfig") or {}, **wanted["scalingConfig"])
    have_labels = current.get("labels") or {}
    add_labels = dict((k, v) for k, v in wanted["labels"].items() if have_labels.get(k) != v)
    remove_labels = sorted(k for k in have_labels if k not in wanted["labels"])
    if add_labels or remove_labels:
        config["labels"] = {}
        if add_labels:
            config["labels"]["addOrUpdateLabels"] = add_labels
        if remove_labels:
            config["labels"]["removeLabels"] = remove_labels
    have_taints = [_taint(t) for t in current.get("taints") or []]
    add_taints = [t for t in wanted["taints"] if t not in have_taints]
    want_keys = set((t["key"], t["effect"]) for t in wanted["taints"])
    remove_taints = [t for t in have_taints if (t["key"], t["effect"]) not in want_keys]
    if add_taints or remove_taints:
        config["taints"] = {}
        if add_taints:
            config["taints"]["addOrUpdateTaints"] = add_taints
        if remove_taints:
            config["taints"]["removeTaints"] = remove_taints
    want_update = wanted.get("updateConfig")
    # EKS always reports updateConfig; an answer without it (some stand-ins) cannot be compared.
    if want_update and "updateConfig" in current and \
            dict((k, v) for k, v in (current.get("updateConfig") or {}).items() if v is not None) != want_update:
        config["updateConfig"] = want_update

    version = {}
    if want_template.get("version") and str(have_template.get("version")) != want_template["version"]:
        version["launchTemplate"] = dict((k, v) for k, v in want_template.items() if k in ("id", "name", "version"))
        if "id" in version["launchTemplate"] and "name" in version["launchTemplate"]:
            version["launchTemplate"].pop("name")
    if wanted.get("releaseVersion") and wanted["releaseVersion"] != current.get("releaseVersion"):
        version["releaseVersion"] = wanted["releaseVersion"]

    tags_set, tags_unset = {}, []
    if params.get("tags") is not None:
        have_tags = current.get("tags") or {}
        tags_set = dict((k, v) for k, v in params["tags"].items() if have_tags.get(k) != v)
        if params.get("purge_tags", True):
            tags_unset = sorted(k for k in have_tags if k not in params["tags"])

    return {
        "errors": errors,
        "config": config,
        "version": version,
        "tags_set": tags_set,
        "tags_unset": tags_unset,
        "changed": bool(config or version or tags_set or tags_unset),
    }


def comparable(nodegroup):
    """The fields of a node group this module manages, for --diff."""
    if not nodegroup:
        return {}
    keys = ("nodeRole", "subnets", "amiType", "releaseVersion", "capacityType", "instanceTypes", "diskSize",
            "launchTemplate", "scalingConfig", "updateConfig", "labels", "taints", "tags")
    return dict((k, nodegroup[k]) for k in keys if k in nodegroup)


def expected_after(current, change, params):
    """The node group as it will look once the plan is applied (for --diff)."""
    after = comparable(current) if current else comparable(build_create_request(params))
    if not current:
        return after
    config = change["config"]
    if "scalingConfig" in config:
        after["scalingConfig"] = config["scalingConfig"]
    if "labels" in config:
        labels = dict(after.get("labels") or {})
        for key in config["labels"].get("removeLabels", []):
            labels.pop(key, None)
        labels.update(config["labels"].get("addOrUpdateLabels", {}))
        after["labels"] = labels
    if "taints" in config:
        gone = set((t["key"], t["effect"]) for t in config["taints"].get("removeTaints", []))
        new = config["taints"].get("addOrUpdateTaints", [])
        new_keys = set((t["key"], t["effect"]) for t in new)
        after["taints"] = [t for t in after.get("taints") or []
                           if (t["key"], t["effect"]) not in gone | new_keys] + new
    if "updateConfig" in config:
        after["updateConfig"] = config["updateConfig"]
    if "launchTemplate" in change["version"]:
        after["launchTemplate"] = dict(after.get("launchTemplate") or {}, **change["version"]["launchTemplate"])
    if "releaseVersion" in change["version"]:
        after["releaseVersion"] = change["version"]["releaseVersion"]
    if change["tags_set"] or change["tags_unset"]:
        tags = dict((k, v) for k, v in (after.get("tags") or {}).items() if k not in change["tags_unset"])
        tags.update(change["tags_set"])
        after["tags"] = tags
    return after
