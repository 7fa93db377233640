"""connector_db's input rules (plugins/module_utils/rules_connector_db.py), through role_inputs.check with
the role's real argument spec: each rule passes a good value and names the variable of a bad one."""

import pytest

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import role_inputs
from tests.support.role_specs import for_role

UNKNOWN = "(known after apply)"


spec = for_role("connector_db")


VALID = {
    "connector_db_enabled": True,
    "connector_db_state": "present",
    "connector_db_identifier": "kms-p1-connector",
    "connector_db_vpc_id": "vpc-0abc",
    "connector_db_subnet_ids": ["subnet-0a", "subnet-0b"],
    "connector_db_node_security_group_id": "sg-0abc",
    "connector_db_engine_version": "16.8",
    "connector_db_instance_class": "db.t4g.medium",
    "connector_db_allocated_storage": 20,
    "connector_db_max_allocated_storage": 100,
    "connector_db_storage_type": "gp3",
    "connector_db_name": "kms_connector",
    "connector_db_master_username": "kms_connector",
    "connector_db_port": 5432,
    "connector_db_backup_retention_days": 7,
    "connector_db_backup_window": "",
    "connector_db_maintenance_window": "",
    "connector_db_wait_timeout": 3600,
    "connector_db_secret_reader_role_name": "",
    "connector_db_final_snapshot": True,
    "connector_db_final_snapshot_identifier": "kms-p1-connector-final",
}


def check(check_mode=False, **change):
    options = spec()
    values = dict((k, v) for k, v in dict(VALID, **change).items() if k in options)
    return role_inputs.check("connector_db", options, values, {"check_mode": check_mode})[0]


@pytest.mark.parametrize("change", [
    {}, {"connector_db_max_allocated_storage": 0}, {"connector_db_backup_window": "03:00-04:00"},
    {"connector_db_maintenance_window": "Sun:05:00-sun:06:00"},
    {"connector_db_secret_reader_role_name": "kms-p1-kms-connector"},
    {"connector_db_engine_version": 17}, {"connector_db_port": 65535, "connector_db_backup_retention_days": 35},
])
def test_good_inputs_pass(change):
    assert check(**change) == []


@pytest.mark.parametrize("change, variable, words", [
    ({"connector_db_state": "deleted"}, "connector_db_state", "must be one of: present, absent"),
    ({"connector_db_storage_type": "io1"}, "connector_db_storage_type", "must be one of: gp2, gp3"),
    ({"connector_db_identifier": "1db"}, "connector_db_identifier", "starting with a letter"),
    ({"connector_db_identifier": "kms--db"}, "connector_db_identifier", 'no "--"'),
    ({"connector_db_identifier": "kms-db-"}, "connector_db_identifier", 'not ending with "-"'),
    ({"connector_db_vpc_id": "vpc-XYZ"}, "connector_db_vpc_id", "the VPC of the cluster"),
    ({"connector_db_vpc_id": UNKNOWN}, "connector_db_vpc_id", "the VPC of the cluster"),
    ({"connector_db_subnet_ids": ["subnet-0a"]}, "connector_db_subnet_ids", "two private subnets at least"),
    ({"connector_db_subnet_ids": ["subnet-0a", "sub-1"]}, "connector_db_subnet_ids", "two private subnets"),
    ({"connector_db_node_security_group_id": "sg 1"}, "connector_db_node_security_group_id", "the node security group"),
    ({"connector_db_engine_version": "sixteen"}, "connector_db_engine_version", "a PostgreSQL version"),
    ({"connector_db_instance_class": "t4g.medium"}, "connector_db_instance_class", "an RDS instance class"),
    ({"connector_db_allocated_storage": 10}, "connector_db_allocated_storage", "20..65536 (got 10)"),
    ({"connector_db_allocated_storage": "lots"}, "connector_db_allocated_storage", "must be of type int"),
    ({"connector_db_max_allocated_storage": 50, "connector_db_allocated_storage": 60},
     "connector_db_max_allocated_storage",
     "0 (no autoscaling) or at least connector_db_allocated_storage (60)"),
    ({"connector_db_name": "kms-connector"}, "connector_db_name", "letters, digits or _"),
    ({"connector_db_master_username": "rdsadmin"}, "connector_db_master_username", "not a reserved name"),
    ({"connector_db_master_username": "Public"}, "connector_db_master_username", "not a reserved name"),
    ({"connector_db_port": 1024}, "connector_db_port", "1150..65535"),
    ({"connector_db_port": "postgres"}, "connector_db_port", "must be of type int"),
    ({"connector_db_backup_retention_days": 0}, "connector_db_backup_retention_days", "1..35 (got 0)"),
    ({"connector_db_backup_retention_days": -3}, "connector_db_backup_retention_days", "1..35"),
    ({"connector_db_backup_retention_days": 36}, "connector_db_backup_retention_days", "1..35"),
    ({"connector_db_backup_window": "3:00-4:00"}, "connector_db_backup_window", "hh24:mi-hh24:mi"),
    ({"connector_db_maintenance_window": "sun:25:00-sun:26:00"}, "connector_db_maintenance_window", "ddd:hh24:mi"),
    ({"connector_db_wait_timeout": 0}, "connector_db_wait_timeout", "at least 1"),
    ({"connector_db_secret_reader_role_name": "a role"}, "connector_db_secret_reader_role_name", "an IAM role name"),
    ({"connector_db_state": "absent", "connector_db_final_snapshot_identifier": "final_1"},
     "connector_db_final_snapshot_identifier", "1-255 letters, digits or hyphens"),
])
def test_each_mistake_names_its_variable(change, variable, words):
    problems = check(**change)
    assert problems, "no problem found for %s" % change
    assert all(p.startswith("connector_db: %s: " % variable) for p in problems), problems
    assert any(words in p for p in problems), problems


def test_a_disabled_role_checks_nothing_but_its_types():
    bad = {"connector_db_port": 1, "connector_db_identifier": "1db", "connector_db_vpc_id": ""}
    assert check(connector_db_enabled=False, **bad) == []
    assert check(connector_db_enabled=False, connector_db_port="x") != []


def test_removal_checks_the_identifier_and_snapshot_but_not_the_settings():
    assert check(connector_db_state="absent", connector_db_vpc_id="", connector_db_port=1) == []
    assert check(connector_db_state="absent", connector_db_identifier="1db")
    assert check(connector_db_state="absent", connector_db_final_snapshot=False,
                 connector_db_final_snapshot_identifier="x_y") == []
    assert check(connector_db_final_snapshot_identifier="x_y") == []  # only read on removal


def test_check_mode_before_the_cluster_network_exists():
    placeholders = {"connector_db_vpc_id": UNKNOWN, "connector_db_subnet_ids": [UNKNOWN, UNKNOWN],
                    "connector_db_node_security_group_id": UNKNOWN}
    assert check(True, **placeholders) == []
    assert check(False, **placeholders)
    assert check(True, connector_db_vpc_id="vpc-XYZ")  # no placeholder: a real mistake


def test_the_wired_network_waits_for_the_role_in_preflight():
    options = spec()
    values = dict((k, v) for k, v in VALID.items() if k not in ("connector_db_vpc_id", "connector_db_subnet_ids",
                                                             "connector_db_node_security_group_id"))
    assert role_inputs.check("connector_db", options, values)[0] == []
