# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Rules of monitoring's inputs (registry and conventions: role_rules.py).

Kubernetes object names, Prometheus durations and how they relate, the alert thresholds, the label
maps, and (entry points ``metrics_file`` / ``health_metrics``) the path of the health figures file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.input_rules import range_errors
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.network_model import (
    DNS_LABEL_RE, HOSTNAME_RE)
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.role_rules import got, rule

# A Prometheus duration: one or more <number><unit>, units ms s m h d w y (30s, 5m, 1h30m).
DURATION_RE = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
_DURATION_PART_RE = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
# A file node_exporter's textfile collector reads: an absolute path ending in .prom.
PROM_FILE_RE = re.compile(r"^/.*[^/]\.prom$")

# DNS-1123 labels (namespaces, Services) and subdomains (ConfigMaps, PrometheusRules).
_LABELS = ("monitoring_namespace", "monitoring_dashboard_namespace", "monitoring_metrics_service")
_SUBDOMAINS = ("monitoring_scrape_configmap_name", "monitoring_rules_name", "monitoring_dashboard_configmap_name")
_DURATIONS = ("monitoring_scrape_interval", "monitoring_scrape_timeout", "monitoring_alert_node_down_for",
              "monitoring_alert_error_ratio_for", "monitoring_alert_peers_lost_for", "monitoring_alert_degraded_for",
              "monitoring_alert_prss_missing_for")
_STRING_MAPS = ("monitoring_rule_labels", "monitoring_alert_labels", "monitoring_dashboard_labels",
                "monitoring_dashboard_annotations")


def duration_seconds(text):
    """Seconds of a Prometheus duration (None when it is not one)."""
    text = str(text)
    if not DURATION_RE.match(text):
        return None
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART_RE.findall(text))


def _name_rule(name, label):
    def check(v, _):
        value = v[name]
        if (DNS_LABEL_RE if label else HOSTNAME_RE).match(value):
            return []
        if label:
            return ["%s: a Kubernetes DNS-1123 label (lower-case letters, digits and '-', at most 63 characters, "
                    "starting and ending with a letter or digit) %s" % (name, got(repr(value)))]
        return ["%s: a Kubernetes DNS-1123 subdomain (lower-case letters, digits, '-' and '.', at most 253 characters, "
                "each part starting and ending with a letter or digit) %s" % (name, got(repr(value)))]
    return check


def _duration_rule(name):
    def check(v, _):
        if duration_seconds(v[name]) is None:
            return ["%s: a Prometheus duration such as 30s, 5m or 1h30m %s" % (name, got(repr(v[name])))]
        return []
    return check


def _string_map_rule(name):
    def check(v, _):
        odd = sorted(str(k) for k, value in v[name].items() if not isinstance(value, str))
        if odd:
            return ["%s: a mapping of strings to strings (quote numbers and booleans: grafana_dashboard: \"1\"); "
                    "not a string: %s %s" % (name, ", ".join(odd), got(v[name]))]
        return []
    return check


for _name in _LABELS + _SUBDOMAINS:
    rule("monitoring", _name)(_name_rule(_name, _name in _LABELS))
for _name in _DURATIONS:
    rule("monitoring", _name)(_duration_rule(_name))
for _name in _STRING_MAPS:
    rule("monitoring", _name)(_string_map_rule(_name))


@rule("monitoring", "monitoring_scrape_interval", "monitoring_scrape_timeout")
def _timeout_within_interval(v, _):
    interval = duration_seconds(v["monitoring_scrape_interval"])
    timeout = duration_seconds(v["monitoring_scrape_timeout"])
    if interval is not None and timeout is not None and timeout > interval:
        return ["monitoring_scrape_timeout: at most monitoring_scrape_interval (%s); Prometheus refuses a longer "
                "one %s" % (v["monitoring_scrape_interval"], got(v["monitoring_scrape_timeout"]))]
    return []


@rule("monitoring", "monitoring_alert_error_ratio")
def _error_ratio(v, _):
    ratio = v["monitoring_alert_error_ratio"]
    if not 0 < ratio < 1:
        return ["monitoring_alert_error_ratio: a fraction between 0 and 1 exclusive (0.05 = 5 %% of the operations "
                "fail) %s" % got(ratio)]
    return []


@rule("monitoring", "monitoring_alert_health_stale_after")
def _stale_after(v, _):
    return range_errors("monitoring_alert_health_stale_after", v["monitoring_alert_health_stale_after"], low=1,
                        what="seconds")


@rule("monitoring", "monitoring_health_metrics_file")
def _metrics_file(v, _):
    """Empty is no file: check_network.yml includes the entry points only when its metrics file is set,
    and its preflight (which sees every include, whatever its ``when``) must not refuse the default.
    Run on their own with an empty path, metrics_file.yml stops at the directory check."""
    path = v["monitoring_health_metrics_file"]
    if path and not PROM_FILE_RE.match(path):
        return ["monitoring_health_metrics_file: an absolute path ending in .prom (node_exporter's textfile "
                "collector reads only *.prom files) %s" % got(repr(path))]
    return []
