# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Pure logic of the nitro_launch_template module.

Builds the EC2 ``LaunchTemplateData`` of an EKS node with Nitro Enclaves from the module's
options, and decides whether the latest version of an existing template already matches.
"""
import base64

HTTP_TOKENS = ("optional", "required")
VOLUME_TYPES = ("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")


def _drop_none(value):
    if isinstance(value, dict):
        return dict((k, _drop_none(v)) for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def encode_user_data(text):
    """EC2 wants user data base64 encoded; operators write it as text."""
    if text is None:
        return None
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def decode_user_data(data):
    if not data:
        return data
    try:
        return base64.b64decode(data).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return data


def validate_params(params):
    """Errors naming the option and the rule; empty when the request is sound."""
    errors = []
    meta = params.get("metadata_options") or {}
    hop = meta.get("http_put_response_hop_limit")
    if hop is not None and not 1 <= hop <= 64:
        errors.append("metadata_options.http_put_response_hop_limit: must be 1..64 (got %s)" % hop)
    for index, bdm in enumerate(params.get("block_device_mappings") or []):
        where = "block_device_mappings[%d]" % index
        if not bdm.get("device_name"):
            errors.append("%s.device_name: required" % where)
        size = bdm.get("volume_size")
        if size is not None and not 1 <= size <= 16384:
            errors.append("%s.volume_size: must be 1..16384 GiB (got %s)" % (where, size))
        if bdm.get("kms_key_id") and not bdm.get("encrypted", True):
            errors.append("%s.kms_key_id: requires encrypted=true" % where)
    if params.get("enclave_enabled") and params.get("instance_type"):
        family = params["instance_type"].split(".")[0]
        # Nitro Enclaves need a Nitro instance with at least 4 vCPUs; burstable t* and the smallest sizes cannot.
        if family.startswith("t") or params["instance_type"].endswith((".nano", ".micro", ".small", ".medium")):
            errors.append("instance_type: %s cannot run Nitro Enclaves (needs a Nitro instance with 4+ vCPUs)"
                          % params["instance_type"])
    return errors


def build_template_data(params):
    """Desired ``LaunchTemplateData`` (boto3 shape) from the module options."""
    data = {}
    if params.get("enclave_enabled") is not None:
        data["EnclaveOptions"] = {"Enabled": bool(params["enclave_enabled"])}
    meta = params.get("metadata_options")
    if meta:
        data["MetadataOptions"] = _drop_none({
            "HttpEndpoint": meta.get("http_endpoint"),
            "HttpTokens": meta.get("http_tokens"),
            "HttpPutResponseHopLimit": meta.get("http_put_response_hop_limit"),
            "InstanceMetadataTags": meta.get("instance_metadata_tags"),
        })
    if params.get("user_data") is not None:
        data["UserData"] = encode_user_data(params["user_data"])
    mappings = []
    for bdm in params.get("block_device_mappings") or []:
        ebs = _drop_none({
            "VolumeSize": bdm.get("volume_size"),
            "VolumeType": bdm.get("volume_type"),
            "Encrypted": bdm.get("encrypted"),
            "KmsKeyId": bdm.get("kms_key_id"),
            "DeleteOnTermination": bdm.get("delete_on_termination"),
            "Iops": bdm.get("iops"),
            "Throughput": bdm.get("throughput"),
        })
        mappings.append({"DeviceName": bdm["device_name"], "Ebs": ebs})
    if mappings:
        data["BlockDeviceMappings"] = mappings
    if params.get("security_group_ids"):
        data["SecurityGroupIds"] = list(params["security_group_ids"])
    for option, key in (("instance_type", "InstanceType"), ("image_id", "ImageId"), ("key_name", "KeyName")):
        if params.get(option):
            data[key] = params[option]
    instance_tags = params.get("instance_tags")
    if instance_tags:
        tag_list = [{"Key": k, "Value": str(v)} for k, v in sorted(instance_tags.items())]
        data["TagSpecifications"] = [{"ResourceType": kind, "Tags": tag_list} for kind in ("instance", "volume")]
    return data


def _canonical(value):
    """Order-insensitive where EC2's order carries no meaning (tags, security groups)."""
    if isinstance(value, dict):
        return dict((k, _canonical(v)) for k, v in value.items())
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        if items and all(isinstance(i, str) for i in items):
            return sorted(items)
        if items and all(isinstance(i, dict) and set(i) == {"Key", "Value"} for i in items):
            return sorted(items, key=lambda i: i["Key"])
        return items
    return value


def normalise_existing(data):
    """An existing version's data, reduced to what this module manages.

    EC2 echoes the template's own tags as a ``launch-template`` tag specification in some
    implementations; those are the template's tags, not the instances', so they are dropped.
    """
    data = dict(data or {})
    specs = [s for s in data.get("TagSpecifications") or [] if s.get("ResourceType") != "launch-template"]
    if specs:
        data["TagSpecifications"] = sorted(specs, key=lambda s: s.get("ResourceType", ""))
    else:
        data.pop("TagSpecifications", None)
    return _canonical(data)


def data_matches(desired, existing):
    """True when the latest version already carries exactly the desired data."""
    want = _canonical(dict(desired, TagSpecifications=sorted(desired["TagSpecifications"], key=lambda s: s["ResourceType"]))
                      if desired.get("TagSpecifications") else desired)
    return want == normalise_existing(existing)


def readable(data):
    """Template data for --diff: user data decoded so a reviewer can read it."""
    if not data:
        return {}
    shown = dict(data)
    if shown.get("UserData"):
        shown["UserData"] = decode_user_data(shown["UserData"])
    return shown
