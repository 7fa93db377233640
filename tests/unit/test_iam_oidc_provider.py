"""iam_oidc_provider: the pure logic (module_utils/iam_oidc.py) and the module run in-process
against a real moto server (started here, on a port of the AWS-roles range 23100-23119)."""
import json
import urllib.request

import boto3
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import iam_oidc as lib
from ansible_collections.threshold_kms.mpc_party.plugins.modules import iam_oidc_provider as module

REGION = "eu-west-1"
ISSUER = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
THUMB_A = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"
THUMB_B = "A" * 40


# moto_url (tests/unit/conftest.py) listens on this + the xdist worker number.
MOTO_PORT_BASE = 23100


# ------------------------------------------------------------------ pure logic --

def test_url_is_normalised_as_iam_stores_it():
    assert lib.normalize_url(ISSUER) == "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
    assert lib.normalize_url("https://OIDC.Example.com/id/AbC/") == "oidc.example.com/id/AbC"
    assert lib.normalize_url("oidc.example.com") == "oidc.example.com"


def test_arn_is_known_before_the_provider_exists():
    arn = lib.provider_arn("123456789012", ISSUER)
    assert arn == "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
    assert lib.provider_arn("123456789012", ISSUER, "aws-cn").startswith("arn:aws-cn:iam::")
    assert lib.issuer_from_arn(arn) == "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
    with pytest.raises(ValueError, match="not an IAM OIDC provider ARN"):
        lib.issuer_from_arn("arn:aws:iam::123456789012:role/x")


def test_validate_params_names_the_option_and_rule():
    assert lib.validate_params(ISSUER, ["sts.amazonaws.com"], None) == []
    errors = lib.validate_params("http://insecure.example.com", ["a", "a", ""], ["xyz"] + [THUMB_A] * 5)
    assert errors[0].startswith("url: must be an https:// URL")
    assert "client_ids[2]: must be a string of 1 to 255 characters" in errors[1]
    assert errors[2] == "client_ids: entries must be unique"
    assert errors[3] == "thumbprints: at most 5 entries (got 6)"
    assert errors[4].startswith("thumbprints[0]: must be the 40 hex characters")
    assert len(errors) == 5


def test_plan_for_a_new_provider():
    change = lib.plan(None, ["sts.amazonaws.com"], None, {"a": "1"})
    assert change["create"] and change["changed"]
    assert change["add_client_ids"] == ["sts.amazonaws.com"]
    assert change["set_thumbprints"] is None  # not managed: IAM decides
    assert change["set_tags"] == {"a": "1"}


def test_plan_is_empty_when_nothing_differs():
    current = {"client_ids": ["sts.amazonaws.com"], "thumbprints": [THUMB_A], "tags": {"a": "1"}}
    change = lib.plan(current, ["sts.amazonaws.com"], [THUMB_A.upper()], {"a": "1"})
    assert change["changed"] is False
    assert lib.apply_plan(current, change) == current
    # thumbprints/tags None: not managed
    assert lib.plan(current, ["sts.amazonaws.com"], None, None)["changed"] is False


def test_plan_diffs_client_ids_thumbprints_and_tags():
    current = {"client_ids": ["sts.amazonaws.com", "old"], "thumbprints": [THUMB_A],
               "tags": [{"Key": "a", "Value": "1"}, {"Key": "gone", "Value": "x"}]}
    change = lib.plan(current, ["sts.amazonaws.com", "new"], [THUMB_B], {"a": "2"})
    assert change["add_client_ids"] == ["new"]
    assert change["remove_client_ids"] == ["old"]
    assert change["set_thumbprints"] == [THUMB_B.lower()]
    assert change["set_tags"] == {"a": "2"}
    assert change["unset_tags"] == ["gone"]
    assert lib.apply_plan(current, change) == {"client_ids": ["sts.amazonaws.com", "new"],
                                                "thumbprints": [THUMB_B.lower()], "tags": {"a": "2"}}
    kept = lib.plan(current, ["sts.amazonaws.com", "old"], None, {"a": "1"}, purge_tags=False)
    assert kept["changed"] is False and kept["unset_tags"] == []


# ------------------------------------------------------------ against moto --

@pytest.fixture()
def aws(moto_url, monkeypatch):
    urllib.request.urlopen(urllib.request.Request(moto_url + "/moto-api/reset", method="POST")).read()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return {"url": moto_url, "iam": boto3.client("iam", endpoint_url=moto_url, region_name=REGION)}


def run(aws, capsys, check=False, **args):
    args = dict(args, endpoint_url=aws["url"], region=REGION, _ansible_check_mode=check, _ansible_diff=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def providers(aws):
    out = []
    for entry in aws["iam"].list_open_id_connect_providers()["OpenIDConnectProviderList"]:
        got = aws["iam"].get_open_id_connect_provider(OpenIDConnectProviderArn=entry["Arn"])
        out.append({"arn": entry["Arn"], "url": got["Url"], "client_ids": got["ClientIDList"],
                    "thumbprints": got["ThumbprintList"], "tags": {t["Key"]: t["Value"] for t in got.get("Tags", [])}})
    return out


def test_check_mode_on_a_fresh_account_plans_the_arn_and_creates_nothing(aws, capsys):
    planned = run(aws, capsys, check=True, url=ISSUER, tags={"mpc-party-id": "1"})
    assert planned["changed"] is True
    assert planned["arn"] == lib.provider_arn("123456789012", ISSUER)
    assert planned["issuer"] == lib.normalize_url(ISSUER)
    assert planned["diff"] == {"before": {}, "after": {"client_ids": ["sts.amazonaws.com"], "thumbprints": [],
                                                       "tags": {"mpc-party-id": "1"}, "url": lib.normalize_url(ISSUER)}}
    assert providers(aws) == []


def test_create_then_noop(aws, capsys):
    first = run(aws, capsys, url=ISSUER, client_ids=["sts.amazonaws.com"], tags={"mpc-party-id": "1"})
    assert first["changed"] is True
    [held] = providers(aws)
    assert held == {"arn": first["arn"], "url": lib.normalize_url(ISSUER), "client_ids": ["sts.amazonaws.com"],
                    "thumbprints": [], "tags": {"mpc-party-id": "1"}}
    # the scheme and a trailing slash do not make it another provider
    second = run(aws, capsys, url=ISSUER + "/", client_ids=["sts.amazonaws.com"], tags={"mpc-party-id": "1"})
    assert second["changed"] is False
    assert second["arn"] == first["arn"]
    assert second["diff"]["before"]["tags"] == second["diff"]["after"]["tags"]
    assert len(providers(aws)) == 1


def test_thumbprints_and_tags_are_updated_in_place(aws, capsys):
    created = run(aws, capsys, url=ISSUER, thumbprints=[THUMB_A], tags={"a": "1", "b": "2"})
    planned = run(aws, capsys, check=True, url=ISSUER, thumbprints=[THUMB_B], tags={"a": "9"})
    assert planned["changed"] is True
    assert planned["thumbprints"] == [THUMB_B.lower()] and planned["tags"] == {"a": "9"}
    assert providers(aws)[0]["thumbprints"] == [THUMB_A]  # check mode wrote nothing
    updated = run(aws, capsys, url=ISSUER, thumbprints=[THUMB_B], tags={"a": "9"})
    assert updated["changed"] is True and updated["arn"] == created["arn"]
    [held] = providers(aws)
    assert held["thumbprints"] == [THUMB_B.lower()]
    assert held["tags"] == {"a": "9"}
    assert updated["diff"]["before"]["tags"] == {"a": "1", "b": "2"}
    # thumbprints omitted: left alone
    assert run(aws, capsys, url=ISSUER, tags={"a": "9"})["changed"] is False


def test_delete_in_check_mode_then_for_real_then_again(aws, capsys):
    run(aws, capsys, url=ISSUER)
    assert run(aws, capsys, check=True, url=ISSUER, state="absent")["changed"] is True
    assert len(providers(aws)) == 1
    assert run(aws, capsys, url=ISSUER, state="absent")["changed"] is True
    assert providers(aws) == []
    assert run(aws, capsys, url=ISSUER, state="absent")["changed"] is False


def test_bad_input_fails_before_any_call(aws, capsys):
    failed = run(aws, capsys, url="http://oidc.example.com", thumbprints=["nope"])
    assert failed["failed"] is True
    assert failed["msg"].startswith("Invalid input: url: must be an https:// URL")
    assert "thumbprints[0]" in failed["msg"]
    assert providers(aws) == []
