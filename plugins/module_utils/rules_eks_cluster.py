# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Rules of eks_cluster's inputs (registry and conventions: role_rules.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import eks_access
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.iam_oidc import THUMBPRINT_RE
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.input_rules import (
    CLUSTER_NAME_RE, REGION_RE, SUBNET_ID_RE, VPC_ID_RE, cidr, cidr_errors, poll_interval_errors)
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.role_rules import got, rule

K8S_MINOR_RE = re.compile(r"^1\.[0-9]{2}$")
HTTP_URL_RE = re.compile(r"^https?://[^/\s]+")


@rule("eks_cluster", "eks_cluster_name")
def _eks_name(v, _):
    if not CLUSTER_NAME_RE.match(v["eks_cluster_name"]):
        return ["eks_cluster_name: 1-100 letters, digits, - or _, starting with a letter or digit %s"
                % got(v["eks_cluster_name"])]
    return []


@rule("eks_cluster", "eks_cluster_kubernetes_version")
def _eks_version(v, _):
    if not K8S_MINOR_RE.match(str(v["eks_cluster_kubernetes_version"])):
        return ["eks_cluster_kubernetes_version: a minor version such as 1.32 %s" % got(v["eks_cluster_kubernetes_version"])]
    return []


@rule("eks_cluster", "eks_cluster_region")
def _eks_region(v, _):
    if not REGION_RE.match(v["eks_cluster_region"]):
        return ["eks_cluster_region: an AWS region such as eu-west-1 %s" % got(v["eks_cluster_region"])]
    return []


@rule("eks_cluster", "eks_cluster_kubeconfig_path")
def _eks_kubeconfig(v, _):
    if not v["eks_cluster_kubeconfig_path"].startswith("/"):
        return ["eks_cluster_kubeconfig_path: an absolute path %s" % got(v["eks_cluster_kubeconfig_path"])]
    return []


@rule("eks_cluster", "eks_cluster_api_server_override")
def _eks_api_override(v, _):
    url = v["eks_cluster_api_server_override"]
    if url and not HTTP_URL_RE.match(url):
        return ["eks_cluster_api_server_override: empty or an http(s) URL %s" % got(url)]
    return []


@rule("eks_cluster", "eks_cluster_wait_timeout")
def _eks_wait(v, _):
    return [] if v["eks_cluster_wait_timeout"] > 0 else ["eks_cluster_wait_timeout: must be positive %s"
                                                         % got(v["eks_cluster_wait_timeout"])]


@rule("eks_cluster", "eks_cluster_wait_poll_interval")
def _eks_poll(v, _):
    return poll_interval_errors("eks_cluster_wait_poll_interval", v["eks_cluster_wait_poll_interval"])


@rule("eks_cluster", "eks_cluster_oidc_client_ids")
def _eks_audiences(v, _):
    if not v["eks_cluster_oidc_client_ids"]:
        return ["eks_cluster_oidc_client_ids: at least one audience (IRSA uses sts.amazonaws.com)"]
    return []


@rule("eks_cluster", "eks_cluster_oidc_thumbprints")
def _eks_thumbprints(v, _):
    prints = v["eks_cluster_oidc_thumbprints"]
    if len(prints) > 5 or any(not THUMBPRINT_RE.match(str(p)) for p in prints):
        return ["eks_cluster_oidc_thumbprints: at most 5 SHA-1 fingerprints of 40 hex characters %s" % got(prints)]
    return []


_NEW_VPC = ("eks_cluster_vpc_id", "eks_cluster_vpc_cidr", "eks_cluster_availability_zones", "eks_cluster_az_count",
            "eks_cluster_private_subnet_cidrs", "eks_cluster_public_subnet_cidrs", "eks_cluster_nat_gateway")


@rule("eks_cluster", *_NEW_VPC)
def _eks_network(v, _):
    if v["eks_cluster_vpc_id"]:
        problems = []
        if not VPC_ID_RE.match(v["eks_cluster_vpc_id"]):
            problems.append("eks_cluster_vpc_id: a VPC id such as vpc-0123abcd %s" % got(v["eks_cluster_vpc_id"]))
        return problems
    problems = cidr_errors("eks_cluster_vpc_cidr", v["eks_cluster_vpc_cidr"], 16, 28)
    zones, count = v["eks_cluster_availability_zones"], v["eks_cluster_az_count"]
    if not zones and count < 2:
        problems.append("eks_cluster_az_count: EKS needs two availability zones at least %s" % got(count))
    if len(zones) == 1:
        problems.append("eks_cluster_availability_zones: two zones at least %s" % got(zones))
    wanted = len(zones) if zones else count
    private, public = v["eks_cluster_private_subnet_cidrs"], v["eks_cluster_public_subnet_cidrs"]
    if len(private) < wanted:
        problems.append("eks_cluster_private_subnet_cidrs: one CIDR per zone, %d needed (got %d)" % (wanted, len(private)))
    if v["eks_cluster_nat_gateway"] and not public:
        problems.append("eks_cluster_public_subnet_cidrs: a CIDR for the NAT gateway is needed when "
                        "eks_cluster_nat_gateway is true")
    vpc = cidr(v["eks_cluster_vpc_cidr"])
    subnets = []
    for name, values in (("eks_cluster_private_subnet_cidrs", private), ("eks_cluster_public_subnet_cidrs", public)):
        for value in values:
            errors = cidr_errors(name, value, 16, 28)
            problems += errors
            network = cidr(value)
            if errors or network is None:
                continue
            if vpc is not None and not network.subnet_of(vpc):
                problems.append("%s: %s lies outside the VPC %s" % (name, value, vpc))
            clash = [s for s in subnets if s[1].overlaps(network)]
            if clash:
                problems.append("%s: %s overlaps %s" % (name, value, clash[0][0]))
            subnets.append((value, network))
    return problems


@rule("eks_cluster", "eks_cluster_vpc_id", "eks_cluster_private_subnet_ids")
def _eks_existing_subnets(v, _):
    ids = v["eks_cluster_private_subnet_ids"]
    if v["eks_cluster_vpc_id"] and (len(ids) < 2 or any(not SUBNET_ID_RE.match(str(i)) for i in ids)):
        return ["eks_cluster_private_subnet_ids: two subnet ids at least, in different zones %s" % got(ids)]
    return []


_ACCESS = {
    "authentication_mode": "eks_cluster_authentication_mode",
    "access_entries": "eks_cluster_access_entries",
    "endpoint_private_access": "eks_cluster_endpoint_private_access",
    "endpoint_public_access": "eks_cluster_endpoint_public_access",
    "public_access_cidrs": "eks_cluster_public_access_cidrs",
    "logging_types": "eks_cluster_logging_types",
    "secrets_encryption_key_arn": "eks_cluster_secrets_encryption_key_arn",
}


@rule("eks_cluster", *sorted(_ACCESS.values()))
def _eks_access(v, _):
    return ["eks_cluster_%s" % e for e in eks_access.validate(dict((k, v[n]) for k, n in _ACCESS.items()))]


@rule("eks_cluster", "eks_cluster_environment", "eks_cluster_endpoint_public_access", "eks_cluster_public_access_cidrs")
def _eks_mainnet_endpoint(v, _):
    cidrs = v["eks_cluster_public_access_cidrs"]
    if (v["eks_cluster_environment"] == "mainnet" and v["eks_cluster_endpoint_public_access"]
            and (not cidrs or "0.0.0.0/0" in cidrs)):
        return ["eks_cluster_public_access_cidrs: a mainnet cluster's public API endpoint is restricted to named CIDRs "
                "(empty and 0.0.0.0/0 are refused); name them, or set eks_cluster_endpoint_public_access: false and "
                "run from inside the VPC"]
    return []
