"""The benchmark's two infrastructure playbooks (tools/bench.py, latency mode) stay what they claim:
bench_overlap.yml is deploy_party.yml's infrastructure part, same roles, entry points, order and
wiring; bench_sequential.yml runs the same roles' main entry points one after another."""
import os

from ansible_collections.threshold_kms.mpc_party.plugins.action.role_inputs import playbook_roles

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INFRA = ("eks_cluster", "nitro_nodegroup", "vault_buckets", "connector_db")


def _roles(path):
    return playbook_roles(os.path.join(ROOT, path))


def test_the_overlap_benchmark_is_the_deploys_infrastructure_part():
    deploy = _roles("playbooks/deploy_party.yml")
    bench = _roles("tools/bench_overlap.yml")
    last = [(r, e) for r, e, _ in deploy].index(("nitro_nodegroup", "ready"))
    assert [(r, e, w) for r, e, w in deploy[:last + 1]] == [(r, e, w) for r, e, w in bench]
    assert {r for r, _, _ in bench} >= set(INFRA)


def test_the_sequential_benchmark_runs_the_same_roles_whole():
    bench = _roles("tools/bench_sequential.yml")
    assert [(r, e) for r, e, _ in bench if r in INFRA] == [(r, "main") for r in INFRA]
    overlap_wiring = {}
    for role, _, wiring in _roles("tools/bench_overlap.yml"):
        overlap_wiring.setdefault(role, {}).update(wiring)
    for role, _, wiring in bench:
        assert wiring == overlap_wiring[role], role
