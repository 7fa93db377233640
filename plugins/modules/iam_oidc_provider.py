#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: iam_oidc_provider
short_description: Manage an IAM OpenID Connect identity provider (e.g. an EKS cluster's, for IRSA)
version_added: 0.1.0
description:
  - Creates, updates or deletes the IAM OIDC identity provider of one issuer URL, such as the
    issuer of an EKS cluster, so that IAM roles can trust Kubernetes service accounts (IRSA).
  - Idempotent. Client ids (audiences) are added and removed one by one; the thumbprint list is
    replaced only when it differs (compared without order or case); tags are merged or purged.
  - In check mode nothing is written and the would-be ARN is still returned (computed from the
    caller's account), so later tasks can be planned. Supports C(--diff).
  - Amazon.aws and community.aws have no module for this resource (amazon.aws 10, community.aws 10).
options:
  url:
    description:
      - Issuer URL, for example the C(identity.oidc.issuer) of an EKS cluster.
      - Must start with C(https://). The scheme and any trailing slash are ignored when matching.
    type: str
    required: true
  client_ids:
    description:
      - Audiences allowed to use the provider. IRSA uses C(sts.amazonaws.com).
      - The list is managed exactly, ids not listed are removed.
    type: list
    elements: str
    default: [sts.amazonaws.com]
  thumbprints:
    description:
      - SHA-1 fingerprints (40 hex characters) of the issuer's certificate chain, at most 5.
      - When omitted the existing list is left alone, and a new provider is created without one
        (IAM then relies on its library of trusted root CAs, as it does for EKS issuers).
    type: list
    elements: str
  tags:
    description: Tags of the provider. Omit to leave tags alone.
    type: dict
    aliases: [resource_tags]
  purge_tags:
    description: Remove tags not listed in O(tags).
    type: bool
    default: true
  state:
    description: Whether the provider should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
author:
  - threshold_kms.mpc_party contributors
"""

EXAMPLES = r"""
- name: Register the EKS cluster's issuer for IRSA
  threshold_kms.mpc_party.iam_oidc_provider:
    url: "{{ __eks_cluster_cluster.identity.oidc.issuer }}"
    client_ids: [sts.amazonaws.com]
    tags:
      mpc-party: "1"
  register: __eks_cluster_oidc

- name: Remove it
  threshold_kms.mpc_party.iam_oidc_provider:
    url: https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE
    state: absent
"""

RETURN = r"""
arn:
  description: ARN of the provider (also in check mode, where it is computed).
  returned: state=present
  type: str
  sample: arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE
issuer:
  description: Host and path of the issuer as IAM stores it; the prefix of IRSA condition keys (C(<issuer>:sub)).
  returned: state=present
  type: str
  sample: oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE
client_ids:
  description: Client ids after the run.
  returned: state=present
  type: list
  elements: str
thumbprints:
  description: Thumbprints after the run (lower case).
  returned: state=present
  type: list
  elements: str
tags:
  description: Tags after the run.
  returned: state=present
  type: dict
"""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing dependency

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_retry
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import iam_oidc


# IAM is eventually consistent: right after CreateOpenIDConnectProvider, reading the new provider
# (or its tags) may answer NoSuchEntity for a few seconds. Those reads retry on it, for about
# 75 seconds at most (jittered backoff: 1, 2, 4, 8 then 15 s between attempts, 8 retries).
SETTLE_BACKOFF = dict(retries=8, delay=1, max_delay=15)


def read_provider(module, iam, arn):
    """The described provider ``arn`` (raises the client's errors, NoSuchEntity included)."""
    provider = iam.get_open_id_connect_provider(aws_retry=True, OpenIDConnectProviderArn=arn)
    described = iam_oidc.describe(provider)
    if "Tags" not in provider:
        described["tags"] = read_tags(module, iam, arn)
    return described


def find_provider(module, iam, url):
    """(arn, described provider) of the provider for ``url``, or (None, None)."""
    wanted = iam_oidc.normalize_url(url)
    try:
        providers = iam.list_open_id_connect_providers(aws_retry=True)["OpenIDConnectProviderList"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(e, msg="Could not list IAM OIDC providers")
    for entry in providers:
        arn = entry["Arn"]
        if iam_oidc.issuer_from_arn(arn).lower() != wanted.lower():
            continue
        try:
            return arn, read_provider(module, iam, arn)
        except is_boto3_error_code("NoSuchEntity"):
            return None, None
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
            module.fail_json_aws(e, msg="Could not read IAM OIDC provider %s" % arn)
    return None, None


def read_tags(module, iam, arn):
    try:
        tags = iam.list_open_id_connect_provider_tags(aws_retry=True, OpenIDConnectProviderArn=arn)["Tags"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(e, msg="Could not read the tags of %s" % arn)
    return dict((t["Key"], t["Value"]) for t in tags)


def computed_arn(module, url):
    """The ARN IAM will assign, from the caller's account (check mode on a fresh account)."""
    try:
        identity = aws_retry.client(module, "sts").get_caller_identity(aws_retry=True)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(e, msg="Could not read the caller identity to compute the provider ARN")
    partition = identity["Arn"].split(":")[1]
    return iam_oidc.provider_arn(identity["Account"], url, partition)


def ensure_present(module, iam):
    url = module.params["url"]
    client_ids = module.params["client_ids"]
    thumbprints = module.params["thumbprints"]
    tags = module.params["tags"]
    arn, current = find_provider(module, iam, url)
    change = iam_oidc.plan(current, client_ids, thumbprints, tags, module.params["purge_tags"])
    after = iam_oidc.apply_plan(current, change)
    diff = {"before": current or {}, "after": dict(after, url=iam_oidc.normalize_url(url))}

    if change["changed"] and not module.check_mode:
        try:
            if change["create"]:
                request = dict(Url="https://" + iam_oidc.normalize_url(url), ClientIDList=change["add_client_ids"])
                if change["set_thumbprints"] is not None:
                    request["ThumbprintList"] = change["set_thumbprints"]
                if change["set_tags"]:
                    request["Tags"] = ansible_dict_to_boto3_tag_list(change["set_tags"])
                arn = iam.create_open_id_connect_provider(aws_retry=True, **request)["OpenIDConnectProviderArn"]
            else:
                for cid in change["add_client_ids"]:
                    iam.add_client_id_to_open_id_connect_provider(aws_retry=True, OpenIDConnectProviderArn=arn, ClientID=cid)
                for cid in change["remove_client_ids"]:
                    iam.remove_client_id_from_open_id_connect_provider(aws_retry=True, OpenIDConnectProviderArn=arn, ClientID=cid)
                if change["set_thumbprints"] is not None:
                    iam.update_open_id_connect_provider_thumbprint(
                        aws_retry=True, OpenIDConnectProviderArn=arn, ThumbprintList=change["set_thumbprints"])
                if change["unset_tags"]:
                    iam.untag_open_id_connect_provider(aws_retry=True, OpenIDConnectProviderArn=arn, TagKeys=change["unset_tags"])
                if change["set_tags"]:
                    iam.tag_open_id_connect_provider(
                        aws_retry=True, OpenIDConnectProviderArn=arn, Tags=ansible_dict_to_boto3_tag_list(change["set_tags"]))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            module.fail_json_aws(e, msg="Could not %s the IAM OIDC provider for %s"
                                 % ("create" if change["create"] else "update", url))
        if change["create"]:
            # Read the new provider by its ARN (a listing may not show it yet), riding out NoSuchEntity.
            settling = aws_retry.client(module, "iam", extra_codes=["NoSuchEntity"], backoff=SETTLE_BACKOFF)
            try:
                after = read_provider(module, settling, arn)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
                module.fail_json_aws(e, msg="Created the IAM OIDC provider %s, but IAM still does not return it" % arn)
        else:
            arn, after = find_provider(module, iam, url)
    if arn is None:
        arn = computed_arn(module, url)
    module.exit_json(changed=change["changed"], arn=arn, issuer=iam_oidc.issuer_from_arn(arn),
                     client_ids=after["client_ids"], thumbprints=after["thumbprints"], tags=after["tags"],
                     diff=diff)


def ensure_absent(module, iam):
    url = module.params["url"]
    arn, current = find_provider(module, iam, url)
    if arn is None:
        module.exit_json(changed=False, diff={"before": {}, "after": {}})
    if not module.check_mode:
        try:
            iam.delete_open_id_connect_provider(aws_retry=True, OpenIDConnectProviderArn=arn)
        except is_boto3_error_code("NoSuchEntity"):
            pass
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
            module.fail_json_aws(e, msg="Could not delete IAM OIDC provider %s" % arn)
    module.exit_json(changed=True, diff={"before": current, "after": {}})


def main():
    argument_spec = dict(
        url=dict(type="str", required=True),
        client_ids=dict(type="list", elements="str", default=["sts.amazonaws.com"]),
        thumbprints=dict(type="list", elements="str"),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    errors = iam_oidc.validate_params(module.params["url"], module.params["client_ids"], module.params["thumbprints"])
    if errors:
        module.fail_json(msg="Invalid input: " + "; ".join(errors), errors=errors)
    iam = aws_retry.client(module, "iam")
    if module.params["state"] == "present":
        ensure_present(module, iam)
    else:
        ensure_absent(module, iam)


if __name__ == "__main__":
    main()
