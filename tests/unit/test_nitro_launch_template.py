"""nitro_launch_template: building and comparing launch template data, and the module run
in-process against a real moto server (port range 23120-23139)."""
import base64
import json
import urllib.request

import boto3
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_launch_template as lib
from ansible_collections.threshold_kms.mpc_party.plugins.modules import nitro_launch_template as module

REGION = "eu-west-1"
USER_DATA = "#!/bin/bash\necho enclave\n"


MOTO_PORT_BASE = 23120  # + the xdist worker number; the moto_url fixture is in conftest.py


def params(**over):
    base = {"enclave_enabled": True,
            "metadata_options": {"http_endpoint": "enabled", "http_tokens": "required",
                                 "http_put_response_hop_limit": 2, "instance_metadata_tags": "disabled"},
            "user_data": USER_DATA,
            "block_device_mappings": [{"device_name": "/dev/xvda", "volume_size": 100, "volume_type": "gp3",
                                       "encrypted": True, "kms_key_id": None, "delete_on_termination": True,
                                       "iops": None, "throughput": None}],
            "security_group_ids": ["sg-2", "sg-1"], "instance_type": None, "image_id": None, "key_name": None,
            "instance_tags": {"b": "2", "a": "1"}}
    base.update(over)
    return base


# ------------------------------------------------------------------ pure logic --

def test_template_data_enables_enclaves_and_imdsv2():
    data = lib.build_template_data(params())
    assert data["EnclaveOptions"] == {"Enabled": True}
    assert data["MetadataOptions"] == {"HttpEndpoint": "enabled", "HttpTokens": "required",
                                       "HttpPutResponseHopLimit": 2, "InstanceMetadataTags": "disabled"}
    assert base64.b64decode(data["UserData"]).decode() == USER_DATA
    assert data["BlockDeviceMappings"] == [{"DeviceName": "/dev/xvda", "Ebs": {
        "VolumeSize": 100, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True}}]
    assert [s["ResourceType"] for s in data["TagSpecifications"]] == ["instance", "volume"]
    assert "ImageId" not in data and "KeyName" not in data


def test_comparison_ignores_order_and_echoed_template_tags():
    desired = lib.build_template_data(params())
    echoed = json.loads(json.dumps(desired))
    echoed["SecurityGroupIds"] = ["sg-1", "sg-2"]
    echoed["TagSpecifications"] = list(reversed(echoed["TagSpecifications"])) + [
        {"ResourceType": "launch-template", "Tags": [{"Key": "x", "Value": "y"}]}]
    assert lib.data_matches(desired, echoed)
    assert not lib.data_matches(desired, dict(echoed, EnclaveOptions={"Enabled": False}))
    assert not lib.data_matches(desired, dict(echoed, KeyName="ssh"))  # extra settings are drift too
    assert not lib.data_matches(lib.build_template_data(params(user_data="other")), echoed)


def test_validate_params_names_the_option_and_rule():
    assert lib.validate_params(params(instance_type="c7a.16xlarge")) == []
    errors = lib.validate_params(params(
        instance_type="t3.large", metadata_options={"http_put_response_hop_limit": 99},
        block_device_mappings=[{"device_name": "", "volume_size": 0, "encrypted": False, "kms_key_id": "k"}]))
    assert errors == [
        "metadata_options.http_put_response_hop_limit: must be 1..64 (got 99)",
        "block_device_mappings[0].device_name: required",
        "block_device_mappings[0].volume_size: must be 1..16384 GiB (got 0)",
        "block_device_mappings[0].kms_key_id: requires encrypted=true",
        "instance_type: t3.large cannot run Nitro Enclaves (needs a Nitro instance with 4+ vCPUs)",
    ]


def test_readable_decodes_user_data_for_diff():
    assert lib.readable({"UserData": lib.encode_user_data("x")}) == {"UserData": "x"}
    assert lib.readable(None) == {}


# ------------------------------------------------------------ against moto --

@pytest.fixture()
def aws(moto_url, monkeypatch):
    urllib.request.urlopen(urllib.request.Request(moto_url + "/moto-api/reset", method="POST")).read()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    ec2 = boto3.client("ec2", endpoint_url=moto_url, region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
    sg = ec2.create_security_group(GroupName="nodes", Description="nodes", VpcId=vpc)["GroupId"]
    return {"url": moto_url, "ec2": ec2, "sg": sg}


def run(aws, capsys, check=False, **args):
    args = dict(args, endpoint_url=aws["url"], region=REGION, _ansible_check_mode=check, _ansible_diff=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def template_args(aws, **over):
    args = dict(name="kms-p1-nitro", user_data=USER_DATA, security_group_ids=[aws["sg"]],
                block_device_mappings=[{"device_name": "/dev/xvda", "volume_size": 100}],
                instance_tags={"Name": "kms-p1-nitro"}, tags={"mpc-party-id": "1"})
    args.update(over)
    return args


def versions(aws):
    found = aws["ec2"].describe_launch_template_versions(LaunchTemplateName="kms-p1-nitro")["LaunchTemplateVersions"]
    return sorted(found, key=lambda v: v["VersionNumber"])


def test_check_mode_on_a_fresh_account_creates_nothing(aws, capsys):
    planned = run(aws, capsys, check=True, **template_args(aws))
    assert planned["changed"] is True
    assert "template_id" not in planned
    assert planned["diff"]["after"]["UserData"] == USER_DATA
    assert planned["diff"]["after"]["EnclaveOptions"] == {"Enabled": True}
    assert aws["ec2"].describe_launch_templates()["LaunchTemplates"] == []


def test_create_then_noop(aws, capsys):
    first = run(aws, capsys, **template_args(aws))
    assert first["changed"] is True and first["default_version"] == 1
    [v1] = versions(aws)
    data = v1["LaunchTemplateData"]
    assert data["EnclaveOptions"] == {"Enabled": True}
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    assert data["BlockDeviceMappings"][0]["Ebs"] == {"VolumeSize": 100, "VolumeType": "gp3", "Encrypted": True,
                                                     "DeleteOnTermination": True}
    assert base64.b64decode(data["UserData"]).decode() == USER_DATA
    second = run(aws, capsys, **template_args(aws))
    assert second["changed"] is False
    assert second["template_id"] == first["template_id"] and second["default_version"] == 1
    assert len(versions(aws)) == 1


def test_a_change_adds_a_version_and_makes_it_the_default(aws, capsys):
    run(aws, capsys, **template_args(aws))
    planned = run(aws, capsys, check=True, **template_args(aws, user_data="#!/bin/bash\necho v2\n"))
    assert planned["changed"] is True and planned["latest_version"] == 2
    assert planned["diff"]["before"]["UserData"] == USER_DATA
    assert planned["diff"]["after"]["UserData"] == "#!/bin/bash\necho v2\n"
    assert len(versions(aws)) == 1
    changed = run(aws, capsys, **template_args(aws, user_data="#!/bin/bash\necho v2\n"))
    assert changed["changed"] is True
    assert changed["default_version"] == changed["latest_version"] == 2
    template = aws["ec2"].describe_launch_templates(LaunchTemplateNames=["kms-p1-nitro"])["LaunchTemplates"][0]
    assert template["DefaultVersionNumber"] == 2
    assert run(aws, capsys, **template_args(aws, user_data="#!/bin/bash\necho v2\n"))["changed"] is False


def test_template_tags_are_managed(aws, capsys):
    created = run(aws, capsys, **template_args(aws))
    updated = run(aws, capsys, **template_args(aws, tags={"mpc-party-id": "1", "extra": "x"}))
    assert updated["changed"] is True
    tags = aws["ec2"].describe_tags(Filters=[{"Name": "resource-id", "Values": [created["template_id"]]}])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {"mpc-party-id": "1", "extra": "x"}
    assert len(versions(aws)) == 1  # tags are not template data


def test_absent(aws, capsys):
    run(aws, capsys, **template_args(aws))
    assert run(aws, capsys, check=True, name="kms-p1-nitro", state="absent")["changed"] is True
    assert len(versions(aws)) == 1
    assert run(aws, capsys, name="kms-p1-nitro", state="absent")["changed"] is True
    assert aws["ec2"].describe_launch_templates()["LaunchTemplates"] == []
    assert run(aws, capsys, name="kms-p1-nitro", state="absent")["changed"] is False
