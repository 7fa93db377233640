# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Rules of prss_init's inputs (registry and conventions: role_rules.py).

The argument spec holds the types (a word where a number is expected is refused there) and the
choices of prss_init_min_health; what it cannot say is here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.input_rules import range_errors
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.network_model import (
    DNS_LABEL_RE, HOSTNAME_RE, prefix_errors, s3_bucket_name_errors)
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.peer_ca import REQUEST_ID_RE
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.role_rules import got, rule

R = "prss_init"
# Seconds: each must be positive (a zero timeout ends the wait before it starts).
DURATIONS = ("prss_init_health_timeout", "prss_init_rpc_timeout", "prss_init_timeout", "prss_init_poll_interval",
             "prss_init_progress_interval")


@rule(R, "prss_init_parties")
def _parties(v, _):
    n = v["prss_init_parties"]
    if n < 4 or (n - 1) % 3:
        return ["prss_init_parties: the network's n = 3t + 1, at least 4 (4, 7, 10, 13, ...) %s" % got(n)]
    return []


@rule(R, "prss_init_party_id", "prss_init_parties")
def _party_id(v, _):
    return range_errors("prss_init_party_id", v["prss_init_party_id"], 1, max(v["prss_init_parties"], 1),
                        "this party's id among prss_init_parties")


@rule(R, "prss_init_namespace")
def _namespace(v, _):
    if not DNS_LABEL_RE.match(v["prss_init_namespace"]):
        return ["prss_init_namespace: a Kubernetes namespace (a DNS label such as kms) %s"
                % got(v["prss_init_namespace"])]
    return []


@rule(R, "prss_init_pod")
def _pod(v, _):
    if not HOSTNAME_RE.match(v["prss_init_pod"]):
        return ["prss_init_pod: a pod name such as kms-core-0 %s" % got(v["prss_init_pod"])]
    return []


@rule(R, "prss_init_port")
def _port(v, _):
    return range_errors("prss_init_port", v["prss_init_port"], 1, 65535, "a port")


@rule(R, "prss_init_private_bucket")
def _bucket(v, _):
    bucket = v["prss_init_private_bucket"]
    return ["prss_init_private_bucket: %s %s" % (e, got(bucket)) for e in s3_bucket_name_errors(bucket)]


@rule(R, "prss_init_private_prefix")
def _prefix(v, _):
    return ["prss_init_private_prefix: %s" % e for e in prefix_errors(v["prss_init_private_prefix"], "private")]


@rule(R, "prss_init_context_id", "prss_init_epoch_id")
def _request_ids(v, _):
    return ["%s: 64 lower-case hex characters %s" % (name, got(v[name]))
            for name in ("prss_init_context_id", "prss_init_epoch_id") if not REQUEST_ID_RE.match(v[name])]


@rule(R, "prss_init_unconnected_peers", "prss_init_party_id", "prss_init_parties")
def _unconnected(v, _):
    me, n = v["prss_init_party_id"], v["prss_init_parties"]
    bad = [p for p in v["prss_init_unconnected_peers"] if p == me or not 1 <= p <= n]
    if bad:
        return ["prss_init_unconnected_peers: ids of other parties, 1 to %d without this party's %d %s" % (n, me, got(bad))]
    return []


def _positive(name):
    """A rule of its own per duration, so one refused by the spec does not hide another."""
    @rule(R, name)
    def positive(v, _):
        return [] if v[name] > 0 else ["%s: a positive number of seconds %s" % (name, got(v[name]))]
    return positive


for _name in DURATIONS:
    _positive(_name)
