# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Pure logic of ``rds_instance_managed_password``.

An RDS DB instance whose master password RDS generates and keeps in Secrets Manager
(``ManageMasterUserPassword``): the creation parameters, the input rules, what to do with an
instance as DescribeDBInstances reports it, and the non-secret view of its secret. No password
ever passes through here: the module has no password option and RDS never returns one.
"""
import re

# module option -> CreateDBInstance parameter (RDS capitalisation is irregular: DB..., MultiAZ).
CREATE_PARAMETERS = (
    ("db_instance_identifier", "DBInstanceIdentifier"),
    ("engine", "Engine"),
    ("engine_version", "EngineVersion"),
    ("db_instance_class", "DBInstanceClass"),
    ("allocated_storage", "AllocatedStorage"),
    ("max_allocated_storage", "MaxAllocatedStorage"),
    ("storage_type", "StorageType"),
    ("master_username", "MasterUsername"),
    ("db_name", "DBName"),
    ("port", "Port"),
    ("db_subnet_group_name", "DBSubnetGroupName"),
    ("vpc_security_group_ids", "VpcSecurityGroupIds"),
    ("storage_encrypted", "StorageEncrypted"),
    ("kms_key_id", "KmsKeyId"),
    ("master_user_secret_kms_key_id", "MasterUserSecretKmsKeyId"),
    ("deletion_protection", "DeletionProtection"),
    ("backup_retention_period", "BackupRetentionPeriod"),
    ("preferred_backup_window", "PreferredBackupWindow"),
    ("preferred_maintenance_window", "PreferredMaintenanceWindow"),
    ("multi_az", "MultiAZ"),
    ("publicly_accessible", "PubliclyAccessible"),
    ("copy_tags_to_snapshot", "CopyTagsToSnapshot"),
    ("auto_minor_version_upgrade", "AutoMinorVersionUpgrade"),
)

REQUIRED_FOR_CREATE = ("engine", "db_instance_class", "master_username", "allocated_storage")
IDENTIFIER_RE = re.compile(r"^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}$")
BACKUP_WINDOW_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$")
MAINTENANCE_WINDOW_RE = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun):([01][0-9]|2[0-3]):[0-5][0-9]-"
                                   r"(mon|tue|wed|thu|fri|sat|sun):([01][0-9]|2[0-3]):[0-5][0-9]$")
# Engines where RDS (not the cluster) owns the master password.
INSTANCE_ENGINES = ("postgres", "mysql", "mariadb")


def validate_params(params):
    """Every broken rule, each naming its option; [] when the input is usable."""
    errors = []
    ident = params.get("db_instance_identifier") or ""
    if not IDENTIFIER_RE.match(ident) or ident.endswith("-"):
        errors.append("db_instance_identifier: 1-63 letters, digits or hyphens, starting with a letter, "
                      "no '--', not ending with '-' (got %r)" % ident)
    if params.get("state", "present") == "present":
        missing = [name for name in REQUIRED_FOR_CREATE if params.get(name) in (None, "")]
        if missing:
            errors.append("%s: required to create the instance" % ", ".join(missing))
        engine = params.get("engine")
        if engine and engine not in INSTANCE_ENGINES:
            errors.append("engine: one of %s (Aurora keeps the password on the cluster; got %r)"
                          % (", ".join(INSTANCE_ENGINES), engine))
        retention = params.get("backup_retention_period")
        if retention is not None and not 0 <= retention <= 35:
            errors.append("backup_retention_period: 0 to 35 days (got %s)" % retention)
        storage = params.get("allocated_storage")
        top = params.get("max_allocated_storage")
        if storage is not None and top is not None and top < storage:
            errors.append("max_allocated_storage: at least allocated_storage (%s; got %s)" % (storage, top))
        window = params.get("preferred_backup_window")
        if window and not BACKUP_WINDOW_RE.match(window):
            errors.append("preferred_backup_window: hh24:mi-hh24:mi in UTC (got %r)" % window)
        window = params.get("preferred_maintenance_window")
        if window and not MAINTENANCE_WINDOW_RE.match(window.lower()):
            errors.append("preferred_maintenance_window: ddd:hh24:mi-ddd:hh24:mi in UTC (got %r)" % window)
    return errors


def create_parameters(params, tags=None):
    """CreateDBInstance keyword arguments: the options that are set, plus ManageMasterUserPassword."""
    out = {}
    for option, key in CREATE_PARAMETERS:
        value = params.get(option)
        if value is None or value == "" or value == []:
            continue
        out[key] = value
    out["ManageMasterUserPassword"] = True
    if tags:
        out["Tags"] = [{"Key": k, "Value": str(v)} for k, v in sorted(tags.items())]
    return out


def plan(instance, convert_existing):
    """What the module does with ``instance`` (a DescribeDBInstances entry, or None).

    Returns (action, reason): ``create``, ``none`` (RDS already manages the password),
    ``enable`` (turn management on: RDS replaces the current password) or ``refuse``.
    """
    if instance is None:
        return "create", "the instance does not exist"
    status = instance.get("DBInstanceStatus", "")
    if status == "deleting":
        return "refuse", "the instance is being deleted"
    if instance.get("MasterUserSecret"):
        return "none", "RDS already manages the master password in Secrets Manager"
    if convert_existing:
        return "enable", "the instance has a password of its own; RDS will replace it with one it keeps in Secrets Manager"
    return "refuse", ("the instance exists with a master password RDS does not manage. Turning management on "
                      "replaces that password (clients using it stop working): set convert_existing: true to do so")


def secret_view(instance):
    """The non-secret description of the instance's master user secret (ARN, status, key)."""
    secret = (instance or {}).get("MasterUserSecret") or {}
    return {
        "secret_arn": secret.get("SecretArn"),
        "secret_status": secret.get("SecretStatus"),
        "kms_key_id": secret.get("KmsKeyId"),
    }


def instance_view(instance):
    """The fields the module returns about the instance (never a password: RDS has none to give)."""
    if not instance:
        return {}
    endpoint = instance.get("Endpoint") or {}
    return {
        "db_instance_identifier": instance.get("DBInstanceIdentifier"),
        "db_instance_arn": instance.get("DBInstanceArn"),
        "status": instance.get("DBInstanceStatus"),
        "engine": instance.get("Engine"),
        "engine_version": instance.get("EngineVersion"),
        "master_username": instance.get("MasterUsername"),
        "endpoint": {"address": endpoint.get("Address"), "port": endpoint.get("Port")},
        "storage_encrypted": instance.get("StorageEncrypted"),
        "deletion_protection": instance.get("DeletionProtection"),
        "backup_retention_period": instance.get("BackupRetentionPeriod"),
    }
