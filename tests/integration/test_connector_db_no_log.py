"""connector_db: the password RDS generates never shows in Ansible's output, even with -vvv.

The role runs through ansible-playbook -vvv against a moto server (port 27060): create,
re-run with --diff, then removal. The password is read back from Secrets Manager with boto3
here, in the test, and must not appear in anything ansible-playbook printed.
"""
import os
import subprocess
import sys

import boto3
import pytest
from moto.server import ThreadedMotoServer

from sandbox.aws_standin import extend

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = pytest.mark.xdist_group("connector_db_no_log")

PLAYBOOK = os.path.join(ROOT, "tests", "integration", "files", "connector_db.yml")
PORT = int(os.environ.get("OPS_TEST_CONNECTOR_DB_PORT", "27060"))
IDENT = "kms-nolog-p3-connector"


def rds():
    return boto3.client("rds", endpoint_url="http://127.0.0.1:%d" % PORT, region_name="eu-west-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def secrets():
    return boto3.client("secretsmanager", endpoint_url="http://127.0.0.1:%d" % PORT, region_name="eu-west-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def playbook(*extra):
    env = dict(os.environ, MOTO_PORT=str(PORT), AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env.pop("AWS_CA_BUNDLE", None)
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-vvv",
           "-e", "ansible_python_interpreter=%s" % sys.executable, PLAYBOOK, *extra]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def runs():
    extend(secure=False)  # the AWS stand-in's moto (gp3 baseline, KMS ids), plain HTTP
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=PORT, verbose=False)
    server.start()
    try:
        out = {"create": playbook()}
        assert out["create"][0] == 0, out["create"][1][-4000:]
        instance = rds().describe_db_instances(DBInstanceIdentifier=IDENT)["DBInstances"][0]
        secret_arn = instance["MasterUserSecret"]["SecretArn"]
        value = secrets().get_secret_value(SecretId=secret_arn)["SecretString"]
        out["rerun"] = playbook("--diff")
        out["remove"] = playbook("-e", "connector_db_state=absent", "-e", "connector_db_delete_confirmed=true")
        yield {"instance": instance, "secret_arn": secret_arn, "secret": value, "out": out}
    finally:
        server.stop()


def test_the_role_created_the_database_with_an_rds_managed_secret(runs):
    instance = runs["instance"]
    assert instance["StorageEncrypted"] and instance["DeletionProtection"]
    assert instance["BackupRetentionPeriod"] == 7
    assert runs["secret_arn"].startswith("arn:aws:secretsmanager:eu-west-1:")
    # The secret's ARN (not secret) is published; the value itself is never read by the role.
    assert runs["secret_arn"] in runs["out"]["create"][1]


def test_the_password_is_absent_from_every_vvv_run(runs):
    import json
    password = json.loads(runs["secret"])["password"]
    assert password
    for name, (rc, text) in runs["out"].items():
        assert rc == 0, "%s run failed:\n%s" % (name, text[-4000:])
        assert password not in text, "%s run printed the database password" % name
        assert runs["secret"] not in text


def test_the_tasks_touching_the_instance_run_with_no_log(runs):
    text = runs["out"]["create"][1]
    for task in ("Database with its password generated and kept by RDS - %s" % IDENT,
                 "Encryption, deletion protection, backups and network of %s" % IDENT):
        assert task in text
        result = text.split(task, 1)[1].split("TASK [", 1)[0]
        assert "censored: 'the output has been hidden" in result, result


def test_rerun_changes_nothing_and_removal_deletes_the_instance_and_its_secret(runs):
    assert "changed=0" in runs["out"]["rerun"][1]
    assert rds().describe_db_instances()["DBInstances"] == []
    with pytest.raises(secrets().exceptions.ResourceNotFoundException):
        secrets().describe_secret(SecretId=runs["secret_arn"])
