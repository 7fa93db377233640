# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Decisions of playbooks/awx_configure.yml, made before any AWX object is written.

``awx_configure_plan``: the operator's inputs checked (one message per broken rule, each naming
its variable), whether an AWS and an SCM credential are created, and the schedule's rrule.
``awx_job_templates``: the job templates' launch prompts and survey specs, every optional
question's default read from the collection's own defaults (documentation:
plugins/filter/awx_configure_plan.yml, plugins/filter/awx_job_templates.yml).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.yaml import yaml_load

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.input_rules import image_errors

PARTY_RE = re.compile(r"^party[0-9]+$")
HTTPS_URL_RE = re.compile(r"^https://(?P<userinfo>[^/@\s]+@)?[A-Za-z0-9.-]+(?::[0-9]+)?/\S+$")
SSH_URL_RE = re.compile(r"^(?:ssh://(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+(?::[0-9]+)?/\S+"
                        r"|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/\s]\S*)$")
BRANCH_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]*$")
SSH_KEY_HEADER_RE = re.compile(r"^-----BEGIN (?:OPENSSH|RSA|EC|DSA|ENCRYPTED)? ?PRIVATE KEY-----$")
INTERVAL_MIN = 5
INTERVAL_MAX = 1440
# the first occurrence of a schedule; in the past, so the next run is the next interval from now
RRULE_DTSTART = "DTSTART;TZID=UTC:20250101T000000"

PROMPTS = {
    "check": "ask_job_type_on_launch",
    "diff": "ask_diff_mode_on_launch",
    "limit": "ask_limit_on_launch",
    "tags": "ask_tags_on_launch",
    "skip_tags": "ask_skip_tags_on_launch",
    "verbosity": "ask_verbosity_on_launch",
    "variables": "ask_variables_on_launch",
}
QUESTION_TYPES = ("text", "integer", "multiplechoice", "boolean")
BOOLEAN_CHOICES = ["false", "true"]


def _plain(value):
    """Builtin containers (Ansible hands filters its own lazy/tagged types)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    return value


def _text(inputs, name):
    value = inputs.get(name)
    return "" if value is None else str(value).strip()


def _is_set(inputs, name):
    """An environment variable given to the filter as a boolean (set and non-empty) - or its text."""
    value = inputs.get(name)
    if isinstance(value, bool):
        return value
    return value is not None and str(value).strip() != ""


def _interval(value):
    """Minutes between scheduled checks as an int, or None when it is not a whole number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def project_url_kind(url):
    """'https', 'ssh' or '' (neither) for a git URL AWX can clone."""
    if HTTPS_URL_RE.match(url):
        return "https"
    if SSH_URL_RE.match(url):
        return "ssh"
    return ""


def awx_configure_plan(inputs):
    """Check the inputs of awx_configure.yml and decide what it creates.

    ``inputs`` holds the playbook's variables by name and, for the environment variables that
    carry secrets (AWX_AWS_ACCESS_KEY_ID, AWX_AWS_SECRET_ACCESS_KEY, AWX_SCM_PASSWORD), only
    whether they are set (a boolean); AWX_SCM_SSH_KEY is given as the key's first line.
    Returns ``errors`` (one message per broken rule, naming the variable), ``aws_credential``,
    ``scm_credential`` (``''``, ``password`` or ``ssh_key``), ``rrule`` and ``notes``.
    """
    if not isinstance(inputs, dict):
        raise AnsibleFilterError("awx_configure_plan: expected a dict of awx_configure.yml inputs")
    inputs = _plain(inputs)
    errors, notes = [], []

    party = _text(inputs, "awx_party")
    if not PARTY_RE.match(party):
        errors.append("awx_party: party<N>, the party's inventory name, e.g. party1 (got %r)" % party)

    if not _text(inputs, "awx_organization"):
        errors.append("awx_organization: the AWX organisation's name, not empty")

    url = _text(inputs, "awx_project_url")
    url_kind = project_url_kind(url)
    if not url:
        errors.append("awx_project_url: empty; the git URL of the repository with the playbooks and "
                      "inventories/<party> (https://host/path or ssh://host/path or user@host:path)")
    elif not url_kind:
        errors.append("awx_project_url: %r is not an https://, ssh:// or user@host:path git URL" % url)
    elif url_kind == "https" and HTTPS_URL_RE.match(url).group("userinfo"):
        errors.append("awx_project_url: holds a user name or token before @; give them as AWX_SCM_USERNAME and "
                      "AWX_SCM_PASSWORD instead (they would be stored in the project's URL in clear)")

    branch = _text(inputs, "awx_project_branch")
    if not BRANCH_RE.match(branch) or ".." in branch or branch.endswith(("/", ".lock")):
        errors.append("awx_project_branch: a git branch or tag name (letters, digits, . _ / -), got %r" % branch)

    errors.extend(image_errors("awx_execution_environment_image", _text(inputs, "awx_execution_environment_image"),
                               what="execution environment image (the one you built and pushed)"))

    interval = _interval(inputs.get("awx_check_network_interval_minutes"))
    if interval is None or not INTERVAL_MIN <= interval <= INTERVAL_MAX:
        errors.append("awx_check_network_interval_minutes: minutes between scheduled network checks, a whole "
                      "number from %d to %d (got %r)" % (INTERVAL_MIN, INTERVAL_MAX,
                                                          inputs.get("awx_check_network_interval_minutes")))

    key_id, secret = _is_set(inputs, "AWX_AWS_ACCESS_KEY_ID"), _is_set(inputs, "AWX_AWS_SECRET_ACCESS_KEY")
    if key_id != secret:
        errors.append("%s: set without %s; set both (an AWS credential in AWX) or neither" % (
            ("AWX_AWS_ACCESS_KEY_ID", "AWX_AWS_SECRET_ACCESS_KEY") if key_id
            else ("AWX_AWS_SECRET_ACCESS_KEY", "AWX_AWS_ACCESS_KEY_ID")))
    elif not key_id:
        notes.append("AWX_AWS_ACCESS_KEY_ID and AWX_AWS_SECRET_ACCESS_KEY are not set: no AWS credential is created "
                     "and the job templates reference none. Jobs then use the AWS default credential chain of the "
                     "job's container: the IAM role of an IRSA service account of AWX's container group, or of the "
                     "node AWX runs jobs on (docs/awx.md, \"Credentials\").")

    scm_user = _text(inputs, "AWX_SCM_USERNAME")
    scm_password = _is_set(inputs, "AWX_SCM_PASSWORD")
    scm_key = _text(inputs, "AWX_SCM_SSH_KEY")
    scm = ""
    if scm_password and scm_key:
        errors.append("AWX_SCM_PASSWORD and AWX_SCM_SSH_KEY: set one of them (a token for an https:// project URL, "
                      "a private key for an ssh one), not both")
    elif scm_password:
        scm = "password"
        if not scm_user:
            errors.append("AWX_SCM_USERNAME: required with AWX_SCM_PASSWORD (the git user the token belongs to)")
        if url_kind == "ssh":
            errors.append("AWX_SCM_PASSWORD: a token is for an https:// awx_project_url; for %r give "
                          "AWX_SCM_SSH_KEY" % url)
    elif scm_key:
        scm = "ssh_key"
        if not SSH_KEY_HEADER_RE.match(scm_key):
            errors.append("AWX_SCM_SSH_KEY: the private key itself (e.g. \"$(cat ~/.ssh/id_ed25519)\"), starting "
                          "with -----BEGIN ... PRIVATE KEY-----")
        if url_kind == "https":
            errors.append("AWX_SCM_SSH_KEY: a private key is for an ssh:// or user@host:path awx_project_url; for "
                          "%r give AWX_SCM_USERNAME and AWX_SCM_PASSWORD" % url)
    elif scm_user:
        errors.append("AWX_SCM_USERNAME: set without AWX_SCM_PASSWORD or AWX_SCM_SSH_KEY; set one of them too, "
                      "or unset it for a public repository")
    if _is_set(inputs, "AWX_SCM_SSH_KEY_PASSPHRASE") and scm != "ssh_key":
        errors.append("AWX_SCM_SSH_KEY_PASSPHRASE: set without AWX_SCM_SSH_KEY")

    return {
        "errors": errors,
        "notes": notes,
        "aws_credential": key_id and secret,
        "scm_credential": scm,
        "rrule": awx_schedule_rrule(interval) if interval and INTERVAL_MIN <= interval <= INTERVAL_MAX else "",
    }


def awx_schedule_rrule(minutes):
    """The iCal rule AWX schedules with: every ``minutes`` minutes."""
    return "%s RRULE:FREQ=MINUTELY;INTERVAL=%d" % (RRULE_DTSTART, int(minutes))


def _source_defaults(root, source, cache, where):
    """Variables and their defaults in one of the collection's files.

    ``roles/<role>/defaults/main.yml``: the role's defaults; ``roles/<role>/meta/argument_specs.yml``:
    the ``default`` of each option of the ``main`` entry point; ``playbooks/<name>.yml``: the
    ``vars`` of its plays (the first play that sets a variable wins).
    """
    if source in cache:
        return cache[source]
    path = os.path.normpath(os.path.join(root, source))
    if not re.match(r"^(roles/[a-z0-9_]+/(defaults/main|meta/argument_specs)|playbooks/[a-z0-9_]+)\.yml$", source):
        raise AnsibleFilterError("%s: default_from %r is not a role's defaults/main.yml or "
                                 "meta/argument_specs.yml nor a playbook of the collection" % (where, source))
    try:
        with open(path) as handle:
            data = yaml_load(handle)
    except OSError as exc:
        raise AnsibleFilterError("%s: cannot read the defaults in %s: %s" % (where, source, exc.strerror))
    except Exception as exc:  # a YAML syntax error (PyYAML's YAMLError)
        raise AnsibleFilterError("%s: cannot read the defaults in %s: %s" % (where, source, exc))
    found = {}
    if source.startswith("playbooks/"):
        for play in data or []:
            for key, value in ((play or {}).get("vars") or {}).items():
                found.setdefault(key, value)
    elif source.endswith("argument_specs.yml"):
        options = (((data or {}).get("argument_specs") or {}).get("main") or {}).get("options") or {}
        found = {key: spec["default"] for key, spec in options.items() if isinstance(spec, dict) and "default" in spec}
    else:
        found = dict(data or {})
    cache[source] = found
    return found


def _question(template, question, root, cache):
    """One AWX survey question; its default, when it has one, is the collection's own."""
    where = "awx_job_templates: %s, question %s" % (template, question.get("variable", "?"))
    variable = question.get("variable")
    qtype = question.get("type", "text")
    required = question.get("required")
    if not variable or not question.get("question_name") or qtype not in QUESTION_TYPES:
        raise AnsibleFilterError("%s: needs variable, question_name and a type of %s" % (where, ", ".join(QUESTION_TYPES)))
    if not isinstance(required, bool):
        raise AnsibleFilterError("%s: required must be true or false" % where)
    spec = {
        "question_name": question["question_name"],
        "question_description": question.get("question_description", ""),
        "required": required,
        "type": "multiplechoice" if qtype == "boolean" else qtype,
        "variable": variable,
    }
    for bound in ("min", "max"):
        if bound in question:
            spec[bound] = int(question[bound])
    if qtype == "boolean":
        spec["choices"] = list(BOOLEAN_CHOICES)
    elif qtype == "multiplechoice":
        spec["choices"] = [str(choice) for choice in question.get("choices") or []]
        if not spec["choices"]:
            raise AnsibleFilterError("%s: a multiplechoice question needs choices" % where)

    source = question.get("default_from")
    if not source:
        if not required:
            raise AnsibleFilterError("%s: an optional question needs default_from (an empty answer must mean the "
                                     "collection's default, never an empty value)" % where)
        return spec
    defaults = _source_defaults(root, source, cache, where)
    if variable not in defaults:
        raise AnsibleFilterError("%s: %s has no default for %s" % (where, source, variable))
    default = defaults[variable]
    if isinstance(default, str) and ("{{" in default or "{%" in default):
        raise AnsibleFilterError("%s: the default in %s is an expression (%s), not a value a survey can show"
                                 % (where, source, default))
    if qtype == "boolean":
        if not isinstance(default, bool):
            raise AnsibleFilterError("%s: the default in %s is not a boolean (%r)" % (where, source, default))
        default = "true" if default else "false"
    elif qtype == "integer":
        if isinstance(default, bool) or not isinstance(default, int):
            raise AnsibleFilterError("%s: the default in %s is not an integer (%r)" % (where, source, default))
        if not spec.get("min", default) <= default <= spec.get("max", default):
            raise AnsibleFilterError("%s: the default %d in %s is outside %s..%s"
                                     % (where, default, source, spec.get("min"), spec.get("max")))
    else:
        default = "" if default is None else str(default)
        if default == "":
            raise AnsibleFilterError("%s: the default in %s is empty; an empty answer would reach the playbook as an "
                                     "empty value (leave the variable to the Variables prompt instead)" % (where, source))
        if "choices" in spec and default not in spec["choices"]:
            raise AnsibleFilterError("%s: the default %r in %s is not one of the choices %s"
                                     % (where, default, source, spec["choices"]))
    spec["default"] = default
    return spec


def awx_job_templates(templates, root):
    """Job templates with their launch prompts and survey specs, ready for awx.awx.job_template.

    Each template: ``name``, ``playbook``, ``description``, ``prompts`` (a list of check, diff,
    limit, tags, skip_tags, verbosity, variables) and ``survey`` (questions: ``variable``,
    ``question_name``, ``type`` text/integer/multiplechoice/boolean, ``required``, ``min``/``max``,
    ``choices``, and ``default_from``: the collection file whose default the survey shows).
    ``root`` is the collection's root directory.
    """
    if not isinstance(templates, list):
        raise AnsibleFilterError("awx_job_templates: expected a list of job templates")
    root = str(root)
    cache = {}
    result = []
    for template in _plain(templates):
        name = template.get("name")
        if not name or not template.get("playbook"):
            raise AnsibleFilterError("awx_job_templates: every template needs a name and a playbook (got %r)" % template)
        if not os.path.isfile(os.path.join(root, template["playbook"])):
            raise AnsibleFilterError("awx_job_templates: %s: no playbook %s in the collection" % (name, template["playbook"]))
        prompts = template.get("prompts") or []
        unknown = sorted(set(prompts) - set(PROMPTS))
        if unknown:
            raise AnsibleFilterError("awx_job_templates: %s: unknown prompts %s (known: %s)"
                                     % (name, ", ".join(unknown), ", ".join(sorted(PROMPTS))))
        questions = [_question(name, question, root, cache) for question in template.get("survey") or []]
        variables = [q["variable"] for q in questions]
        if len(set(variables)) != len(variables):
            raise AnsibleFilterError("awx_job_templates: %s: a variable is asked twice (%s)" % (name, ", ".join(variables)))
        entry = {
            "name": name,
            "playbook": template["playbook"],
            "description": template.get("description", ""),
            "survey_enabled": bool(questions),
            "survey_spec": {"name": name, "description": template.get("description", ""), "spec": questions}
            if questions else {},
        }
        entry.update({field: key in prompts for key, field in PROMPTS.items()})
        result.append(entry)
    return result


class FilterModule(object):
    def filters(self):
        return {
            "awx_configure_plan": awx_configure_plan,
            "awx_job_templates": awx_job_templates,
        }
