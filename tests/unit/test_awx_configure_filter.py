"""The awx_configure_plan / awx_job_templates filters (plugins/filter/awx_configure.py) behind
playbooks/awx_configure.yml: input rules, credential decisions, survey specs and their defaults."""
import pathlib
import re

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.threshold_kms.mpc_party.plugins.filter.awx_configure import (
    FilterModule,
    awx_configure_plan,
    awx_job_templates,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
KEY_HEADER = "-----BEGIN OPENSSH PRIVATE KEY-----"


def good(**changes):
    inputs = {
        "awx_party": "party1",
        "awx_organization": "party1-kms",
        "awx_project_url": "https://git.example.org/ops/kms-party1.git",
        "awx_project_branch": "main",
        "awx_execution_environment_image": "registry.example.org/threshold-kms/ee:0.1.0",
        "awx_check_network_interval_minutes": 60,
        "AWX_AWS_ACCESS_KEY_ID": True,
        "AWX_AWS_SECRET_ACCESS_KEY": True,
        "AWX_SCM_USERNAME": "",
        "AWX_SCM_PASSWORD": False,
        "AWX_SCM_SSH_KEY": "",
        "AWX_SCM_SSH_KEY_PASSPHRASE": False,
    }
    inputs.update(changes)
    return inputs


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {"awx_configure_plan", "awx_job_templates"}


def test_good_inputs_pass_and_create_the_aws_credential():
    plan = awx_configure_plan(good())
    assert plan["errors"] == []
    assert plan["aws_credential"] is True
    assert plan["scm_credential"] == ""
    assert plan["notes"] == []
    assert plan["rrule"] == "DTSTART;TZID=UTC:20250101T000000 RRULE:FREQ=MINUTELY;INTERVAL=60"


@pytest.mark.parametrize("changes, variable", [
    ({"awx_party": ""}, "awx_party"),
    ({"awx_party": "Party1"}, "awx_party"),
    ({"awx_party": "p1"}, "awx_party"),
    ({"awx_organization": " "}, "awx_organization"),
    ({"awx_project_url": ""}, "awx_project_url"),
    ({"awx_project_url": "http://git.example.org/ops/kms.git"}, "awx_project_url"),
    ({"awx_project_url": "git://git.example.org/ops/kms.git"}, "awx_project_url"),
    ({"awx_project_url": "https://ops:ghp_token@git.example.org/ops/kms.git"}, "awx_project_url"),
    ({"awx_project_branch": ""}, "awx_project_branch"),
    ({"awx_project_branch": "main branch"}, "awx_project_branch"),
    ({"awx_project_branch": "-x"}, "awx_project_branch"),
    ({"awx_project_branch": "a..b"}, "awx_project_branch"),
    ({"awx_execution_environment_image": ""}, "awx_execution_environment_image"),
    ({"awx_execution_environment_image": "registry.example.org/threshold-kms/ee"}, "awx_execution_environment_image"),
    ({"awx_execution_environment_image": "registry.example.org/threshold-kms/ee:latest"}, "awx_execution_environment_image"),
    ({"awx_execution_environment_image": "registry.example.org/threshold-kms/ee:LATEST"}, "awx_execution_environment_image"),
    ({"awx_execution_environment_image": "registry.example.org/threshold-kms/ee:latest@sha256:" + "0" * 64},
     "awx_execution_environment_image"),
    ({"awx_execution_environment_image": "registry.example.org/threshold-kms/ee@sha256:" + "0" * 63},
     "awx_execution_environment_image"),
    ({"awx_execution_environment_image": "registry.example.org/threshold-kms/ee:0.1.0@sha256:abc"},
     "awx_execution_environment_image"),
    ({"awx_execution_environment_image": "registry.example.org/Threshold/ee:0.1.0"}, "awx_execution_environment_image"),
    ({"awx_execution_environment_image": "ee:0.1 0"}, "awx_execution_environment_image"),
    ({"awx_check_network_interval_minutes": 4}, "awx_check_network_interval_minutes"),
    ({"awx_check_network_interval_minutes": 1441}, "awx_check_network_interval_minutes"),
    ({"awx_check_network_interval_minutes": "hourly"}, "awx_check_network_interval_minutes"),
    ({"awx_check_network_interval_minutes": True}, "awx_check_network_interval_minutes"),
    ({"awx_check_network_interval_minutes": None}, "awx_check_network_interval_minutes"),
    ({"AWX_AWS_SECRET_ACCESS_KEY": False}, "AWX_AWS_ACCESS_KEY_ID: set without AWX_AWS_SECRET_ACCESS_KEY"),
    ({"AWX_AWS_ACCESS_KEY_ID": False}, "AWX_AWS_SECRET_ACCESS_KEY: set without AWX_AWS_ACCESS_KEY_ID"),
    ({"AWX_SCM_PASSWORD": True}, "AWX_SCM_USERNAME: required with AWX_SCM_PASSWORD"),
    ({"AWX_SCM_USERNAME": "ops"}, "AWX_SCM_USERNAME: set without"),
    ({"AWX_SCM_USERNAME": "ops", "AWX_SCM_PASSWORD": True, "AWX_SCM_SSH_KEY": KEY_HEADER},
     "AWX_SCM_PASSWORD and AWX_SCM_SSH_KEY: set one of them"),
    ({"AWX_SCM_SSH_KEY": KEY_HEADER}, "AWX_SCM_SSH_KEY: a private key is for an ssh://"),
    ({"awx_project_url": "git@git.example.org:ops/kms.git", "AWX_SCM_SSH_KEY": "~/.ssh/id_ed25519"},
     "AWX_SCM_SSH_KEY: the private key itself"),
    ({"awx_project_url": "ssh://git@git.example.org/ops/kms.git", "AWX_SCM_USERNAME": "ops", "AWX_SCM_PASSWORD": True},
     "AWX_SCM_PASSWORD: a token is for an https://"),
    ({"AWX_SCM_SSH_KEY_PASSPHRASE": True}, "AWX_SCM_SSH_KEY_PASSPHRASE: set without AWX_SCM_SSH_KEY"),
])
def test_each_broken_rule_names_its_variable(changes, variable):
    errors = awx_configure_plan(good(**changes))["errors"]
    assert len(errors) == 1, errors
    assert errors[0].startswith(variable.split(":")[0] + ":")
    assert variable in errors[0]


def test_one_failure_lists_every_problem():
    errors = awx_configure_plan(good(awx_party="x", awx_project_url="", awx_execution_environment_image="ee:latest",
                                     awx_check_network_interval_minutes=0, AWX_AWS_SECRET_ACCESS_KEY=False,
                                     AWX_SCM_PASSWORD=True))["errors"]
    named = [error.split(":")[0] for error in errors]
    assert named == ["awx_party", "awx_project_url", "awx_execution_environment_image",
                     "awx_check_network_interval_minutes", "AWX_AWS_ACCESS_KEY_ID", "AWX_SCM_USERNAME"]


@pytest.mark.parametrize("image", [
    "registry.example.org/threshold-kms/ee:0.1.0",
    "registry.example.org:5000/threshold-kms/ee:v0.1.0-rc.1",
    "quay.io/org/sub/ee_image:2025.01@sha256:" + "0123456789abcdef" * 4,
    "localhost/ee:1",
    "registry.example.org/threshold-kms/ee@sha256:" + "0123456789abcdef" * 4,  # pinned by its digest alone
    "ee:1",
])
def test_pinned_images_pass(image):
    assert awx_configure_plan(good(awx_execution_environment_image=image))["errors"] == []


@pytest.mark.parametrize("url, kind", [
    ("https://git.example.org/ops/kms.git", "https"),
    ("https://git.example.org:8443/ops/kms", "https"),
    ("ssh://git@git.example.org:2222/ops/kms.git", "ssh"),
    ("git@git.example.org:ops/kms.git", "ssh"),
])
def test_project_urls(url, kind):
    scm = {"AWX_SCM_USERNAME": "ops", "AWX_SCM_PASSWORD": True} if kind == "https" else {"AWX_SCM_SSH_KEY": KEY_HEADER}
    plan = awx_configure_plan(good(awx_project_url=url, **scm))
    assert plan["errors"] == []
    assert plan["scm_credential"] == ("password" if kind == "https" else "ssh_key")


def test_without_aws_keys_no_credential_and_a_note_on_aws_access():
    plan = awx_configure_plan(good(AWX_AWS_ACCESS_KEY_ID=False, AWX_AWS_SECRET_ACCESS_KEY=""))
    assert plan["errors"] == []
    assert plan["aws_credential"] is False
    assert len(plan["notes"]) == 1 and "no AWS credential is created" in plan["notes"][0]
    assert "IRSA" in plan["notes"][0]


def test_interval_from_the_command_line_is_text():
    plan = awx_configure_plan(good(awx_check_network_interval_minutes="15"))
    assert plan["errors"] == []
    assert plan["rrule"].endswith("RRULE:FREQ=MINUTELY;INTERVAL=15")
    assert awx_configure_plan(good(awx_check_network_interval_minutes="0"))["rrule"] == ""


def test_inputs_must_be_a_dict():
    with pytest.raises(AnsibleFilterError, match="expected a dict"):
        awx_configure_plan(["party1"])


# ---------------------------------------------------------------- awx_job_templates

@pytest.fixture()
def collection(tmp_path):
    """A small collection tree: a playbook with play vars and a role with defaults and argument specs."""
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "day2.yml").write_text(yaml.safe_dump([
        {"name": "one", "hosts": "all", "vars": {"day2_flag": False, "day2_level": "Healthy", "day2_tries": 24,
                                                 "day2_empty": "", "day2_expr": "{{ other }}"}},
        {"name": "two", "hosts": "all", "vars": {"day2_level": "Degraded", "day2_late": 3}},
    ]))
    role = tmp_path / "roles" / "thing"
    (role / "defaults").mkdir(parents=True)
    (role / "meta").mkdir()
    (role / "defaults" / "main.yml").write_text("thing_timeout: 1200\nthing_mode: fast\n")
    (role / "meta" / "argument_specs.yml").write_text(yaml.safe_dump({"argument_specs": {"main": {"options": {
        "thing_window": {"type": "int", "default": 30}, "thing_required": {"type": "str", "required": True}}}}}))
    return tmp_path


def template(*questions, prompts=("verbosity",), playbook="playbooks/day2.yml"):
    return [{"name": "party1 day2", "playbook": playbook, "description": "d", "prompts": list(prompts),
             "survey": list(questions)}]


def question(variable, qtype="text", source="playbooks/day2.yml", required=False, **extra):
    entry = {"variable": variable, "question_name": variable, "type": qtype, "required": required}
    if source:
        entry["default_from"] = source
    entry.update(extra)
    return entry


def spec_of(result):
    return {q["variable"]: q for q in result[0]["survey_spec"]["spec"]}


def test_defaults_come_from_play_vars_role_defaults_and_argument_specs(collection):
    result = awx_job_templates(template(
        question("day2_flag", "boolean"),
        question("day2_level", "multiplechoice", choices=["Optimal", "Healthy", "Degraded"]),
        question("day2_tries", "integer", min=1, max=100),
        question("day2_late", "integer"),
        question("thing_timeout", "integer", source="roles/thing/defaults/main.yml", min=60, max=7200),
        question("thing_mode", source="roles/thing/defaults/main.yml"),
        question("thing_window", "integer", source="roles/thing/meta/argument_specs.yml"),
        question("day2_confirm", source=None, required=True, min=1),
    ), str(collection))
    spec = spec_of(result)
    assert spec["day2_flag"] == {"question_name": "day2_flag", "question_description": "", "required": False,
                                 "type": "multiplechoice", "variable": "day2_flag", "choices": ["false", "true"],
                                 "default": "false"}
    assert spec["day2_level"]["default"] == "Healthy"  # the first play that sets it
    assert spec["day2_tries"]["default"] == 24 and spec["day2_late"]["default"] == 3
    assert spec["thing_timeout"]["default"] == 1200 and spec["thing_mode"]["default"] == "fast"
    assert spec["thing_window"]["default"] == 30
    assert "default" not in spec["day2_confirm"] and spec["day2_confirm"]["required"] is True
    assert result[0]["survey_enabled"] is True


def test_a_changed_collection_default_changes_the_survey(collection):
    (collection / "roles" / "thing" / "defaults" / "main.yml").write_text("thing_timeout: 1800\n")
    result = awx_job_templates(template(question("thing_timeout", "integer", source="roles/thing/defaults/main.yml")),
                               str(collection))
    assert spec_of(result)["thing_timeout"]["default"] == 1800


def test_prompts_become_every_ask_option(collection):
    result = awx_job_templates(template(prompts=["check", "tags"]), str(collection))[0]
    assert result["ask_job_type_on_launch"] and result["ask_tags_on_launch"]
    assert not any(result[k] for k in ("ask_diff_mode_on_launch", "ask_limit_on_launch", "ask_skip_tags_on_launch",
                                       "ask_verbosity_on_launch", "ask_variables_on_launch"))
    assert result["survey_enabled"] is False and result["survey_spec"] == {}


@pytest.mark.parametrize("bad, message", [
    (question("day2_nothing", source=None), "an optional question needs default_from"),
    (question("day2_empty"), "is empty"),
    (question("day2_expr"), "is an expression"),
    (question("day2_unknown"), "has no default for day2_unknown"),
    (question("day2_tries", "boolean"), "not a boolean"),
    (question("day2_flag", "integer"), "not an integer"),
    (question("day2_tries", "integer", min=30), "outside 30..None"),
    (question("day2_level", "multiplechoice", choices=["Optimal"]), "not one of the choices"),
    (question("day2_level", "multiplechoice"), "needs choices"),
    (question("day2_level", "textarea"), "needs variable, question_name and a type"),
    (question("day2_level", required="no"), "required must be true or false"),
    (question("day2_level", source="../secrets.yml"), "is not a role's defaults"),
    (question("day2_level", source="playbooks/missing.yml"), "cannot read the defaults"),
])
def test_bad_questions_are_refused_naming_template_and_variable(collection, bad, message):
    with pytest.raises(AnsibleFilterError) as err:
        awx_job_templates(template(bad), str(collection))
    assert "party1 day2, question %s" % bad["variable"] in str(err.value)
    assert message in str(err.value)


def test_bad_templates_are_refused(collection):
    with pytest.raises(AnsibleFilterError, match="unknown prompts forks"):
        awx_job_templates(template(prompts=["forks"]), str(collection))
    with pytest.raises(AnsibleFilterError, match="no playbook playbooks/gone.yml"):
        awx_job_templates(template(playbook="playbooks/gone.yml"), str(collection))
    with pytest.raises(AnsibleFilterError, match="asked twice"):
        awx_job_templates(template(question("day2_level", "multiplechoice", choices=["Healthy"]),
                                   question("day2_level", "multiplechoice", choices=["Healthy"])), str(collection))


# ---------------------------------------------------------------- the real awx_configure.yml

def real_templates():
    play = yaml.safe_load((ROOT / "playbooks" / "awx_configure.yml").read_text())[0]
    return {t["playbook"]: t for t in awx_job_templates(play["vars"]["awx_job_templates"], str(ROOT))}


def doc_defaults(doc):
    """`| variable(s) | default | meaning |` rows of a docs table: {variable: default as written}."""
    rows = {}
    for line in (ROOT / "docs" / doc).read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([a-z_0-9]+)`", cells[0])
        values = re.findall(r"`([^`]*)`", cells[1]) or [cells[1]]
        for name, value in zip(names, values if len(values) == len(names) else values * len(names)):
            rows[name] = value
    return rows


@pytest.mark.parametrize("playbook, prefix", [("playbooks/upgrade_party.yml", "upgrade_"),
                                              ("playbooks/teardown_party.yml", "teardown_")])
def test_every_documented_variable_is_surveyed_with_the_documented_default(playbook, prefix):
    """docs/upgrade-and-teardown.md lists what an operator sets; each is a question (or, with an
    empty default, named for the Variables prompt), and the survey shows the documented default."""
    templ = real_templates()[playbook]
    spec = {q["variable"]: q for q in templ["survey_spec"]["spec"]}
    documented = {k: v for k, v in doc_defaults("upgrade-and-teardown.md").items() if k.startswith(prefix)}
    assert documented, "no table of %s variables found" % prefix
    for variable, default in documented.items():
        if default in ('""', "") and variable not in spec:
            assert variable in templ["description"] and templ["ask_variables_on_launch"], variable
            continue
        assert variable in spec, variable
        if "required" in default or default in ('""', ""):
            assert spec[variable]["required"] is True and "default" not in spec[variable], variable
        else:
            assert str(spec[variable]["default"]) == default, variable


def test_real_templates_prompt_where_the_docs_say():
    templates = real_templates()
    deploy, upgrade = templates["playbooks/deploy_party.yml"], templates["playbooks/upgrade_party.yml"]
    # deploy_party.yml refuses --tags but lets --skip-tags leave out some roles (docs/troubleshooting.md)
    assert not deploy["ask_tags_on_launch"] and deploy["ask_skip_tags_on_launch"] and deploy["ask_limit_on_launch"]
    # the upgrade phases are run with --tags (docs/upgrade-and-teardown.md)
    assert upgrade["ask_tags_on_launch"]
    assert all(t["ask_verbosity_on_launch"] and t["ask_diff_mode_on_launch"] for t in templates.values())
    for templ in templates.values():
        for q in templ["survey_spec"].get("spec", []):
            assert q["required"] or q["default"] not in ("", None), (templ["name"], q["variable"])
