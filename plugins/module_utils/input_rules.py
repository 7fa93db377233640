# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Rules on single input values that several roles and playbooks share, each written once.

Each function returns a list of messages ``"<name>: <rule> (got <value>)"`` (empty when the value
is fine), so callers collect every problem before reporting.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

# An EKS cluster name (also the prefix of the party's resource names).
CLUSTER_NAME_RE = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")
# An EC2 VPC id.
VPC_ID_RE = re.compile(r"^vpc-[0-9a-f]+$")
# An image reference: [registry[:port]/]path[:tag][@<algorithm>:<hex>].
IMAGE_RE = re.compile(
    r"^(?:(?P<registry>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z0-9_+.-]+:[A-Za-z0-9=_-]+))?$"
)
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
# A Kubernetes resource quantity: a decimal number with an optional SI or binary suffix.
QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
PCR_RE = re.compile(r"^[0-9a-f]{96}$")
ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
REGION_RE = re.compile(r"^(af|ap|ca|eu|il|me|mx|sa|us|cn)(-gov|-iso|-isob)?-(north|south|east|west|central|northeast|northwest|southeast|southwest)-[1-9]$")
SERVICE_NAME_RE = re.compile(r"^com\.amazonaws\.vpce\.(?P<region>[a-z0-9-]+)\.vpce-svc-[0-9a-f]{8,17}$")
SUBNET_ID_RE = re.compile(r"^subnet-[0-9a-f]+$")
# A security group id.
SG_ID_RE = re.compile(r"^sg-[0-9a-f]+$")
IAM_ROLE_NAME_RE = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,64}$")
# An IAM OIDC provider ARN, or the check-mode placeholder eks_cluster hands on before the cluster exists.
OIDC_PROVIDER_ARN_RE = re.compile(r"^arn:[a-z-]+:iam::[0-9]{12}:oidc-provider/.+|^\(known after apply\)$")
# An IAM role ARN of any AWS partition (aws, aws-cn, aws-us-gov, ...).
ROLE_ARN_RE = re.compile(r"^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[\w+=,.@/-]+$")
# What a check-mode run of vault_buckets hands over for a role it has not created.
UNKNOWN = "(known after apply)"


def service_name_region(name):
    """The region an endpoint service name carries (com.amazonaws.vpce.<region>.vpce-svc-<id>), or None."""
    match = SERVICE_NAME_RE.match(name) if isinstance(name, str) else None
    return match.group("region") if match else None


def image_errors(name, image, what="image"):
    """A pinned image reference: a tag other than latest, or a sha256 digest (or both)."""
    rule = ("a pinned %s reference <registry>/<path>:<tag>[@sha256:<64 hex>] or "
            "<registry>/<path>@sha256:<64 hex>, never latest" % what)
    if not image:
        return ["%s: empty; %s" % (name, rule)]
    match = IMAGE_RE.match(image)
    if not match:
        return ["%s: %r is not %s" % (name, image, rule)]
    errors = []
    if not match.group("tag") and not match.group("digest"):
        errors.append("%s: %r has neither a tag nor a digest (%s)" % (name, image, rule))
    elif (match.group("tag") or "").lower() == "latest":
        errors.append("%s: %r uses the moving tag latest (%s)" % (name, image, rule))
    if match.group("digest") and not DIGEST_RE.match(match.group("digest")):
        errors.append("%s: the digest of %r must be sha256:<64 lowercase hex>" % (name, image))
    return errors


def tag_errors(name, tag):
    """A release tag: letters, digits, '_', '.', '-', at most 128 characters, not latest."""
    tag = "" if tag is None else str(tag)
    if not TAG_RE.match(tag) or tag.lower() == "latest":
        return ["%s: a published release tag such as v0.14.1 (letters, digits, _ . -, no spaces, "
                "at most 128 characters, never latest; got %r)" % (name, tag)]
    return []


def digest_errors(name, digest, optional=True):
    """``sha256:<64 lowercase hex>`` (or empty when optional)."""
    digest = "" if digest is None else str(digest)
    if (optional and digest == "") or DIGEST_RE.match(digest):
        return []
    return ["%s: %ssha256:<64 lowercase hex> (got %r)" % (name, "empty or " if optional else "", digest)]


def quantity_errors(name, value):
    """A Kubernetes quantity such as 500m, 2, 8Gi or 512Mi (not 8GB: Kubernetes has no B)."""
    text = "" if value is None else str(value)
    if QUANTITY_RE.match(text):
        return []
    return ["%s: a Kubernetes quantity such as 2, 500m, 8Gi or 512Mi (got %r)" % (name, text)]


def cidr(value):
    """The IPv4 network of ``value`` or None when it is not an IPv4 CIDR (host bits allowed off)."""
    try:
        text = str(value)
        if "/" not in text:
            return None
        return ipaddress.IPv4Network(text, strict=True)
    except (ValueError, TypeError):
        return None


def cidr_errors(name, value, min_prefix=0, max_prefix=32):
    """An IPv4 CIDR (each octet 0-255, host bits zero) with a prefix in ``min_prefix..max_prefix``."""
    network = cidr(value)
    if network is None:
        return ["%s: an IPv4 CIDR such as 10.0.0.0/16, each octet 0-255 and the host bits zero (got %r)"
                % (name, value)]
    if not min_prefix <= network.prefixlen <= max_prefix:
        return ["%s: an IPv4 CIDR from /%d to /%d (got %s)" % (name, min_prefix, max_prefix, value)]
    return []


def poll_interval_errors(name, value):
    """How often a long wait reads its resource (resource_ready's poll_interval): 1..60 seconds."""
    return range_errors(name, value, 1, 60, "seconds between two reads of a resource being waited for")


def range_errors(name, value, low=None, high=None, what="a whole number"):
    """An integer in ``low..high`` (either bound may be None)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return ["%s: %s (got %r)" % (name, what, value)]
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = ("%s..%s" % (low, high) if low is not None and high is not None
                  else ("at least %s" % low if low is not None else "at most %s" % high))
        return ["%s: %s, %s (got %r)" % (name, what, bounds, value)]
    return []
