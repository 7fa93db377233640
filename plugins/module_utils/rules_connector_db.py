# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Rules of connector_db's inputs (registry and conventions: role_rules.py).

The role does nothing unless connector_db_enabled (or connector_db_state is absent), so every rule
is silent then. The argument spec holds the types and the choices of connector_db_state and
connector_db_storage_type; what it cannot say is here. The RDS formats (identifier, windows) are
those of the rds_instance_managed_password module (rds_managed_password.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.input_rules import (
    IAM_ROLE_NAME_RE, SG_ID_RE, SUBNET_ID_RE, UNKNOWN, VPC_ID_RE, poll_interval_errors, range_errors)
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.rds_managed_password import (
    BACKUP_WINDOW_RE, IDENTIFIER_RE, MAINTENANCE_WINDOW_RE)
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.role_rules import got, rule

R = "connector_db"
ON = ("connector_db_enabled", "connector_db_state")
ENGINE_VERSION_RE = re.compile(r"^[0-9]+(\.[0-9]+)?$")
INSTANCE_CLASS_RE = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
# A PostgreSQL database or user name as RDS accepts it.
PG_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
SNAPSHOT_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,254}$")
# Names PostgreSQL reserves or RDS refuses as the master user.
RESERVED_USERNAMES = frozenset(("rdsadmin", "rdsrepladmin", "rds_superuser", "user", "public", "all", "select"))
NETWORK = ("connector_db_vpc_id", "connector_db_subnet_ids", "connector_db_node_security_group_id")


def _active(v):
    """The role does anything: the database is managed, or removed."""
    return bool(v["connector_db_enabled"]) or v["connector_db_state"] == "absent"


def _creating(v):
    return bool(v["connector_db_enabled"]) and v["connector_db_state"] == "present"


def present_rule(*needs):
    """A rule of the database's settings: it runs only when the role creates or updates the database."""
    def register(func):
        def when_present(v, context):
            return func(v, context) if _creating(v) else []
        when_present.__name__ = func.__name__
        return rule(R, *(ON + needs))(when_present)
    return register


@rule("connector_db", "connector_db_wait_poll_interval")
def _poll_interval(v, _):
    return poll_interval_errors("connector_db_wait_poll_interval", v["connector_db_wait_poll_interval"])


@rule(R, "connector_db_identifier", *ON)
def _identifier(v, _):
    ident = v["connector_db_identifier"]
    if _active(v) and (not IDENTIFIER_RE.match(ident) or ident.endswith("-")):
        return ['connector_db_identifier: 1-63 letters, digits or hyphens, starting with a letter, no "--", '
                'not ending with "-" %s' % got(ident)]
    return []


@present_rule(*NETWORK)
def _network(v, context):
    vpc, subnets, group = (v[name] for name in NETWORK)
    if context.get("check_mode") and UNKNOWN in [vpc, group] + list(subnets):
        return []  # check mode before eks_cluster created the network: its facts hold placeholders
    problems = []
    if not VPC_ID_RE.match(vpc):
        problems.append("connector_db_vpc_id: the VPC of the cluster, vpc-... (wire eks_cluster_facts.vpc_id) %s"
                        % got(vpc))
    if len(subnets) < 2 or any(not SUBNET_ID_RE.match(str(s)) for s in subnets):
        problems.append("connector_db_subnet_ids: two private subnets at least, in two zones (wire "
                        "eks_cluster_facts.private_subnet_ids) %s" % got(subnets))
    if not SG_ID_RE.match(group):
        problems.append("connector_db_node_security_group_id: the node security group, the only one allowed to reach "
                        "the database (wire eks_cluster_facts.node_security_group_id) %s" % got(group))
    return problems


@present_rule("connector_db_engine_version")
def _engine_version(v, _):
    version = v["connector_db_engine_version"]
    if not ENGINE_VERSION_RE.match(version):
        return ["connector_db_engine_version: a PostgreSQL version such as 16.8 %s" % got(version)]
    return []


@present_rule("connector_db_instance_class")
def _instance_class(v, _):
    if not INSTANCE_CLASS_RE.match(v["connector_db_instance_class"]):
        return ["connector_db_instance_class: an RDS instance class such as db.t4g.medium %s"
                % got(v["connector_db_instance_class"])]
    return []


@present_rule("connector_db_allocated_storage", "connector_db_max_allocated_storage")
def _storage(v, _):
    size, top = v["connector_db_allocated_storage"], v["connector_db_max_allocated_storage"]
    problems = range_errors("connector_db_allocated_storage", size, 20, 65536, "GiB of storage")
    if top != 0 and top < size:
        problems.append("connector_db_max_allocated_storage: 0 (no autoscaling) or at least "
                        "connector_db_allocated_storage (%s) %s" % (size, got(top)))
    return problems


@present_rule("connector_db_name")
def _db_name(v, _):
    if not PG_NAME_RE.match(v["connector_db_name"]):
        return ["connector_db_name: 1-63 letters, digits or _, starting with a letter %s" % got(v["connector_db_name"])]
    return []


@present_rule("connector_db_master_username")
def _master_username(v, _):
    user = v["connector_db_master_username"]
    if not PG_NAME_RE.match(user) or user.lower() in RESERVED_USERNAMES:
        return ["connector_db_master_username: 1-63 letters, digits or _, starting with a letter, not a reserved name "
                "(%s) %s" % (", ".join(sorted(RESERVED_USERNAMES)), got(user))]
    return []


@present_rule("connector_db_port")
def _port(v, _):
    return range_errors("connector_db_port", v["connector_db_port"], 1150, 65535, "a port RDS accepts")


@present_rule("connector_db_backup_retention_days")
def _retention(v, _):
    return range_errors("connector_db_backup_retention_days", v["connector_db_backup_retention_days"], 1, 35,
                        "days of automated backups (they cannot be turned off here)")


@present_rule("connector_db_backup_window")
def _backup_window(v, _):
    window = v["connector_db_backup_window"]
    if window and not BACKUP_WINDOW_RE.match(window):
        return ["connector_db_backup_window: hh24:mi-hh24:mi in UTC, or empty %s" % got(window)]
    return []


@present_rule("connector_db_maintenance_window")
def _maintenance_window(v, _):
    window = v["connector_db_maintenance_window"]
    if window and not MAINTENANCE_WINDOW_RE.match(window.lower()):
        return ["connector_db_maintenance_window: ddd:hh24:mi-ddd:hh24:mi in UTC, or empty %s" % got(window)]
    return []


@present_rule("connector_db_wait_timeout")
def _wait_timeout(v, _):
    return range_errors("connector_db_wait_timeout", v["connector_db_wait_timeout"], 1, None, "a number of seconds")


@present_rule("connector_db_secret_reader_role_name")
def _reader_role(v, _):
    name = v["connector_db_secret_reader_role_name"]
    if name and not IAM_ROLE_NAME_RE.match(name):
        return ["connector_db_secret_reader_role_name: an IAM role name or empty %s" % got(name)]
    return []


@rule(R, "connector_db_final_snapshot", "connector_db_final_snapshot_identifier", *ON)
def _final_snapshot(v, _):
    ident = v["connector_db_final_snapshot_identifier"]
    if (v["connector_db_state"] == "absent" and v["connector_db_final_snapshot"]
            and not SNAPSHOT_ID_RE.match(ident)):
        return ["connector_db_final_snapshot_identifier: 1-255 letters, digits or hyphens, starting with a letter %s"
                % got(ident)]
    return []
