#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: nitro_launch_template
short_description: EC2 launch template for EKS nodes with Nitro Enclaves enabled
version_added: 0.1.0
description:
  - Manages an EC2 launch template whose data enables AWS Nitro Enclaves, enforces an IMDS
    configuration (IMDSv2 by default), carries the node's user data (for example the enclave
    allocator set-up) and its root volume, for use by an EKS managed node group.
  - When the latest version differs from the requested data a new version is created and made
    the default, so the node group can roll to it; when it matches nothing is written.
  - M(amazon.aws.ec2_launch_template) (amazon.aws 10) cannot set C(EnclaveOptions), which is why
    this module exists. Supports check mode and C(--diff) (user data shown decoded).
options:
  name:
    description: Name of the launch template.
    type: str
    required: true
  state:
    description: Whether the template should exist. C(absent) deletes it with every version.
    type: str
    choices: [present, absent]
    default: present
  version_description:
    description: Description stored with a new version.
    type: str
    default: ""
  enclave_enabled:
    description: Enable Nitro Enclaves on instances launched from the template.
    type: bool
    default: true
  metadata_options:
    description: Instance metadata service settings.
    type: dict
    default: {}
    suboptions:
      http_endpoint:
        description: Whether IMDS is reachable.
        type: str
        choices: [enabled, disabled]
        default: enabled
      http_tokens:
        description: C(required) enforces IMDSv2.
        type: str
        choices: [optional, required]
        default: required
      http_put_response_hop_limit:
        description: IMDS PUT response hop limit; 2 lets pods on the node reach IMDSv2.
        type: int
        default: 2
      instance_metadata_tags:
        description: Expose instance tags in IMDS.
        type: str
        choices: [enabled, disabled]
        default: disabled
  user_data:
    description:
      - User data as plain text (a MIME multi-part document for EKS AL2023 nodes); the module
        base64-encodes it.
    type: str
  block_device_mappings:
    description: EBS volumes of the instance.
    type: list
    elements: dict
    default: []
    suboptions:
      device_name:
        description: Device name, C(/dev/xvda) for the AL2023 root volume.
        type: str
        required: true
      volume_size:
        description: Size in GiB.
        type: int
      volume_type:
        description: EBS volume type.
        type: str
        choices: [gp2, gp3, io1, io2, st1, sc1, standard]
        default: gp3
      encrypted:
        description: Encrypt the volume.
        type: bool
        default: true
      kms_key_id:
        description: KMS key for the volume (default EBS key when omitted).
        type: str
      delete_on_termination:
        description: Delete the volume with the instance.
        type: bool
        default: true
      iops:
        description: Provisioned IOPS (gp3, io1, io2).
        type: int
      throughput:
        description: Throughput in MiB/s (gp3).
        type: int
  security_group_ids:
    description:
      - Security groups of the instances. For EKS managed node groups, list the cluster security
        group too, as EKS adds none when the template names security groups.
    type: list
    elements: str
  instance_type:
    description: Instance type, when the node group does not set one.
    type: str
  image_id:
    description: AMI id; leave unset so the EKS managed node group uses its own AMI release.
    type: str
  key_name:
    description: EC2 key pair (SSH); unset by default, use SSM instead.
    type: str
  instance_tags:
    description: Tags given to the instances and volumes launched from the template.
    type: dict
  tags:
    description: Tags of the template itself. Omit to leave them alone.
    type: dict
    aliases: [resource_tags]
  purge_tags:
    description: Remove template tags not listed in O(tags).
    type: bool
    default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
author:
  - threshold_kms.mpc_party contributors
"""

EXAMPLES = r"""
- name: Launch template of the enclave node group
  threshold_kms.mpc_party.nitro_launch_template:
    name: kms-party1-nitro
    enclave_enabled: true
    metadata_options:
      http_tokens: required
      http_put_response_hop_limit: 2
    user_data: "{{ lookup('ansible.builtin.template', 'user-data.mime.j2') }}"
    block_device_mappings:
      - device_name: /dev/xvda
        volume_size: 100
        volume_type: gp3
        encrypted: true
    security_group_ids: [sg-0123456789abcdef0]
    tags:
      mpc-party: "1"
  register: __nitro_nodegroup_template
"""

RETURN = r"""
template_id:
  description: Id of the template (absent in check mode before creation).
  returned: state=present
  type: str
  sample: lt-0123456789abcdef0
template_name:
  description: Name of the template.
  returned: always
  type: str
default_version:
  description: Default version number after the run (absent in check mode before creation).
  returned: state=present
  type: int
latest_version:
  description: Latest version number after the run.
  returned: state=present
  type: int
launch_template_data:
  description: The requested launch template data (boto3 shape, user data base64-encoded).
  returned: state=present
  type: dict
"""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing dependency

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.ec2 import ensure_ec2_tags
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_retry
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_launch_template as lt


def find_template(module, ec2, name):
    try:
        found = ec2.describe_launch_templates(aws_retry=True, LaunchTemplateNames=[name])["LaunchTemplates"]
    except is_boto3_error_code(["InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateName.NotFound"]):
        return None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="Could not describe launch template %s" % name)
    return found[0] if found else None


def latest_version(module, ec2, template):
    try:
        versions = ec2.describe_launch_template_versions(
            aws_retry=True, LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Latest"])["LaunchTemplateVersions"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(e, msg="Could not read the versions of %s" % template["LaunchTemplateName"])
    return versions[0] if versions else None


def ensure_present(module, ec2):
    name = module.params["name"]
    desired = lt.build_template_data(module.params)
    template = find_template(module, ec2, name)
    result = dict(template_name=name, launch_template_data=desired)

    if template is None:
        result["diff"] = {"before": {}, "after": lt.readable(desired)}
        if module.check_mode:
            module.exit_json(changed=True, **result)
        request = dict(LaunchTemplateName=name, LaunchTemplateData=desired,
                       VersionDescription=module.params["version_description"])
        if module.params["tags"]:
            request["TagSpecifications"] = [{"ResourceType": "launch-template",
                                             "Tags": ansible_dict_to_boto3_tag_list(module.params["tags"])}]
        try:
            created = ec2.create_launch_template(aws_retry=True, **request)["LaunchTemplate"]
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            module.fail_json_aws(e, msg="Could not create launch template %s" % name)
        module.exit_json(changed=True, template_id=created["LaunchTemplateId"], default_version=created["DefaultVersionNumber"],
                         latest_version=created["LatestVersionNumber"], **result)

    template_id = template["LaunchTemplateId"]
    current = latest_version(module, ec2, template)
    current_data = (current or {}).get("LaunchTemplateData", {})
    changed = False
    default_version = template["DefaultVersionNumber"]
    latest = template["LatestVersionNumber"]
    result["diff"] = {"before": lt.readable(lt.normalise_existing(current_data)), "after": lt.readable(desired)}

    if not lt.data_matches(desired, current_data):
        changed = True
        if not module.check_mode:
            try:
                version = ec2.create_launch_template_version(
                    aws_retry=True, LaunchTemplateId=template_id, LaunchTemplateData=desired,
                    VersionDescription=module.params["version_description"])["LaunchTemplateVersion"]
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
                module.fail_json_aws(e, msg="Could not create a new version of launch template %s" % name)
            latest = version["VersionNumber"]
        else:
            latest = latest + 1
    if default_version != latest:
        changed = True
        if not module.check_mode:
            try:
                ec2.modify_launch_template(aws_retry=True, LaunchTemplateId=template_id, DefaultVersion=str(latest))
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
                module.fail_json_aws(e, msg="Could not make version %s the default of %s" % (latest, name))
        default_version = latest
    changed |= ensure_ec2_tags(ec2, module, template_id, resource_type="launch-template",
                               tags=module.params["tags"], purge_tags=module.params["purge_tags"])
    module.exit_json(changed=changed, template_id=template_id, default_version=default_version,
                     latest_version=latest, **result)


def ensure_absent(module, ec2):
    name = module.params["name"]
    template = find_template(module, ec2, name)
    if template is None:
        module.exit_json(changed=False, template_name=name, diff={"before": {}, "after": {}})
    if not module.check_mode:
        try:
            ec2.delete_launch_template(aws_retry=True, LaunchTemplateId=template["LaunchTemplateId"])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            module.fail_json_aws(e, msg="Could not delete launch template %s" % name)
    module.exit_json(changed=True, template_name=name, diff={"before": {"name": name}, "after": {}})


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        version_description=dict(type="str", default=""),
        enclave_enabled=dict(type="bool", default=True),
        metadata_options=dict(
            type="dict", default={},
            options=dict(
                http_endpoint=dict(type="str", choices=["enabled", "disabled"], default="enabled"),
                http_tokens=dict(type="str", choices=["optional", "required"], default="required"),
                http_put_response_hop_limit=dict(type="int", default=2),
                instance_metadata_tags=dict(type="str", choices=["enabled", "disabled"], default="disabled"),
            ),
        ),
        user_data=dict(type="str"),
        block_device_mappings=dict(
            type="list", elements="dict", default=[],
            options=dict(
                device_name=dict(type="str", required=True),
                volume_size=dict(type="int"),
                volume_type=dict(type="str", choices=list(lt.VOLUME_TYPES), default="gp3"),
                encrypted=dict(type="bool", default=True),
                kms_key_id=dict(type="str"),
                delete_on_termination=dict(type="bool", default=True),
                iops=dict(type="int"),
                throughput=dict(type="int"),
            ),
        ),
        security_group_ids=dict(type="list", elements="str"),
        instance_type=dict(type="str"),
        image_id=dict(type="str"),
        key_name=dict(type="str", no_log=False),
        instance_tags=dict(type="dict"),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    errors = lt.validate_params(module.params)
    if errors:
        module.fail_json(msg="Invalid input: " + "; ".join(errors), errors=errors)
    ec2 = aws_retry.client(module, "ec2")
    if module.params["state"] == "present":
        ensure_present(module, ec2)
    else:
        ensure_absent(module, ec2)


if __name__ == "__main__":
    main()
