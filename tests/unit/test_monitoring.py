"""The monitoring role and the health figures of playbooks/check_network.yml.

* The Grafana dashboard (roles/monitoring/files/kms-node-dashboard.json) and the alert rules
  reference only metrics that exist: those the KMS server exports (the list in
  the shared reference kms-node.md, "Metrics exported", copied below), Prometheus's own
  ``up``, and the ``kms_party_*`` figures that check_network.yml really writes -- taken from
  the file a real run against simulated nodes produced, not from a list of ours. The guide's
  ``kms_health_status`` / ``kms_peers_reachable`` / ``kms_key_material_count`` do not exist.
* Every PromQL expression parses (promql-parser, the Rust PromQL parser's Python binding);
  the rule files have Prometheus's structure; the alert conditions are evaluated against the
  real health figures (healthy network, PRSS missing, a party down).
* The rendered manifests validate: ConfigMaps against the Kubernetes 1.32 schemas in strict
  mode (kubernetes-validate); the PrometheusRule (a CRD, not in those schemas) against the
  shape of the Prometheus Operator's monitoring.coreos.com/v1 PrometheusRule, written below.

Ports: simulated nodes on 26500 + 40 * worker (the monitoring helper's range 26000-26999).
"""
import copy
import json
import os
import re
import subprocess
import sys

import jsonschema
import kubernetes_validate
import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sandbox.kms_sim.testing import SimNetwork

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_grpc as G
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_proto as P
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import prss

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE = os.path.join(ROOT, "roles", "monitoring")
DASHBOARD = os.path.join(ROLE, "files", "kms-node-dashboard.json")
K8S_VERSION = "1.32.0"

_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_INDEX = int(_WORKER[2:]) if _WORKER.startswith("gw") and _WORKER[2:].isdigit() else 0
BASE = 26500 + 40 * (_INDEX % 8)
PEER, CLIENT = BASE, BASE + 10          # 4 parties: peer +1..+4, client +11..+14

# the shared reference kms-node.md, "Metrics exported": what the KMS server (zama-ai/kms 0.15)
# exports. Two are OpenTelemetry histograms (exposed as _bucket / _sum / _count); process_* is
# the process collector.
SERVER_METRICS = {
    "kms_operations_total", "kms_operation_errors_total", "kms_operation_duration_ms",
    "kms_payload_size_bytes", "kms_network_rx_bytes_total", "kms_network_tx_bytes_total",
    "kms_active_sessions", "kms_inactive_sessions", "kms_tasks", "kms_rate_limiter_usage",
    "kms_fhe_key_cache_size", "kms_total_cpus", "kms_total_memory", "kms_process_cpu_usage",
    "kms_process_memory_usage", "kms_cpu_load", "kms_memory_usage", "kms_version",
}
SERVER_HISTOGRAMS = {"kms_operation_duration_ms", "kms_payload_size_bytes"}
PROMETHEUS_METRICS = {"up"}   # written by Prometheus for every scrape target
GUIDE_METRICS_THAT_DO_NOT_EXIST = {"kms_health_status", "kms_peers_reachable", "kms_key_material_count"}

GRAFANA_MACROS = re.compile(r"\$__(rate_interval|interval|range)|\$\{__(rate_interval|interval|range)\}")


# ----------------------------------------------------------------------------- helpers

def ansible_playbook(args, timeout=600, env=None):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", **(env or {}))
    exe = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    proc = subprocess.run([exe] + list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def parse_expr(expr):
    """Parse a PromQL expression (Grafana's range macros replaced by a duration)."""
    return promql_parser.parse(GRAFANA_MACROS.sub("5m", expr))


def metric_names(expr):
    """Names of every series selector in a PromQL expression; a selector without a name fails."""
    names, nameless = set(), []

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            else:
                nameless.append(str(node))

    promql_parser.walk(parse_expr(expr), visit)
    assert not nameless, "selectors without a metric name hide what they read: %s in %s" % (nameless, expr)
    return names


def dashboard_queries(doc):
    """(where, PromQL) for every panel target and every query variable of a Grafana dashboard."""
    out = []

    def panels(items):
        for panel in items:
            yield panel
            for inner in panels(panel.get("panels") or []):
                yield inner

    for panel in panels(doc.get("panels") or []):
        for target in panel.get("targets") or []:
            if target.get("expr"):
                out.append(("panel %r target %s" % (panel.get("title"), target.get("refId")), target["expr"]))
    for var in (doc.get("templating") or {}).get("list") or []:
        if var.get("type") != "query":
            continue
        query = var["query"]["query"] if isinstance(var.get("query"), dict) else var.get("query")
        match = re.match(r"^\s*(label_values|query_result)\((.*)\)\s*$", query, re.S)
        assert match, "variable %s: unknown query %r" % (var["name"], query)
        inner = match.group(2)
        if match.group(1) == "label_values":
            inner = inner.rsplit(",", 1)[0] if "," in inner else inner
        out.append(("variable %s" % var["name"], inner))
    return out


def unknown_metrics(names, produced):
    """The names that neither the server, Prometheus nor check_network.yml produce."""
    bad = set()
    for name in names:
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name in SERVER_METRICS or name in PROMETHEUS_METRICS or name in produced:
            continue
        if base in SERVER_HISTOGRAMS:
            continue
        if name.startswith("process_"):
            continue
        bad.add(name)
    return bad


def read_prom(path):
    """{metric name: [(labels, value)]} of a Prometheus text-format file (prometheus_client's parser)."""
    with open(path) as handle:
        text = handle.read()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


# ------------------------------------------------------------ a tiny evaluator for the alert exprs

def evaluate(node, series, now):
    """Evaluate the subset of PromQL the health alerts use against the series of a .prom file.

    Supports series selectors with = matchers, number literals, time(), and binary operators
    between vectors (one-to-one on identical label sets) or a vector and a scalar: arithmetic
    (+ - * /) and comparisons (filtering, as Prometheus does without ``bool``). Returns a float
    for a scalar, else a list of (labels, value).
    """
    if isinstance(node, promql_parser.ParenExpr):
        return evaluate(node.expr, series, now)
    if isinstance(node, promql_parser.NumberLiteral):
        return float(node.val)
    if isinstance(node, promql_parser.Call):
        assert node.func.name == "time", "the evaluator knows time() only, got %s" % node.func.name
        return float(now)
    if isinstance(node, promql_parser.VectorSelector):
        wanted = []
        for matcher in node.matchers.matchers:
            assert str(matcher.op) in ("MatchOp.Equal", "="), "only = matchers: %s" % node
            wanted.append((matcher.name, matcher.value))
        return [(labels, value) for labels, value in series.get(node.name, [])
                if all(labels.get(k) == v for k, v in wanted)]
    assert isinstance(node, promql_parser.BinaryExpr), "unsupported %s" % type(node).__name__
    lhs, rhs = evaluate(node.lhs, series, now), evaluate(node.rhs, series, now)
    op = str(node.op).strip()
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
           "/": lambda a, b: a / b if b else float("nan"),
           "<": lambda a, b: a < b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b,
           ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}
    assert op in ops, "operator %s" % op
    compare = op in ("<", ">", "<=", ">=", "==", "!=")
    if isinstance(lhs, float) and isinstance(rhs, float):
        return float(ops[op](lhs, rhs))
    if isinstance(rhs, float):
        return [(l, v) for l, v in lhs if ops[op](v, rhs)] if compare else [(l, ops[op](v, rhs)) for l, v in lhs]
    if isinstance(lhs, float):
        return [(l, v) for l, v in rhs if ops[op](lhs, v)] if compare else [(l, ops[op](lhs, v)) for l, v in rhs]
    right = dict((tuple(sorted(l.items())), v) for l, v in rhs)
    out = []
    for labels, value in lhs:
        other = right.get(tuple(sorted(labels.items())))
        if other is None:
            continue
        if compare:
            if ops[op](value, other):
                out.append((labels, value))
        else:
            out.append((labels, ops[op](value, other)))
    return out


def merged(per_party):
    """The series of every party's file together (each file holds only its own party's
    party_id-labelled series; the label-less network series appear once per file)."""
    out = {}
    for series in per_party.values():
        for name, samples in series.items():
            out.setdefault(name, []).extend(samples)
    return out


def firing_per_party(rule_groups, per_party, now):
    """firing() in each party's own Prometheus (it sees only its own file), put together:
    {alert name: sorted party ids, None once per party for a label-less series}."""
    result = {}
    for series in per_party.values():
        for alert, ids in firing(rule_groups, series, now).items():
            result.setdefault(alert, []).extend(ids)
    return dict((alert, sorted(ids, key=str)) for alert, ids in result.items())


def firing(rule_groups, series, now):
    """{alert name: sorted party ids (or [] for label-less series)} whose condition holds now."""
    result = {}
    for group in rule_groups:
        if group["name"] != "threshold-kms-network-health":
            continue
        for rule in group["rules"]:
            hits = evaluate(promql_parser.parse(rule["expr"]), series, now)
            if hits:
                result[rule["alert"]] = sorted(labels.get("party_id") for labels, _ in hits)
    return result


# ----------------------------------------------------------------------------- fixtures

RENDER_PLAY = """
- name: Render the monitoring manifests (plain Prometheus, then Prometheus Operator)
  hosts: party1
  gather_facts: false
  tasks:
    - name: Preflight
      ansible.builtin.import_role:
        name: threshold_kms.mpc_party.preflight
    - name: Plain Prometheus - ConfigMaps
      ansible.builtin.include_role:
        name: threshold_kms.mpc_party.monitoring
      vars:
        monitoring_render_dir: "{{ out }}/plain"
    - name: Keep the facts
      ansible.builtin.copy:
        content: "{{ monitoring_facts | to_json }}"
        dest: "{{ out }}/plain/facts.json"
        mode: "0644"
    - name: Prometheus Operator - PrometheusRule, kms_workload's ServiceMonitor scrapes
      ansible.builtin.include_role:
        name: threshold_kms.mpc_party.monitoring
      vars:
        monitoring_render_dir: "{{ out }}/operator"
        monitoring_prometheus_operator: always
        monitoring_service_monitor_managed: true
        monitoring_rule_labels: {release: kube-prometheus-stack}
        monitoring_dashboard_annotations: {grafana_folder: Threshold KMS}
    - name: Keep the facts
      ansible.builtin.copy:
        content: "{{ monitoring_facts | to_json }}"
        dest: "{{ out }}/operator/facts.json"
        mode: "0644"
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("monitoring-render")
    play = out / "render.yml"
    play.write_text(RENDER_PLAY)
    rc, log = ansible_playbook(["-i", "inventories/sandbox", str(play), "-e", "out=%s" % out])
    assert rc == 0, log[-4000:]
    result = {}
    for mode in ("plain", "operator"):
        files = sorted((out / mode / "manifests").iterdir())
        docs = {}
        for path in files:
            doc = yaml.safe_load(path.read_text())
            docs["%s/%s" % (doc["kind"], doc["metadata"]["name"])] = doc
        result[mode] = {"files": [p.name for p in files], "docs": docs,
                        "facts": json.loads((out / mode / "facts.json").read_text())}
    return result


KUBE = BASE + 20                        # the parties' Kubernetes API emulators: +21..+24


def check_network(sandbox_dir, metrics_file, extra=()):
    """check_network.yml on the sandbox inventory, each party through its own cluster's API
    (kubeconfig under ``sandbox_dir``) to its own node; ``metrics_file`` may name the host."""
    args = ["-i", "inventories/sandbox", "playbooks/check_network.yml",
            "-e", json.dumps({"check_network_timeout": 2, "check_network_metrics_file": str(metrics_file)})] + list(extra)
    return ansible_playbook(args, env={"SANDBOX_DIR": str(sandbox_dir)})


@pytest.fixture(scope="module")
def clusters(tmp_path_factory):
    """One Kubernetes API emulator per party; its pod kms/kms-core-0 at the party's client port in
    the sandbox inventory is that party's simulated node. Kubeconfigs are
    written where the sandbox inventory looks for them ($SANDBOX_DIR/kubeconfig/party<i>.yaml)."""
    from sandbox.kube_emulator import run_emulators

    folder = tmp_path_factory.mktemp("monitoring-sandbox")
    with open(os.path.join(ROOT, "inventories", "sandbox", "group_vars", "all", "network.yml")) as handle:
        client_ports = dict((p["party_id"], p["client_port"]) for p in yaml.safe_load(handle)["mpc_network"]["parties"])
    with run_emulators(4, base_port=KUBE, controller=False) as kube:
        kube.network = None
        kube.dir = folder
        for pid in range(1, 5):
            emulator = kube.emulator(pid)
            emulator.create_object("v1/namespaces", None, {"metadata": {"name": "kms"}})

            def target(namespace, pod, port, pid=pid):
                if (namespace, pod) != ("kms", "kms-core-0"):
                    raise KeyError('pods "%s" not found' % pod)
                if kube.network is None or pid not in kube.network.nodes or port != client_ports[pid]:
                    raise LookupError("connect: connection refused")
                return "127.0.0.1", CLIENT + pid

            emulator.port_forward_target = target
            kube.write_kubeconfig(pid, folder / "kubeconfig" / ("party%d.yaml" % pid))
        yield kube


@pytest.fixture(scope="module")
def health(clusters, tmp_path_factory):
    """check_network.yml with check_network_metrics_file against 4 simulated nodes, each party
    asking its own node: before PRSS, after PRSS, and with party 3 down. Each party writes its own
    file, as its own node_exporter would collect it; yields {case: (rc, log, {party id: series of
    its file}, newest file mtime)}."""
    out = tmp_path_factory.mktemp("monitoring-health")
    net = SimNetwork(4, PEER, CLIENT, name="sandbox", storage="ram", peer_timeout=0.5,
                     key_material={"fhe_key_ids": ["ab" * 32], "crs_ids": ["cd" * 32]})
    net.start()
    clusters.network = net
    cases = {}
    try:
        endpoints = net.endpoints()

        def run(case):
            folder = out / case
            folder.mkdir()
            rc, log = check_network(clusters.dir, str(folder) + "/kms_{{ inventory_hostname }}.prom")
            files = sorted(folder.glob("kms_party*.prom"))
            per_party = dict((path.name[len("kms_party"):-len(".prom")], read_prom(path)) for path in files)
            cases[case] = (rc, log, per_party if files else None,
                           max(os.path.getmtime(path) for path in files) if files else None)

        run("no_prss")
        result = prss.run_epoch(G.normalize_endpoints(endpoints), P.DEFAULT_CONTEXT_ID, P.DEFAULT_EPOCH_ID,
                                wait_timeout=60, poll_interval=0.2, timeout=2)
        assert result["done"], result
        run("healthy")
        net.stop([3])
        run("party3_down")
    finally:
        clusters.network = None
        net.stop()
    return cases


@pytest.fixture(scope="module")
def produced(health):
    """Metric names check_network.yml really wrote (union over the runs)."""
    names = set()
    for _, _, per_party, _ in health.values():
        for series in (per_party or {}).values():
            names.update(series)
    return names


def rule_groups(rendered, mode):
    docs = rendered[mode]["docs"]
    if mode == "operator":
        return docs["PrometheusRule/kms-prometheus-rules"]["spec"]["groups"]
    return yaml.safe_load(docs["ConfigMap/kms-prometheus-rules"]["data"]["kms-node.rules.yml"])["groups"]


# ----------------------------------------------------------------------------- the dashboard

def load_dashboard():
    with open(DASHBOARD) as handle:
        return json.load(handle)


def test_dashboard_references_only_metrics_that_exist(produced):
    doc = load_dashboard()
    queries = dashboard_queries(doc)
    assert len(queries) > 20
    used = set()
    for where, expr in queries:
        names = metric_names(expr)
        bad = unknown_metrics(names, produced)
        assert not bad, "%s uses %s, which nothing exports: %s" % (where, sorted(bad), expr)
        used |= names
    # It shows the server's figures and ours, not one family only.
    assert {"kms_operations_total", "kms_operation_errors_total", "up"} <= used
    assert {"kms_party_health_status", "kms_party_peers_reachable", "kms_party_prss_initialized"} <= used
    assert not used & GUIDE_METRICS_THAT_DO_NOT_EXIST


def test_a_dashboard_using_a_metric_nobody_exports_is_caught(produced):
    """The check above is not vacuous: kms_health_status (the guide's) in a panel fails it."""
    doc = load_dashboard()
    assert "kms_health_status" not in produced
    bad_doc = copy.deepcopy(doc)
    bad_doc["panels"].append({"type": "stat", "id": 999, "title": "guide", "targets": [
        {"refId": "A", "expr": 'max by (party) (kms_health_status{namespace="$namespace"})'}]})
    found = set()
    for _, expr in dashboard_queries(bad_doc):
        found |= unknown_metrics(metric_names(expr), produced)
    assert found == {"kms_health_status"}
    for name in GUIDE_METRICS_THAT_DO_NOT_EXIST:
        assert unknown_metrics({name}, produced) == {name}


def test_dashboard_is_a_provisionable_grafana_dashboard():
    doc = load_dashboard()
    assert doc["uid"] == "threshold-kms-node" and doc["title"]
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in doc["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24 and pos["w"] > 0 and pos["h"] > 0, panel["title"]
        for target in panel.get("targets") or []:
            # Every query goes to the data source the operator picks in the variable.
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
    names = [v["name"] for v in doc["templating"]["list"]]
    assert names[0] == "datasource" and {"network", "job", "namespace", "pod"} <= set(names)
    # Every $variable a query uses is defined.
    for where, expr in dashboard_queries(doc):
        for var in re.findall(r"\$\{?([A-Za-z_]\w*)", GRAFANA_MACROS.sub("5m", expr)):
            assert var in names, "%s uses undefined $%s" % (where, var)


# ----------------------------------------------------------------------------- the alert rules

PROMETHEUS_RULE_SCHEMA = {
    # monitoring.coreos.com/v1 PrometheusRule as the Prometheus Operator's CRD defines it
    # (openAPIV3Schema of prometheusrules.monitoring.coreos.com), stricter on unknown fields: the
    # CRD would silently prune them, here they are errors.
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": {
            "type": "object", "required": ["name", "namespace"],
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object", "additionalProperties": False,
            "properties": {"groups": {"type": "array", "items": {
                "type": "object", "required": ["name"], "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "interval": {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                    "query_offset": {"type": "string"},
                    "limit": {"type": "integer"},
                    "partial_response_strategy": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "rules": {"type": "array", "items": {
                        "type": "object", "required": ["expr"], "additionalProperties": False,
                        "properties": {
                            "alert": {"type": "string"}, "record": {"type": "string"},
                            "expr": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                            "for": {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                            "keep_firing_for": {"type": "string"},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                        },
                    }},
                },
            }}},
        },
    },
}
RULE_KEYS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
GO_TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.S)


@pytest.mark.parametrize("mode", ["plain", "operator"])
def test_alert_rules_parse(rendered, mode, produced):
    groups = rule_groups(rendered, mode)
    assert [g["name"] for g in groups] == ["threshold-kms-node", "threshold-kms-network-health"]
    alerts = []
    for group in groups:
        assert set(group) <= {"name", "interval", "rules", "labels", "limit", "query_offset"}
        for rule in group["rules"]:
            assert set(rule) <= RULE_KEYS, rule
            assert ("alert" in rule) != ("record" in rule), rule
            assert re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", rule["alert"]), rule["alert"]
            names = metric_names(rule["expr"])   # parses, or raises ValueError with the cause
            assert not unknown_metrics(names, produced), (rule["alert"], names)
            promql_parser.parse_duration(rule["for"])
            assert rule["labels"]["severity"] in ("critical", "warning")
            assert all(isinstance(v, str) for v in list(rule["labels"].values()) + list(rule["annotations"].values()))
            assert {"summary", "description"} <= set(rule["annotations"])
            for text in rule["annotations"].values():
                # Go templates: balanced, and only the alert's labels / value and pipes.
                assert text.count("{{") == text.count("}}"), text
                for inner in GO_TEMPLATE.findall(text):
                    assert re.match(r"^\s*\$(labels\.[a-z_]+|value)(\s*\|\s*humanizePercentage)?\s*$", inner), inner
            alerts.append(rule["alert"])
    assert len(alerts) == len(set(alerts))
    assert rendered[mode]["facts"]["alerts"] == alerts


def test_alert_rules_cover_the_four_cases(rendered):
    """Node down, error rate, lost peers, PRSS missing: each alert reads what it is about."""
    rules = dict((r["alert"], r) for g in rule_groups(rendered, "plain") for r in g["rules"])
    node_sel = 'job="kms-core-headless", namespace="kms"'
    assert rules["KmsNodeDown"]["expr"] == "up{%s} == 0" % node_sel
    assert rules["KmsNodeMetricsAbsent"]["expr"] == "absent(up{%s})" % node_sel
    ratio = promql_parser.parse(rules["KmsOperationErrorRatioHigh"]["expr"])
    assert isinstance(ratio, promql_parser.BinaryExpr) and str(ratio.op).strip() == ">"
    division = ratio.lhs.expr if isinstance(ratio.lhs, promql_parser.ParenExpr) else ratio.lhs
    assert str(division.op).strip() == "/"
    assert metric_names(str(division.lhs)) == {"kms_operation_errors_total"}
    assert metric_names(str(division.rhs)) == {"kms_operations_total"}
    assert float(ratio.rhs.val) == 0.05
    assert metric_names(rules["KmsPartyPeersLost"]["expr"]) == {"kms_party_peers_reachable", "kms_party_peers_total"}
    assert metric_names(rules["KmsPartyPrssMissing"]["expr"]) == {"kms_party_prss_initialized"}
    # Node alerts name this party; health alerts keep the party of their series.
    assert rules["KmsNodeDown"]["labels"]["party_id"] == "1"
    assert "party_id" not in rules["KmsPartyPeersLost"]["labels"]
    assert rules["KmsPartyPeersLost"]["labels"]["reported_by_party"] == "1"


def test_alert_rules_fire_on_the_real_health_figures(rendered, health):
    groups = rule_groups(rendered, "plain")
    _, _, before, when = health["no_prss"]
    assert firing_per_party(groups, before, when) == {"KmsPartyPrssMissing": ["1", "2", "3", "4"]}
    _, _, healthy, when = health["healthy"]
    assert firing_per_party(groups, healthy, when) == {}
    # Twenty minutes without a new file: every party's figures are stale.
    assert firing_per_party(groups, healthy, when + 1200) == {"KmsHealthFiguresStale": [None] * 4}
    _, _, down, when = health["party3_down"]
    fired = firing_per_party(groups, down, when)
    assert fired["KmsPartyPeersLost"] == ["1", "2", "4"]
    assert fired["KmsPartyDegraded"] == ["3"]
    assert "KmsPartyPrssMissing" not in fired   # a node that does not answer is not reported as not initialised


# ----------------------------------------------------------------------------- health figures

def test_check_network_writes_the_health_figures(health):
    rc, log, per_party, _ = health["healthy"]
    assert rc == 0, log[-3000:]
    assert sorted(per_party) == ["1", "2", "3", "4"]
    series = merged(per_party)
    value = dict((name, dict((tuple(sorted(l.items())), v) for l, v in samples)) for name, samples in series.items())

    def get(name, **labels):
        return value[name][tuple(sorted(dict(network="sandbox", **labels).items()))]

    assert get("kms_party_network_status") == 1
    for pid in "1234":
        assert get("kms_party_up", party_id=pid) == 1
        assert get("kms_party_health_status", party_id=pid) == 1          # Optimal
        assert get("kms_party_peers_reachable", party_id=pid) == 3
        assert get("kms_party_peers_total", party_id=pid) == 3
        assert get("kms_party_prss_initialized", party_id=pid) == 1
        assert get("kms_party_key_material", party_id=pid, kind="fhe_key") == 1
        assert get("kms_party_key_material", party_id=pid, kind="crs") == 1
        for peer in "1234":
            if peer != pid:
                assert get("kms_party_peer_reachable", party_id=pid, peer_id=peer) == 1
    assert ("kms_party_peer_reachable", "1", "1") not in [(n, l.get("party_id"), l.get("peer_id"))
                                                          for n, s in series.items() for l, _ in s]


def test_check_network_records_an_unhealthy_network_and_still_fails(health):
    rc, log, per_party, _ = health["party3_down"]
    assert rc != 0, "check_network.yml must fail when a party is below Healthy"
    series = merged(per_party)
    assert "party3" in log and "Unhealthy" in log       # the table is still printed
    value = dict((name, dict((l.get("party_id"), v) for l, v in samples)) for name, samples in series.items()
                 if name not in ("kms_party_peer_reachable", "kms_party_key_material"))
    assert value["kms_party_up"] == {"1": 1, "2": 1, "3": 0, "4": 1}
    assert value["kms_party_health_status"]["3"] == 4                  # Unhealthy
    assert value["kms_party_peers_reachable"] == {"1": 2, "2": 2, "4": 2}
    assert "3" not in value["kms_party_prss_initialized"]               # unknown, not "missing"
    links = dict(((l["party_id"], l["peer_id"]), v) for l, v in series["kms_party_peer_reachable"])
    assert links[("1", "3")] == 0 and links[("1", "2")] == 1


def test_check_network_refuses_a_metrics_file_the_collector_would_ignore(tmp_path):
    rc, log = check_network(tmp_path, tmp_path / "kms_party.txt", ["--limit", "party1"])
    assert rc != 0
    assert "monitoring_health_metrics_file: an absolute path ending in .prom" in log
    assert not (tmp_path / "kms_party.txt").exists()


# ----------------------------------------------------------------------------- rendered manifests

def test_render_writes_the_expected_objects(rendered):
    assert rendered["plain"]["files"] == ["20-configmap-kms-prometheus-scrape.yaml",
                                          "21-configmap-kms-prometheus-rules.yaml",
                                          "22-configmap-kms-node-dashboard.yaml"]
    # With the Operator: a PrometheusRule, and no scrape ConfigMap (kms_workload's
    # ServiceMonitor scrapes; this role never creates a second one).
    assert rendered["operator"]["files"] == ["21-prometheusrule-kms-prometheus-rules.yaml",
                                             "22-configmap-kms-node-dashboard.yaml"]
    assert not any(k.startswith("ServiceMonitor/") for mode in rendered for k in rendered[mode]["docs"])
    facts = rendered["operator"]["facts"]
    assert facts["rules_kind"] == "PrometheusRule" and facts["scrape_configmap"] == "" and facts["service_monitor"]
    facts = rendered["plain"]["facts"]
    assert facts["rules_kind"] == "ConfigMap" and facts["scrape_configmap"] == "kms-prometheus-scrape"


@pytest.mark.parametrize("mode", ["plain", "operator"])
def test_rendered_manifests_validate(rendered, mode):
    for key, doc in rendered[mode]["docs"].items():
        if doc["kind"] == "PrometheusRule":
            # A CRD: not in the Kubernetes schemas; checked against the Operator's shape.
            jsonschema.validate(doc, PROMETHEUS_RULE_SCHEMA)
            assert doc["metadata"]["labels"]["release"] == "kube-prometheus-stack"
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail("%s: %s" % (key, exc))
        assert doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "threshold_kms.mpc_party"


def test_dashboard_configmap_carries_the_file_for_the_sidecar(rendered):
    for mode in ("plain", "operator"):
        cm = rendered[mode]["docs"]["ConfigMap/kms-node-dashboard"]
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(cm["data"]["kms-node-dashboard.json"]) == load_dashboard()
        # kubectl/kubernetes.core apply keeps a last-applied copy in an annotation (256 KiB limit).
        assert len(json.dumps(cm)) < 200 * 1024
    assert rendered["operator"]["docs"]["ConfigMap/kms-node-dashboard"]["metadata"]["annotations"] == \
        {"grafana_folder": "Threshold KMS"}


def test_scrape_config_selects_the_metrics_port_like_the_service_monitor(rendered):
    cm = rendered["plain"]["docs"]["ConfigMap/kms-prometheus-scrape"]
    snippet = yaml.safe_load(cm["data"]["kms-node-scrape.yml"])
    assert list(snippet) == ["scrape_configs"] and len(snippet["scrape_configs"]) == 1
    job = snippet["scrape_configs"][0]
    known = {"job_name", "metrics_path", "scheme", "scrape_interval", "scrape_timeout", "kubernetes_sd_configs",
             "relabel_configs", "metric_relabel_configs", "honor_labels", "params"}
    assert set(job) <= known
    assert job["job_name"] == rendered["plain"]["facts"]["job"] == "kms-core-headless"
    assert job["kubernetes_sd_configs"] == [{"role": "endpoints", "namespaces": {"names": ["kms"]}}]
    promql_parser.parse_duration(job["scrape_interval"])
    promql_parser.parse_duration(job["scrape_timeout"])
    actions = {"replace", "keep", "drop", "labelmap", "labeldrop", "labelkeep", "hashmod", "lowercase", "uppercase",
               "keepequal", "dropequal"}
    keeps = {}
    for relabel in job["relabel_configs"]:
        assert relabel.get("action", "replace") in actions
        assert set(relabel) <= {"source_labels", "separator", "regex", "target_label", "replacement", "action", "modulus"}
        re.compile("^(?:%s)$" % relabel.get("regex", "(.*)"))    # Prometheus anchors relabel regexes
        if relabel.get("action") == "keep":
            keeps[relabel["source_labels"][0]] = relabel["regex"]
    assert re.match("^(?:%s)$" % keeps["__meta_kubernetes_service_name"], "kms-core-headless")
    assert not re.match("^(?:%s)$" % keeps["__meta_kubernetes_service_name"], "kms-core-peer")
    assert re.match("^(?:%s)$" % keeps["__meta_kubernetes_endpoint_port_name"], "metrics")
    targets = set(r["target_label"] for r in job["relabel_configs"] if r.get("target_label"))
    assert {"namespace", "pod", "service"} <= targets   # the labels the rules and dashboard select on
