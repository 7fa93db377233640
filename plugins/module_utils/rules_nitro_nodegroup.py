# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Rules of nitro_nodegroup's inputs (registry and conventions: role_rules.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.input_rules import (
    CLUSTER_NAME_RE, IAM_ROLE_NAME_RE, PCR_RE, image_errors, poll_interval_errors, range_errors)
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.role_rules import got, rule

NODEGROUP_NAME_RE = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,62}$")
KMS_ALIAS_RE = re.compile(r"^alias/[A-Za-z0-9/_-]+$")


# Nitro Enclaves instance types
# Families that cannot run an enclave: burstable, Graviton 1, Mac, the flex families and every
# family built before the Nitro System (AWS Nitro Enclaves user guide, "Requirements").
NO_ENCLAVE_FAMILIES = frozenset((
    "t2", "t3", "t3a", "t4g", "a1", "c7i-flex", "m7i-flex", "mac1", "mac2", "mac2-m2", "mac2-m2pro",
    "c1", "c3", "c4", "m1", "m2", "m3", "m4", "r3", "r4", "x1", "x1e", "i2", "d2", "h1", "g2", "g3", "g3s",
    "p2", "p3", "f1", "cc2", "cr1", "hs1",
))
INSTANCE_TYPE_RE = re.compile(r"^(?P<family>[a-z][a-z0-9-]*?)\.(?P<size>[a-z0-9-]+)$")
_SIZE_VCPUS = {"nano": 2, "micro": 2, "small": 2, "medium": 1, "large": 2, "xlarge": 4}


def _graviton(family):
    """Graviton families carry a g after the generation digit (c6g, m7gd, r8g, c6gn)."""
    return re.match(r"^[a-z]+[0-9]+g", family) is not None


def instance_vcpus(instance_type):
    """vCPUs of ``instance_type`` from its size (4 per xlarge), or None when the size does not say."""
    match = INSTANCE_TYPE_RE.match(instance_type or "")
    if not match:
        return None
    size = match.group("size")
    if size in _SIZE_VCPUS:
        return _SIZE_VCPUS[size]
    sized = re.match(r"^([0-9]+)xlarge$", size) or re.match(r"^metal-([0-9]+)xl$", size)
    return 4 * int(sized.group(1)) if sized else None


def instance_type_errors(name, instance_type):
    """An instance type that can host Nitro Enclaves: a Nitro family, 4 vCPUs at least (2 on Graviton)."""
    match = INSTANCE_TYPE_RE.match(instance_type or "")
    if not match:
        return ["%s: an EC2 instance type such as c7a.16xlarge (got %r)" % (name, instance_type)]
    family = match.group("family")
    if family in NO_ENCLAVE_FAMILIES:
        return ["%s: %s does not support Nitro Enclaves (burstable, Mac, flex and pre-Nitro families cannot "
                "run an enclave; the chart's default is c7a.16xlarge)" % (name, instance_type)]
    vcpus = instance_vcpus(instance_type)
    least = 2 if _graviton(family) else 4
    if vcpus is not None and vcpus < least:
        return ["%s: %s has %d vCPUs; a Nitro Enclaves parent needs %d at least" % (name, instance_type, vcpus, least)]
    return []


@rule("nitro_nodegroup", "nitro_nodegroup_wait_poll_interval")
def _poll_interval(v, _):
    return poll_interval_errors("nitro_nodegroup_wait_poll_interval", v["nitro_nodegroup_wait_poll_interval"])


@rule("nitro_nodegroup", "nitro_nodegroup_cluster_name")
def _ng_cluster_name(v, _):
    if not CLUSTER_NAME_RE.match(v["nitro_nodegroup_cluster_name"]):
        return ["nitro_nodegroup_cluster_name: an EKS cluster name %s" % got(v["nitro_nodegroup_cluster_name"])]
    return []


@rule("nitro_nodegroup", "nitro_nodegroup_name")
def _ng_name(v, _):
    if not NODEGROUP_NAME_RE.match(v["nitro_nodegroup_name"]):
        return ["nitro_nodegroup_name: 1-63 letters, digits, - or _ %s" % got(v["nitro_nodegroup_name"])]
    return []


@rule("nitro_nodegroup", "nitro_nodegroup_subnet_ids")
def _ng_subnets(v, _):
    if not v["nitro_nodegroup_subnet_ids"]:
        return ["nitro_nodegroup_subnet_ids: at least one private subnet (wire eks_cluster_facts.private_subnet_ids)"]
    return []


@rule("nitro_nodegroup", "nitro_nodegroup_security_group_ids")
def _ng_security_groups(v, _):
    if not v["nitro_nodegroup_security_group_ids"]:
        return ["nitro_nodegroup_security_group_ids: at least one group (wire eks_cluster_facts.node_security_group_id);"
                " EKS adds none when the launch template names groups"]
    return []


@rule("nitro_nodegroup", "nitro_nodegroup_release_version", "nitro_nodegroup_kubernetes_version")
def _ng_release(v, _):
    k8s = str(v["nitro_nodegroup_kubernetes_version"])
    release = v["nitro_nodegroup_release_version"]
    if not re.match("^" + re.escape(k8s) + r"\.[0-9]+-[0-9]{8}$", release):
        return ["nitro_nodegroup_release_version: must be an AMI release of Kubernetes %s, such as %s.3-20250620 %s"
                % (k8s, k8s, got(release))]
    return []


@rule("nitro_nodegroup", "nitro_nodegroup_instance_types")
def _ng_instance_types(v, _):
    types = v["nitro_nodegroup_instance_types"]
    if not types:
        return ["nitro_nodegroup_instance_types: at least one instance type"]
    return [e for t in types for e in instance_type_errors("nitro_nodegroup_instance_types", t)]


@rule("nitro_nodegroup", "nitro_nodegroup_instance_types", "nitro_nodegroup_enclave_cpu_count")
def _ng_enclave_cpus(v, _):
    count = v["nitro_nodegroup_enclave_cpu_count"]
    if count < 1:
        return ["nitro_nodegroup_enclave_cpu_count: a positive number of vCPUs %s" % got(count)]
    problems = []
    types = [t for t in v["nitro_nodegroup_instance_types"] if not instance_type_errors("x", t)]
    if count % 2 and any(not _graviton(INSTANCE_TYPE_RE.match(t).group("family")) for t in types):
        problems.append("nitro_nodegroup_enclave_cpu_count: an even number on x86 instances: an enclave takes whole "
                        "cores, two vCPUs each %s" % got(count))
    for instance_type in types:
        vcpus = instance_vcpus(instance_type)
        if vcpus is not None and count > vcpus - 2:
            problems.append("nitro_nodegroup_enclave_cpu_count: at most %d on %s (%d vCPUs, one core left to the node) %s"
                            % (vcpus - 2, instance_type, vcpus, got(count)))
    return problems


@rule("nitro_nodegroup", "nitro_nodegroup_min_size", "nitro_nodegroup_max_size", "nitro_nodegroup_desired_size")
def _ng_sizes(v, _):
    low, high, want = v["nitro_nodegroup_min_size"], v["nitro_nodegroup_max_size"], v["nitro_nodegroup_desired_size"]
    if not (0 <= low <= want <= high and high >= 1):
        return ["nitro_nodegroup_min_size/max_size/desired_size: need 0 <= min <= desired <= max and max >= 1 "
                "(got %s/%s/%s)" % (low, high, want)]
    return []


@rule("nitro_nodegroup", "nitro_nodegroup_disk_size")
def _ng_disk(v, _):
    size = v["nitro_nodegroup_disk_size"]
    return [] if 20 <= size <= 16384 else ["nitro_nodegroup_disk_size: 20 to 16384 GiB %s" % got(size)]


@rule("nitro_nodegroup", "nitro_nodegroup_enclave_memory_mib")
def _ng_memory(v, _):
    mib = v["nitro_nodegroup_enclave_memory_mib"]
    if mib < 64 or mib % 1024:
        return ["nitro_nodegroup_enclave_memory_mib: at least 64 MiB, in whole GiB for 1Gi hugepages %s" % got(mib)]
    return []


@rule("nitro_nodegroup", "nitro_nodegroup_hugepages_1g", "nitro_nodegroup_enclave_memory_mib")
def _ng_hugepages(v, _):
    pages, most = v["nitro_nodegroup_hugepages_1g"], v["nitro_nodegroup_enclave_memory_mib"] // 1024
    if not 1 <= pages <= max(most, 1):
        return ["nitro_nodegroup_hugepages_1g: 1 to %d (nitro_nodegroup_enclave_memory_mib / 1024: the allocator keeps "
                "only the enclave memory as hugepages; got %s)" % (most, pages)]
    return []


@rule("nitro_nodegroup", "nitro_nodegroup_enclave_device_gid")
def _ng_gid(v, _):
    return range_errors("nitro_nodegroup_enclave_device_gid", v["nitro_nodegroup_enclave_device_gid"], 1, 65533,
                        "a group id")


def _alias_errors(name, alias):
    if not KMS_ALIAS_RE.match(alias) or alias.startswith("alias/aws/"):
        return ["%s: alias/<name>, not under alias/aws/ %s" % (name, got(alias))]
    return []


@rule("nitro_nodegroup", "nitro_nodegroup_kms_key_alias")
def _ng_alias(v, _):
    return _alias_errors("nitro_nodegroup_kms_key_alias", v["nitro_nodegroup_kms_key_alias"])


@rule("nitro_nodegroup", "nitro_nodegroup_kms_deletion_window_days")
def _ng_window(v, _):
    days = v["nitro_nodegroup_kms_deletion_window_days"]
    return [] if 7 <= days <= 30 else ["nitro_nodegroup_kms_deletion_window_days: 7 to 30 %s" % got(days)]


@rule("nitro_nodegroup", "nitro_nodegroup_backup_kms_key_alias", "nitro_nodegroup_kms_key_alias")
def _ng_backup_alias(v, _):
    alias = v["nitro_nodegroup_backup_kms_key_alias"]
    problems = _alias_errors("nitro_nodegroup_backup_kms_key_alias", alias)
    if alias == v["nitro_nodegroup_kms_key_alias"]:
        problems.append("nitro_nodegroup_backup_kms_key_alias: not the party key's alias %s" % got(alias))
    return problems


@rule("nitro_nodegroup", "nitro_nodegroup_kms_key_user_role_name")
def _ng_role_name(v, _):
    if not IAM_ROLE_NAME_RE.match(v["nitro_nodegroup_kms_key_user_role_name"]):
        return ["nitro_nodegroup_kms_key_user_role_name: an IAM role name %s" % got(v["nitro_nodegroup_kms_key_user_role_name"])]
    return []


@rule("nitro_nodegroup", "nitro_nodegroup_kms_trusted_pcr0")
def _ng_pcr0(v, _):
    pcr0 = v["nitro_nodegroup_kms_trusted_pcr0"]
    if not pcr0:
        return ["nitro_nodegroup_kms_trusted_pcr0: at least one trusted enclave release (mpc_network.trusted_releases)"]
    bad = [p for p in pcr0 if not PCR_RE.match(str(p).lower())]  # the role writes them lowercased
    if bad:
        return ["nitro_nodegroup_kms_trusted_pcr0: each PCR0 is a SHA-384, 96 hex characters %s" % got(bad)]
    return []


@rule("nitro_nodegroup", "nitro_nodegroup_device_plugin_image")
def _ng_device_plugin(v, _):
    return image_errors("nitro_nodegroup_device_plugin_image", v["nitro_nodegroup_device_plugin_image"])


