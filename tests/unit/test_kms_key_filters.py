"""kms_key_in_place and kms_key_ids (plugins/filter/kms_keys.py) on what amazon.aws.kms_key_info reads
from a real moto server (port range 29850-29859), against what amazon.aws.kms_key itself then does.

amazon.aws's own kms_key and kms_key_info modules run in-process (their main(), as ansible would run
them, only without a process per call): keys are made by kms_key with the settings of nitro_nodegroup's
kms.yml; some drift out of band (boto3, as an operator's console would); then every key is read with
kms_key_info, kms_key runs on each with the same parameters, and each is read again. A key the filter
calls in place is one the module reports unchanged; every drifted one is not in place, the module
reports a change (it repairs) and the key read after it is in place. The role's own kms.yml then runs
under ansible-playbook: the re-run skips both kms_key tasks and remembers the same keys.
"""
import contextlib
import copy
import io
import json
import os
import re
import subprocess
import sys
import urllib.request

import boto3
import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.amazon.aws.plugins.modules import kms_key as kms_key_module
from ansible_collections.amazon.aws.plugins.modules import kms_key_info as kms_key_info_module

from ansible_collections.threshold_kms.mpc_party.plugins.filter.kms_keys import kms_key_ids, kms_key_in_place

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's
MOTO_PORT_BASE = 29850  # + the xdist worker number; the moto_url fixture is in conftest.py

DESCRIPTION = "Threshold KMS party 1 root key (Nitro Enclave attested)"
TAGS = {"mpc-cluster": "kms-t-p1", "mpc-party-id": "1", "managed-by": "threshold_kms.mpc_party"}
ROLE = "arn:aws:iam::%s:role/kms-t-p1-kms-party" % ACCOUNT
ROOT_ARN = "arn:aws:iam::%s:root" % ACCOUNT
POLICY = {
    "Version": "2012-10-17",
    "Id": "threshold-kms-party-key",
    "Statement": [
        {"Sid": "KeyAdministration", "Effect": "Allow", "Principal": {"AWS": [ROOT_ARN]},
         "Action": ["kms:CreateAlias", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
                    "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
                    "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"],
         "Resource": "*"},
        {"Sid": "PartyRoleDecryptsOnlyInsideAttestedEnclave", "Effect": "Allow", "Principal": {"AWS": ROOT_ARN},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
         "Condition": {"ArnEquals": {"aws:PrincipalArn": ROLE},
                       "StringEqualsIgnoreCase": {"kms:RecipientAttestation:ImageSha384": ["ab" * 48]}}},
    ],
}
BACKUP_DESCRIPTION = "Threshold KMS party 1 backup vault key (asymmetric)"


def _alias(name):
    return "alias/kt-" + name


# What the party key task and the backup key task of kms.yml give the module (the backup key: RSA_4096,
# multi-Region at creation only, no enable_key_rotation).
def party_params(name):
    return {"alias": _alias(name), "description": DESCRIPTION, "key_spec": "SYMMETRIC_DEFAULT",
            "key_usage": "ENCRYPT_DECRYPT", "enabled": True, "rotation": True, "policy": json.dumps(POLICY),
            "tags": TAGS, "purge_tags": True}


def backup_params(name):
    return dict(party_params(name), description=BACKUP_DESCRIPTION, key_spec="RSA_4096", rotation=None)


def _put_policy(kms, key, change):
    policy = copy.deepcopy(POLICY)
    change(policy)
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))


# Out-of-band drift of one key each; "as-made" and "backup" stay as the module made them.
DRIFTS = {
    "description": lambda kms, key: kms.update_key_description(KeyId=key, Description="edited in the console"),
    "policy-statement": lambda kms, key: _put_policy(
        kms, key, lambda p: p["Statement"][1]["Action"].append("kms:Encrypt")),
    "policy-condition": lambda kms, key: _put_policy(
        kms, key, lambda p: p["Statement"][1]["Condition"].pop("StringEqualsIgnoreCase")),
    "extra-tag": lambda kms, key: kms.tag_resource(KeyId=key, Tags=[{"TagKey": "owner", "TagValue": "someone"}]),
    "missing-tag": lambda kms, key: kms.untag_resource(KeyId=key, TagKeys=["mpc-party-id"]),
    "changed-tag": lambda kms, key: kms.tag_resource(KeyId=key, Tags=[{"TagKey": "mpc-party-id", "TagValue": "2"}]),
    "rotation-off": lambda kms, key: kms.disable_key_rotation(KeyId=key),
    "disabled": lambda kms, key: kms.disable_key(KeyId=key),
    "pending-deletion": lambda kms, key: kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7),
    "alias-missing": lambda kms, key: kms.delete_alias(AliasName=_alias("alias-missing")),
}
KEYS = ["as-made", "backup"] + list(DRIFTS)


def module_args(name, created=False):
    """amazon.aws.kms_key's parameters for one key, as kms.yml's party key task (or, for "backup", its
    backup key task: multi-Region passed only at creation, no enable_key_rotation) gives them."""
    params = backup_params(name) if name == "backup" else party_params(name)
    args = {"alias": params["alias"], "description": params["description"], "key_spec": params["key_spec"],
            "key_usage": params["key_usage"], "enabled": True, "pending_window": 30, "policy": params["policy"],
            "tags": params["tags"], "purge_tags": True}
    if params["rotation"] is not None:
        args["enable_key_rotation"] = params["rotation"]
    if name == "backup" and created:
        args["multi_region"] = True
    return args


def run_module(module, moto_url, **args):
    """One run of an amazon.aws module's main() against moto: its result."""
    kms_key_info_module._aliases.clear()  # the module's per-process alias cache: a new process each run
    args = dict(args, endpoint_url=moto_url, region=REGION, access_key="testing", secret_key="testing")
    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        module.main()
    result = json.loads(out.getvalue())
    assert not result.get("failed"), result
    return result


def read(moto_url, name):
    """kms_key_info's kms_keys for the key's alias, as kms.yml reads it."""
    return run_module(kms_key_info_module, moto_url, alias=_alias(name))["kms_keys"]


def _kms(moto_url):
    return boto3.client("kms", endpoint_url=moto_url, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _reset(moto_url):
    urllib.request.urlopen(urllib.request.Request(moto_url + "/moto-api/reset", method="POST")).read()


@pytest.fixture(scope="module")
def story(moto_url):
    """Keys made by amazon.aws.kms_key; drift; then read (kms_key_info), repair (kms_key), read again.
    ``{"made"/"repaired": {name: key_arn}, "before"/"after": {name: kms_keys}, "changed": {name: bool},
    "alias-missing-old": the first key of that alias as described after the repair}``."""
    _reset(moto_url)
    made = {}
    for name in KEYS:
        result = run_module(kms_key_module, moto_url, **module_args(name, created=True))
        assert result["changed"] is True, result
        made[name] = result["key_arn"]
    kms = _kms(moto_url)
    for name, drift in DRIFTS.items():
        drift(kms, made[name])
    story = {"made": made, "before": {}, "changed": {}, "repaired": {}, "after": {}}
    for name in KEYS:
        story["before"][name] = read(moto_url, name)
        result = run_module(kms_key_module, moto_url, **module_args(name))
        story["changed"][name], story["repaired"][name] = result["changed"], result["key_arn"]
        story["after"][name] = read(moto_url, name)
    # read now: a later test of this worker may reset the account
    story["alias-missing-old"] = kms.describe_key(KeyId=made["alias-missing"])["KeyMetadata"]
    return story


def params_for(name):
    return backup_params(name) if name == "backup" else party_params(name)


# ---------------------------------------------------------------- against the module --

@pytest.mark.parametrize("name", ["as-made", "backup"])
def test_a_key_as_the_module_made_it_is_in_place_and_the_module_changes_nothing(story, name):
    keys = story["before"][name]
    assert [k["key_arn"] for k in keys] == [story["made"][name]]
    assert kms_key_in_place(keys, **params_for(name)) is True
    assert story["changed"][name] is False
    assert kms_key_ids({"skipped": True, "changed": False}, keys, "(unknown)") == {
        "key_arn": story["made"][name], "key_id": story["made"][name].split("/")[-1]}


@pytest.mark.parametrize("name", sorted(DRIFTS))
def test_a_drifted_key_is_not_in_place_and_the_module_repairs_it(story, name):
    assert kms_key_in_place(story["before"][name], **params_for(name)) is False
    assert story["changed"][name] is True
    after = story["after"][name]
    assert kms_key_in_place(after, **params_for(name)) is True
    if name != "alias-missing":
        assert [k["key_arn"] for k in after] == [story["made"][name]]  # the same key, repaired


def test_a_key_that_lost_its_alias_is_not_replaced_but_a_new_one_gets_the_alias(story):
    """kms_key_info by alias finds nothing; the module makes a new key under the alias, and the old
    key and its material are left as they were (never deleted)."""
    assert story["before"]["alias-missing"] == []
    new = story["repaired"]["alias-missing"]
    assert new != story["made"]["alias-missing"]
    assert [k["key_arn"] for k in story["after"]["alias-missing"]] == [new]
    assert story["alias-missing-old"]["KeyState"] == "Enabled"


def test_a_key_pending_deletion_is_read_and_the_module_cancels_the_deletion(story):
    [before] = story["before"]["pending-deletion"]
    assert before["key_state"] == "PendingDeletion"
    [after] = story["after"]["pending-deletion"]
    assert after["key_state"] == "Enabled"


# ------------------------------------------------------------- the filter on the read --

def _as_made(story):
    return copy.deepcopy(story["before"]["as-made"])


def test_parameters_the_task_does_not_give_are_not_compared(story):
    keys = _as_made(story)
    assert kms_key_in_place(keys) is True
    assert kms_key_in_place(keys, alias="kt-as-made", rotation=None, tags=None, policy=None) is True
    assert kms_key_in_place(keys, **dict(party_params("as-made"), rotation=False)) is False
    keys[0]["enable_key_rotation"] = None  # GetKeyRotationStatus denied: the module would try
    assert kms_key_in_place(keys, **party_params("as-made")) is False
    assert kms_key_in_place(keys, **dict(party_params("as-made"), rotation=None)) is True


def test_spec_usage_state_alias_and_description_must_match(story):
    keys, params = _as_made(story), party_params("as-made")
    assert kms_key_in_place(keys, **dict(params, key_spec="RSA_4096")) is False
    assert kms_key_in_place(keys, **dict(params, key_usage="SIGN_VERIFY")) is False
    assert kms_key_in_place(keys, **dict(params, enabled=False)) is False
    assert kms_key_in_place(keys, **dict(params, enabled="yes", rotation="true", purge_tags="1")) is True  # as the module
    assert kms_key_in_place(keys, **dict(params, enabled="maybe")) is False  # the module would refuse it
    assert kms_key_in_place(keys, **dict(params, alias="alias/kt-backup")) is False
    assert kms_key_in_place(keys, **dict(params, description=DESCRIPTION + " ")) is False
    keys[0]["key_state"] = "PendingImport"
    assert kms_key_in_place(keys, **params) is False


def test_tags_compare_as_the_module_purges_them(story):
    keys, params = _as_made(story), party_params("as-made")
    keys[0]["tags"]["aws:cloudformation:stack-name"] = "x"  # AWS's own: never purged
    assert kms_key_in_place(keys, **params) is True
    keys[0]["tags"]["owner"] = "someone"
    assert kms_key_in_place(keys, **params) is False
    assert kms_key_in_place(keys, **dict(params, purge_tags=False)) is True
    assert kms_key_in_place(keys, **dict(params, purge_tags=False, tags=dict(TAGS, more="x"))) is False
    del keys[0]["tags"]["owner"]
    assert kms_key_in_place(keys, **dict(params, tags=dict(TAGS, **{"mpc-party-id": 1}))) is True  # as text, "1"
    del keys[0]["tags"]
    assert kms_key_in_place(keys, **params) is False


def test_the_policy_must_be_the_same_document(story):
    keys, params = _as_made(story), party_params("as-made")
    assert kms_key_in_place(keys, **dict(params, policy=POLICY)) is True  # the document, not its JSON
    reordered = json.dumps(dict(reversed(list(POLICY.items()))), indent=2)  # key order and spacing only
    assert kms_key_in_place(keys, **dict(params, policy=reordered)) is True
    swapped = dict(POLICY, Statement=list(reversed(POLICY["Statement"])))
    assert kms_key_in_place(keys, **dict(params, policy=swapped)) is False  # strict: list order counts
    assert kms_key_in_place(keys, **dict(params, policy="{not json")) is False
    keys[0]["key_policies"] = []  # GetKeyPolicy denied
    assert kms_key_in_place(keys, **params) is False
    keys[0]["key_policies"] = [POLICY, POLICY]
    assert kms_key_in_place(keys, **params) is False


def test_exactly_one_key_must_be_read(story):
    keys, params = _as_made(story), party_params("as-made")
    assert kms_key_in_place([], **params) is False
    assert kms_key_in_place(None, **params) is False
    assert kms_key_in_place(keys + keys, **params) is False


def test_the_key_a_result_stands_for(story):
    keys = _as_made(story)
    arn, key_id = keys[0]["key_arn"], keys[0]["key_id"]
    ran = {"changed": True, "key_arn": "arn:aws:kms:eu-west-1:1:key/new", "key_id": "new"}
    assert kms_key_ids(ran, keys, "?") == {"key_arn": "arn:aws:kms:eu-west-1:1:key/new", "key_id": "new"}
    assert kms_key_ids({"changed": False, "skipped": True}, keys, "?") == {"key_arn": arn, "key_id": key_id}
    assert kms_key_ids({"changed": True}, [], "?") == {"key_arn": "?", "key_id": "?"}  # check mode, no key yet
    assert kms_key_ids({"skipped": True}, keys + keys) == {"key_arn": "", "key_id": ""}


# ----------------------------------------------------------------- the role's kms.yml --

def _env():
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"), ANSIBLE_NOCOLOR="1",
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CA_BUNDLE", "AWS_SESSION_TOKEN"):
        env.pop(var, None)
    return env


def run(playbook, *args):
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable] + list(args)
                          + [str(playbook)], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    return int(re.search(r"localhost\s+: ok=\d+\s+changed=(\d+)", out).group(1)), out


ROLE_PLAY = """\
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/amazon.aws.aws: {endpoint_url: "%s", region: %s}
  vars:
    mpc_cluster_name: kms-role-p3
    mpc_party_id: 3
    mpc_network: {trusted_releases: [{pcr0: %s}]}
    nitro_nodegroup_backup_kms_key_enabled: %s
  tasks:
    - name: Account
      ansible.builtin.include_role: {name: threshold_kms.mpc_party.nitro_nodegroup, tasks_from: account}
    - name: Keys
      ansible.builtin.include_role: {name: threshold_kms.mpc_party.nitro_nodegroup, tasks_from: kms}
    - name: Record the remembered keys
      ansible.builtin.copy:
        content: >-
          {{ {'arn': _nitro_nodegroup_kms_key_arn, 'id': _nitro_nodegroup_kms_key_id,
              'backup_arn': _nitro_nodegroup_backup_kms_key_arn,
              'backup_id': _nitro_nodegroup_backup_kms_key_id} | to_json }}
        dest: %s
        mode: "0600"
      check_mode: false
      changed_when: false
"""
PARTY_TASK = "TASK [threshold_kms.mpc_party.nitro_nodegroup : Party KMS key (symmetric) and its alias]"
BACKUP_TASK = "TASK [threshold_kms.mpc_party.nitro_nodegroup : Backup vault key]"


def _task_status(out, task):
    return out.split(task)[1].split("TASK [")[0]


@pytest.mark.slow  # five playbook runs: `make test` runs it, `make check` leaves it out
def test_the_role_skips_kms_key_on_a_re_run_and_remembers_the_same_keys(moto_url, tmp_path):
    _reset(moto_url)
    facts = tmp_path / "facts.json"
    play = tmp_path / "kms.yml"
    play.write_text(ROLE_PLAY % (moto_url, REGION, "CD" * 48, "true", facts))

    changed, out = run(play, "--check")  # a fresh account: the module runs and reports, nothing made
    assert "changed: [localhost]" in _task_status(out, PARTY_TASK), out
    assert "changed: [localhost]" in _task_status(out, BACKUP_TASK), out
    unknown = "(known after apply)"
    assert json.loads(facts.read_text()) == {"arn": unknown, "id": unknown, "backup_arn": unknown, "backup_id": unknown}
    assert not [a for a in _kms(moto_url).list_aliases()["Aliases"] if "kms-role-p3" in a["AliasName"]]

    changed, out = run(play)
    assert changed == 2, out
    first = json.loads(facts.read_text())
    assert first["arn"].endswith("/" + first["id"]) and first["backup_arn"].endswith("/" + first["backup_id"])

    changed, out = run(play)
    assert changed == 0, out
    assert "skipping: [localhost]" in _task_status(out, PARTY_TASK), out
    assert "skipping: [localhost]" in _task_status(out, BACKUP_TASK), out
    assert json.loads(facts.read_text()) == first

    _kms(moto_url).disable_key_rotation(KeyId=first["id"])  # drift of the party key only
    changed, out = run(play)
    assert changed == 1, out
    assert "changed: [localhost]" in _task_status(out, PARTY_TASK), out
    assert "skipping: [localhost]" in _task_status(out, BACKUP_TASK), out
    assert json.loads(facts.read_text()) == first
    assert _kms(moto_url).get_key_rotation_status(KeyId=first["id"])["KeyRotationEnabled"] is True

    changed, out = run(play, "-e", "nitro_nodegroup_backup_kms_key_enabled=false")  # no backup key wanted
    assert changed == 0, out
    assert "skipping: [localhost]" in _task_status(out, PARTY_TASK), out
    assert json.loads(facts.read_text()) == dict(first, backup_arn="", backup_id="")
