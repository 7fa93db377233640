"""The entry points other than deploy_party.yml (upgrade_party.yml, teardown_party.yml, prss_init.yml,
check_network.yml, render_party.yml): preflight first, with the playbook named, so that the network,
every role's inputs and the playbook's own variables (rules_playbooks) are checked before any AWS
or Kubernetes request."""
import json
import os

import pytest
import yaml

from ansible_collections.threshold_kms.mpc_party.plugins.action.role_inputs import playbook_roles
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import rules_playbooks
from tests.support.playbooks import repo_playbook

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENTRY_POINTS = ["deploy_party.yml", "upgrade_party.yml", "teardown_party.yml", "prss_init.yml", "check_network.yml",
                "render_party.yml"]
PCR = "ab" * 48


def plays(playbook):
    with open(os.path.join(ROOT, "playbooks", playbook)) as handle:
        return yaml.safe_load(handle)


def first_tasks(play):
    """The tasks of a play in the order they run (its roles: run after pre_tasks)."""
    roles = [{"ansible.builtin.import_role": {"name": r["role"] if isinstance(r, dict) else r}}
             for r in play.get("roles") or []]
    return (play.get("pre_tasks") or []) + roles + (play.get("tasks") or []) + (play.get("post_tasks") or [])


def module_of(task):
    return next((k for k in task if k.startswith("threshold_kms.") or k.startswith("ansible.")), None)


@pytest.mark.parametrize("playbook", ENTRY_POINTS)
def test_preflight_runs_first_and_knows_the_playbook(playbook):
    first = first_tasks(plays(playbook)[0])[0]
    assert module_of(first) == "ansible.builtin.import_role", first
    assert first["ansible.builtin.import_role"]["name"] == "threshold_kms.mpc_party.preflight"
    assert first["vars"]["preflight_playbook"] == playbook
    assert "always" in first.get("tags", []), "a --tags run must not skip preflight"


@pytest.mark.parametrize("playbook", ENTRY_POINTS)
def test_the_playbooks_own_variables_are_checked_by_preflight_not_by_a_task_of_their_own(playbook):
    """One check for everything: preflight's role_inputs reads the playbook's own variables too
    (rules_playbooks.OPTIONS), so no entry point keeps a second input-check task."""
    with open(os.path.join(ROOT, "playbooks", playbook)) as handle:
        text = handle.read()
    assert "playbook_inputs" not in text and "rules_playbooks" not in text
    assert (playbook[:-4] in rules_playbooks.OPTIONS) == (playbook != "deploy_party.yml")


@pytest.mark.parametrize("playbook", ENTRY_POINTS)
def test_every_role_entry_point_a_playbook_runs_has_a_spec(playbook):
    """What preflight's role_inputs checks: each (role, tasks_from) is an entry point of the role's
    argument specs (render_party.yml's nitro_nodegroup `render` among them)."""
    found = playbook_roles(os.path.join(ROOT, "playbooks", playbook))
    assert found
    for item in found:
        role, entry = item[0], item[1]
        with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml")) as handle:
            assert entry in yaml.safe_load(handle)["argument_specs"], (playbook, role, entry)
    if playbook == "render_party.yml":
        assert ("nitro_nodegroup", "render") in [(i[0], i[1]) for i in found]


def test_no_jinja_input_check_is_left_in_upgrade_and_teardown():
    """The upgrade and teardown inputs are checked in Python; what is left in YAML reads cloud state."""
    for playbook in ("upgrade_party.yml", "teardown_party.yml"):
        with open(os.path.join(ROOT, "playbooks", playbook)) as handle:
            text = handle.read()
        for gone in ("_upgrade_errors", "_teardown_errors", "is not match('^[A-Za-z0-9_]", "^sha256:[0-9a-f]{64}$",
                     "[0-9a-fA-F]{96}", "'Optimal', 'Healthy', 'Degraded', 'none'", "': true or false'"):
            assert gone not in text, (playbook, gone)


# ------------------------------------------------------------------------- the rules themselves
def play_vars(playbook):
    """The playbook's own defaults (its first play's vars), as the run would template them."""
    return {k: v for k, v in (plays(playbook)[0].get("vars") or {}).items() if k in rules_playbooks.OPTIONS[playbook[:-4]]}


GOOD = {
    "upgrade_party.yml": dict(upgrade_image_tag="v0.15.1", upgrade_pcr0=PCR, upgrade_pcr1=PCR.upper(), upgrade_pcr2=PCR),
    "teardown_party.yml": dict(teardown_confirm_party="party1"),
    "check_network.yml": dict(check_network_pod="kms-core-0"),
    "render_party.yml": dict(render_dir="/tmp/render"),
}
CONTEXT = {"check_mode": False, "party_name": "party1"}


@pytest.mark.parametrize("playbook", sorted(GOOD))
def test_good_inputs_pass(playbook):
    values = dict(play_vars(playbook), **GOOD[playbook])
    assert rules_playbooks.check(playbook, values, CONTEXT) == []


BAD = [
    # (playbook, values changed, variable named, words of the rule)
    ("upgrade_party.yml", {"upgrade_image_tag": ""}, "upgrade_image_tag", "published release tag"),
    ("upgrade_party.yml", {"upgrade_image_tag": "latest"}, "upgrade_image_tag", "never latest"),
    ("upgrade_party.yml", {"upgrade_image_tag": "v0.15 rc"}, "upgrade_image_tag", "no spaces"),
    ("upgrade_party.yml", {"upgrade_image_digest": "sha256:abc"}, "upgrade_image_digest", "sha256:<64 lowercase hex>"),
    ("upgrade_party.yml", {"upgrade_pcr0": "ab" * 47}, "upgrade_pcr0", "96 hexadecimal"),
    ("upgrade_party.yml", {"upgrade_pcr2": "g" * 96}, "upgrade_pcr2", "96 hexadecimal"),
    ("upgrade_party.yml", {"upgrade_remove_old_release": "maybe"}, "upgrade_remove_old_release", "type bool"),
    ("upgrade_party.yml", {"upgrade_require_quorum": "perhaps"}, "upgrade_require_quorum", "type bool"),
    ("upgrade_party.yml", {"upgrade_health_fail_below": "Fine"}, "upgrade_health_fail_below", "Optimal, Healthy"),
    ("upgrade_party.yml", {"upgrade_health_timeout": 0}, "upgrade_health_timeout", "1..3600"),
    ("upgrade_party.yml", {"upgrade_health_timeout": "five"}, "upgrade_health_timeout", "type int"),
    ("upgrade_party.yml", {"upgrade_health_retries": -1}, "upgrade_health_retries", "1..1000"),
    ("teardown_party.yml", {"teardown_confirm_party": ""}, "teardown_confirm_party", "name of this party, party1"),
    ("teardown_party.yml", {"teardown_confirm_party": "party2"}, "teardown_confirm_party", "got party2"),
    ("teardown_party.yml", {"teardown_delete_database": "maybe"}, "teardown_delete_database", "type bool"),
    ("teardown_party.yml", {"teardown_delete_nonempty_vaults": "all"}, "teardown_delete_nonempty_vaults", "type bool"),
    ("teardown_party.yml", {"teardown_schedule_kms_key_deletion": "now"}, "teardown_schedule_kms_key_deletion",
     "type bool"),
    ("check_network.yml", {"check_network_fail_below": "Unhealthy"}, "check_network_fail_below", "must be one of"),
    ("check_network.yml", {"check_network_timeout": 0}, "check_network_timeout", "1..3600"),
    ("render_party.yml", {"render_dir": ""}, "render_dir", "required"),
    ("render_party.yml", {"render_target": "/tmp"}, "render_target", "not a variable of this playbook"),
]


@pytest.mark.parametrize("playbook, change, variable, words", BAD,
                         ids=["%s-%s" % (b[0][:-4], b[2]) + ("-%d" % i) for i, b in enumerate(BAD)])
def test_bad_inputs_name_the_variable_and_the_rule(playbook, change, variable, words):
    values = dict(play_vars(playbook), **GOOD[playbook])
    values.update(change)
    problems = rules_playbooks.check(playbook, values, CONTEXT)
    prefix = "%s: %s: " % (playbook[:-4], variable)
    assert [p for p in problems if p.startswith(prefix) and words in p], problems


def test_every_problem_at_once():
    values = dict(play_vars("upgrade_party.yml"), upgrade_image_tag="latest", upgrade_pcr0="x",
                  upgrade_health_fail_below="Fine")
    problems = rules_playbooks.check("upgrade_party.yml", values, CONTEXT)
    named = sorted(set(p.split(": ")[1] for p in problems))
    assert named == ["upgrade_health_fail_below", "upgrade_image_tag", "upgrade_pcr0", "upgrade_pcr1", "upgrade_pcr2"]


def test_a_teardown_in_check_mode_needs_no_confirmation():
    values = dict(play_vars("teardown_party.yml"))
    assert rules_playbooks.check("teardown_party.yml", values, dict(CONTEXT, check_mode=True)) == []
    assert rules_playbooks.check("teardown_party.yml", values, CONTEXT)


def test_an_unknown_playbook_is_refused():
    assert "no inputs are known" in rules_playbooks.check("deploy_everything.yml", {}, {})[0]


# ------------------------------------------------------- each entry point, run against nothing
# No stand-in runs: repo_playbook points HTTP(S) at an unreachable proxy, so a request would fail
# loudly. A bad variable must stop the run in preflight, the failing task being the last task run.
GOOD_UPGRADE = {"upgrade_image_tag": "v0.15.1", "upgrade_pcr0": PCR, "upgrade_pcr1": PCR, "upgrade_pcr2": PCR}
PREFLIGHT = "Validate the variables of every role this playbook runs"
RUNS = [
    # (playbook, extra vars, task that fails, words of the message)
    ("upgrade_party.yml", dict(GOOD_UPGRADE, upgrade_image_tag="latest"), PREFLIGHT,
     "upgrade_party: upgrade_image_tag: a published release tag"),
    ("upgrade_party.yml", dict(GOOD_UPGRADE, eks_cluster_kubeconfig_path="kubeconfig.yaml"),
     PREFLIGHT, "eks_cluster: eks_cluster_kubeconfig_path"),
    ("teardown_party.yml", {"teardown_delete_database": "maybe"}, PREFLIGHT,
     "teardown_party: teardown_delete_database: must be of type bool"),
    ("prss_init.yml", {"prss_init_timeout": "soon"}, PREFLIGHT,
     "prss_init: prss_init_timeout: must be of type float"),
    ("check_network.yml", {"check_network_timeout": 0}, PREFLIGHT,
     "check_network: check_network_timeout: seconds, 1..3600 (got 0)"),
    ("render_party.yml", {}, PREFLIGHT, "render_party: render_dir: required"),
    ("render_party.yml", {"render_dir": "/nonexistent/render", "nitro_nodegroup_device_plugin_image": "bad image!"},
     PREFLIGHT, "nitro_nodegroup: nitro_nodegroup_device_plugin_image"),
]


@pytest.mark.parametrize("playbook, extra, task, words", RUNS, ids=["%s-%d" % (r[0][:-4], i) for i, r in enumerate(RUNS)])
def test_a_bad_variable_stops_the_entry_point_in_preflight(tmp_path, playbook, extra, task, words):
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps(extra))
    code, output = repo_playbook(playbook, "inventories/sandbox", "--limit", "party1", "-e", "@%s" % extra_file,
                                 timeout=300)
    assert code == 2, output[-3000:]
    tasks = [line for line in output.splitlines() if line.startswith("TASK [")]
    assert task in tasks[-1], tasks  # nothing ran after the check that failed
    assert words in " ".join(output.split()), output[-3000:]
