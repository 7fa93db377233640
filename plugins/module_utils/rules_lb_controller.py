# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Rules of lb_controller's inputs (registry and conventions: role_rules.py).

The role has two entry points, ``main`` and ``preflight`` (deploy_party.yml runs the second before
any change). Only ``main``'s argument spec carries the chart, image, replica, timeout and OIDC
variables these rules read, so in a playbook's preflight each mistake is reported once, by main.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.input_rules import (
    OIDC_PROVIDER_ARN_RE, digest_errors, image_errors, range_errors)
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.role_rules import got, rule

# A Helm chart version as released: MAJOR.MINOR.PATCH.
CHART_VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")
# The controller's release tags: vMAJOR.MINOR.PATCH.
RELEASE_TAG_RE = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+$")


@rule("lb_controller", "lb_controller_chart_version")
def _chart_version(v, _):
    if not CHART_VERSION_RE.match(v["lb_controller_chart_version"]):
        return ["lb_controller_chart_version: a released chart version such as 3.5.0 %s"
                % got(v["lb_controller_chart_version"])]
    return []


@rule("lb_controller", "lb_controller_image_tag")
def _image_tag(v, _):
    if not RELEASE_TAG_RE.match(v["lb_controller_image_tag"]):
        return ["lb_controller_image_tag: a release tag such as v3.5.0, never latest %s" % got(v["lb_controller_image_tag"])]
    return []


@rule("lb_controller", "lb_controller_image_digest")
def _image_digest(v, _):
    return digest_errors("lb_controller_image_digest", v["lb_controller_image_digest"])


@rule("lb_controller", "lb_controller_image_repository", "lb_controller_image_tag", "lb_controller_image_digest")
def _image_reference(v, _):
    """The whole reference the chart is given; the tag and digest have their own rules above, so
    this one speaks only when they pass (a bad repository), and a mistake is reported once."""
    tag, digest = v["lb_controller_image_tag"], v["lb_controller_image_digest"]
    if not RELEASE_TAG_RE.match(tag) or digest_errors("d", digest):
        return []
    reference = "%s:%s%s" % (v["lb_controller_image_repository"], tag, "@" + digest if digest else "")
    if image_errors("x", reference):
        return ["lb_controller_image_repository: an image repository such as "
                "public.ecr.aws/eks/aws-load-balancer-controller (registry and lower-case path, no tag) %s"
                % got(v["lb_controller_image_repository"])]
    return []


@rule("lb_controller", "lb_controller_replicas")
def _replicas(v, _):
    return range_errors("lb_controller_replicas", v["lb_controller_replicas"], low=1, what="a number of replicas")


@rule("lb_controller", "lb_controller_wait_timeout")
def _wait_timeout(v, _):
    return range_errors("lb_controller_wait_timeout", v["lb_controller_wait_timeout"], low=1, what="seconds")


@rule("lb_controller", "lb_controller_mode", "lb_controller_oidc_provider_arn")
def _oidc_provider(v, _):
    arn = v["lb_controller_oidc_provider_arn"]
    if v["lb_controller_mode"] == "install" and arn and not OIDC_PROVIDER_ARN_RE.match(arn):
        return ["lb_controller_oidc_provider_arn: the IAM OIDC provider ARN of the cluster "
                "(eks_cluster_facts.oidc_provider_arn), arn:<partition>:iam::<account>:oidc-provider/<issuer> %s" % got(arn)]
    return []
