# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Settings of an EKS cluster's control plane that eks_control_plane gives CreateCluster and
eks_cluster_access converges (module_utils/eks_access.SETTINGS_SPEC is their argument spec)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  authentication_mode:
    description: C(API_AND_CONFIG_MAP) or C(API); access entries need one of them (EKS's API default, C(CONFIG_MAP), has none).
    type: str
    choices: [API, API_AND_CONFIG_MAP]
  endpoint_private_access:
    description: Whether the API endpoint is reachable from inside the VPC (EKS's default is off).
    type: bool
  endpoint_public_access:
    description: Whether the API endpoint is reachable from the internet, restricted by O(public_access_cidrs) (EKS's default is on).
    type: bool
  public_access_cidrs:
    description: IPv4 CIDRs allowed to reach the public endpoint (only with the public endpoint on).
    type: list
    elements: str
  logging_types:
    description: Control-plane log types sent to CloudWatch Logs (others are switched off). Unset leaves them.
    type: list
    elements: str
    choices: [api, audit, authenticator, controllerManager, scheduler]
  secrets_encryption_key_arn:
    description: KMS key that envelope-encrypts Kubernetes secrets. Set once; EKS cannot change or remove it.
    type: str
"""
