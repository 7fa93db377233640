# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Rules of kms_workload's inputs, entry points main and keys (registry and conventions:
role_rules.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.input_rules import (
    ROLE_ARN_RE, UNKNOWN, digest_errors, image_errors, quantity_errors, range_errors, tag_errors)
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.network_model import HOSTNAME_RE
# 64 lowercase hex characters: here the sha256 of a configuration file (kms_config_facts.checksum)
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.peer_ca import REQUEST_ID_RE as SHA256_HEX_RE
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.role_rules import got, rule

# A key of a ConfigMap.
CONFIGMAP_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
# The resources a Kubernetes container spec takes a quantity for.
RESOURCE_DICTS = ("kms_workload_resources", "kms_workload_keygen_resources", "kms_workload_enclave_launcher_resources",
                  "kms_workload_enclave_tunnel_resources")


def _object_name(name, value, what):
    """A Kubernetes object name (a lower-case DNS subdomain)."""
    if not HOSTNAME_RE.match(str(value)):
        return ["%s: %s, a lower-case DNS name such as kms-core-config %s" % (name, what, got(repr(value)))]
    return []


def _cidr(value, version=None):
    """The interface (address with prefix length) ``value`` or None."""
    text = str(value)
    if "/" not in text:
        return None
    try:
        interface = ipaddress.ip_interface(text)
    except ValueError:
        return None
    return interface if version is None or interface.version == version else None


# ------------------------------------------------------------------------------ configuration
@rule("kms_workload", "kms_workload_config_checksum", "kms_workload_configmap_name")
def _configuration(v, _):
    problems = []
    if not SHA256_HEX_RE.match(v["kms_workload_config_checksum"] or ""):
        problems.append("kms_workload_config_checksum: the sha256 of threshold.toml, 64 hex characters "
                        "(kms_config_facts.checksum): the checksum on the pod template rolls the node when the "
                        "configuration changes %s" % got(repr(v["kms_workload_config_checksum"])))
    return problems + _object_name("kms_workload_configmap_name", v["kms_workload_configmap_name"],
                                   "the ConfigMap holding threshold.toml (kms_config_facts.configmap_name)")


@rule("kms_workload", "kms_workload_keygen_configmap_name", "kms_workload_keygen_configmap_key",
      "kms_workload_keygen_checksum")
def _keygen_configuration(v, _):
    problems = _object_name("kms_workload_keygen_configmap_name", v["kms_workload_keygen_configmap_name"],
                            "the ConfigMap holding keygen.toml (kms_config_keygen_facts.configmap_name)")
    if not CONFIGMAP_KEY_RE.match(v["kms_workload_keygen_configmap_key"] or ""):
        problems.append("kms_workload_keygen_configmap_key: the key of keygen.toml in its ConfigMap, letters, digits, "
                        "'-', '_' and '.' %s" % got(repr(v["kms_workload_keygen_configmap_key"])))
    checksum = v["kms_workload_keygen_checksum"] or ""
    if checksum and not SHA256_HEX_RE.match(checksum):
        problems.append("kms_workload_keygen_checksum: empty or the sha256 of keygen.toml, 64 hex characters %s"
                        % got(repr(checksum)))
    return problems


# ------------------------------------------------------------------------------ ports
_PORTS = ("kms_workload_client_port", "kms_workload_peer_port", "kms_workload_metrics_port")


@rule("kms_workload", *_PORTS)
def _ports(v, _):
    problems = []
    for name in _PORTS:
        problems += range_errors(name, v[name], 1, 65535, "a port")
    ports = [v[name] for name in _PORTS]
    if not problems and len(set(ports)) != len(ports):
        problems.append("kms_workload_client_port / kms_workload_peer_port / kms_workload_metrics_port: three "
                        "distinct ports %s" % got(ports))
    return problems


# ------------------------------------------------------------------------------ IRSA
@rule("kms_workload", "kms_workload_irsa_role_arn", "kms_workload_enclave")
def _irsa(v, context):
    arn = v["kms_workload_irsa_role_arn"] or ""
    if ROLE_ARN_RE.match(arn) or (context.get("check_mode") and arn == UNKNOWN):
        return []
    # the keys entry point has no render mode (and no kms_workload_render_dir)
    entry = context.get("entry_point") or ("main" if "kms_workload_render_dir" in v else "keys")
    if entry == "keys":
        if not v["kms_workload_enclave"]:
            return []
        return ["kms_workload_irsa_role_arn: the enclave's AWS identity is the ServiceAccount's IAM role "
                "(vault_buckets_facts.irsa_role_arn, arn:aws:iam::<12 digits>:role/<name>); the key-generation pod "
                "needs it to write the vaults and use the AWS KMS key %s" % got(repr(arn))]
    if not arn and v.get("kms_workload_render_dir"):
        return []
    return ["kms_workload_irsa_role_arn: the IAM role ARN the ServiceAccount assumes (vault_buckets_facts.irsa_role_arn, "
            "arn:aws:iam::<12 digits>:role/<name>) is required to deploy; only render mode may leave it empty %s"
            % got(repr(arn))]


# ------------------------------------------------------------------------------ networking
@rule("kms_workload", "kms_workload_peer_ingress_cidrs")
def _peer_ingress(v, _):
    cidrs = v["kms_workload_peer_ingress_cidrs"]
    return ["kms_workload_peer_ingress_cidrs: an IPv4 or IPv6 CIDR such as 10.0.0.0/16 %s" % got(c)
            for c in cidrs if _cidr(c) is None]


@rule("kms_workload", "kms_workload_peer_ingress_cidrs", "kms_workload_peer_ingress_extra_cidrs")
def _peer_ingress_somewhere(v, _):
    if not v["kms_workload_peer_ingress_cidrs"] and not v["kms_workload_peer_ingress_extra_cidrs"]:
        return ["kms_workload_peer_ingress_cidrs: at least one CIDR (here or in kms_workload_peer_ingress_extra_cidrs), "
                "the PrivateLink side allowed to reach the peer port (e.g. the CIDR of the VPC or subnets holding the "
                "peer NLB); no CIDR at all would leave the peer port closed"]
    return []


@rule("kms_workload", "kms_workload_peer_ingress_extra_cidrs")
def _peer_ingress_extra(v, _):
    problems = []
    for c in v["kms_workload_peer_ingress_extra_cidrs"]:
        net = _cidr(c)
        if net is None:
            problems.append("kms_workload_peer_ingress_extra_cidrs: an IPv4 or IPv6 CIDR such as 127.0.0.1/32 %s" % got(c))
        elif net.network.prefixlen == 0:
            problems.append("kms_workload_peer_ingress_extra_cidrs: %s would open the peer port to every address; "
                            "name the sources that reach it" % c)
    return problems


# ------------------------------------------------------------------------------ modes
@rule("kms_workload", "kms_workload_enclave", "kms_workload_config_enclave")
def _mode_of_the_configuration(v, _):
    built = v["kms_workload_config_enclave"]
    if built is None or bool(built) == bool(v["kms_workload_enclave"]):
        return []
    return ["kms_workload_enclave: the workload's enclave mode (%s) must be the one threshold.toml was built for "
            "(kms_config_enclave, published as kms_config_facts.enclave: %s). An enclave configuration carries the "
            "AWS KMS keychain a plain node cannot use, and a plain configuration has no key for an enclave. Set "
            "kms_config_enclave, not kms_workload_enclave alone" % (str(bool(v["kms_workload_enclave"])).lower(),
                                                                   str(bool(built)).lower())]


@rule("kms_workload", "kms_workload_tls_mode", "kms_workload_enclave")
def _tls_and_enclave(v, _):
    mode, enclave = v["kms_workload_tls_mode"], v["kms_workload_enclave"]
    if mode == "manual" and enclave:
        return ["kms_workload_tls_mode: manual mounts the certificate and key from a Secret into the pod, where an "
                "enclave cannot read them: use tls_mode auto in enclave mode (kms_workload_enclave is true)"]
    if mode == "auto" and not enclave:
        return ["kms_workload_tls_mode: auto ([threshold.tls.auto], Nitro attestation) needs kms_workload_enclave "
                "true: use manual or none without an enclave"]
    return []


# ------------------------------------------------------------------------------ images
@rule("kms_workload", "kms_workload_image_repository", "kms_workload_image_tag", "kms_workload_image_digest")
def _image(v, _):
    tag, digest = v["kms_workload_image_tag"], v["kms_workload_image_digest"]
    problems = tag_errors("kms_workload_image_tag", tag) + digest_errors("kms_workload_image_digest", digest)
    if not problems:
        problems = image_errors("kms_workload_image_repository", "%s:%s%s" % (
            v["kms_workload_image_repository"], tag, "@" + digest if digest else ""))
    return problems


@rule("kms_workload", "kms_workload_enclave_image_repository", "kms_workload_image_tag",
      "kms_workload_enclave_image_digest")
def _enclave_image(v, _):
    tag, digest = v["kms_workload_image_tag"], v["kms_workload_enclave_image_digest"]
    problems = digest_errors("kms_workload_enclave_image_digest", digest)
    if not problems and not tag_errors("kms_workload_image_tag", tag):  # a bad tag is reported by _image
        problems = image_errors("kms_workload_enclave_image_repository", "%s:%s%s" % (
            v["kms_workload_enclave_image_repository"], tag, "@" + digest if digest else ""))
    return problems


@rule("kms_workload", "kms_workload_vsock_proxy_image")
def _vsock_proxy_image(v, _):
    return image_errors("kms_workload_vsock_proxy_image", v["kms_workload_vsock_proxy_image"])


@rule("kms_workload", "kms_workload_image_pull_secrets")
def _pull_secrets(v, _):
    problems = []
    for secret in v["kms_workload_image_pull_secrets"]:
        problems += _object_name("kms_workload_image_pull_secrets", secret,
                                 "a list of Secret names in the namespace (e.g. [registry-credentials])")
    return problems


# ------------------------------------------------------------------------------ resources
def _resources(name, resources):
    problems = []
    for part in sorted(resources):
        if part not in ("requests", "limits") or not isinstance(resources[part], dict):
            problems.append("%s.%s: requests and limits only, each a mapping of resource names to Kubernetes "
                            "quantities %s" % (name, part, got(resources[part])))
            continue
        for resource in sorted(resources[part]):
            problems += quantity_errors("%s.%s.%s" % (name, part, resource), resources[part][resource])
    return problems


def _resource_rule(name):
    @rule("kms_workload", name)
    def check(v, _):
        return _resources(name, v[name])
    return check


for _name in RESOURCE_DICTS:
    _resource_rule(_name)


# ------------------------------------------------------------------------------ Nitro enclave
@rule("kms_workload", "kms_workload_enclave", "kms_workload_enclave_cpus", "kms_workload_enclave_memory_gib",
      "kms_workload_enclave_device_gid")
def _enclave_sizes(v, _):
    if not v["kms_workload_enclave"]:
        return []
    return (range_errors("kms_workload_enclave_cpus", v["kms_workload_enclave_cpus"], 2, None, "vCPUs of the enclave")
            + range_errors("kms_workload_enclave_memory_gib", v["kms_workload_enclave_memory_gib"], 1, None,
                           "GiB of enclave memory")
            + range_errors("kms_workload_enclave_device_gid", v["kms_workload_enclave_device_gid"], 1, None,
                           "the group id of /dev/nitro_enclaves on the nodes"))


_TUNNEL = ("kms_workload_enclave_tunnel_subnet", "kms_workload_enclave_tunnel_parent_address",
           "kms_workload_enclave_tunnel_enclave_address")


@rule("kms_workload", "kms_workload_enclave", "kms_workload_enclave_cid", "kms_workload_enclave_eif_path",
      "kms_workload_enclave_tunnel_queues", "kms_workload_enclave_tunnel_worker_threads", *_TUNNEL)
def _enclave_launch(v, _):
    if not v["kms_workload_enclave"]:
        return []
    problems = range_errors("kms_workload_enclave_cid", v["kms_workload_enclave_cid"], 4, None,
                            "a vsock CID (0-3 are reserved)")
    if not str(v["kms_workload_enclave_eif_path"]).startswith("/"):
        problems.append("kms_workload_enclave_eif_path: an absolute path in the enclave image %s"
                        % got(repr(v["kms_workload_enclave_eif_path"])))
    for name in _TUNNEL:
        if _cidr(v[name], 4) is None:
            problems.append("%s: an IPv4 address with a prefix length such as 10.118.0.1/24 %s" % (name, got(v[name])))
    if v["kms_workload_enclave_tunnel_parent_address"] == v["kms_workload_enclave_tunnel_enclave_address"]:
        problems.append("kms_workload_enclave_tunnel_enclave_address: must differ from "
                        "kms_workload_enclave_tunnel_parent_address %s" % got(v["kms_workload_enclave_tunnel_enclave_address"]))
    for name in ("kms_workload_enclave_tunnel_queues", "kms_workload_enclave_tunnel_worker_threads"):
        problems += range_errors(name, v[name], 1, None)
    return problems


# ------------------------------------------------------------------------------ TLS identity (manual)
@rule("kms_workload", "kms_workload_tls_mode", "kms_workload_mpc_identity", "kms_workload_tls_validity_days",
      "kms_workload_tls_secret_name")
def _tls_identity(v, _):
    if v["kms_workload_tls_mode"] != "manual":
        return []
    identity = v["kms_workload_mpc_identity"]
    problems = []
    if not HOSTNAME_RE.match(identity or "") or len(identity) > 64:
        problems.append("kms_workload_mpc_identity: the party's mpc_identity, a lower-case DNS name of at most 64 "
                        "characters (the CN its peers check) %s" % got(repr(identity)))
    problems += range_errors("kms_workload_tls_validity_days", v["kms_workload_tls_validity_days"], 1, None,
                             "days of validity")
    return problems + _object_name("kms_workload_tls_secret_name", v["kms_workload_tls_secret_name"],
                                   "the Secret of the TLS identity")
