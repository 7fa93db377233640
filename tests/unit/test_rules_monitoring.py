"""monitoring's input rules (plugins/module_utils/rules_monitoring.py), through role_inputs.check with the
role's real argument spec (entry points main and metrics_file)."""

import pytest

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import role_inputs
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.rules_monitoring import duration_seconds
from tests.support.role_specs import for_role


spec = for_role("monitoring")


VALID = {
    "monitoring_network_name": "sandbox", "monitoring_party_id": 1, "monitoring_namespace": "kms-p1",
    "monitoring_node_name": "kms-core", "monitoring_metrics_service": "kms-core-headless",
    "monitoring_metrics_port_name": "metrics",
    "monitoring_job": "kms-core-headless", "monitoring_prometheus_operator": "auto",
    "monitoring_service_monitor_managed": None, "monitoring_scrape_config": "auto",
    "monitoring_scrape_configmap_name": "kms-prometheus-scrape", "monitoring_scrape_interval": "30s",
    "monitoring_scrape_timeout": "10s", "monitoring_alerts": True, "monitoring_rules_name": "kms-prometheus-rules",
    "monitoring_rule_labels": {}, "monitoring_alert_labels": {}, "monitoring_alert_node_down_for": "5m",
    "monitoring_alert_error_ratio": 0.05, "monitoring_alert_error_ratio_for": "10m",
    "monitoring_alert_health_alerts": True, "monitoring_alert_peers_lost_for": "10m",
    "monitoring_alert_degraded_for": "5m", "monitoring_alert_prss_missing_for": "30m",
    "monitoring_alert_health_stale_after": 900, "monitoring_dashboard": True,
    "monitoring_dashboard_namespace": "kms-p1", "monitoring_dashboard_configmap_name": "kms-node-dashboard",
    "monitoring_dashboard_labels": {"grafana_dashboard": "1"}, "monitoring_dashboard_annotations": {},
    "monitoring_kubeconfig": "", "monitoring_kube_api_server": "", "monitoring_render_dir": "",
}


def check(entry="main", **change):
    values = dict(VALID, **change) if entry == "main" else change
    return role_inputs.check("monitoring", spec(entry), values)[0]


def test_the_base_covers_every_option_of_main():
    assert sorted(VALID) == sorted(spec())


@pytest.mark.parametrize("change, variable, words", [
    ({"monitoring_namespace": "KMS_P1"}, "monitoring_namespace", "DNS-1123 label"),
    ({"monitoring_dashboard_namespace": "grafana.dashboards"}, "monitoring_dashboard_namespace", "DNS-1123 label"),
    ({"monitoring_metrics_service": "x" * 64}, "monitoring_metrics_service", "at most 63 characters"),
    ({"monitoring_scrape_configmap_name": "kms_scrape"}, "monitoring_scrape_configmap_name", "DNS-1123 subdomain"),
    ({"monitoring_rules_name": "-rules"}, "monitoring_rules_name", "DNS-1123 subdomain"),
    ({"monitoring_dashboard_configmap_name": "Dashboard"}, "monitoring_dashboard_configmap_name", "DNS-1123 subdomain"),
    ({"monitoring_scrape_interval": "30", "monitoring_scrape_timeout": "5s"}, "monitoring_scrape_interval",
     "a Prometheus duration"),
    ({"monitoring_scrape_timeout": "ten seconds"}, "monitoring_scrape_timeout", "a Prometheus duration"),
    ({"monitoring_alert_node_down_for": "5 m"}, "monitoring_alert_node_down_for", "a Prometheus duration"),
    ({"monitoring_alert_error_ratio_for": "10min"}, "monitoring_alert_error_ratio_for", "a Prometheus duration"),
    ({"monitoring_alert_peers_lost_for": ""}, "monitoring_alert_peers_lost_for", "a Prometheus duration"),
    ({"monitoring_alert_degraded_for": "1.5h"}, "monitoring_alert_degraded_for", "a Prometheus duration"),
    ({"monitoring_alert_prss_missing_for": "-30m"}, "monitoring_alert_prss_missing_for", "a Prometheus duration"),
    ({"monitoring_scrape_timeout": "1m"}, "monitoring_scrape_timeout", "at most monitoring_scrape_interval"),
    ({"monitoring_scrape_interval": "1m", "monitoring_scrape_timeout": "1m30s"}, "monitoring_scrape_timeout",
     "at most monitoring_scrape_interval"),
    ({"monitoring_alert_error_ratio": 5}, "monitoring_alert_error_ratio", "between 0 and 1 exclusive"),
    ({"monitoring_alert_error_ratio": 0}, "monitoring_alert_error_ratio", "between 0 and 1 exclusive"),
    ({"monitoring_alert_error_ratio": "five percent"}, "monitoring_alert_error_ratio", "must be of type float"),
    ({"monitoring_alert_health_stale_after": 0}, "monitoring_alert_health_stale_after", "seconds, at least 1"),
    ({"monitoring_alert_health_stale_after": "15m"}, "monitoring_alert_health_stale_after", "must be of type int"),
    ({"monitoring_rule_labels": {"release": 1}}, "monitoring_rule_labels", "a mapping of strings to strings"),
    ({"monitoring_alert_labels": {"team": True}}, "monitoring_alert_labels", "not a string: team"),
    ({"monitoring_dashboard_labels": {"grafana_dashboard": 1}}, "monitoring_dashboard_labels", "quote numbers"),
    ({"monitoring_dashboard_annotations": {"grafana_folder": None}}, "monitoring_dashboard_annotations",
     "a mapping of strings to strings"),
    ({"monitoring_alert_labels": ["team=kms"]}, "monitoring_alert_labels", "must be of type dict"),
    ({"monitoring_prometheus_operator": "yes"}, "monitoring_prometheus_operator", "must be one of"),
])
def test_a_broken_rule_names_its_variable_once(change, variable, words):
    problems = check(**change)
    assert len(problems) == 1, problems
    assert problems[0].startswith("monitoring: %s: " % variable) and words in problems[0], problems


@pytest.mark.parametrize("change", [
    {},
    {"monitoring_scrape_interval": "1m30s", "monitoring_scrape_timeout": "90s"},
    {"monitoring_scrape_interval": "1h", "monitoring_scrape_timeout": "500ms"},
    {"monitoring_dashboard_namespace": "grafana", "monitoring_dashboard_configmap_name": "kms.node.dashboard"},
    {"monitoring_alert_error_ratio": 0.99, "monitoring_alert_health_stale_after": 1},
    {"monitoring_alert_error_ratio": "0.1", "monitoring_alert_health_stale_after": "300"},
    {"monitoring_rule_labels": {"release": "kube-prometheus-stack"}, "monitoring_alert_labels": {"team": "kms"}},
])
def test_good_inputs_pass(change):
    assert check(**change) == []


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("1h30m", 5400), ("500ms", 0.5), ("2w", 1209600),
                                           ("30", None), ("1.5h", None), ("", None)])
def test_durations_in_seconds(text, seconds):
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("path, fine", [
    ("/var/lib/node_exporter/textfile/kms_party.prom", True),
    ("var/lib/node_exporter/kms_party.prom", False),
    ("/var/lib/node_exporter/kms_party.txt", False),
    ("/var/lib/node_exporter/.prom/", False),
    ("", True),  # no file: check_network.yml includes the entry points only when it is set
])
def test_the_metrics_file_path(path, fine):
    for entry in ("metrics_file", "health_metrics"):
        values = {"monitoring_health_metrics_file": path}
        problems = role_inputs.check("monitoring", spec(entry), values)[0]
        assert (problems == []) is fine, problems
        assert fine or problems[0].startswith("monitoring: monitoring_health_metrics_file: an absolute path ending in .prom")


def test_the_main_entry_point_does_not_check_the_metrics_file():
    """The path belongs to the health_metrics / metrics_file entry points; main never sees it."""
    assert "monitoring_health_metrics_file" not in spec()
